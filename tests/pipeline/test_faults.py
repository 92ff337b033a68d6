"""Pipeline tier: a project on a user's own folder, run once as a whole through the Prefect flow
(against a real local server), then broken. `dvc repro` killed inside every stage in turn, a full
disk during export, a named pipe in the data, a stage past its time limit, a flow killed while its
stage runs: each time the next run finishes, nothing half-written is left, the last good model
stays published and the user's images are as they were. (One whole run serves every test here: it
is the slowest thing in the suite.)"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.helpers import BIN, USER_FOLDER, dvc, env, make_project, ran, stages, untouched, write_user_folder

pytestmark = pytest.mark.slow

KILL_IN_STAGE = """
import os, signal, sys

if os.path.basename(sys.argv[0]) == "graft" and sys.argv[1:2] == [os.environ.get("GRAFT_TEST_KILL_IN")]:
    import graft.files

    def killed(path):  # the stage has written its output to a temporary path and is about to publish it
        os.killpg(os.getpgrp(), signal.SIGKILL)  # the whole `dvc repro`: DVC, the stage and its children

    graft.files.fsync_tree = killed
"""


SLOW_STAGE = """
import os, sys, time

if os.path.basename(sys.argv[0]) == "graft" and sys.argv[1:2] == [os.environ.get("GRAFT_TEST_SLOW")]:
    time.sleep(600)  # a stage that runs far past its time limit (and past the test's)
"""


def leftovers(root: Path) -> list[str]:
    """Temporary files and set-aside folders of graft's writers anywhere in the project."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if p.name.endswith((".tmp", ".old"))
                  or ".tmp." in p.name)


def published(root: Path) -> dict[str, bytes]:
    folder = root / "models" / "export"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.is_dir() else {}


def up_to_date(root: Path) -> bool:
    return json.loads(dvc(root, "status", "--json").stdout or "{}") == {}


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@dataclass(frozen=True)
class Reproduced:
    root: Path
    mine: Path  # the user's folder
    before: dict  # tests.helpers.untouched(mine) before graft ever saw it
    first: list[dict]  # what the flow's first run reported, stage by stage


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory, fake_fashion_mnist, harness) -> Reproduced:
    """A tiny project on a user's own folder, run once by the Prefect flow: a published model."""
    from graft.pipeline.flows import pipeline_for

    base = tmp_path_factory.mktemp("faults")
    mine = write_user_folder(base / "my images")
    before = untouched(mine)
    root = make_project(base / "project", fake_data=fake_fashion_mnist,
                        overrides={**USER_FOLDER, "paths": {"target": str(mine)}})
    return Reproduced(root=root, mine=mine, before=before, first=pipeline_for(root)())


@pytest.fixture
def user_project(reproduced, tmp_path):
    """A copy of the reproduced project for one test to break (the user's folder is the same one)."""
    copy = tmp_path / "project"
    shutil.copytree(reproduced.root, copy, symlinks=True)
    assert up_to_date(copy)
    return copy, reproduced.mine


def test_the_flow_runs_every_stage_in_dvc_s_order_and_agrees_with_dvc(reproduced):
    from graft.pipeline.dag import stage_order
    from graft.pipeline.flows import pipeline_for

    assert [r["stage"] for r in reproduced.first] == stage_order(reproduced.root)
    assert all(r["ran"] for r in reproduced.first)
    assert not any(r["ran"] for r in pipeline_for(reproduced.root)())
    assert "Running stage" not in dvc(reproduced.root, "repro").stdout  # DVC agrees it is all up to date


