"""Stage ``validate``: a Great Expectations 1.x suite over the target data's per-image manifest.

Critical expectations: every file decodes as an image, the class folders are exactly the
configured classes, and every class has at least ``validate.min_images_per_class`` images.
The suite, its results and GX Data Docs are written under ``paths.validation``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import graft  # noqa: F401  (telemetry off before Great Expectations is imported)
import pandas as pd

from graft import manifest
from graft.atomic import atomic_path, write_json
from graft.config import Params

MAX_NAMED = 10  # failing files named in a message


class ValidationFailed(RuntimeError):
    """A critical expectation failed; the message names the expectation and the files."""


def class_counts(table: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Images per configured class, zero for a class with no folder, over decodable files."""
    counts = table[table["decodes"]].groupby("class").size()
    return pd.DataFrame({"class": list(classes), "images": [int(counts.get(c, 0)) for c in classes]})


def run_suite(*, table: pd.DataFrame, classes: Sequence[str], min_images_per_class: int, project_dir: Path) -> dict:
    """Run the suite with a file-backed GX context in ``project_dir``; return a JSON-able summary."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=str(project_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # one summary line is enough
    context.variables.save()
    source = context.data_sources.add_or_update_pandas("target_data")
    checks = {
        "images": (table, [
            gxe.ExpectColumnValuesToBeInSet(column="decodes", value_set=[True],
                                            meta={"why": "every file must decode as an image"}),
            gxe.ExpectColumnValuesToBeInSet(column="class", value_set=list(classes),
                                            meta={"why": "every folder must be a configured class (data.target_classes)"}),
        ]),
        "class_counts": (class_counts(table, classes), [
            gxe.ExpectColumnValuesToBeBetween(column="images", min_value=min_images_per_class,
                                              meta={"why": f"every class needs >= {min_images_per_class} images "
                                                           "(validate.min_images_per_class)"}),
        ]),
    }
    definitions, frames = [], {}
    for name, (frame, expectations) in checks.items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = context.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=expectations))
        definitions.append(context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)))
        frames[name] = frame
    failures, results = [], {}
    for definition in definitions:  # one batch per asset: each definition gets its own dataframe
        checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name=definition.name, validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "COMPLETE"}))
        result = checkpoint.run(batch_parameters={"dataframe": frames[definition.name]})
        for run in result.run_results.values():
            for check in run.results:
                config = check.expectation_config
                entry = {"expectation": config.type, "column": config.kwargs.get("column"),
                         "why": (config.meta or {}).get("why", ""), "success": bool(check.success)}
                if not check.success:
                    rows = check.result.get("unexpected_index_list") or []
                    frame = frames[definition.name]
                    key = "path" if "path" in frame else "class"
                    entry["failing"] = [str(frame.iloc[i][key]) for i in rows]
                    if key == "path":
                        entry["errors"] = {str(frame.iloc[i]["path"]): frame.iloc[i]["error"] or
                                           f"class folder {frame.iloc[i]['class']!r}" for i in rows}
                    failures.append(entry)
                results.setdefault(definition.name, []).append(entry)
    docs = project_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    return {"success": not failures, "files": len(table), "decodable": int(table["decodes"].sum()),
            "class_counts": dict(zip(frames["class_counts"]["class"], frames["class_counts"]["images"])),
            "results": results, "failures": failures, "data_docs": str(docs)}


def explain(failures: list[dict]) -> str:
    lines = []
    for failure in failures:
        named = failure.get("failing", [])
        shown = ", ".join(named[:MAX_NAMED]) + (f" (+{len(named) - MAX_NAMED} more)" if len(named) > MAX_NAMED else "")
        lines.append(f"- {failure['why']}: {failure['expectation']} on '{failure['column']}' failed for {shown}")
        for path, error in list(failure.get("errors", {}).items())[:MAX_NAMED]:
            lines.append(f"    {path}: {error}")
    return "\n".join(lines)


def validate(*, target_dir: Path, classes: Sequence[str], min_images_per_class: int, out_dir: Path) -> dict:
    """Build the manifest of ``target_dir``, run the suite, write ``out_dir``; return the summary.
    Raises :class:`ValidationFailed` (after writing the summary) when a critical check fails."""
    if not target_dir.is_dir():
        raise ValidationFailed(f"paths.target={target_dir} does not exist; run `dvc repro ingest` or fix the path")
    table = manifest.build(target_dir)
    with atomic_path(out_dir, directory=True) as tmp:
        table.to_csv(tmp / "manifest.csv", index=False)
        summary = run_suite(table=table, classes=classes, min_images_per_class=min_images_per_class, project_dir=tmp)
        summary["data_docs"] = summary["data_docs"].replace(str(tmp), str(out_dir))
        summary["target"] = str(target_dir)
        write_json(tmp / "summary.json", summary)
    if not summary["success"]:
        raise ValidationFailed(f"{target_dir} failed {len(summary['failures'])} critical check(s) "
                               f"(details: {out_dir / 'summary.json'}, {summary['data_docs']}):\n" + explain(summary["failures"]))
    return summary


def run(params: Params) -> None:
    summary = validate(target_dir=params.paths.target, classes=params.data.target_classes,
                       min_images_per_class=params.validate.min_images_per_class, out_dir=params.paths.validation)
    counts = ", ".join(f"{c}: {n}" for c, n in summary["class_counts"].items())
    print(f"validate: {summary['files']} files, all decode; {counts}; data docs: {summary['data_docs']}")
