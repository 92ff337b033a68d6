"""The advisor's linear probe: how well a set of frozen features separates the target classes,
cross-validated on the train split (scikit-learn: standardised features, L2-regularised
multinomial ``LogisticRegression``, ``StratifiedKFold``)."""

from __future__ import annotations

import warnings

import numpy as np

from graft.errors import ProbeError


def probe_accuracy(x: np.ndarray, y: np.ndarray, *, folds: int, c: float, max_iter: int, seed: int) -> float:
    """Cross-validated accuracy of a linear probe on features ``x``: each held-out image is predicted
    by a probe fitted (standardised on its training folds) without it, so the accuracy is whole
    images right out of ``len(y)``. ``folds`` is capped by the smallest class's size."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y)
    smallest = int(np.bincount(y, minlength=int(y.max()) + 1).min())
    if smallest < 2:
        raise ProbeError(f"advise: the linear probe needs at least 2 training images per class; the smallest class "
                         f"has {smallest} (give the split more train images: split.train_fraction or train_per_class)")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    split = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            predicted = cross_val_predict(probe, x, y, cv=split)
        except ConvergenceWarning:
            raise ProbeError(f"advise: the linear probe (lbfgs) did not converge in advisor.probe_max_iter={max_iter} "
                             "iterations; raise advisor.probe_max_iter") from None
    return int((predicted == y).sum()) / len(y)
