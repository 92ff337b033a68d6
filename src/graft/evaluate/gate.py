"""The release gate: may the final model be published?

Thresholds come from ``params.yaml`` (``gate``). The gate is decided by ``export``, where the
model is published, against the model registry's ``prod`` version (graft.registry: GTO tags,
read from the commit that holds that model; ``graft register`` puts a committed blessed run
there). A new model may lose at most ``gate.max_regression`` against it, compared only on the
same test images; with no model in prod (or no git) the comparison is skipped and gate.json
says why.

The gate stays strict (a threshold is met or not), but a refusal teaches: it shows how sure the
measured figures are (their intervals), what the same network reaches from scratch, and which
thresholds to look at (docs/evaluation.md says how to choose them for your own data).
"""

from __future__ import annotations

from pathlib import Path

from graft import artifacts, registry
from graft.errors import GateRefused
from graft.evaluate.lift import in_words
from graft.evaluate.metrics import wilson_interval
from graft.records import BlessedRecord, GateRecord, Interval, LiftRecord

GUIDE = "docs/evaluation.md"  # how to choose the thresholds for your own data


def decide(*, scores, test_data: str, min_accuracy: float, min_class_recall: float, max_regression: float,
           previous: BlessedRecord | None, no_previous: str | None, baseline: LiftRecord | None) -> GateRecord:
    """``scores``: the candidate's test scores (graft.records.Scores) on the test images of digest
    ``test_data``; ``previous``: the prod model's record, or None and ``no_previous`` says why (the
    comparison is skipped, and gate.json says so); ``baseline``: the run's transfer
    lift (evaluate's record) or None. Every refusal names the param it failed, and the record's
    ``consider`` says what was measured and which thresholds to look at. Pure."""
    reasons, checks = [], {}
    accuracy = scores.accuracy
    checks["accuracy"] = {"value": accuracy, "min": min_accuracy, "ok": accuracy >= min_accuracy}
    if not checks["accuracy"]["ok"]:
        reasons.append(f"test accuracy {accuracy:.4f} is below gate.min_accuracy {min_accuracy}")
    for name, c in scores.per_class.items():
        ok = c.recall >= min_class_recall
        checks[f"recall/{name}"] = {"value": c.recall, "min": min_class_recall, "ok": ok}
        if not ok:
            reasons.append(f"recall of {name} {c.recall:.4f} is below gate.min_class_recall {min_class_recall}")
    if previous is None:
        checks["regression"] = {"compared": False, "ok": True, "why": no_previous}
    elif previous.test_data != test_data:
        checks["regression"] = {"compared": False, "ok": True,
                                "why": f"the prod model ({_named(previous)}) was scored on other test images (digest "
                                       f"{str(previous.test_data)[:12]}, these {test_data[:12]}): accuracies on "
                                       "other images are not comparable"}
    else:
        ok = accuracy >= previous.accuracy - max_regression
        checks["regression"] = {"compared": True, "value": accuracy, "previous": previous.accuracy,
                                "max_regression": max_regression, "ok": ok}
        if not ok:
            reasons.append(f"test accuracy {accuracy:.4f} is more than gate.max_regression {max_regression} below "
                           f"the prod model's {previous.accuracy:.4f} on the same test images "
                           f"({_named(previous)})")
    failed = [name.split("/")[0] for name, check in checks.items() if not check["ok"]]
    consider = [] if not reasons else hints(scores=scores, checks=checks, failed=failed, baseline=baseline,
                                            min_accuracy=min_accuracy, min_class_recall=min_class_recall,
                                            max_regression=max_regression)
    return GateRecord(blessed=not reasons, reasons=reasons, checks=checks, consider=consider, test_data=test_data)


def _named(record: BlessedRecord) -> str:
    return f"{registry.MODEL} {record.version}, commit {str(record.git_revision)[:12]}"


