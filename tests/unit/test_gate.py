"""Unit: the release gate's decisions on hand-made metrics."""

import numpy as np
import pytest

from graft.errors import GateRefused
from graft.evaluate import gate
from graft.evaluate.lift import lift, mcnemar
from graft.evaluate.metrics import wilson_interval
from graft.evaluate.report import interval
from graft.records import BlessedRecord, GateRecord, Scores
from tests.helpers import ROOT

TEST_DATA = "a" * 64  # the digest of the test images the candidate was scored on


def scores(accuracy, recalls):
    per_class = {c: {"precision": r, "recall": r, "f1": r, "support": 100} for c, r in recalls.items()}
    return Scores(accuracy=accuracy, loss=0.1, images=200, errors=round((1 - accuracy) * 200), macro_f1=accuracy,
                  ece=0.01, per_class=per_class)


THRESHOLDS = {"min_accuracy": 0.99, "min_class_recall": 0.98, "max_regression": 0.005}


def test_good_model_is_blessed():
    decision = gate.decide(scores=scores(0.995, {"a": 0.99, "b": 1.0}), previous=None, test_data=TEST_DATA,
                           no_previous="no version of graft-classifier is in prod yet", baseline=None, **THRESHOLDS)
    assert decision.blessed and decision.reasons == [] and decision.test_data == TEST_DATA
    assert set(decision.checks) == {"accuracy", "recall/a", "recall/b", "regression"}
    assert decision.checks["regression"] == {"compared": False, "ok": True,
                                             "why": "no version of graft-classifier is in prod yet"}
    assert all(check["ok"] for check in decision.checks.values())


@pytest.mark.parametrize(("candidate", "previous", "words"), [
    (scores(0.985, {"a": 0.99, "b": 0.98}), None, ["accuracy 0.9850", "gate.min_accuracy 0.99"]),
    (scores(0.995, {"a": 1.0, "b": 0.97}), None, ["recall of b 0.9700", "gate.min_class_recall"]),
    (scores(0.992, {"a": 0.99, "b": 0.99}), BlessedRecord(accuracy=0.998, git_revision="abc", test_data=TEST_DATA),
     ["gate.max_regression", "0.9980", "abc", "same test images"]),
])
def test_each_refusal_names_the_threshold(candidate, previous, words):
    decision = gate.decide(scores=candidate, previous=previous, no_previous="no model in prod", test_data=TEST_DATA,
                           baseline=None, **THRESHOLDS)
    assert not decision.blessed and len(decision.reasons) == 1
    for word in words:
        assert word in decision.reasons[0]
    assert decision.consider[-1] == f"how to choose them for your data: {gate.GUIDE}"


def test_a_refusal_shows_the_interval_the_scratch_baseline_and_the_thresholds_to_consider():
    """Issue 18's hard pair: 94.95% on 2,000 test images, scratch 94.85%, refused by the default task's gate."""
    candidate = scores(0.9495, {"Shirt": 0.93, "T-shirt_top": 0.985}).model_copy(
        update={"images": 2000, "accuracy_interval": interval(accuracy=0.9495, images=2000, confidence=0.95)})
    candidate = candidate.model_copy(update={"per_class": {name: c.model_copy(update={"support": 1000})
                                                           for name, c in candidate.per_class.items()}})
    transfer = np.arange(2000) >= 101  # 1899 right; scratch gets 1897 right, 30 images disagree
    scratch = transfer.copy()
    scratch[101:117], scratch[:14] = False, True
    paired = mcnemar(transfer_correct=transfer, scratch_correct=scratch, alpha=0.05)
    baseline = lift(transfer=0.9495, scratch=0.9485).model_copy(update={"mcnemar": paired})
    decision = gate.decide(scores=candidate, previous=None, no_previous="no model in prod", test_data=TEST_DATA,
                           baseline=baseline, **THRESHOLDS)
    assert not decision.blessed and len(decision.reasons) == 2  # as strict as before
    low, high = wilson_interval(successes=1899, trials=2000, confidence=0.95)
    measured, base, accuracy, recall, guide = decision.consider
    assert f"0.9495 on 2000 test images (95% interval {low:.4f}-{high:.4f}, wilson" in measured
    assert "scratch baseline" in base and "0.9485" in base and "+0.10 points, not significant (McNemar p = 0.86" in base
    assert accuracy.startswith("consider gate.min_accuracy (now 0.99)") and f"{low:.4f}" in accuracy
    shirt_low, shirt_high = wilson_interval(successes=930, trials=1000, confidence=0.95)
    assert recall.startswith("consider gate.min_class_recall (now 0.98): the lowest recall is Shirt's 0.9300 on its "
                             f"1000 test images, 95% interval {shirt_low:.4f}-{shirt_high:.4f}")
    assert (ROOT / gate.GUIDE).is_file() and gate.GUIDE in guide
    with pytest.raises(GateRefused) as err:
        gate.require(decision, allow_unblessed=False)
    message = str(err.value)
    assert "\n" not in message and "gate.min_accuracy 0.99" in message and "Consider gate.min_class_recall" in message
    assert f"interval {low:.4f}-{high:.4f}" in message and "export.allow_unblessed" in message


def test_small_regression_within_budget_is_blessed():
    decision = gate.decide(scores=scores(0.994, {"a": 0.99, "b": 0.99}), test_data=TEST_DATA, baseline=None,
                           previous=BlessedRecord(accuracy=0.998, test_data=TEST_DATA), no_previous=None,
                           **THRESHOLDS)
    assert decision.blessed and decision.checks["regression"]["ok"] and decision.checks["regression"]["compared"]


def test_a_model_scored_on_other_test_images_is_not_compared_and_the_gate_says_so():
    """A user's first run on their own folder, with the default task's model on record."""
    other = BlessedRecord(accuracy=0.9985, git_revision="abc", test_data="b" * 64)
    decision = gate.decide(scores=scores(0.991, {"a": 0.99, "b": 0.99}), test_data=TEST_DATA, baseline=None,
                           previous=other, no_previous=None, **THRESHOLDS)
    assert decision.blessed and decision.checks["regression"]["compared"] is False
    assert "other test images" in decision.checks["regression"]["why"]


def test_require():
    blessed, refused = GateRecord(blessed=True, reasons=[], checks={}), GateRecord(blessed=False, reasons=["x"], checks={})
    gate.require(blessed, allow_unblessed=False)
    gate.require(refused, allow_unblessed=True)
    with pytest.raises(GateRefused, match="x.*export.allow_unblessed"):
        gate.require(refused, allow_unblessed=False)
