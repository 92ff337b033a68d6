"""The one fit loop every phase uses: best weights by validation loss, history kept (seed first with seed_everything)."""

from __future__ import annotations

import csv
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from graft.atomic import atomic_path


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds, and deterministic TensorFlow ops."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def verbosity() -> int:
    """Keras progress bars on a terminal, one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


@dataclass(frozen=True)
class FitResult:
    history: dict[str, list[float]]
    best_epoch: int  # 1-based
    best_val_loss: float


def fit(model: keras.Model, *, train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray],
        epochs: int, batch_size: int, lr: float) -> FitResult:
    """Compile ``model`` with Adam at ``lr``, train it, and leave it holding the weights of the
    epoch with the lowest validation loss."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with tempfile.TemporaryDirectory(prefix="graft-fit-") as tmp:
        best = Path(tmp) / "best.weights.h5"
        history = model.fit(
            *train, validation_data=valid, epochs=epochs, batch_size=batch_size, shuffle=True,
            verbose=verbosity(),
            callbacks=[keras.callbacks.ModelCheckpoint(best, monitor="val_loss", save_best_only=True,
                                                       save_weights_only=True)],
        ).history
        model.load_weights(best)
    val_loss = history["val_loss"]
    best_epoch = int(np.argmin(val_loss)) + 1
    return FitResult(history={k: [float(v) for v in vs] for k, vs in history.items()},
                     best_epoch=best_epoch, best_val_loss=float(val_loss[best_epoch - 1]))


def write_history(path: Path, result: FitResult, *, phase: str, first_epoch: int = 1) -> None:
    """Per-epoch CSV for DVC plots: epoch, phase, loss, accuracy, val_loss, val_accuracy."""
    keys = ["loss", "accuracy", "val_loss", "val_accuracy"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "phase", *keys])
        for i in range(len(result.history["loss"])):
            writer.writerow([first_epoch + i, phase, *(round(result.history[k][i], 6) for k in keys)])


def save_model(model: keras.Model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)
