"""Measuring a target task for the advisor: its size, and the linear probe on the source base's
features against a random base's."""

from __future__ import annotations

import numpy as np

from graft.strategy.advisor import Measurements
from graft.strategy.probe import probe_accuracy


def random_features(params, x: np.ndarray, *, seed: int) -> np.ndarray:
    """Pooled features of ``x`` through the same adapter and base architecture with random weights."""
    from graft.model.build import random_base_features

    return random_base_features(params, seed=seed).predict(x, batch_size=256, verbose=0)


def measure(*, params, features: np.ndarray, random: np.ndarray, y: np.ndarray) -> Measurements:
    """Measurements of a target task from the source base's and a random base's features of its train split."""
    a = params.advisor
    probe = {"folds": a.probe_folds, "c": a.probe_c, "max_iter": a.probe_max_iter, "seed": params.seed}
    counts = np.bincount(y, minlength=len(params.data.target_classes))
    return Measurements(per_class={c: int(n) for c, n in zip(params.data.target_classes, counts)},
                        probe_accuracy=probe_accuracy(features, y, **probe),
                        random_probe_accuracy=probe_accuracy(random, y, **probe),
                        images=len(y))
