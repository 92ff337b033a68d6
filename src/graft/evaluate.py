"""Stage ``evaluate``: both phases' models on the test split; DVC metrics, plots and pictures."""

from __future__ import annotations

import csv
import json

import numpy as np

from graft import figures, gate as release_gate, metrics, model as graft_model, provenance, splits
from graft.atomic import atomic_path, write_json
from graft.config import Params

PHASES = {"head": "head_model", "finetuned": "finetuned_model"}


def evaluate(*, models: dict, x: np.ndarray, y: np.ndarray, classes) -> tuple[dict, dict]:
    """Score each named model; return (metrics per model, probabilities per model)."""
    probs = {name: m.predict(x, batch_size=256, verbose=0) for name, m in models.items()}
    return {name: metrics.report(y, p, classes) for name, p in probs.items()}, probs


def lift(*, transfer: float, scratch: float) -> dict:
    """Transfer's gain over the scratch baseline on the same test split."""
    return {"scratch_accuracy": scratch, "accuracy_points": round((transfer - scratch) * 100, 4),
            "error_reduction": round((1 - scratch) / (1 - transfer), 4) if transfer < 1 else None}


def write_worst(path, *, paths, root, true, probs, classes, limit: int = 50) -> None:
    """The fine-tuned model's mistakes, most confident first: path, true, predicted, confidence."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != true)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]])][:limit]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "true", "predicted", "confidence"])
        for i in wrong:
            writer.writerow([paths[i].relative_to(root).as_posix(), classes[true[i]], classes[pred[i]],
                             round(float(probs[i, pred[i]]), 6)])


def run(params: Params) -> None:
    test = splits.load(params, "test")
    classes = params.data.target_classes
    models = {name: graft_model.load(getattr(params.paths, attr)) for name, attr in PHASES.items()}
    scores, probs = evaluate(models=models, x=test.x, y=test.y, classes=classes)
    report = {name: {k: v for k, v in s.items() if k != "confusion_matrix"} for name, s in scores.items()}
    scratch = json.loads((params.paths.metrics / "scratch.json").read_text())
    tuned = json.loads((params.paths.metrics / "finetune.json").read_text())
    if tuned["strategy"] == "scratch":  # the final model is the scratch baseline itself: a lift of 0 says nothing
        report["transfer_lift"] = {"unavailable": f"not transferred ({tuned['reason']})", "not_transferred": True}
    elif scratch.get("collapsed_to"):
        report["transfer_lift"] = {"unavailable": f"the scratch baseline collapsed to {scratch['collapsed_to']!r}"}
    elif scratch.get("enabled"):
        report["transfer_lift"] = lift(transfer=scores["finetuned"]["accuracy"], scratch=scratch["accuracy"])
    write_json(params.paths.metrics / "metrics.json", report)
    plots = params.paths.plots
    final = probs["finetuned"].argmax(axis=1)
    with atomic_path(plots / "confusion.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "actual", "predicted"])
        for path, t, p in zip(test.paths, test.y, final):
            writer.writerow([path.relative_to(params.paths.split).as_posix(), classes[t], classes[p]])
    figures.confusion_matrices(plots / "confusion.png",
                               {"head phase": scores["head"]["confusion_matrix"],
                                "fine-tuned": scores["finetuned"]["confusion_matrix"]}, classes)
    figures.learning_curves(plots / "learning_curves.png",
                            [plots / "head_history.csv", plots / "finetune_history.csv"])
    figures.sample_grid(plots / "samples.png", pixels=test.x, true=test.y, pred=final,
                        confidence=probs["finetuned"].max(axis=1), classes=classes)
    figures.reliability_diagram(plots / "reliability.png",
                                {name: metrics.reliability(test.y, p) for name, p in probs.items()},
                                {name: s["ece"] for name, s in scores.items()})
    write_worst(plots / "worst_errors.csv", paths=test.paths, root=params.paths.split, true=test.y,
                probs=probs["finetuned"], classes=classes)
    g = params.gate
    previous = release_gate.read_record(params.paths.blessed)
    decision = release_gate.decide(scores=scores["finetuned"], min_accuracy=g.min_accuracy,
                                   min_class_recall=g.min_class_recall, max_regression=g.max_regression,
                                   previous=previous)
    write_json(params.paths.metrics / "gate.json", decision)
    if decision["blessed"]:
        write_json(params.paths.blessed, {"accuracy": scores["finetuned"]["accuracy"],
                                          "per_class": scores["finetuned"]["per_class"],
                                          "git_revision": provenance.git_revision(),
                                          "data_hash": provenance.dvc_hash(params.paths.split)})
    else:  # the last blessed model stays the reference ({} before any model was blessed)
        write_json(params.paths.blessed, previous or {})
    for name, s in scores.items():
        print(f"evaluate: {name:9s} test accuracy {s['accuracy']:.4f}, loss {s['loss']:.4f}, "
              f"macro-F1 {s['macro_f1']:.4f}, ECE {s['ece']:.4f}, {s['errors']} errors in {s['images']} images")
    if "unavailable" in report.get("transfer_lift", {}):
        print(f"evaluate: no transfer lift: {report['transfer_lift']['unavailable']}")
    elif "transfer_lift" in report:
        t = report["transfer_lift"]
        print(f"evaluate: transfer lift over scratch ({t['scratch_accuracy']:.4f}): {t['accuracy_points']:+.2f} points"
              + (f"; scratch makes {t['error_reduction']:.1f}x the errors" if t["error_reduction"] else ""))
    print("evaluate: gate: " + ("blessed" if decision["blessed"] else "NOT blessed: " + "; ".join(decision["reasons"])))
