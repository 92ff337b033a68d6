"""Pipeline tier: running graft unattended. Params overrides, simultaneous triggers, retries only
where safe, a failed or killed run that the next run repairs while the last good model stays
published, dvc push / pull into a fresh clone, `dvc exp run -S`, cache links, tf.distribute.

Real DVC repos, real Prefect runs (prefect_test_harness: a real local server process)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import BIN, ROOT, dvc, env, run

pytestmark = pytest.mark.slow

EXPORT = Path("models") / "export"


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def project(tiny_project, tmp_path) -> Path:
    """A private copy of the reproduced tiny project, for tests that change it."""
    copy = tmp_path / "project"
    shutil.copytree(tiny_project, copy, symlinks=True)
    assert up_to_date(copy)
    return copy


def up_to_date(project: Path) -> bool:
    return json.loads(dvc(project, "status", "--json").stdout or "{}") == {}


def changed_stages(project: Path) -> set[str]:
    return set(json.loads(dvc(project, "status", "--json").stdout or "{}"))


def tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def flow_command(project: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "flows.pipeline", str(project), *args]


def start_triggers(commands: list[list[str]]) -> list[tuple[int, str]]:
    """Start the commands at once (separate processes against the harness's Prefect server)."""
    from prefect.settings import PREFECT_API_URL

    process_env = {**env(), "PREFECT_API_URL": PREFECT_API_URL.value()}
    processes = [subprocess.Popen(cmd, cwd=ROOT, env=process_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for cmd in commands]
    return [(p.wait(timeout=600), p.stdout.read()) for p in processes]


def test_simultaneous_triggers_give_one_run_a_clean_busy_and_a_wait(harness, project):
    """Three processes trigger the same run at once: two give up at once when busy (wait_seconds 0),
    one is configured to wait. Exactly one does the work; the other immediate one ends Cancelled
    with "pipeline busy"; the waiter runs after it and finds nothing left to do."""
    before = (project / "params.yaml").read_text()
    override = ["-S", "gate.max_regression=0.9"]  # export (which holds the gate) must re-run
    results = start_triggers([flow_command(project, *override), flow_command(project, *override),
                              flow_command(project, *override, "--wait-seconds", "300")])
    worked = [out for code, out in results if code == 0 and "ran: ['export']" in out]
    assert len(worked) == 1, results
    for code, out in results[:2]:
        assert (code, out) == (0, worked[0]) or (code == 2 and "Cancelled: pipeline busy: another run (pid" in out), out
    waiter_code, waiter = results[2]
    assert waiter_code == 0, waiter
    if waiter != worked[0]:  # it waited for the run that did the work, then found it all done
        assert "ran: nothing (all up to date)" in waiter, waiter
        assert float(waiter.split("pipeline lock taken after ")[1].split(" s")[0]) > 2, waiter
    for _, out in results:
        assert "Traceback" not in out and "Unable to acquire lock" not in out, out
    # no trigger that gave up touched the workspace: one override, applied once, comments intact
    after = (project / "params.yaml").read_text()
    assert yaml.safe_load(after)["gate"]["max_regression"] == 0.9
    assert sum(a != b for a, b in zip(before.splitlines(), after.splitlines())) == 1
    assert up_to_date(project)


def test_bad_override_fails_the_run_naming_the_key_and_touches_nothing(harness, tiny_project):
    from graft.pipeline.flows import pipeline_for

    before = (tiny_project / "params.yaml").read_bytes()
    state = pipeline_for(tiny_project)(params={"head.lr": "fast"}, return_state=True)
    assert state.is_failed()
    assert "head.lr: expected float, got 'fast'" in state.message and "params.yaml is unchanged" in state.message
    assert (tiny_project / "params.yaml").read_bytes() == before


def task_runs(flow_state) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[flow_state.state_details.flow_run_id])))
    return {r.name: r for r in runs}


def test_failed_and_killed_runs_are_redone_and_the_last_good_model_stays_published(harness, project):
    from graft.pipeline import overrides
    from graft.pipeline.flows import pipeline_for

    published = tree_hashes(project / EXPORT)
    assert "model.onnx" in published

    # 1. a stage fails mid-pipeline: the gate refuses the model, so export fails (and is not retried)
    state = pipeline_for(project)(params={"gate.min_accuracy": 0.99}, return_state=True)
    assert state.is_failed() and "dvc repro export failed" in state.message and "not blessed" in state.message
    runs = task_runs(state)
    assert runs["export"].state_type.value == "FAILED" and runs["export"].run_count == 1
    assert runs["evaluate"].state_type.value == "COMPLETED"
    assert tree_hashes(project / EXPORT) == published  # DVC did not delete it; export never replaced it
    assert changed_stages(project) == {"export"}  # dvc.lock says what is stale

    # 2. a training stage is killed mid-run (SIGKILL to the whole dvc repro)
    overrides.apply(project / "params.yaml", {"gate.min_accuracy": 0.0, "finetune.batch_size": 4})  # finetune only
    repro = subprocess.Popen([str(BIN / "dvc"), "repro"], cwd=project, env=env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    finetuned = project / "models" / "finetuned.keras"
    deadline = time.monotonic() + 120
    while finetuned.exists():  # DVC deletes a stage's outputs just before it runs the stage
        assert repro.poll() is None and time.monotonic() < deadline, "finetune never started"
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(repro.pid, signal.SIGKILL)
    repro.wait()
    assert not finetuned.exists()
    assert {"finetune", "evaluate", "export"} <= changed_stages(project)
    assert tree_hashes(project / EXPORT) == published

    # 3. the next run redoes what does not match dvc.lock, then publishes the new blessed model
    state = pipeline_for(project)(return_state=True)
    assert state.is_completed(), state.message
    assert [r["stage"] for r in state.result() if r["ran"]] == ["finetune", "evaluate", "export"]
    assert up_to_date(project)
    report = json.loads((project / EXPORT / "export.json").read_text())
    assert report["gate"]["blessed"] and (project / EXPORT / "model.onnx").stat().st_size > 0
    assert not list((project / "models").glob(".export*.tmp"))  # no half-written folder beside it


def test_a_stage_is_retried_only_when_dvc_lock_was_busy(harness, tiny_project):
    import zc.lockfile
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName, TaskRunFilterState, TaskRunFilterStateName

    from graft.pipeline.flows import run_stage

    @flow(name="graft-one-stage")
    def one_stage(root: str):
        return run_stage("ingest", root, 300)

    lock = zc.lockfile.LockFile(str(tiny_project / ".dvc" / "tmp" / "lock"))  # as a person's `dvc` command would
    holder = {"lock": lock}
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(state=one_stage(str(tiny_project), return_state=True)))
    thread.start()
    try:
        deadline = time.monotonic() + 90
        with get_client(sync_client=True) as client:
            waiting = TaskRunFilter(name=TaskRunFilterName(any_=["ingest"]),
                                    state=TaskRunFilterState(name=TaskRunFilterStateName(any_=["AwaitingRetry"])))
            while not client.read_task_runs(task_run_filter=waiting):
                assert time.monotonic() < deadline and thread.is_alive(), "no retry was scheduled"
                time.sleep(0.5)
    finally:
        holder.pop("lock").close()  # the other dvc process is done
    thread.join(timeout=120)
    state = outcome["state"]
    assert state.is_completed(), state.message
    assert task_runs(state)["ingest"].run_count == 2