def test_users_own_folder_replaces_the_target_and_is_never_touched(reproduced, user_project, tmp_path):
    """Through a whole run and a `dvc push`, every original keeps its mode, link count, inode,
    mtime and content: graft copies (or reflinks) a user's images, never links them."""
    root, mine = user_project
    dvc(root, "remote", "add", "-d", "store", str(tmp_path / "remote"))
    assert "pushed" in dvc(root, "push").stdout
    assert untouched(mine) == reproduced.before
    assert not (root / "data" / "raw" / "target").exists()
    assert json.loads((root / "metrics" / "ingest.json").read_text())["target"] == {"folder": str(mine)}
    metrics = json.loads((root / "metrics" / "metrics.json").read_text())
    assert set(metrics["finetuned"]["per_class"]) == {"cat", "dog"}
    with open(root / "data" / "split" / "split.csv", newline="") as f:
        tests = sum(row["split"] == "test" for row in csv.DictReader(f))
    assert 4 <= tests <= 16 and metrics["finetuned"]["images"] == tests  # ~25% of 20 per class, by hash
    scratch = json.loads((root / "metrics" / "scratch.json").read_text())
    assert scratch["collapsed_to"] is None  # (a collapsed baseline reports no lift: tests/unit/test_lift.py)
    assert json.loads((root / "metrics" / "lift.json").read_text())["scratch_accuracy"] == scratch["test"]["accuracy"]


def set_params(root: Path, change) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    change(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_dvc_repro_killed_inside_every_stage_in_turn(user_project, tmp_path):
    """`dvc repro` of each stage in turn is SIGKILLed (its whole process group) inside the stage, just
    before the stage publishes what it wrote; then `dvc repro` runs again and must finish with
    everything as it should be."""
    root, mine = user_project
    before = untouched(mine)
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(KILL_IN_STAGE)
    for stage in stages_in_order(root):
        model = published(root)
        killed = subprocess.run([str(BIN / "dvc"), "repro", "--force", "--single-item", stage], cwd=root,
                                capture_output=True, text=True, timeout=600, start_new_session=True,  # its own group
                                env={**env(), "PYTHONPATH": str(tmp_path / "hook"), "GRAFT_TEST_KILL_IN": stage})
        assert killed.returncode != 0 and f"Running stage '{stage}'" in killed.stdout, (stage, killed.stdout[-2000:])
        assert published(root) == model, stage
        redone = dvc(root, "repro").stdout  # the next run finishes, and redoes only the killed stage: the stages
        assert up_to_date(root), stage  # write the same bytes for the same result, so nothing after it changed
        assert ran(redone) in ([stage], []), (stage, redone)  # []: restored from the run cache
        assert untouched(mine) == before, stage
        assert json.loads((root / "models" / "export" / "export.json").read_text())["gate"]["blessed"], stage
    # the killed stages' temporary files go at graft's next start (each kill above was one, and this is the
    # last): DVC may restore a stage from its run cache, and then graft never runs it again (they are never
    # mistaken for outputs: graft's names)
    subprocess.run([str(BIN / "graft"), "summary"], cwd=root, env=env(), capture_output=True, timeout=300)
    assert leftovers(root) == [], "a killed writer's temporary files must be gone"


def stages_in_order(root: Path) -> list[str]:
    from graft.pipeline.dag import stage_order

    order = stage_order(root)
    assert sorted(order) == sorted(stages())
    return order


def test_a_disk_that_fills_during_export_leaves_the_last_good_model(user_project):
    root, _ = user_project
    model = published(root)
    set_params(root, lambda p: p["export"].update(opset=18))  # export must run again

    def small_disk():  # writes past 4 kB fail with EFBIG, as a full disk fails them with ENOSPC (model.onnx: 5 kB)
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4_000, 4_000))

    full = subprocess.run([str(BIN / "graft"), "export"], cwd=root, env=env(), capture_output=True, text=True,
                          preexec_fn=small_disk, timeout=600)
    assert full.returncode == 1 and "graft export: error:" in full.stderr and "Traceback" not in full.stderr
    assert "no space" in full.stderr.lower() or "file too large" in full.stderr.lower(), full.stderr[-2000:]
    assert published(root) == model
    assert leftovers(root) == []


def test_a_failed_export_leaves_the_last_good_model_published(user_project):
    """The gate blesses the model, onnxruntime's parity fails: nothing is published (the registry, GTO's
    tags, only changes with `graft register` on a committed run; tests/pipeline/test_registry.py)."""
    root, _ = user_project
    model = published(root)
    set_params(root, lambda p: p["export"].update(tolerance=1.0e-30))  # no model meets it
    failed = dvc(root, "repro", check=False)
    assert failed.returncode != 0 and "Nothing was published" in failed.stderr
    assert json.loads((root / "metrics" / "gate.json").read_text())["blessed"] is True
    assert published(root) == model


