"""Stage ``validate``: the data gate. A manifest of the target folder, checked by Great Expectations 1.x.

Three GX suites, each over its own dataframe, each expectation with a GX ``severity``:

- ``files`` (every file): it decodes as an allowed format, and it lies inside a class folder;
- ``images`` (files that decode, in a configured class): at least ``validate.min_size`` pixels
  each way; the same image (sha256) not under two classes; no copy across the given
  ``train/ valid/ test/`` folders; and, as warnings, near-duplicates (perceptual hash) across
  classes or across the given folders, modes the pipeline converts, unusual aspect ratios;
- ``classes`` (one row a class folder): every folder is a configured class, every configured
  class has a folder with at least ``validate.min_images_per_class`` usable images, and, as a
  warning, no class outnumbers another by more than ``validate.max_imbalance``.

A failed critical expectation stops the stage (:class:`ValidationFailed`, every failing file
named) after the reports are written. Warnings are reported and the run goes on. Files that
are set aside (bad files with ``validate.on_bad_file: quarantine``; the non-test copy of a
near-duplicate across given folders with ``validate.near_duplicate_leak: quarantine``) are
listed in ``quarantine.csv`` and excluded from the split. The raw folder is only ever read.

Outputs in ``paths.validation``: ``manifest.csv`` (with each file's duplicate group and
quarantine reason, which ``split`` reads), ``quarantine.csv``, ``summary.json`` and ``gx/``
(the suites, validation results and Data Docs).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import graft  # noqa: F401  (telemetry off before Great Expectations is imported)
import numpy as np
import pandas as pd

from graft import duplicates, manifest
from graft.atomic import atomic_path, write_json
from graft.config import Params

MAX_NAMED = 10  # failing files named per expectation in the printed message (summary.json names all)
POOL = {"": "pool", "train": "pool", "valid": "valid", "test": "test"}  # what a given folder becomes
KEEP_ORDER = {"pool": 0, "valid": 1, "test": 2}  # of two near-duplicates across folders, the higher one is kept


class ValidationFailed(RuntimeError):
    """A critical expectation failed; the message names the expectation and the files."""


@dataclass(frozen=True, kw_only=True)
class Checks:
    """What validate checks (the ``validate`` params, plus the model's channels)."""
    classes: tuple[str, ...]
    min_images_per_class: int = 10
    min_size: int = 8
    max_imbalance: float = 10.0
    max_aspect_ratio: float = 3.0
    near_duplicate_distance: int = 12
    on_bad_file: str = "fail"  # or quarantine
    near_duplicate_leak: str = "quarantine"  # or fail
    channels: int = 1
    rules: manifest.Rules = manifest.Rules()
    workers: int = 0


def _others(table: pd.DataFrame, keys: pd.Series, differs: str) -> list[str | None]:
    """For each row, the paths of the rows with the same key and a different ``differs`` value."""
    out: list[str | None] = [None] * len(table)
    shared = keys.duplicated(keep=False).to_numpy()
    if not shared.any():
        return out
    positions = np.flatnonzero(shared)
    sub = pd.DataFrame({"key": keys.to_numpy()[positions], "value": table[differs].to_numpy()[positions],
                        "path": table["path"].to_numpy()[positions], "at": positions})
    for _, members in sub.groupby("key"):
        for at, value in zip(members["at"], members["value"]):
            hits = members.loc[members["value"] != value, "path"].tolist()
            if hits:
                out[at] = "; ".join(hits)
    return out


def annotate(table: pd.DataFrame, checks: Checks) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add the derived columns the suites check (pure). Returns (all files, usable images).

    Columns added to every row: ``group`` (duplicate group: the smallest sha256 among exact and
    near-duplicates), ``quarantine`` (why the file is set aside, or ""). The images frame has
    the decodable files of configured classes and the cross-file findings."""
    table = table.copy()
    table["set"] = table["given_split"].map(POOL).fillna("pool")
    table["quarantine"] = ""
    images = table[table["decodes"] & table["class"].isin(checks.classes)].copy()
    images["aspect"] = images[["width", "height"]].max(axis=1) / images[["width", "height"]].min(axis=1).clip(lower=1)
    sha = images["sha256"]
    images["same_image_in_other_class"] = _others(images, sha, "class")
    images["copy_in_other_split"] = _others(images, sha, "set")
    hashes = images["phash"].tolist()
    pairs = duplicates.near_pairs(hashes, checks.near_duplicate_distance) if checks.near_duplicate_distance >= 0 else []
    near_class: list[list[str]] = [[] for _ in hashes]
    near_split: list[list[str]] = [[] for _ in hashes]
    drop: dict[int, str] = {}
    paths, classes, sets, shas = (images[c].tolist() for c in ("path", "class", "set", "sha256"))
    for i, j in pairs:
        if shas[i] == shas[j]:
            continue  # exact copies: checked by sha256 above
        bits = duplicates.hamming(hashes[i], hashes[j])
        if classes[i] != classes[j]:
            near_class[i].append(f"{paths[j]} ({bits} bits apart)")
            near_class[j].append(f"{paths[i]} ({bits} bits apart)")
        if sets[i] != sets[j]:
            near_split[i].append(f"{paths[j]} ({bits} bits apart)")
            near_split[j].append(f"{paths[i]} ({bits} bits apart)")
            low, high = (i, j) if KEEP_ORDER[sets[i]] < KEEP_ORDER[sets[j]] else (j, i)
            drop[low] = f"near-duplicate of {paths[high]} in the given {sets[high]} folder ({bits} bits apart)"
    images["near_duplicate_in_other_class"] = ["; ".join(x) or None for x in near_class]
    images["near_duplicate_in_other_split"] = ["; ".join(x) or None for x in near_split]
    table["group"] = ""
    table.loc[images.index, "group"] = duplicates.groups(shas, pairs)
    # quarantine: what the run sets aside instead of failing
    if checks.on_bad_file == "quarantine":
        bad = ~table["decodes"]
        table.loc[bad, "quarantine"] = table.loc[bad, "error"]
        small = images.index[(images["width"] < checks.min_size) | (images["height"] < checks.min_size)]
        table.loc[small, "quarantine"] = f"smaller than validate.min_size ({checks.min_size} pixels)"
    if checks.near_duplicate_leak == "quarantine":
        for position, reason in drop.items():
            index = images.index[position]
            if not table.at[index, "quarantine"]:
                table.at[index, "quarantine"] = reason
    images["quarantine"] = table.loc[images.index, "quarantine"]
    return table, images.reset_index(drop=True)


def class_table(table: pd.DataFrame, folders: dict[str, list[str]], checks: Checks) -> pd.DataFrame:
    """One row a configured class or class folder: usable images (not quarantined) and the imbalance."""
    usable = table[table["decodes"] & (table["quarantine"] == "")]
    counts = usable.groupby("class").size()
    seen = {name for names in folders.values() for name in names}
    rows = [{"class": c, "configured": True, "has_folder": c in seen, "images": int(counts.get(c, 0))}
            for c in checks.classes]
    files = table.groupby("class").size()
    rows += [{"class": c, "configured": False, "has_folder": True, "images": None, "files": int(files.get(c, 0))}
             for c in sorted(seen - set(checks.classes))]
    frame = pd.DataFrame(rows, columns=["class", "configured", "has_folder", "images", "files"])
    largest = max([r["images"] for r in rows if r["configured"]] or [0])
    frame["imbalance"] = [largest / max(n, 1) if c else None for c, n in zip(frame["configured"], frame["images"])]
    frame[["images", "files"]] = frame[["images", "files"]].astype("Int64")
    frame["imbalance"] = frame["imbalance"].astype("Float64")
    return frame


def expectations(checks: Checks) -> dict[str, list]:
    """The three suites' expectations (GX objects), with severity and the reason and fix in ``meta``."""
    import great_expectations.expectations as gxe

    bad_file = "warning" if checks.on_bad_file == "quarantine" else "critical"
    leak = "warning" if checks.near_duplicate_leak == "quarantine" else "critical"
    mode = "L" if checks.channels == 1 else "RGB"

    def meta(why: str, fix: str) -> dict:
        return {"why": why, "fix": fix}

    return {
        "files": [
            gxe.ExpectColumnValuesToBeInSet(column="decodes", value_set=[True], severity=bad_file, meta=meta(
                f"every file must be an image in an allowed format ({', '.join(checks.rules.formats)}) that decodes",
                "remove or replace the file, allow its format in validate.formats, "
                "or set validate.on_bad_file: quarantine to set bad files aside")),
            gxe.ExpectColumnValuesToNotBeInSet(column="class", value_set=[""], meta=meta(
                "every file must be inside a class folder", "move the file into <class>/ or delete it")),
        ],
        "images": [
            gxe.ExpectColumnValuesToBeBetween(column="width", min_value=checks.min_size, severity=bad_file, meta=meta(
                f"images must be at least validate.min_size ({checks.min_size}) pixels wide",
                "remove the image, lower validate.min_size, or set validate.on_bad_file: quarantine")),
            gxe.ExpectColumnValuesToBeBetween(column="height", min_value=checks.min_size, severity=bad_file, meta=meta(
                f"images must be at least validate.min_size ({checks.min_size}) pixels high",
                "remove the image, lower validate.min_size, or set validate.on_bad_file: quarantine")),
            gxe.ExpectColumnValuesToBeNull(column="same_image_in_other_class", meta=meta(
                "the same image (sha256) must not be labelled with two classes",
                "decide which class the image belongs to and delete the other copy")),
            gxe.ExpectColumnValuesToBeNull(column="copy_in_other_split", meta=meta(
                "the same image (sha256) must not be in two of the given train/ valid/ test/ folders (a leak)",
                "delete the copy outside test/ (or valid/)")),
            gxe.ExpectColumnValuesToBeNull(column="near_duplicate_in_other_split", severity=leak, meta=meta(
                f"near-duplicates (perceptual hash within {checks.near_duplicate_distance} bits) across the given "
                "folders leak between splits; the copy outside test/ (or valid/) is quarantined",
                "delete one of them, or set validate.near_duplicate_leak: fail to stop instead")),
            gxe.ExpectColumnValuesToBeNull(column="near_duplicate_in_other_class", severity="warning", meta=meta(
                f"near-duplicates (perceptual hash within {checks.near_duplicate_distance} bits) under two classes "
                "may be mislabelled", "check the pairs; validate.near_duplicate_distance sets how near")),
            gxe.ExpectColumnValuesToBeInSet(column="mode", value_set=[mode], severity="warning", meta=meta(
                f"images not in mode {mode} are converted (alpha on white, 16-bit scaled, EXIF rotation applied)",
                f"nothing to do if that is right; image.channels sets the model's mode ({mode})")),
            gxe.ExpectColumnValuesToBeBetween(column="aspect", max_value=checks.max_aspect_ratio, severity="warning",
                                              meta=meta(f"aspect ratios above validate.max_aspect_ratio "
                                                        f"({checks.max_aspect_ratio}) are squashed by the resize",
                                                        "crop the images, or raise validate.max_aspect_ratio")),
        ],
        "classes": [
            gxe.ExpectColumnValuesToBeInSet(column="configured", value_set=[True], meta=meta(
                "every class folder must be one of data.target_classes",
                "add the class to data.target_classes, or move the folder out of paths.target")),
            gxe.ExpectColumnValuesToBeInSet(column="has_folder", value_set=[True], meta=meta(
                "every class in data.target_classes needs a folder", "add the folder, or remove the class from params")),
            gxe.ExpectColumnValuesToBeBetween(column="images", min_value=checks.min_images_per_class, meta=meta(
                f"every class needs >= validate.min_images_per_class ({checks.min_images_per_class}) usable images",
                "add images, or lower validate.min_images_per_class")),
            gxe.ExpectColumnValuesToBeBetween(column="imbalance", max_value=checks.max_imbalance, severity="warning",
                                              meta=meta(f"the largest class has more than validate.max_imbalance "
                                                        f"({checks.max_imbalance}) times this class's images",
                                                        "add images to the small class, or raise validate.max_imbalance")),
        ],
    }


def _detail(frame: pd.DataFrame, column: str, i: int) -> str:
    row = frame.iloc[i]
    if column == "decodes":
        return str(row["error"])
    if column == "class":
        return "outside any class folder"
    if column in ("width", "height", "aspect"):
        return f"{row['width']}x{row['height']}"
    if column == "mode":
        return f"mode {row['mode']}"
    if column in ("configured", "has_folder", "images", "imbalance"):
        if not row["configured"]:
            return f"folder {row['class']!r} ({row['files']} files) is not a configured class"
        if not row["has_folder"]:
            return f"class {row['class']!r} has no folder"
        if column == "images":
            return f"class {row['class']!r} has {row['images']} usable images"
        return f"class {row['class']!r}: largest class / this class = {row['imbalance']:.1f}"
    return str(row[column])


def run_suites(*, frames: dict[str, pd.DataFrame], checks: Checks, project_dir: Path) -> dict:
    """Run the three suites with a file-backed GX context in ``project_dir``; return the findings."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=str(project_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.variables.save()
    source = context.data_sources.add_or_update_pandas("target_data")
    findings: dict[str, list] = {"critical": [], "warning": []}
    for name, suite_expectations in expectations(checks).items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = context.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=suite_expectations))
        definition = context.validation_definitions.add_or_update(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name=name, validation_definitions=[definition], actions=[],  # Data Docs once, below
            result_format={"result_format": "COMPLETE"}))
        frame = frames[name]
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        for run in result.run_results.values():
            for check in run.results:
                if check.success:
                    continue
                config = check.expectation_config
                column = config.kwargs.get("column")
                key = "path" if "path" in frame else "class"
                rows = check.result.get("unexpected_index_list") or []
                findings[str(config.severity.value)].append({
                    "suite": name, "expectation": config.type, "column": column,
                    "why": config.meta.get("why", ""), "fix": config.meta.get("fix", ""), "count": len(rows),
                    "files": {str(frame.iloc[i][key]): _detail(frame, column, i) for i in rows}})
    context.build_data_docs()  # one site with every suite and result (the results are stored by each run)
    return findings


def validate(*, target_dir: Path, checks: Checks, out_dir: Path) -> dict:
    """Build the manifest of ``target_dir``, run the suites, write ``out_dir``; return the summary.
    Raises :class:`ValidationFailed` (after writing the reports) when a critical check fails."""
    if not target_dir.is_dir():
        raise ValidationFailed(f"paths.target={target_dir} does not exist; run `dvc repro ingest` or fix the path")
    table, folders, hidden = manifest.scan(target_dir, rules=checks.rules, workers=checks.workers)
    table, images = annotate(table, checks)
    classes = class_table(table, folders, checks)
    files = table[["path", "class", "decodes", "error"]]
    with atomic_path(out_dir, directory=True) as tmp:
        table.drop(columns=["set"]).to_csv(tmp / "manifest.csv", index=False)
        quarantined = table[table["quarantine"] != ""]
        quarantined[["path", "class", "given_split", "quarantine"]].rename(columns={"quarantine": "reason"}).to_csv(
            tmp / "quarantine.csv", index=False)
        findings = run_suites(frames={"files": files, "images": images, "classes": classes}, checks=checks,
                              project_dir=tmp)
        docs = out_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
        summary = {
            "success": not findings["critical"], "target": str(target_dir), "files": len(table),
            "decodable": int(table["decodes"].sum()), "hidden_skipped": hidden, "quarantined": len(quarantined),
            "class_counts": {c: int(n) for c, n in zip(classes["class"], classes["images"]) if c in checks.classes},
            "critical": findings["critical"], "warnings": findings["warning"],
            "quarantine_report": str(out_dir / "quarantine.csv"), "data_docs": str(docs),
        }
        write_json(tmp / "summary.json", summary)
    if not summary["success"]:
        raise ValidationFailed(f"{target_dir} failed {len(summary['critical'])} critical check(s) "
                               f"(all findings: {out_dir / 'summary.json'}, {docs}):\n" + explain(summary["critical"]))
    return summary


def explain(findings: list[dict]) -> str:
    lines = []
    for finding in findings:
        named = list(finding["files"].items())
        lines.append(f"- {finding['why']} ({finding['count']} failing; fix: {finding['fix']})")
        lines += [f"    {path}: {detail}" for path, detail in named[:MAX_NAMED]]
        if len(named) > MAX_NAMED:
            lines.append(f"    ... and {len(named) - MAX_NAMED} more")
    return "\n".join(lines)


def describe(summary: dict) -> str:
    """The short human summary the stage prints."""
    counts = ", ".join(f"{c} {n}" for c, n in summary["class_counts"].items())
    lines = [f"validate: {summary['files']} files, {summary['decodable']} decode; usable per class: {counts}; "
             f"{len(summary['critical'])} critical, {len(summary['warnings'])} warning(s), "
             f"{summary['quarantined']} quarantined"]
    if summary["warnings"]:
        lines.append("warnings (the run goes on):\n" + explain(summary["warnings"]))
    if summary["quarantined"]:
        lines.append(f"quarantined files (excluded from the split): {summary['quarantine_report']}")
    lines.append(f"data docs: {summary['data_docs']}")
    return "\n".join(lines)


def checks_from(params: Params) -> Checks:
    v = params.validate
    return Checks(classes=tuple(params.data.target_classes), min_images_per_class=v.min_images_per_class,
                  min_size=v.min_size, max_imbalance=v.max_imbalance, max_aspect_ratio=v.max_aspect_ratio,
                  near_duplicate_distance=v.near_duplicate_distance, on_bad_file=v.on_bad_file,
                  near_duplicate_leak=v.near_duplicate_leak, channels=params.image.channels,
                  rules=manifest.Rules(formats=tuple(v.formats), max_pixels=v.max_pixels), workers=v.workers)


def run(params: Params) -> None:
    summary = validate(target_dir=params.paths.target, checks=checks_from(params), out_dir=params.paths.validation)
    print(describe(summary), file=sys.stdout)
