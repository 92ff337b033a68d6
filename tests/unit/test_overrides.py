"""Unit tier: params overrides (as `dvc exp run -S`) and the distribute param, checked before use."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from graft import config
from graft.errors import ConfigError, DistributeError
from graft.pipeline import overrides
from graft.train.distribute import check_tf_config, strategy
from tests.helpers import ROOT


@pytest.fixture
def params_file(tmp_path):
    """A project's params.yaml beside its dvc.yaml (an override must also leave DVC's graph buildable)."""
    shutil.copy2(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    return path


def test_override_sets_typed_values_and_keeps_comments_and_layout(params_file):
    before = params_file.read_text()
    changes = overrides.apply(params_file, {"finetune.lr": "0.00005", "head.epochs": 3, "finetune.unfreeze": "block2"})
    assert changes == {"finetune.lr": (None, 5e-05), "head.epochs": (20, 3), "finetune.unfreeze": ("block3", "block2")}
    after = params_file.read_text()
    p = config.load(params_file)
    assert (p.finetune.lr, p.head.epochs, p.finetune.unfreeze) == (5e-05, 3, "block2")
    assert yaml.safe_load(after)["finetune"]["lr"] == 5e-05  # a float to YAML 1.1 readers too (5.0e-05, not 5e-05)
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert len(changed) == 3 and len(before.splitlines()) == len(after.splitlines())
    assert all("#" in b for a, b in changed if "#" in a)  # the comments on those lines survive


@pytest.mark.parametrize("given, named", [
    ({"head.lrr": 0.1}, "head: unknown key 'lrr'"),
    ({"head.lr": "fast"}, "head.lr: expected float"),
    ({"finetune.lr": 0.5}, "finetune.lr"),  # not below head.lr: a cross-key check of graft.config
    ({"seed.value": 1}, "seed is a value, not a section"),
    ({"distribute": "gpus"}, "distribute: 'gpus'; use one of 'none', 'mirrored' or 'multi_worker'"),
])
def test_bad_override_names_the_key_and_writes_nothing(params_file, given, named):
    before = params_file.read_text()
    with pytest.raises(ConfigError, match="params override") as err:
        overrides.apply(params_file, given)
    assert named in str(err.value) and str(params_file) in str(err.value)
    assert ".tmp" not in str(err.value)
    assert params_file.read_text() == before
    assert sorted(p.name for p in params_file.parent.iterdir() if p.name != ".dvc") == ["dvc.yaml", "params.yaml"]


def test_assignments_parse_like_dvc_set_param():
    assert overrides.parse_assignments(["head.lr=0.0005", "finetune.unfreeze=block2"]) == {
        "head.lr": "0.0005", "finetune.unfreeze": "block2"}
    with pytest.raises(ConfigError, match="key=value"):
        overrides.parse_assignments(["head.lr"])


def test_no_distribution_is_no_strategy():
    assert strategy("none") is None  # other names never get here: graft.config refuses them (above)


def test_multi_worker_needs_a_usable_tf_config():
    with pytest.raises(DistributeError, match="needs TF_CONFIG"):
        check_tf_config({})
    with pytest.raises(DistributeError, match="not usable"):
        check_tf_config({"TF_CONFIG": "{not json"})
    with pytest.raises(DistributeError, match="task.index 2"):
        check_tf_config({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                  "task": {"type": "worker", "index": 2}})})
    spec = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}
    assert check_tf_config({"TF_CONFIG": json.dumps(spec)}) == spec


def test_a_run_may_not_override_an_output_path(params_file):
    """DVC deletes a stage's outputs before it runs: `paths.split: src` would delete the code."""
    before = params_file.read_text()
    with pytest.raises(ConfigError, match="paths.split: paths.* cannot be set by a run"):
        overrides.apply(params_file, {"paths.split": "src"})
    with pytest.raises(ConfigError, match="overlaps paths.source_model"):  # allowed, and still checked
        overrides.apply(params_file, {"paths.export": "models"}, allow_paths=True)
    assert params_file.read_text() == before
    assert overrides.apply(params_file, {"paths.split": "data/split2"}, allow_paths=True) == {
        "paths.split": ("data/split", "data/split2")}


def test_an_override_waits_for_a_running_dvc_command_and_then_refuses(params_file):
    """A `dvc repro` started by hand holds DVC's repository lock: params.yaml must not change under it."""
    import zc.lockfile

    (params_file.parent / ".dvc" / "tmp").mkdir(parents=True, exist_ok=True)
    held = zc.lockfile.LockFile(str(params_file.parent / ".dvc" / "tmp" / "lock"))  # as a running dvc command holds it
    try:
        before = params_file.read_text()
        with pytest.raises(ConfigError, match="a dvc process holds"):
            overrides.apply(params_file, {"head.lr": 0.0005}, wait_seconds=0)
        assert params_file.read_text() == before
    finally:
        held.close()
    assert overrides.apply(params_file, {"head.lr": 0.0005})["head.lr"] == (0.001, 0.0005)
