"""The release gate: may the final model be published?

Thresholds come from ``params.yaml`` (``gate``). The gate is decided by ``export``, where the
model is published: the last blessed model's record (``paths.blessed``, the registry, kept
across runs) is read there, and changed only once the new model is published, so a failed
export never leaves the registry naming a model that was not published. A new model may lose at
most ``gate.max_regression`` against that record, compared only on the same test images.

The gate stays strict (a threshold is met or not), but a refusal teaches: it shows how sure the
measured figures are (their intervals), what the same network reaches from scratch, and which
thresholds to look at (docs/evaluation.md says how to choose them for your own data).
"""

from __future__ import annotations

import json

from graft import artifacts
from graft.errors import GateRefused, RegistryError
from graft.evaluate.lift import in_words
from graft.evaluate.metrics import wilson_interval
from graft.records import BlessedRecord, GateRecord, LiftRecord

GUIDE = "docs/evaluation.md"  # how to choose the thresholds for your own data


def decide(*, scores, test_data: str, min_accuracy: float, min_class_recall: float, max_regression: float,
           previous: BlessedRecord | None, baseline: LiftRecord | None) -> GateRecord:
    """``scores``: the candidate's test scores (graft.records.Scores) on the test images of digest
    ``test_data``; ``previous``: the last blessed record or None; ``baseline``: the run's transfer
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
    if previous is not None and previous.test_data != test_data:
        checks["regression"] = {"compared": False, "ok": True,
                                "why": f"the last blessed model ({previous.git_revision}) was scored on other test "
                                       f"images (digest {str(previous.test_data)[:12]}, these {test_data[:12]}): "
                                       "accuracies on other images are not comparable"}
    elif previous is not None:
        ok = accuracy >= previous.accuracy - max_regression
        checks["regression"] = {"compared": True, "value": accuracy, "previous": previous.accuracy,
                                "max_regression": max_regression, "ok": ok}
        if not ok:
            reasons.append(f"test accuracy {accuracy:.4f} is more than gate.max_regression {max_regression} below "
                           f"the last blessed model's {previous.accuracy:.4f} on the same test images "
                           f"(from {previous.git_revision})")
    failed = [name.split("/")[0] for name, check in checks.items() if not check["ok"]]
    consider = [] if not reasons else hints(scores=scores, checks=checks, failed=failed, baseline=baseline,
                                            min_accuracy=min_accuracy, min_class_recall=min_class_recall,
                                            max_regression=max_regression)
    return GateRecord(blessed=not reasons, reasons=reasons, checks=checks, consider=consider)


def _span(low: float, high: float, confidence: float) -> str:
    return f"{confidence:.0%} interval {low:.4f}-{high:.4f}"


def hints(*, scores, checks: dict, failed: list[str], baseline: LiftRecord | None, min_accuracy: float,
          min_class_recall: float, max_regression: float) -> list[str]:
    """What a refusal shows: the measured accuracy with its interval, the scratch baseline, and
    for each failed check the threshold to consider and the figure to set it against."""
    ci = scores.accuracy_interval
    measured = f"measured: test accuracy {scores.accuracy:.4f} on {scores.images} test images"
    if ci is not None:
        measured += (f" ({_span(ci.low, ci.high, ci.confidence)}, {ci.method}: a threshold inside it cannot tell "
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
            span = f", {_span(low, high, ci.confidence)}"
        out.append(f"consider gate.min_class_recall (now {min_class_recall}): the lowest recall is {name}'s "
                   f"{worst.recall:.4f} on its {worst.support} test images{span}; classes that look alike "
                   "(the confusion matrix, plots/confusion.png) need a lower one")
    if "regression" in failed:
        out.append(f"consider gate.max_regression (now {max_regression}): the last blessed model scored "
                   f"{checks['regression']['previous']:.4f} on the same test images; keep it unless that model "
                   "is one you no longer trust")
    out.append(f"how to choose them for your data: {GUIDE}")
    return out


def read_record(paths) -> BlessedRecord | None:
    """The last blessed model's record; None before any model was blessed (no file, or ``{}``).
    A record that cannot be read is refused: a gate that skipped the comparison would fail open."""
    path = artifacts.BLESSED.path(paths)
    if not path.is_file():
        return None
    fix = (f"restore it (`dvc checkout {path}`, or `git checkout` of its .dvc/dvc.lock entry), or delete it to "
           "publish with no earlier model to compare against")
    try:
        record = BlessedRecord.model_validate(json.loads(path.read_text()))
    except ValueError as err:  # JSON or schema: the first line of the error says which
        raise RegistryError(f"{path}: the registry record is unreadable ({str(err).splitlines()[0]}); {fix}") from None
    if record.accuracy is None and record != BlessedRecord():
        raise RegistryError(f"{path}: the registry record has no accuracy; {fix}")
    return None if record.accuracy is None else record


def require(gate: GateRecord, *, allow_unblessed: bool) -> None:
    """Raise :class:`GateRefused` unless the model is blessed or the user overrides the gate."""
    if gate.blessed or allow_unblessed:
        return
    consider = "".join(f" {hint[0].upper()}{hint[1:]}." for hint in gate.consider)
    raise GateRefused("the model is not blessed, so it was not published: " + "; ".join(gate.reasons) + "."
                      + consider + " Improve it, relax the thresholds under gate: in params.yaml, or publish anyway "
                      "with export.allow_unblessed: true (dvc exp run -S export.allow_unblessed=true)")


def check(params, *, scores, test_data: str, baseline: LiftRecord | None) -> GateRecord:
    """The gate of the ``gate`` params against the registry's record, written to gate.json."""
    g = params.gate
    decision = decide(scores=scores, test_data=test_data, min_accuracy=g.min_accuracy,
                      min_class_recall=g.min_class_recall, max_regression=g.max_regression,
                      previous=read_record(params.paths), baseline=baseline)
    artifacts.GATE.write(params.paths, decision)
    return decision


def record_blessed(paths, *, scores, test_data: str, provenance: dict) -> None:
    """The registry's new reference, once the blessed model is published."""
    artifacts.BLESSED.write(paths, BlessedRecord(accuracy=scores.accuracy, per_class=scores.per_class,
                                                 test_data=test_data, git_revision=provenance["git_revision"],
                                                 data_hash=provenance["data_hash"],
                                                 params_hash=provenance["params_hash"]))
