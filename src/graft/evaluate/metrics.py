"""Classification metrics from probabilities; pure NumPy so they can be checked by hand."""

from __future__ import annotations

import math
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
    out = {"accuracy": round(float(np.trace(cm) / cm.sum()), 6) if cm.sum() else 0.0,
           "loss": round(loss, 6), "images": int(len(y_true)),
           "errors": int(cm.sum() - np.trace(cm)),
           "macro_f1": round(float(np.mean([c["f1"] for c in per_class.values()])), 6),
           "ece": round(expected_calibration_error(y_true, probs), 6),
           "per_class": per_class, "confusion_matrix": cm.tolist()}
    if len(classes) == 2:
        out["roc_auc"] = round(roc_auc(y_true == 1, probs[:, 1]), 6)
    if len(classes) > 5:
        out["top_5_accuracy"] = round(top_k_accuracy(y_true, probs, 5), 6)
    return out


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative
    (ties count one half), from the Mann-Whitney rank sum."""
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = np.asarray(scores)[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def top_k_accuracy(y_true: np.ndarray, probs: np.ndarray, k: int) -> float:
    top = np.argsort(-probs, axis=1)[:, :k]
    return float(np.mean([t in row for t, row in zip(y_true, top)]))


def reliability(y_true: np.ndarray, probs: np.ndarray, bins: int = 10) -> list[dict]:
    """Per confidence bin: images, mean confidence, accuracy (for the reliability diagram)."""
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table = []
    for b in range(bins):
        members = index == b
        table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "images": int(members.sum()),
                      "confidence": float(confidence[members].mean()) if members.any() else 0.0,
                      "accuracy": float(correct[members].mean()) if members.any() else 0.0})
    return table


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Sum over confidence bins of (share of images) x |accuracy - mean confidence|."""
    n = len(y_true)
    return float(sum(b["images"] / n * abs(b["accuracy"] - b["confidence"]) for b in reliability(y_true, probs, bins)))


def collapsed_to(probs: np.ndarray, classes) -> str | None:
    """The one class a collapsed model predicts for every image, else None."""
    predicted = np.unique(probs.argmax(axis=1))
    return classes[predicted[0]] if len(classes) > 1 and len(predicted) == 1 else None


def wilson_interval(*, successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / trials`` at ``confidence`` (0.95):
    unlike the normal approximation it stays inside [0, 1] and keeps its coverage near 0 and 1,
    where graft's accuracies live. (0.0, 1.0) when there are no trials: nothing is known."""
    from statistics import NormalDist

    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes in {trials} trials")
    if trials == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p, n = successes / trials, trials
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # at 0 and n successes the bound is exactly 0 or 1 (centre - half is, in exact arithmetic)
    return (0.0 if successes == 0 else centre - half), (1.0 if successes == trials else centre + half)
