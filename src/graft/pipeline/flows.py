"""The Prefect flows: graft's DVC pipeline as one flow run, and batch prediction for consumers.

``pipeline``: one task per DVC stage, in the order DVC gives (graft.pipeline.dag). Each task is
``dvc repro --single-item <stage>``, so DVC decides what is up to date: running the flow after
``dvc repro`` changes nothing, and vice versa. A stage DVC skips ends in a ``Skipped`` state.
One run at a time: a trigger that finds the pipeline busy waits up to ``wait_seconds`` and then
ends ``Cancelled`` with the reason, never touching the workspace. ``params`` overrides (dotted
keys, as ``dvc exp run -S``) are checked by graft.config and written into params.yaml under the
lock, before any stage runs (graft.pipeline.overrides). After the stages, the run publishes
Prefect artifacts with their content (readable in a remote UI): the validation summary, the
metrics and gate tables, the confusion matrix's counts and the model card.

Retries only where a retry is safe and can help: publishing artifacts (it only reads files), and
a stage that DVC refused to start because another ``dvc`` process held the repository lock
(nothing ran). A stage whose command failed is not retried: that failure is deterministic (bad
data, a param, the gate, a bug), a retry would repeat minutes of training and bury the first error.
"""

from __future__ import annotations

import collections
import csv
import os
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.states import Cancelled, Completed

from graft import artifacts, config
from graft.data.preflight import check as check_folders
from graft.errors import PipelineBusy, StageFailed
from graft.pipeline import overrides
from graft.pipeline.dag import stage_order
from graft.pipeline.lock import pipeline_lock
from graft.pipeline.runner import lock_was_busy, repro_stage
from graft.predict import Predictor, expand, write_results

STAGE_RETRIES, STAGE_RETRY_DELAY = 2, 10.0


def dvc_lock_was_busy(task, task_run, state) -> bool:
    """Retry a stage only when DVC did not start it because another dvc process held the repo lock."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # the result cannot be read back (any reason): decide from the state's message
        return lock_was_busy(state.message or "")
    return isinstance(error, StageFailed) and lock_was_busy(error.output)


@task(name="apply-params")
def apply_params(root: str, params: dict[str, Any], allow_paths: bool) -> dict[str, list]:
    """Write the run's params overrides into params.yaml (checked first; atomic; no retries)."""
    changes = overrides.apply(Path(root) / "params.yaml", params, allow_paths=allow_paths)
    for key, (old, new) in changes.items():
        print(f"params override: {key}: {old!r} -> {new!r}")
    return {key: [old, new] for key, (old, new) in changes.items()}


@task(name="preflight")
def preflight(root: str) -> None:
    """The data folders DVC will hash hold nothing it would block on (a named pipe)."""
    p = config.load(Path(root) / "params.yaml")
    check_folders({key: Path(root) / value for key, value in (("paths.target", p.paths.target),
                                                                ("pretrain.data", p.pretrain.data))})


@task(name="dvc-stage", task_run_name="{stage}", retries=STAGE_RETRIES, retry_delay_seconds=STAGE_RETRY_DELAY,
      retry_condition_fn=dvc_lock_was_busy)
def run_stage(stage: str, root: str, timeout: float, lock_fd: int | None = None):
    """``dvc repro`` of one stage, its output in this task's log as it comes, killed past ``timeout``."""
    logger = get_run_logger()
    lock = os.fdopen(os.dup(lock_fd), "r") if lock_fd is not None else None
    try:
        result = repro_stage(stage, root, timeout=timeout, lock=lock, on_line=logger.info)
    finally:
        if lock is not None:
            lock.close()
    outcome = {"stage": stage, "ran": result.ran}
    if not result.ran:
        return Completed(name="Skipped", message=f"{stage}: up to date, skipped by DVC", data=outcome)
    return outcome


@task(name="publish-artifacts", retries=2, retry_delay_seconds=5)
def publish(root: str) -> None:
    """Prefect artifacts from the run's records (paths from params.yaml, relative to ``root``)."""
    base = Path(root)
    loaded = config.load(base / "params.yaml")
    paths = loaded.paths.model_copy(update={name: base / value for name, value in loaded.paths.model_dump().items()})
    validation = artifacts.VALIDATION_SUMMARY.read_or_none(paths)
    if validation:
        counts = "\n".join(f"| {c} | {n} |" for c, n in validation.class_counts.items())
        create_markdown_artifact(key="graft-validation", description="Great Expectations on the target data",
                                 markdown=f"## Validation: {'passed' if validation.success else 'FAILED'}\n\n"
                                          f"{validation.files} files, {validation.decodable} decode.\n\n"
                                          f"| class | images |\n|---|---:|\n{counts}\n")
    scores = artifacts.METRICS.read_or_none(paths)
    if scores:
        create_table_artifact(key="graft-metrics", description="Test-split metrics of both phases", table=[
            {"model": name, **getattr(scores, name).model_dump(include={"accuracy", "loss", "macro_f1", "ece", "errors"})}
            for name in ("head", "finetuned")])
    gate = artifacts.GATE.read_or_none(paths)
    if gate:  # a table: one row per check, its measured value, its threshold and whether it passed
        create_table_artifact(key="graft-gate", description="Release gate: " + ("blessed" if gate.blessed else
                              "NOT blessed: " + "; ".join(gate.reasons)),
                              table=[{"check": name, **check} for name, check in gate.checks.items()])
    confusion = artifacts.CONFUSION.path(paths)
    if confusion.is_file():  # the counts, from the fine-tuned model's per-image rows (a PNG is no use in a remote UI)
        with open(confusion, newline="") as f:
            pairs = collections.Counter((row["actual"], row["predicted"]) for row in csv.DictReader(f))
        classes = loaded.data.target_classes
        rows = "\n".join(f"| **{a}** | " + " | ".join(str(pairs[a, p]) for p in classes) + " |" for a in classes)
        create_markdown_artifact(key="graft-confusion-matrix", description="Confusion matrix of the fine-tuned model",
                                 markdown="## Confusion matrix (test split, fine-tuned)\n\nrows: actual, columns: "
                                          f"predicted\n\n| | {' | '.join(classes)} |\n|---|"
                                          + "---:|" * len(classes) + f"\n{rows}\n")
    card = artifacts.MODEL_CARD.path(paths)
    if card.is_file():
        create_markdown_artifact(key="graft-model-card", description="Model card of the exported model",
                                 markdown=card.read_text())


