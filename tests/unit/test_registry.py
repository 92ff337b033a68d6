"""Unit: the model registry (GTO tags) on small real git repositories, with a run's records written
by hand and named in a hand-written dvc.lock (the whole pipeline's own run is in
tests/pipeline/test_registry.py)."""

from __future__ import annotations

import hashlib

import gto.api
import pytest
import yaml

from graft import artifacts, registry
from graft.errors import RegistryError
from graft.records import GateRecord, MetricsRecord
from tests.helpers import params, run

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
TEST_DATA = "d" * 64


def scores(accuracy: float) -> dict:
    per_class = {c: {"precision": accuracy, "recall": accuracy, "f1": accuracy, "support": 10} for c in ("a", "b")}
    return {"accuracy": accuracy, "loss": 0.1, "images": 20, "errors": round((1 - accuracy) * 20),
            "macro_f1": accuracy, "ece": 0.01, "per_class": per_class}


def write_run(root, *, accuracy: float, blessed: bool = True) -> None:
    """What `dvc repro` leaves: metrics.json, gate.json and dvc.lock's evaluate and export stages naming their md5."""
    paths = params().paths
    metrics = artifacts.METRICS.write(paths, MetricsRecord(head=scores(accuracy), finetuned=scores(accuracy)))
    gate = artifacts.GATE.write(paths, GateRecord(blessed=blessed, reasons=[] if blessed else ["too weak"], checks={},
                                                  test_data=TEST_DATA))
    stages = {stage: {"cmd": f"graft {stage}", "outs": [{"path": str(p), "hash": "md5",
                                                          "md5": hashlib.md5(p.read_bytes()).hexdigest()}]}
              for stage, p in (("evaluate", metrics), ("export", gate))}
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))


def commit(root, message: str) -> None:
    run(["git", "add", "-A"], root)
    run([*GIT, "commit", "-q", "-m", message], root)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # params' paths are relative to the project, as in a stage
    for who in ("AUTHOR", "COMMITTER"):  # GTO's tags are the user's: any git identity will do
        monkeypatch.setenv(f"GIT_{who}_NAME", "t")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "t@t")
    run(["git", "init", "-q", "-b", "main"], tmp_path)
    return tmp_path


def test_a_folder_outside_git_or_without_commits_has_no_registry_and_register_says_why(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = params().paths
    record, why = registry.prod(tmp_path, paths=paths)
    assert record is None and "not a git repository" in why
    with pytest.raises(RegistryError, match="not a git repository.*git init"):
        registry.register(tmp_path, paths=paths)
    run(["git", "init", "-q", "-b", "main"], tmp_path)
    assert "no commits" in registry.prod(tmp_path, paths=paths)[1]
    with pytest.raises(RegistryError, match="no commits.*git commit"):
        registry.register(tmp_path, paths=paths)


def test_register_tags_a_committed_blessed_run_into_prod_and_the_gate_reads_it_from_that_commit(repo):
    paths = params().paths
    write_run(repo, accuracy=0.95)
    with pytest.raises(RegistryError, match="no commits"):
        registry.register(repo, paths=paths)
    commit(repo, "run 1")
    assert "registered and assigned to prod" in registry.register(repo, paths=paths)
    assert gto.api.show(repo) == {"graft-classifier": {"version": "v0.0.1", "stage": {"prod": "v0.0.1"},
                                                       "registered": True, "active": True}}
    assert "already in prod" in registry.register(repo, paths=paths)  # again: no new tag
    first = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    write_run(repo, accuracy=0.90)  # a later run, not committed yet: the gate still compares with run 1's model
    record, why = registry.prod(repo, paths=paths)
    assert why is None and (record.accuracy, record.version, record.git_revision) == (0.95, "v0.0.1", first)
    assert record.test_data == TEST_DATA
    with pytest.raises(RegistryError, match="not the ones HEAD holds.*git commit"):
        registry.register(repo, paths=paths)  # the tag would name a commit without this run
    run(["git", "add", "metrics"], repo)
    run([*GIT, "commit", "-q", "-m", "records without their lock"], repo)
    with pytest.raises(RegistryError, match="metrics/metrics.json is not the one its dvc.lock names"):
        registry.register(repo, paths=paths)
    (repo / "unrelated.txt").write_text("a user's work in progress")
    run(["git", "add", "dvc.lock"], repo)
    run([*GIT, "commit", "-q", "-m", "run 2"], repo)
    assert "v0.0.2" in registry.register(repo, paths=paths)
    assert gto.api.show(repo)["graft-classifier"]["stage"] == {"prod": "v0.0.2"}
    assert registry.prod(repo, paths=paths)[0].accuracy == 0.90
    assert run(["git", "status", "--porcelain"], repo).stdout == "?? unrelated.txt\n"  # tags only, nothing committed


def test_an_unblessed_run_is_not_registered_and_an_unreadable_prod_record_refuses(repo):
    paths = params().paths
    write_run(repo, accuracy=0.5, blessed=False)
    commit(repo, "weak run")
    with pytest.raises(RegistryError, match="not blessed.*too weak"):
        registry.register(repo, paths=paths)
    assert "no version" in registry.prod(repo, paths=paths)[1]
    gto.api.register(repo, "graft-classifier", ref="HEAD")  # by hand, on a commit whose gate.json is then broken
    artifacts.GATE.path(paths).write_text('{"blessed": tru')
    commit(repo, "broken record")
    gto.api.assign(repo, "graft-classifier", "prod", ref="HEAD", name_version="v0.0.2")
    with pytest.raises(RegistryError, match=r"v0.0.2 in prod .*metrics/gate.json is unreadable.*gto assign"):
        registry.prod(repo, paths=paths)
