"""Unit: provenance read from a real git repo and a dvc.lock."""

import subprocess

from graft import provenance
from tests.helpers import params


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_git_revision_is_dirty_for_code_changes_but_not_for_run_records(tmp_path):
    assert provenance.git_revision(tmp_path) == "unknown"
    git("init", "-q", cwd=tmp_path)
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    git("add", ".", cwd=tmp_path)
    git("commit", "-qm", "x", cwd=tmp_path)
    clean = provenance.git_revision(tmp_path)
    assert len(clean) == 40
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    assert provenance.git_revision(tmp_path) == clean
    (tmp_path / "params.yaml").write_text("seed: 2\n")
    assert provenance.git_revision(tmp_path) == clean + "-dirty"


def test_dvc_hash_and_params_hash(tmp_path):
    lock = tmp_path / "dvc.lock"
    lock.write_text("schema: '2.0'\nstages:\n  split:\n    outs:\n    - path: data/split\n      md5: abc.dir\n")
    assert provenance.dvc_hash("data/split", lock) == "abc.dir"
    assert provenance.dvc_hash("data/split/", lock) == "abc.dir"
    assert provenance.dvc_hash("models/x", lock) == "unknown"
    assert provenance.dvc_hash("data/split", tmp_path / "none.lock") == "unknown"
    assert provenance.params_hash(params()) == provenance.params_hash(params())
    assert provenance.params_hash(params()) != provenance.params_hash(params({"finetune": {"lr": 1e-5}}))