def pipeline_for(root: str | Path, *, allow_path_overrides: bool = False):
    """The pipeline flow of the project at ``root``. The project is fixed here, where a deployment
    is made, not a run's parameter; so is whether a run may override ``paths.*`` (an output path
    is a permission to delete)."""
    root = str(Path(root).resolve())

    @flow(name="graft-pipeline", log_prints=True)
    def pipeline(wait_seconds: float = 0.0, params: dict[str, Any] | None = None):
        """Run every DVC stage of the project in DVC's order; return what ran.

        ``params``: overrides for this run, dotted keys to values (``{"finetune.lr": 5e-05}``),
        written into params.yaml once the run holds the pipeline (a busy trigger never touches
        the file). ``wait_seconds``: how long a trigger that finds another run going waits."""
        asked = time.monotonic()
        try:
            with pipeline_lock(root, wait_seconds=wait_seconds) as lock:
                print(f"pipeline lock taken after {time.monotonic() - asked:.1f} s")
                if params:
                    apply_params(root, params, allow_path_overrides)
                preflight(root)
                timeouts = config.load(Path(root) / "params.yaml").timeouts
                # return_state: a Skipped state carries its outcome as data; .result() re-raises failures
                runs = [run_stage(stage, root, timeouts[stage], lock.fileno(), return_state=True).result()
                        for stage in stage_order(root)]
                publish(root)
        except PipelineBusy as busy:
            get_run_logger().warning(str(busy))
            return Cancelled(message=str(busy))
        return runs

    return pipeline


@flow(name="graft-batch-predict", log_prints=True)
def batch_predict(images: str, model: str, out: str) -> dict:
    """Score every image under ``images`` with ``model`` (an ONNX file graft exported); write
    ``out`` (.csv or .json; an unreadable file gets an error, the rest still score); publish a
    summary artifact; return the summary."""
    results = Predictor(model).predict(expand([images]))
    out_path = Path(out)
    write_results(out_path, results)
    labels = collections.Counter(r["label"] for r in results if "label" in r)
    errors = [r for r in results if "error" in r]
    summary = {"images": len(results), "labels": dict(labels), "errors": len(errors), "out": str(out_path)}
    rows = "\n".join(f"| {label} | {n} |" for label, n in labels.most_common())
    bad = "\n".join(f"- `{r['path']}`: {r['error']}" for r in errors[:20])
    create_markdown_artifact(key="graft-batch-predictions", description=f"{len(results)} images scored",
                             markdown=f"## Batch prediction\n\n{len(results)} images from `{images}` with `{model}`; "
                                      f"results in `{out_path}`.\n\n| label | images |\n|---|---:|\n{rows}\n\n"
                                      + (f"**{len(errors)} files could not be read:**\n\n{bad}\n" if errors else ""))
    print(f"scored {len(results) - len(errors)} images, {len(errors)} unreadable; results in {out_path}")
    return summary


# One run of a deployment at a time, on the Prefect side: a run triggered while another is going is
# cancelled by the server (Cancelled in the UI, nothing started). prefect.yaml says the same for the
# work-pool route. The pipeline lock stays for runs outside a deployment (a temporary server).
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def serve(*, root: str, name: str, schedule: dict, wait_seconds: float, params: dict[str, Any],
          allow_path_overrides: bool = False) -> None:
    """Serve the project's pipeline as a scheduled deployment (needs a real Prefect server:
    PREFECT_API_URL), limited to one run at a time with ``CANCEL_NEW`` (:data:`ONE_AT_A_TIME`);
    the pipeline's own lock still turns any other overlap into a clean "pipeline busy"."""
    pipeline_for(root, allow_path_overrides=allow_path_overrides).serve(
        name=name, global_limit=ONE_AT_A_TIME, **schedule, parameters={"wait_seconds": wait_seconds, "params": params})
