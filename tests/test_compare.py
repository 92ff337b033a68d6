"""Transfer against scratch: the scratch recipe, and `graft compare` on the tiny pipeline."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from graft.scratch import collapsed_to, scratch_model
from graft.config import Base, Image, Params
from tests.conftest import BIN, run


def test_scratch_model_is_the_same_architecture_all_trainable_with_fast_batchnorm():
    params = Params(base=Base(filters=(4, 8)), image=Image(height=16, width=16, channels=1))
    model = scratch_model(params, num_classes=2, seed=0)
    base = model.get_layer("base")
    assert base.trainable and all(layer.trainable for layer in base.layers)
    norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.9 for layer in norms)
    out = model.predict(np.zeros((3, 16, 16, 1), np.uint8), verbose=0)
    assert out.shape == (3, 2)


def test_a_collapsed_baseline_is_recognised():
    assert collapsed_to(np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"]) is None
    assert collapsed_to(np.array([[0.4, 0.6], [0.2, 0.8]]), ["a", "b"]) == "b"


@pytest.mark.slow
def test_compare_runs_seeds_and_sizes(tiny_project):
    result = run([str(BIN / "graft"), "compare", "--seeds", "2", "--sizes", "3,6", "--out", "reports/cmp"],
                 tiny_project)
    assert "transfer" in result.stdout and "scratch" in result.stdout
    summary = json.loads((tiny_project / "reports" / "cmp" / "compare.json").read_text())
    for name in ("head", "transfer", "scratch"):
        assert len(summary[name]["runs"]) == 2 and 0 <= summary[name]["mean"] <= 1
    assert [row["per_class"] for row in summary["data_efficiency"]] == [3, 6]
    assert (tiny_project / "reports" / "cmp" / "data_efficiency.png").stat().st_size > 0


@pytest.mark.slow
def test_compare_says_when_the_pool_is_too_small(tiny_project):
    result = run([str(BIN / "graft"), "compare", "--seeds", "1", "--sizes", "10000", "--out", "reports/cmp2"],
                 tiny_project, check=False)
    assert result.returncode == 1 and "--sizes 10000" in result.stderr and "Traceback" not in result.stderr
