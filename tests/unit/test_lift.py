"""Unit: the transfer lift, one convention for every reader, and when no lift may be reported."""

import numpy as np
import pytest

from graft.evaluate.lift import describe, in_words, lift, mcnemar, mcnemar_p, transfer_lift
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


@pytest.mark.parametrize(("first_only", "second_only", "p"), [
    (0, 0, 1.0),  # nothing tells the models apart
    (5, 5, 1.0),  # symmetric: no evidence either way
    (0, 5, 0.0625),  # 2 * (1/2)^5
    (5, 0, 0.0625),
    (2, 8, 0.109375),  # 2 * (1 + 10 + 45) / 2^10
    (10, 12, 0.831812),  # 2 * sum_{i<=10} C(22, i) / 2^22
])
def test_exact_mcnemar_p_by_hand(first_only, second_only, p):
    assert mcnemar_p(first_only=first_only, second_only=second_only) == pytest.approx(p, abs=1e-6)


def test_mcnemar_counts_only_the_discordant_images_and_says_the_verdict_in_words():
    transfer = np.array([True] * 90 + [True] * 6 + [False] * 1 + [False] * 3)
    scratch = np.array([True] * 90 + [False] * 6 + [True] * 1 + [False] * 3)
    test = mcnemar(transfer_correct=transfer, scratch_correct=scratch, alpha=0.05)
    assert (test.transfer_only, test.scratch_only) == (6, 1)
    assert test.p_value == pytest.approx(2 * (1 + 7) / 128) and not test.significant  # 0.125
    strong = mcnemar(transfer_correct=np.ones(30, bool), scratch_correct=np.arange(30) < 20, alpha=0.05)
    assert strong.p_value == pytest.approx(2 / 1024, abs=1e-6) and strong.significant
    record = lift(transfer=0.96, scratch=0.91).model_copy(update={"mcnemar": test})
    assert in_words(record).startswith("+5.00 points, not significant (McNemar p = 0.12;")
    assert in_words(lift(transfer=0.96, scratch=0.91).model_copy(update={"mcnemar": strong})).startswith(
        "+5.00 points, significant (McNemar p = 0.002;")
    assert "not significant (McNemar p = 0.12" in describe(record)
    assert in_words(record).endswith("only scratch)")  # not significant: no direction claimed
    backwards = mcnemar(transfer_correct=np.arange(30) < 20, scratch_correct=np.ones(30, bool), alpha=0.05)
    assert in_words(lift(transfer=0.91, scratch=0.96).model_copy(update={"mcnemar": backwards})).endswith(
        "0 test images only transfer gets right, 10 only scratch): the scratch baseline is better")
    with pytest.raises(ValueError, match="paired"):
        mcnemar(transfer_correct=np.ones(3, bool), scratch_correct=np.ones(4, bool), alpha=0.05)
