"""The per-epoch history CSV of a phase, for DVC plots."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from graft.files import atomic_path
from graft.train.callbacks import HISTORY_KEYS
from graft.train.fit import FitResult


def write_empty_history(path: Path, *, phase: str) -> None:
    """The history of a phase that trained nothing (the strategy skipped it): the header alone."""
    write_history(path, FitResult(history={k: [] for k in HISTORY_KEYS}, best_epoch=0, best_val_loss=math.nan),
                  phase=phase)


def write_history(path: Path, result: FitResult, *, phase: str, first_epoch: int = 1) -> None:
    """Per-epoch CSV for DVC plots: epoch, phase, loss, accuracy, val_loss, val_accuracy."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "phase", *HISTORY_KEYS])
        for i in range(len(result.history.get("loss", ()))):
            writer.writerow([first_epoch + i, phase, *(round(result.history[k][i], 6) for k in HISTORY_KEYS)])
