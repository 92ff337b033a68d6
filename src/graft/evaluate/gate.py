"""The release gate: may the final model be published?

Thresholds come from ``params.yaml`` (``gate``). The gate is decided by ``export``, where the
model is published: the last blessed model's record (``paths.blessed``, the registry, kept
across runs) is read there, and changed only once the new model is published, so a failed
export never leaves the registry naming a model that was not published. A new model may lose at
most ``gate.max_regression`` against that record, compared only on the same test images.
"""

from __future__ import annotations

import json

from graft import artifacts
from graft.errors import GateRefused, RegistryError
from graft.records import BlessedRecord, GateRecord


def decide(*, scores, test_data: str, min_accuracy: float, min_class_recall: float, max_regression: float,
           previous: BlessedRecord | None) -> GateRecord:
    """``scores``: the candidate's test scores (graft.records.Scores) on the test images of digest
    ``test_data``; ``previous``: the last blessed record or None. Every refusal names the param it
    failed. Pure."""
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
    return GateRecord(blessed=not reasons, reasons=reasons, checks=checks)


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
    raise GateRefused("the model is not blessed, so it was not published: " + "; ".join(gate.reasons)
                      + ". Improve it, relax the thresholds under gate: in params.yaml, or publish anyway with "
                      "export.allow_unblessed: true (dvc exp run -S export.allow_unblessed=true)")


def check(params, *, scores, test_data: str) -> GateRecord:
    """The gate of the ``gate`` params against the registry's record, written to gate.json."""
    g = params.gate
    decision = decide(scores=scores, test_data=test_data, min_accuracy=g.min_accuracy,
                      min_class_recall=g.min_class_recall, max_regression=g.max_regression,
                      previous=read_record(params.paths))
    artifacts.GATE.write(params.paths, decision)
    return decision


def record_blessed(paths, *, scores, test_data: str, provenance: dict) -> None:
    """The registry's new reference, once the blessed model is published."""
    artifacts.BLESSED.write(paths, BlessedRecord(accuracy=scores.accuracy, per_class=scores.per_class,
                                                 test_data=test_data, git_revision=provenance["git_revision"],
                                                 data_hash=provenance["data_hash"],
                                                 params_hash=provenance["params_hash"]))
