"""Unit: the transfer lift, one convention for every reader, and when no lift may be reported."""

import pytest

from graft.evaluate.lift import describe, lift, transfer_lift
from graft.records import Scores, ScratchRecord


def scores(accuracy: float) -> Scores:
    return Scores(accuracy=accuracy, loss=0.1, images=100, errors=round((1 - accuracy) * 100), macro_f1=accuracy,
                  ece=0.0, per_class={})


BASELINE = ScratchRecord(enabled=True, test=scores(0.95))


def test_lift_in_points_and_error_ratio():
    record = lift(transfer=0.99, scratch=0.95)
    assert record.accuracy_points == pytest.approx(4.0) and record.error_reduction == pytest.approx(5.0)
    assert lift(transfer=1.0, scratch=0.95).error_reduction is None  # no errors left: no finite ratio
    assert "+4.00 points" in describe(record) and "5.0x the errors" in describe(record)


def test_no_lift_for_the_baseline_itself_a_collapsed_baseline_or_none():
    shipped_scratch = transfer_lift(transferred=False, why_not="strategy scratch", scratch=BASELINE,
                                    transfer_accuracy=0.95)
    assert shipped_scratch.not_transferred and shipped_scratch.accuracy_points is None
    collapsed = transfer_lift(transferred=True, why_not="", scratch=ScratchRecord(enabled=True, test=scores(0.5),
                                                                                  collapsed_to="Shirt"),
                              transfer_accuracy=0.9)
    assert collapsed.unavailable == "the scratch baseline collapsed to 'Shirt'" and collapsed.accuracy_points is None
    off = transfer_lift(transferred=True, why_not="", scratch=ScratchRecord(enabled=False), transfer_accuracy=0.9)
    assert off.unavailable == "scratch.enabled is false"
    measured = transfer_lift(transferred=True, why_not="", scratch=BASELINE, transfer_accuracy=0.97)
    assert measured == lift(transfer=0.97, scratch=0.95) and "no transfer lift" in describe(collapsed)
