"""Scoring models on the test split, and the files evaluate writes about them: DVC's confusion
plot, the worst errors, and the run's pictures."""

from __future__ import annotations

import csv

import numpy as np

from graft import artifacts
from graft.evaluate import figures, metrics
from graft.files import atomic_path
from graft.records import Interval, Scores


def score(*, models: dict, x: np.ndarray, y: np.ndarray, classes) -> tuple[dict, dict]:
    """Score each named model; return (metrics.report per model, probabilities per model)."""
    probs = {name: m.predict(x, batch_size=256, verbose=0) for name, m in models.items()}
    return {name: metrics.report(y, p, classes) for name, p in probs.items()}, probs


def interval(*, accuracy: float, images: int, confidence: float) -> Interval:
    """The Wilson interval of a test accuracy measured on ``images`` images."""
    low, high = metrics.wilson_interval(successes=round(accuracy * images), trials=images, confidence=confidence)
    return Interval(low=round(low, 6), high=round(high, 6), confidence=confidence, method="wilson")


def scores(report: dict, *, confidence: float) -> Scores:
    """A metrics.report as the record evaluate keeps (the confusion matrix goes to the plots),
    with its accuracy's ``confidence`` interval."""
    return Scores(**{k: v for k, v in report.items() if k != "confusion_matrix"},
                  accuracy_interval=interval(accuracy=report["accuracy"], images=report["images"],
                                             confidence=confidence))


def write_rows(path, header: list[str], rows) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_worst(path, *, paths, root, true, probs, classes, limit: int = 50) -> None:
    """The final model's mistakes, most confident first: path, true, predicted, confidence."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != true)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]])][:limit]
    write_rows(path, ["path", "true", "predicted", "confidence"],
               ([paths[i].relative_to(root).as_posix(), classes[true[i]], classes[pred[i]],
                 round(float(probs[i, pred[i]]), 6)] for i in wrong))


def write_plots(params, *, test, reports: dict, probs: dict) -> None:
    """Every plot and picture of evaluate, from the test split and both models' scores."""
    p, classes = params.paths, params.data.target_classes
    split = artifacts.SPLIT.path(p)
    final = probs["finetuned"].argmax(axis=1)
    write_rows(artifacts.CONFUSION.path(p), ["path", "actual", "predicted"],
               ([path.relative_to(split).as_posix(), classes[t], classes[f]]
                for path, t, f in zip(test.paths, test.y, final)))
    figures.confusion_matrices(artifacts.CONFUSION_PNG.path(p),
                               {"head phase": reports["head"]["confusion_matrix"],
                                "fine-tuned": reports["finetuned"]["confusion_matrix"]}, classes)
    figures.learning_curves(artifacts.LEARNING_CURVES.path(p),
                            [artifacts.live_dir(artifacts.HEAD_LIVE, p), artifacts.live_dir(artifacts.FINETUNE_LIVE, p)])
    figures.sample_grid(artifacts.SAMPLES.path(p), pixels=test.x, true=test.y, pred=final,
                        confidence=probs["finetuned"].max(axis=1), classes=classes)
    figures.reliability_diagram(artifacts.RELIABILITY.path(p),
                                {name: metrics.reliability(test.y, pr) for name, pr in probs.items()},
                                {name: r["ece"] for name, r in reports.items()})
    write_worst(artifacts.WORST_ERRORS.path(p), paths=test.paths, root=split, true=test.y, probs=probs["finetuned"],
                classes=classes)
