"""The advisor's linear probe: how well a set of frozen features separates the target classes,
cross-validated on the train split."""

from __future__ import annotations

import numpy as np

from graft.errors import ProbeError


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_softmax(x: np.ndarray, y: np.ndarray, *, classes: int, l2: float, steps: int = 500) -> tuple[np.ndarray, ...]:
    """Multinomial logistic regression by full-batch gradient descent (convex, so deterministic
    and seed-free); step size 1/L from the largest singular value of ``x``."""
    n, d = x.shape
    onehot = np.eye(classes)[y]
    w, b = np.zeros((d, classes)), np.zeros(classes)
    lipschitz = 0.5 * (np.linalg.norm(x, 2) ** 2 + n) / n + l2
    lr = 1.0 / lipschitz
    for _ in range(steps):
        error = (_softmax(x @ w + b) - onehot) / n
        w -= lr * (x.T @ error + l2 * w)
        b -= lr * error.sum(axis=0)
    return w, b


def folds_of(y: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """A stratified fold number per sample: each class shuffled (seeded), then dealt round-robin."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for k in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == k))
        fold[members] = np.arange(len(members)) % folds
    return fold


def probe_accuracy(x: np.ndarray, y: np.ndarray, *, folds: int = 5, l2: float = 0.01, seed: int = 0) -> float:
    """Cross-validated accuracy of a linear probe on features ``x`` (standardised on each
    training fold). ``folds`` is capped by the smallest class's size."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y)
    classes = int(y.max()) + 1
    smallest = int(np.bincount(y, minlength=classes).min())
    if smallest < 2:
        raise ProbeError(f"advise: the linear probe needs at least 2 training images per class; the smallest class "
                         f"has {smallest} (give the split more train images: split.train_fraction or train_per_class)")
    fold = folds_of(y, folds=min(folds, smallest), seed=seed)
    right = 0
    for f in np.unique(fold):
        train, held = fold != f, fold == f
        mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-6
        w, b = fit_softmax((x[train] - mean) / std, y[train], classes=classes, l2=l2)
        right += int((((x[held] - mean) / std @ w + b).argmax(axis=1) == y[held]).sum())
    return right / len(y)