def hints(*, scores, checks: dict, failed: list[str], baseline: LiftRecord | None, min_accuracy: float,
          min_class_recall: float, max_regression: float) -> list[str]:
    """What a refusal shows: the measured accuracy with its interval, the scratch baseline, and
    for each failed check the threshold to consider and the figure to set it against."""
    ci = scores.accuracy_interval
    measured = f"measured: test accuracy {scores.accuracy:.4f} on {scores.images} test images"
    if ci is not None:
        measured += (f" ({ci.span('.4f')}, {ci.method}: a threshold inside it cannot tell "
                     "this model from a slightly better or worse one)")
    out = [measured]
    if baseline is None or baseline.accuracy_points is None:
        why = baseline.unavailable if baseline is not None else "no lift record"
        out.append(f"scratch baseline: none ({why})")
    else:
        out.append(f"scratch baseline (the same network from random weights, same images): test accuracy "
                   f"{baseline.scratch_accuracy:.4f}; transfer {in_words(baseline)}")
    if "accuracy" in failed:
        floor = (f"; above the scratch baseline's {baseline.scratch_accuracy:.4f} it asks for a model that beats "
                 "training from scratch" if baseline is not None and baseline.scratch_accuracy is not None else "")
        low = f"at or below the interval's low end {ci.low:.4f}" if ci is not None else f"at most {scores.accuracy:.4f}"
        out.append(f"consider gate.min_accuracy (now {min_accuracy}): {low} blesses a model like this one on these "
                   f"test images{floor}")
    if "recall" in failed:
        name, worst = min(scores.per_class.items(), key=lambda item: item[1].recall)
        span = ""
        if ci is not None:
            low, high = wilson_interval(successes=round(worst.recall * worst.support), trials=worst.support,
                                        confidence=ci.confidence)
            span = f", {Interval(low=low, high=high, confidence=ci.confidence, method=ci.method).span('.4f')}"
        out.append(f"consider gate.min_class_recall (now {min_class_recall}): the lowest recall is {name}'s "
                   f"{worst.recall:.4f} on its {worst.support} test images{span}; classes that look alike "
                   "(the confusion matrix, plots/confusion.png) need a lower one")
    if "regression" in failed:
        out.append(f"consider gate.max_regression (now {max_regression}): the prod model scored "
                   f"{checks['regression']['previous']:.4f} on the same test images; keep it unless that model "
                   f"is one you no longer trust (then assign {registry.STAGE} to another version with gto)")
    out.append(f"how to choose them for your data: {GUIDE}")
    return out


def read_record(paths, *, root: Path) -> tuple[BlessedRecord | None, str | None]:
    """The prod model's record (from the registry of the git repository at ``root``), or None and why
    there is none. A prod version whose records cannot be read is refused (RegistryError)."""
    return registry.prod(root, paths=paths)


def require(gate: GateRecord, *, allow_unblessed: bool) -> None:
    """Raise :class:`GateRefused` unless the model is blessed or the user overrides the gate."""
    if gate.blessed or allow_unblessed:
        return
    consider = "".join(f" {hint[0].upper()}{hint[1:]}." for hint in gate.consider)
    raise GateRefused("the model is not blessed, so it was not published: " + "; ".join(gate.reasons) + "."
                      + consider + " Improve it, relax the thresholds under gate: in params.yaml, or publish anyway "
                      "with export.allow_unblessed: true (dvc exp run -S export.allow_unblessed=true)")


def check(params, *, scores, test_data: str, baseline: LiftRecord | None) -> GateRecord:
    """The gate of the ``gate`` params against the prod model, written to gate.json."""
    g = params.gate
    previous, no_previous = read_record(params.paths, root=Path("."))
    decision = decide(scores=scores, test_data=test_data, min_accuracy=g.min_accuracy,
                      min_class_recall=g.min_class_recall, max_regression=g.max_regression,
                      previous=previous, no_previous=no_previous, baseline=baseline)
    artifacts.GATE.write(params.paths, decision)
    return decision
