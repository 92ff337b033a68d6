"""Unit: the same seed and data give the same weights and the same metrics, run after run."""

import numpy as np

from graft.model.build import build_source_model, graft_head
from graft.train.fit import fit, seed_everything
from tests.helpers import SMALL_IMAGES, params


def train_once(x, y):
    p = params(SMALL_IMAGES, {"head": {"dropout": 0.3, "epochs": 2, "batch_size": 8, "lr": 1e-2, "min_steps": 0}})
    seed_everything(7)
    model = graft_head(build_source_model(p), num_classes=2, head=p.head, seed=7)
    result = fit(model, train=(x, y), valid=(x, y), recipe=p.head, seed=7)
    return [w.copy() for w in model.get_weights()], result.history


def test_same_seed_same_weights_and_history():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (32, 16, 16, 1), dtype=np.uint8), np.arange(32) % 2
    first_weights, first_history = train_once(x, y)
    second_weights, second_history = train_once(x, y)
    assert first_history == second_history
    assert all(np.array_equal(a, b) for a, b in zip(first_weights, second_weights))
    changed = train_once(x, 1 - y)[1]  # the comparison can fail: other labels, other history
    assert changed != first_history