def test_split_and_cache_share_one_copy_of_each_image(tiny_project):
    """cache.type from .dvc/config: hard links, so data/raw, data/split and .dvc/cache hold one
    copy of each image; DVC keeps linked files read-only so nobody edits the cache by accident."""
    config = (ROOT / ".dvc" / "config").read_text()
    assert 'type = "hardlink,symlink"' in config
    image = next((tiny_project / "data" / "split" / "train" / "Shirt").iterdir())
    raw = tiny_project / "data" / "raw" / "target" / "train" / "Shirt" / image.name
    assert image.stat().st_ino == raw.stat().st_ino
    assert image.stat().st_nlink >= 3  # raw, split and the cache entry
    assert not image.stat().st_mode & 0o222
    assert (tiny_project / EXPORT / "model.onnx").stat().st_nlink >= 2


def test_push_then_pull_into_a_fresh_clone_restores_data_and_models_exactly(project, tmp_path):
    dvc(project, "remote", "add", "-d", "store", str(tmp_path / "remote"))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run([*git, "add", "-A"], project)
    run([*git, "commit", "-q", "-m", "tiny run"], project)
    assert "files pushed" in dvc(project, "push").stdout
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / EXPORT).exists()
    dvc(clone, "pull")
    for folder in ("data/raw", "data/split", "reports/validation", "models", "reports", "metrics", "plots"):
        original = tree_hashes(project / folder)
        assert original and tree_hashes(clone / folder) == original, folder
    assert up_to_date(clone)

    # and an experiment with a params override, as the README shows, in the same committed project
    dvc(project, "exp", "run", "-n", "lower-lr", "-S", "finetune.lr=0.00005")
    shown = json.loads(dvc(project, "exp", "show", "--json").stdout)

    def experiments(node):
        if isinstance(node, dict):
            if node.get("name") == "lower-lr" and isinstance(node.get("data"), dict):
                yield node["data"]
            for value in node.values():
                yield from experiments(value)
        elif isinstance(node, list):
            for value in node:
                yield from experiments(value)

    found = next(experiments(shown))
    assert found["params"]["params.yaml"]["data"]["finetune"]["lr"] == 5e-05
    assert found["metrics"]["metrics/finetune.json"]["data"]["lr"] == 5e-05  # the experiment fine-tuned at its rate
    finetuned = found["metrics"]["metrics/metrics.json"]["data"]["finetuned"]
    assert finetuned["images"] == 20 and finetuned["accuracy"] == pytest.approx(1 - finetuned["errors"] / 20)


DISTRIBUTED_HEAD = """
import json, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from graft import config
from graft.data.load import load_split
from graft.model.saved import load
from graft.stages import train_head

params = config.load("params.yaml")
train_head.run(params)  # the stage itself, under params.distribute
test = load_split(params, "test")
probs = load(params.paths.head_model).predict(test.x, verbose=0)
print("RESULT", json.dumps({"logical_cpus": len(tf.config.list_logical_devices("CPU")), "shape": list(probs.shape),
                            "accuracy": float((probs.argmax(1) == test.y).mean())}))
"""


def test_head_phase_under_mirrored_strategy_on_two_logical_cpus(tiny_project, tmp_path):
    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    shutil.copy(tiny_project / "models" / "source.keras", work / "models")  # outputs stay inside the project
    shutil.copytree(tiny_project / "data" / "split", work / "data" / "split")
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    params["distribute"] = "mirrored"
    params["head"].update(epochs=5, lr=0.05)  # enough steps for the stripes to separate
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = subprocess.run([sys.executable, "-c", DISTRIBUTED_HEAD], cwd=work, env=env(), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distribute: mirrored, 2 replicas in sync" in result.stdout
    found = json.loads(result.stdout.split("RESULT ", 1)[1])
    assert found["logical_cpus"] == 2 and found["shape"] == [20, 2]
    assert found["accuracy"] >= 0.8, found
    head = json.loads((work / "metrics" / "head.json").read_text())
    assert head["best_epoch"] >= 1 and head["valid_accuracy"] >= 0.8
