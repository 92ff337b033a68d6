"""Transfer's lift over the scratch baseline, with one convention for every reader."""

from __future__ import annotations

from graft.records import LiftRecord


def lift(*, transfer: float, scratch: float) -> LiftRecord:
    """The gain in accuracy points on the same test images, and how many times transfer's errors
    the baseline makes (None when transfer made none: no finite ratio)."""
    return LiftRecord(scratch_accuracy=scratch, accuracy_points=round((transfer - scratch) * 100, 4),
                      error_reduction=round((1 - scratch) / (1 - transfer), 4) if transfer < 1 else None)


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


def describe(record: LiftRecord) -> str:
    """One line for the stage output."""
    if record.unavailable:
        return f"no transfer lift: {record.unavailable}"
    ratio = f"; scratch makes {record.error_reduction:.1f}x the errors" if record.error_reduction else ""
    return (f"transfer lift over scratch ({record.scratch_accuracy:.4f}): {record.accuracy_points:+.2f} points"
            + ratio)
