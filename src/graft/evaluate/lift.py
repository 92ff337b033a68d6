"""Transfer's lift over the scratch baseline, with one convention for every reader, and whether
it is more than chance on these test images (an exact McNemar test)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from graft.records import LiftRecord, McNemarRecord


def lift(*, transfer: float, scratch: float) -> LiftRecord:
    """The gain in accuracy points on the same test images, and how many times transfer's errors
    the baseline makes (None when transfer made none: no finite ratio)."""
    return LiftRecord(scratch_accuracy=scratch, accuracy_points=round((transfer - scratch) * 100, 4),
                      error_reduction=round((1 - scratch) / (1 - transfer), 4) if transfer < 1 else None)


def mcnemar_p(*, first_only: int, second_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: the images only the first model
    gets right and those only the second does. Under "neither is better" each discordant image
    is a fair coin, so the p-value is twice the binomial tail of the smaller count (at most 1),
    computed in exact fractions. 1.0 with no discordant images: nothing tells the models apart."""
    if first_only < 0 or second_only < 0:
        raise ValueError(f"negative counts {first_only}, {second_only}")
    n, k = first_only + second_only, min(first_only, second_only)
    tail = Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2 ** n)
    return float(min(Fraction(1), 2 * tail))


def mcnemar(*, transfer_correct: np.ndarray, scratch_correct: np.ndarray, alpha: float) -> McNemarRecord:
    """The paired test of the lift: which images each model gets right, in the same order."""
    transfer_correct, scratch_correct = np.asarray(transfer_correct, bool), np.asarray(scratch_correct, bool)
    if transfer_correct.shape != scratch_correct.shape:
        raise ValueError(f"paired predictions of {transfer_correct.shape} and {scratch_correct.shape} images")
    b, c = int((transfer_correct & ~scratch_correct).sum()), int((~transfer_correct & scratch_correct).sum())
    p = mcnemar_p(first_only=b, second_only=c)
    return McNemarRecord(transfer_only=b, scratch_only=c, p_value=round(p, 6), alpha=alpha, significant=p < alpha)


def transfer_lift(*, transferred: bool, why_not: str, scratch, transfer_accuracy: float) -> LiftRecord:
    """The lift the run reports (``scratch``: the scratch stage's record). None is measured when
    the shipped model is the baseline itself (not ``transferred``, because ``why_not``): a lift
    of 0 against itself says nothing; nor when the baseline collapsed to one class or is off."""
    if not transferred:
        return LiftRecord(unavailable=f"not transferred ({why_not})", not_transferred=True)
    if scratch.collapsed_to:
        return LiftRecord(unavailable=f"the scratch baseline collapsed to {scratch.collapsed_to!r}")
    if not scratch.enabled:
        return LiftRecord(unavailable="scratch.enabled is false")
    return lift(transfer=transfer_accuracy, scratch=scratch.accuracy)


def in_words(record: LiftRecord) -> str:
    """The measured lift and whether it is significant: "+0.10 points, not significant (McNemar
    p = 0.89)". The summary, the model card and the stage output all say it this way."""
    words = f"{record.accuracy_points:+.2f} points"
    test = record.mcnemar
    if test is None:
        return words + ", significance not tested"
    verdict = "significant" if test.significant else "not significant"
    worse = ": the scratch baseline is better" if test.significant and test.scratch_only > test.transfer_only else ""
    return (f"{words}, {verdict} (McNemar p = {test.p_value:.2g}; {test.transfer_only} test images only transfer "
            f"gets right, {test.scratch_only} only scratch){worse}")


def describe(record: LiftRecord) -> str:
    """One line for the stage output."""
    if record.unavailable:
        return f"no transfer lift: {record.unavailable}"
    ratio = f"; scratch makes {record.error_reduction:.1f}x the errors" if record.error_reduction else ""
    return f"transfer lift over scratch ({record.scratch_accuracy:.4f}): {in_words(record)}" + ratio
