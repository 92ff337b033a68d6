"""The release gate: is the fine-tuned model good enough to publish?

Thresholds come from ``params.yaml`` (``gate``). The last blessed model's metrics are kept in
``paths.blessed``, a DVC-tracked record that survives re-runs, so a new model can be refused
for falling too far below the one already published.
"""

from __future__ import annotations

from graft import artifacts
from graft.errors import GateRefused, GraftError
from graft.records import BlessedRecord, GateRecord


def decide(*, scores, min_accuracy: float, min_class_recall: float, max_regression: float,
           previous: BlessedRecord | None) -> GateRecord:
    """``scores``: the candidate's test scores (graft.artifacts.Scores); ``previous``: the last
    blessed record or None. Every refusal names the param it failed. Pure."""
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
    if previous is not None:
        floor = previous.accuracy - max_regression
        ok = accuracy >= floor
        checks["regression"] = {"value": accuracy, "previous": previous.accuracy, "max_regression": max_regression,
                                "ok": ok}
        if not ok:
            reasons.append(f"test accuracy {accuracy:.4f} is more than gate.max_regression {max_regression} below "
                           f"the last blessed model's {previous.accuracy:.4f} (from {previous.git_revision})")
    return GateRecord(blessed=not reasons, reasons=reasons, checks=checks)


def read_record(paths) -> BlessedRecord | None:
    """The last blessed model's record, or None before any model was blessed."""
    try:
        record = artifacts.BLESSED.read(paths)
    except GraftError:  # missing or unreadable: no reference (graft issue 15 makes this refuse instead)
        return None
    return record if record.accuracy is not None else None


def require(gate: GateRecord, *, allow_unblessed: bool) -> None:
    """Raise :class:`GateRefused` unless the model is blessed or the user overrides the gate."""
    if gate.blessed or allow_unblessed:
        return
    raise GateRefused("the model is not blessed, so it was not published: " + "; ".join(gate.reasons)
                      + ". Improve it, relax the thresholds under gate: in params.yaml, or publish anyway with "
                      "export.allow_unblessed: true (dvc exp run -S export.allow_unblessed=true)")