def test_a_named_pipe_in_the_data_is_refused_before_dvc_meets_it(user_project, harness):
    """DVC blocks forever hashing a FIFO; the flow's pre-flight check names it first, and the data
    gate reports it as a file that is not a regular file (graft never opens it)."""
    from graft.pipeline.flows import pipeline_for

    root, mine = user_project
    os.mkfifo(mine / "cat" / "stream.png")
    try:
        started = time.monotonic()
        state = pipeline_for(root)(return_state=True)
        assert state.is_failed() and time.monotonic() - started < 120
        assert "stream.png: a named pipe (FIFO), not a regular file" in state.message
        validate = subprocess.run([str(BIN / "graft"), "validate"], cwd=root, env=env(), capture_output=True, text=True,
                                  timeout=300)
        assert validate.returncode == 1 and "cat/stream.png: a named pipe (FIFO)" in validate.stderr
    finally:
        (mine / "cat" / "stream.png").unlink()


def test_a_stage_past_its_time_limit_is_killed_and_the_lock_released(user_project, harness, tmp_path, monkeypatch):
    from graft.errors import PipelineBusy
    from graft.pipeline.flows import pipeline_for
    from graft.pipeline.lock import pipeline_lock

    root, _ = user_project
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(SLOW_STAGE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "hook"))  # the stages' environment (graft.pipeline.runner)
    monkeypatch.setenv("GRAFT_TEST_SLOW", "train_head")
    set_params(root, lambda p: (p["head"].update(epochs=3), p["timeouts"].update(train_head=5)))  # train_head re-runs
    state = pipeline_for(root)(return_state=True)
    assert state.is_failed() and "stage train_head ran longer than timeouts.train_head (5 s)" in state.message
    assert not processes_in(root, running="graft train_head")  # its processes were killed
    try:
        with pipeline_lock(root, wait_seconds=0):
            pass  # free again
    except PipelineBusy:
        pytest.fail("the pipeline lock was not released")


def processes_in(root: Path, *, running: str) -> list:
    """Live processes whose command line holds ``running`` and whose working directory is ``root``
    (the other test worker may be training in its own project meanwhile)."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline", "cwd", "status"]):
        if (running in " ".join(process.info["cmdline"] or []) and process.info["cwd"] == str(root)
                and process.info["status"] != psutil.STATUS_ZOMBIE):
            found.append(process)
    return found


HOLDER = textwrap.dedent("""
    import os, sys, threading, time
    from graft.pipeline.lock import pipeline_lock
    from graft.pipeline.runner import repro_stage

    with pipeline_lock(sys.argv[1]) as lock:
        threading.Thread(target=repro_stage, args=("slow", sys.argv[1]), kwargs={"timeout": 60, "lock": lock},
                         daemon=True).start()
        time.sleep(2)
        os._exit(0)  # the flow dies; its dvc repro child goes on
""")


def test_the_lock_is_held_while_a_dead_flow_s_dvc_child_still_runs(tmp_path):
    from graft.errors import PipelineBusy
    from graft.pipeline.lock import pipeline_lock

    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc(root, "init", "-q")
    (root / "dvc.yaml").write_text("stages:\n  slow:\n    cmd: sleep 8 && echo done > out.txt\n    outs:\n      - out.txt\n")
    subprocess.run([sys.executable, "-c", HOLDER, str(root)], env=env(), check=True, timeout=60)
    with pytest.raises(PipelineBusy):  # the flow is gone, its stage is not: the project is still held
        with pipeline_lock(root, wait_seconds=0):
            pass
    deadline = time.monotonic() + 30
    while not (root / "out.txt").exists():
        assert time.monotonic() < deadline
        time.sleep(0.5)
    with pipeline_lock(root, wait_seconds=10):  # released once the stage finished
        pass
    shutil.rmtree(root)
