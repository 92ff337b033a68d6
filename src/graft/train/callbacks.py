"""The fit loop's callbacks: the journal of finished epochs, and the best weights by validation loss."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import keras
import numpy as np

from graft.files import atomic_path

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


class Journal(keras.callbacks.Callback):
    """Appends each finished epoch's metrics to a CSV; ``durable``: fsynced too, so the history of a
    resumable phase survives a kill (a phase that cannot resume needs only the file)."""

    def __init__(self, path: Path, *, durable: bool = True):
        super().__init__()
        self.path, self.durable = path, durable

    def on_epoch_end(self, epoch, logs=None):
        new = not self.path.exists()
        keys = [k for k in HISTORY_KEYS if k in logs]  # no accuracy for an autoencoder
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["epoch", *keys])
            writer.writerow([epoch + 1, *(float(logs[k]) for k in keys)])
            if self.durable:
                f.flush()
                os.fsync(f.fileno())


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the lowest validation loss: in memory, and in ``path``
    (an .npz, replaced in one rename) when the phase must survive a kill. Cheaper than Keras'
    ModelCheckpoint, which walks and writes the whole model to HDF5 at every improvement."""

    def __init__(self, path: Path | None, *, best_val_loss: float = math.inf):
        super().__init__()
        self.path, self.best, self.weights = path, best_val_loss, None

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_loss"] < self.best:
            self.best, self.weights = logs["val_loss"], self.model.get_weights()
            if self.path is not None:
                with atomic_path(self.path) as tmp, open(tmp, "wb") as f:
                    np.savez(f, *self.weights)

    def restore(self) -> None:
        """Put the best weights back (from memory, or from ``path`` when a killed run found them)."""
        if self.weights is None and self.path is not None and self.path.exists():
            with np.load(self.path) as saved:
                self.weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        if self.weights is not None:
            self.model.set_weights(self.weights)


def read_journal(path: Path) -> dict[int, dict[str, float]]:
    """Epoch -> metrics; an epoch written twice (killed after the journal, before the backup) keeps
    its last row."""
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {int(row["epoch"]): {k: float(row[k]) for k in HISTORY_KEYS if k in row} for row in csv.DictReader(f)}
