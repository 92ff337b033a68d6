"""Pipeline tier: the Prefect flows' operational behaviour on the tiny project (real Prefect runs)."""

from __future__ import annotations

import csv

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


def test_pipeline_publishes_artifacts(harness, tiny_project):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from graft.pipeline.flows import pipeline_for

    pipeline_for(tiny_project)()

    async def keys():
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="graft-")))
            return {a.key for a in found}

    assert {"graft-validation", "graft-metrics", "graft-gate", "graft-confusion-matrix",
            "graft-model-card"} <= asyncio.run(keys())


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
