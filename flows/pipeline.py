"""Prefect flow over graft's DVC pipeline: one task per DVC stage, in the order DVC gives.

Each task is ``dvc repro --single-item <stage>``, so DVC decides what is up to date: running
this flow after ``dvc repro`` changes nothing, and vice versa. A stage DVC skips ends in a
``Skipped`` state. One run at a time: a trigger that finds the pipeline busy waits up to
``wait_seconds`` and then ends ``Cancelled`` with the reason, never touching the workspace.
``params`` overrides (dotted keys, as ``dvc exp run -S``) are checked by graft.config and written
into params.yaml under the lock, before any stage runs (see graft.overrides).
After the stages, the run publishes Prefect artifacts: the validation summary, the metrics
table, the gate result and links to the confusion matrix and the model card.

Retries only where a retry is safe and can help: publishing artifacts (it only reads files), and
a stage that DVC refused to start because another ``dvc`` process held the repository lock
(nothing ran). A stage whose command failed is not retried: that failure is deterministic (bad
data, a param, the gate, a bug), a retry would repeat minutes of training and bury the first error.

    python flows/pipeline.py [project_root] [-S key=value ...]   # one run, temporary local Prefect server
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import graft  # noqa: F401  (DVC, GX and Prefect telemetry off before Prefect is imported)

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_ENABLED", "true")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact  # noqa: E402
from prefect.states import Cancelled, Completed  # noqa: E402

from graft import config, overrides  # noqa: E402
from graft.summary import read_json  # noqa: E402
from graft.dag import DVC_LOCK_BUSY, PipelineBusy, StageFailed, pipeline_lock, repro_stage, stage_order  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
STAGE_RETRIES, STAGE_RETRY_DELAY = 2, 10.0


def dvc_lock_was_busy(task, task_run, state) -> bool:
    """Retry a stage only when DVC did not start it because another dvc process held the repo lock."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # the result cannot be read back: decide from the state's message
        return DVC_LOCK_BUSY in (state.message or "") and "Running stage" not in (state.message or "")
    return isinstance(error, StageFailed) and error.transient


@task(name="apply-params")
def apply_params(root: str, params: dict[str, Any]) -> dict[str, list]:
    """Write the run's params overrides into params.yaml (checked first; atomic; no retries)."""
    changes = overrides.apply(Path(root) / "params.yaml", params)
    for key, (old, new) in changes.items():
        print(f"params override: {key}: {old!r} -> {new!r}")
    return {key: [old, new] for key, (old, new) in changes.items()}


@task(name="dvc-stage", task_run_name="{stage}", retries=STAGE_RETRIES, retry_delay_seconds=STAGE_RETRY_DELAY,
      retry_condition_fn=dvc_lock_was_busy)
def run_stage(stage: str, root: str):
    result = repro_stage(stage, root)
    outcome = {"stage": stage, "ran": result.ran}
    if not result.ran:
        return Completed(name="Skipped", message=f"{stage}: up to date, skipped by DVC", data=outcome)
    print(f"{stage}: ran")
    return outcome


@task(name="publish-artifacts", retries=2, retry_delay_seconds=5)
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
def pipeline(root: str = str(PROJECT), wait_seconds: float = 0.0, params: dict[str, Any] | None = None):
    """Run every DVC stage of the project at ``root`` in DVC's order; return what ran.

    ``params``: overrides for this run, dotted keys to values (``{"finetune.lr": 5e-05}``), written
    into params.yaml once the run holds the pipeline (a busy trigger never touches the file)."""
    asked = time.monotonic()
    try:
        with pipeline_lock(root, wait_seconds=wait_seconds):
            print(f"pipeline lock taken after {time.monotonic() - asked:.1f} s")
            if params:
                apply_params(root, params)
            # return_state: a Skipped state carries its outcome as data; .result() re-raises failures
            runs = [run_stage(stage, root, return_state=True).result() for stage in stage_order(root)]
            publish(root)
    except PipelineBusy as busy:
        get_run_logger().warning(str(busy))
        return Cancelled(message=str(busy))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run graft's DVC pipeline as one Prefect flow run.")
    parser.add_argument("root", nargs="?", default=str(PROJECT), help="the project (default: this one)")
    parser.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                        help="params override for this run, as dvc exp run -S (repeatable)")
    parser.add_argument("--wait-seconds", type=float, default=0.0, help="how long to wait for a busy pipeline")
    args = parser.parse_args(argv)
    params = overrides.parse_assignments(args.set_param)
    state = pipeline(args.root, wait_seconds=args.wait_seconds, params=params, return_state=True)
    if not state.is_completed():
        print(f"graft-pipeline: {state.name}: {state.message}")
        return 2 if state.is_cancelled() else 1
    print("ran:", [r["stage"] for r in state.result() if r["ran"]] or "nothing (all up to date)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
