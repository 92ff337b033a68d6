"""Classification metrics from probabilities; pure NumPy so they can be checked by hand."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    return np.bincount(np.asarray(y_true) * n + np.asarray(y_pred), minlength=n * n).reshape(n, n)


def report(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict:
    """Accuracy, mean cross-entropy, per-class precision / recall / F1 and the confusion matrix."""
    y_true = np.asarray(y_true)
    pred = probs.argmax(axis=1)
    cm = confusion(y_true, pred, len(classes))
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y_true)), y_true], eps, 1.0))))
    per_class = {}
    for i, name in enumerate(classes):
        tp, predicted, actual = cm[i, i], cm[:, i].sum(), cm[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": round(float(precision), 6), "recall": round(float(recall), 6),
                           "f1": round(float(f1), 6), "support": int(actual)}
    return {"accuracy": round(float(np.trace(cm) / cm.sum()), 6) if cm.sum() else 0.0,
            "loss": round(loss, 6), "images": int(len(y_true)),
            "errors": int(cm.sum() - np.trace(cm)), "per_class": per_class,
            "confusion_matrix": cm.tolist()}
