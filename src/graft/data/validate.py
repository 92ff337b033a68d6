"""The data gate (stage ``validate``): a manifest of the target folder, checked by the Great
Expectations suites of :mod:`graft.data.expectations`.

A failed critical expectation stops the stage (:class:`ValidationFailed`, every failing file
named) after the reports are written. Warnings are reported and the run goes on. Files that
are set aside (bad files with ``validate.on_bad_file: quarantine``; the non-test copy of a
near-duplicate across given folders with ``validate.near_duplicate_leak: quarantine``) are
listed in ``quarantine.csv`` and excluded from the split. The target folder is only ever read.

Outputs in ``paths.validation``: ``manifest.csv`` (with each file's duplicate group and
quarantine reason, which ``split`` reads), ``quarantine.csv``, ``summary.json`` and ``gx/``
(the suites, validation results and Data Docs).
"""

from __future__ import annotations

from pathlib import Path

from graft import artifacts
from graft.data import manifest
from graft.data.annotate import Checks, annotate, class_table
from graft.data.expectations import DATA_DOCS, run_suites
from graft.errors import ValidationFailed, listing
from graft.files import atomic_path, write_json
from graft.records import ValidationSummary


def validate(*, target_dir: Path, checks: Checks, out_dir: Path) -> ValidationSummary:
    """Build the manifest of ``target_dir``, run the suites, write ``out_dir``; return the summary.
    Raises :class:`ValidationFailed` (after writing the reports) when a critical check fails."""
    if not target_dir.is_dir():
        raise ValidationFailed(f"paths.target={target_dir} does not exist; run `dvc repro ingest` or fix the path")
    table, folders, hidden = manifest.scan(target_dir, rules=manifest.Rules.of(checks.settings),
                                           workers=checks.settings.workers)
    table, images = annotate(table, checks)
    classes = class_table(table, folders, checks)
    files = table[["path", "class", "decodes", "error"]]
    names = {a: a.name for a in (artifacts.MANIFEST, artifacts.QUARANTINE, artifacts.VALIDATION_SUMMARY, artifacts.GX)}
    with atomic_path(out_dir, directory=True) as tmp:
        table.drop(columns=["set"]).to_csv(tmp / names[artifacts.MANIFEST], index=False)
        quarantined = table[table["quarantine"] != ""]
        quarantined[["path", "class", "given_split", "quarantine"]].rename(columns={"quarantine": "reason"}).to_csv(
            tmp / names[artifacts.QUARANTINE], index=False)
        findings = run_suites(frames={"files": files, "images": images, "classes": classes}, checks=checks,
                              project_dir=tmp)  # GX writes its gx/ folder there
        summary = ValidationSummary(
            success=not findings["critical"], target=str(target_dir), files=len(table),
            decodable=int(table["decodes"].sum()), hidden_skipped=hidden, quarantined=len(quarantined),
            class_counts={c: int(n) for c, n in zip(classes["class"], classes["images"]) if c in checks.classes},
            critical=findings["critical"], warnings=findings["warning"],
            quarantine_report=str(out_dir / names[artifacts.QUARANTINE]),
            data_docs=str(out_dir / names[artifacts.GX] / DATA_DOCS))
        write_json(tmp / names[artifacts.VALIDATION_SUMMARY], summary.to_json())
    if not summary.success:
        raise ValidationFailed(f"{target_dir} failed {len(summary.critical)} critical check(s) (all findings: "
                               f"{out_dir / names[artifacts.VALIDATION_SUMMARY]}, {summary.data_docs}):\n"
                               + explain(summary.critical))
    return summary


def explain(findings: list[dict]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"- {finding['why']} ({finding['count']} failing; fix: {finding['fix']})")
        if finding["files"]:  # summary.json names them all
            lines.append(listing([f"{path}: {detail}" for path, detail in finding["files"].items()]))
    return "\n".join(lines)


def describe(summary: ValidationSummary) -> str:
    """The short human summary the stage prints."""
    counts = ", ".join(f"{c} {n}" for c, n in summary.class_counts.items())
    lines = [f"validate: {summary.files} files, {summary.decodable} decode; usable per class: {counts}; "
             f"{len(summary.critical)} critical, {len(summary.warnings)} warning(s), {summary.quarantined} quarantined"]
    if summary.warnings:
        lines.append("warnings (the run goes on):\n" + explain(summary.warnings))
    if summary.quarantined:
        lines.append(f"quarantined files (excluded from the split): {summary.quarantine_report}")
    lines.append(f"data docs: {summary.data_docs}")
    return "\n".join(lines)
