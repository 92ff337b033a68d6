"""Pipeline tier: the Prefect flows' operational behaviour on the tiny project (real Prefect runs)."""

from __future__ import annotations

import csv
import json
import shutil
import threading
import time

import pytest

from graft.errors import PipelineBusy
from graft.pipeline.lock import pipeline_lock

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    with pipeline_lock(tmp_path):
        with pytest.raises(PipelineBusy, match=r"pipeline busy: another run \(pid \d+\)"):
            with pipeline_lock(tmp_path, wait_seconds=0.5):
                pass
    with pipeline_lock(tmp_path):  # released: the next run gets it
        pass


def test_busy_trigger_is_cancelled_cleanly_and_skips_are_visible(harness, tiny_project):
    from prefect.client.orchestration import get_client  # noqa: F401  (harness client)

    from graft.pipeline.flows import pipeline_for

    with pipeline_lock(tiny_project):  # another run is going on
        state = pipeline_for(tiny_project)(return_state=True)
    assert state.is_cancelled() and "pipeline busy" in state.message

    state = pipeline_for(tiny_project)(return_state=True)  # the project is up to date
    assert state.is_completed()
    runs = state.result()
    assert runs and not any(r["ran"] for r in runs)


def read_back(coroutine):
    """A read from the harness's API (the flow runs elsewhere; each read gets its own client)."""
    import asyncio

    from prefect.client.orchestration import get_client

    async def go():
        async with get_client() as client:
            return await coroutine(client)

    return asyncio.run(go())


def test_pipeline_publishes_artifacts_with_their_content(harness, tiny_project):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from graft import artifacts, config
    from graft.pipeline.flows import pipeline_for

    pipeline_for(tiny_project)()
    found = read_back(lambda client: client.read_latest_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="graft-"))))
    data = {a.key: a.data for a in found}
    assert {"graft-validation", "graft-metrics", "graft-gate", "graft-confusion-matrix", "graft-model-card"} <= set(data)
    paths = config.load(tiny_project / "params.yaml").paths
    paths = paths.model_copy(update={k: tiny_project / v for k, v in paths.model_dump().items()})
    scores, gate = artifacts.METRICS.read(paths), artifacts.GATE.read(paths)
    metrics = {row["model"]: row for row in json.loads(data["graft-metrics"])}
    assert metrics["finetuned"]["accuracy"] == scores.finetuned.accuracy
    checks = {row["check"]: row for row in json.loads(data["graft-gate"])}
    assert checks.keys() == gate.checks.keys() and checks["accuracy"]["value"] == gate.checks["accuracy"]["value"]
    assert data["graft-model-card"] == artifacts.MODEL_CARD.path(paths).read_text()
    rows = list(csv.DictReader(open(artifacts.CONFUSION.path(paths))))
    counts = [[int(n) for n in line.strip(" |").split(" | ")[1:]]
              for line in data["graft-confusion-matrix"].splitlines() if line.startswith("| **")]
    classes = config.load(tiny_project / "params.yaml").data.target_classes
    assert counts == [[sum(r["actual"] == a and r["predicted"] == p for r in rows) for p in classes] for a in classes]
    assert sum(map(sum, counts)) == len(rows) > 0 and "file://" not in json.dumps(data)


def test_stage_output_streams_into_the_task_log_while_the_stage_runs(harness, tiny_project, tmp_path):
    """A line of ``export`` (the one stage a new export.tolerance re-runs) is in the task run's log
    on the server while that task run is still RUNNING, not only once it ends."""
    from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId, TaskRunFilter, TaskRunFilterName

    from graft import config
    from graft.pipeline.flows import pipeline_for

    project = tmp_path / "project"
    shutil.copytree(tiny_project, project)  # its own copy: this run changes params.yaml and re-exports
    tolerance = config.load(project / "params.yaml").export.tolerance * 1.5
    results = {}
    runner = threading.Thread(target=lambda: results.update(
        state=pipeline_for(project)(params={"export.tolerance": tolerance}, return_state=True)))
    runner.start()
    try:
        seen_while_running = None
        deadline = time.monotonic() + 240
        while runner.is_alive() and time.monotonic() < deadline and seen_while_running is None:
            time.sleep(0.5)
            tasks = read_back(lambda client: client.read_task_runs(
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=["export"]))))
            for task_run in tasks:
                logs = read_back(lambda client, task_run=task_run: client.read_logs(
                    log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[task_run.id]))))
                state = read_back(lambda client, task_run=task_run: client.read_task_run(task_run.id)).state
                if any("Running stage 'export'" in log.message for log in logs) and state.is_running():
                    seen_while_running = task_run.id
    finally:
        runner.join(timeout=300)
    assert not runner.is_alive(), "the pipeline run did not end in 300 s"
    assert results["state"].is_completed(), results["state"]
    assert [r["stage"] for r in results["state"].result() if r["ran"]] == ["export"]
    assert seen_while_running is not None, "no export output reached the task run's log before it ended"


def test_batch_prediction_flow_scores_a_folder_and_reports_bad_files(harness, tiny_project, tmp_path):
    from graft.pipeline.flows import batch_predict

    folder = tmp_path / "incoming"
    folder.mkdir()
    for src in sorted((tiny_project / "data" / "split" / "test" / "Shirt").iterdir())[:3]:
        (folder / src.name).write_bytes(src.read_bytes())
    (folder / "broken.png").write_bytes(b"not a png")
    summary = batch_predict(str(folder), model=str(tiny_project / "models" / "export" / "model.onnx"),
                            out=str(tmp_path / "out.csv"))
    assert summary["images"] == 4 and summary["errors"] == 1
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert len(rows) == 4
    assert [r["error"] != "" for r in rows] == [r["path"].endswith("broken.png") for r in rows]
