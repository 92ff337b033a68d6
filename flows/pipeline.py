"""Prefect flow over graft's DVC pipeline: one task per DVC stage, in the order DVC gives.

Each task is ``dvc repro --single-item <stage>``, so DVC decides what is up to date: running
this flow after ``dvc repro`` changes nothing, and vice versa. A stage DVC skips ends in a
``Skipped`` state. One run at a time: a trigger that finds the pipeline busy waits up to
``wait_seconds`` and then ends ``Cancelled`` with the reason, never touching the workspace.
After the stages, the run publishes Prefect artifacts: the validation summary, the metrics
table, the gate result and links to the confusion matrix and the model card.

    python flows/pipeline.py [project_root]   # one run against a temporary local Prefect server
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import graft  # noqa: F401  (DVC, GX and Prefect telemetry off before Prefect is imported)

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_ENABLED", "true")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact  # noqa: E402
from prefect.states import Cancelled, Completed  # noqa: E402

from graft import config  # noqa: E402
from graft.summary import read_json  # noqa: E402
from graft.dag import PipelineBusy, pipeline_lock, repro_stage, stage_order  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]


@task(name="dvc-stage", task_run_name="{stage}")
def run_stage(stage: str, root: str):
    result = repro_stage(stage, root)
    outcome = {"stage": stage, "ran": result.ran}
    if not result.ran:
        return Completed(name="Skipped", message=f"{stage}: up to date, skipped by DVC", data=outcome)
    print(f"{stage}: ran")
    return outcome


@task(name="publish-artifacts")
def publish(root: str) -> None:
    """Prefect artifacts from the run's outputs (paths from params.yaml, relative to ``root``)."""
    base = Path(root)
    paths = config.load(base / "params.yaml").paths
    validation = read_json(base / paths.validation / "summary.json")
    if validation:
        counts = "\n".join(f"| {c} | {n} |" for c, n in validation["class_counts"].items())
        create_markdown_artifact(key="graft-validation", description="Great Expectations on the target data",
                                 markdown=f"## Validation: {'passed' if validation['success'] else 'FAILED'}\n\n"
                                          f"{validation['files']} files, {validation['decodable']} decode.\n\n"
                                          f"| class | images |\n|---|---:|\n{counts}\n")
    scores = read_json(base / paths.metrics / "metrics.json")
    if scores:
        create_table_artifact(key="graft-metrics", description="Test-split metrics of both phases", table=[
            {"model": name, **{k: scores[name].get(k) for k in ("accuracy", "loss", "macro_f1", "ece", "errors")}}
            for name in ("head", "finetuned") if name in scores])
    gate = read_json(base / paths.metrics / "gate.json")
    if gate:
        create_markdown_artifact(key="graft-gate", description="Release gate",
                                 markdown="## Gate: " + ("blessed" if gate["blessed"] else "NOT blessed") + "\n\n"
                                          + "\n".join(f"- {r}" for r in gate["reasons"]))
    for key, path, text in (("graft-confusion-matrix", base / paths.plots / "confusion.png", "confusion matrix"),
                            ("graft-model-card", base / paths.export / "model_card.md", "model card")):
        if path.is_file():
            create_link_artifact(key=key, link=path.resolve().as_uri(), link_text=text)


@flow(name="graft-pipeline", log_prints=True)
def pipeline(root: str = str(PROJECT), wait_seconds: float = 0.0):
    """Run every DVC stage of the project at ``root`` in DVC's order; return what ran."""
    try:
        with pipeline_lock(root, wait_seconds=wait_seconds):
            # return_state: a Skipped state carries its outcome as data; .result() re-raises failures
            runs = [run_stage(stage, root, return_state=True).result() for stage in stage_order(root)]
            publish(root)
    except PipelineBusy as busy:
        get_run_logger().warning(str(busy))
        return Cancelled(message=str(busy))
    return runs


if __name__ == "__main__":
    state = pipeline(sys.argv[1] if len(sys.argv) > 1 else str(PROJECT), return_state=True)
    if not state.is_completed():
        sys.exit(f"graft-pipeline: {state.name}: {state.message}")
    print("ran:", [r["stage"] for r in state.result() if r["ran"]] or "nothing (all up to date)")
