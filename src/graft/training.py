"""The one fit loop every phase uses: learning-rate schedule, class weights, early stopping,
augmentation in training only, best weights by validation loss, and resumable state.

A phase given a ``backup_dir`` survives being killed: Keras' BackupAndRestore saves the weights,
the optimizer and the epoch at the end of every epoch, and a journal keeps the history, so the
next run continues from the last finished epoch instead of starting over. The directory is
removed when the phase finishes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

import keras
import numpy as np

from graft.atomic import atomic_path
from graft.config import Augment, Fit

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
VALIDATION_BATCH = 256  # validation does not learn: large batches, fewer steps, the same loss
STEPS_PER_EXECUTION = 32  # batches per compiled call: the same steps with less Python in between (callbacks are per epoch)


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
    resumed_from: int = 0  # epochs a killed run had finished before this one continued


def learning_rate(lr: float, recipe: Fit, steps_per_epoch: int):
    """A constant rate, or a schedule: linear warm-up over ``warmup_epochs``, then constant or
    cosine decay to 0 by the last step."""
    if recipe.schedule == "constant" and not recipe.warmup_epochs:
        return lr
    warmup = recipe.warmup_epochs * steps_per_epoch
    decay = max(1, recipe.epochs * steps_per_epoch - warmup)
    alpha = 1.0 if recipe.schedule == "constant" else 0.0  # alpha 1: no decay after warm-up
    if warmup:
        return keras.optimizers.schedules.CosineDecay(0.0, decay, alpha=alpha, warmup_target=lr, warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(lr, decay, alpha=alpha)


def loop_settings(batch_size: int) -> tuple[int, int]:
    """(validation batch size, steps per compiled call): large validation batches (validation does
    not learn) and several steps per call, the same training with less overhead; under a
    tf.distribute strategy the plain loop (Keras 3.15 fails there with a large uneven final batch
    and with multi-step calls)."""
    import tensorflow as tf

    if tf.distribute.has_strategy():
        return batch_size, 1
    return max(batch_size, VALIDATION_BATCH), STEPS_PER_EXECUTION


def class_weights(y: np.ndarray, mode: str) -> dict[int, float] | None:
    """``balanced``: n / (classes * count) per class, as scikit-learn computes it."""
    if mode == "none":
        return None
    counts = np.bincount(y)
    present = np.flatnonzero(counts)
    return {int(k): float(len(y) / (len(present) * counts[k])) for k in present}


@keras.saving.register_keras_serializable(package="graft")
class ToPixels(keras.layers.Layer):
    """Back to the uint8 pixels the model takes, after augmentation worked in float."""

    def call(self, x):
        return keras.ops.cast(keras.ops.clip(keras.ops.round(x), 0, 255), "uint8")


def augmenter(augment: Augment, *, seed: int) -> keras.Sequential:
    """Keras augmentation layers; they live only in the training wrapper, never in the saved model."""
    steps: list[keras.layers.Layer] = []
    if augment.flip != "none":
        steps.append(keras.layers.RandomFlip(augment.flip, seed=seed))
    if augment.rotation:
        steps.append(keras.layers.RandomRotation(augment.rotation, fill_mode="nearest", seed=seed + 1))
    if augment.zoom:
        steps.append(keras.layers.RandomZoom(augment.zoom, fill_mode="nearest", seed=seed + 2))
    if augment.translation:
        steps.append(keras.layers.RandomTranslation(augment.translation, augment.translation, fill_mode="nearest",
                                                    seed=seed + 3))
    return keras.Sequential([*steps, ToPixels()], name="augment")


def with_augmentation(model: keras.Model, augment: Augment, *, seed: int) -> keras.Model:
    """A training wrapper: pixels -> augmentation -> ``model``; it shares ``model``'s weights."""
    inputs = keras.Input(shape=model.input_shape[1:], dtype="uint8", name="pixels")
    return keras.Model(inputs, model(augmenter(augment, seed=seed)(inputs)), name=f"{model.name}_training")


def fingerprint(*parts) -> str:
    """A short key of what a phase depends on: files and arrays by content, dataclasses and values as JSON."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            with open(part, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        elif isinstance(part, np.ndarray):
            digest.update(f"{part.dtype.str}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).data)
        else:
            digest.update(json.dumps(asdict(part) if is_dataclass(part) else part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def backup_dir(root: Path, phase: str, *parts) -> Path:
    """``root/phase/<key>``: a run with other inputs never resumes from this one's state."""
    return root / phase / fingerprint(*parts)


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


@contextmanager
def _state_dir(backup: Path | None) -> Iterator[Path]:
    if backup is None:
        with tempfile.TemporaryDirectory(prefix="graft-fit-") as tmp:
            yield Path(tmp)
        return
    for stale in backup.parent.glob("*"):  # state of the same phase with other inputs: never resumable
        if stale != backup:
            shutil.rmtree(stale, ignore_errors=True)
    backup.mkdir(parents=True, exist_ok=True)
    yield backup
    shutil.rmtree(backup, ignore_errors=True)  # reached only when the phase finished


def repeated(train: tuple[np.ndarray, ...], *, batch_size: int, steps: int) -> tuple[np.ndarray, ...]:
    """The training set repeated whole until an epoch has at least ``steps`` batches (``min_steps``):
    a budget counted in epochs alone gives 20 images at batch size 32 one step an epoch."""
    n = len(train[0])
    times = math.ceil(steps * batch_size / n) if n and steps * batch_size > n else 1
    return train if times == 1 else tuple(np.concatenate([a] * times) for a in train)


def batches(arrays: tuple[np.ndarray, ...], *, batch_size: int, shuffle: bool, seed: int):
    """One epoch of ``arrays`` as a tf.data pipeline of batches (gathered by index, so the arrays
    are not copied into a shuffle buffer); each pass over it is a new seeded permutation. Keras'
    own adapter for arrays replays one permutation every epoch under op determinism (its shuffle
    restarts with each epoch's iterator) and costs more per epoch, which weighs on short phases."""
    import tensorflow as tf

    order = tf.data.Dataset.range(len(arrays[0]))
    if shuffle:
        order = order.shuffle(len(arrays[0]), seed=seed, reshuffle_each_iteration=True)
    data = tf.data.Dataset.from_tensors(tuple(arrays)).repeat()
    return tf.data.Dataset.zip(order.batch(batch_size), data).map(lambda i, d: tuple(tf.gather(a, i) for a in d))


def fit(model: keras.Model, *, train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray],
        recipe: Fit, lr: float | None = None, augment: Augment | None = None, seed: int = 0,
        backup: Path | None = None, loss: str = "sparse_categorical_crossentropy",
        metrics: tuple[str, ...] = ("accuracy",)) -> FitResult:
    """Compile ``model`` with Adam (``lr``, else ``recipe.lr``) and train it as ``recipe`` says;
    leave it holding the weights of the epoch with the lowest validation loss.

    ``augment`` trains through a wrapper with augmentation layers (``model`` itself never gets
    them); ``backup`` makes the phase resumable (see the module docstring). ``loss`` and ``metrics``
    are a classifier's unless given (the autoencoder passes its reconstruction loss and none)."""
    lr = recipe.lr if lr is None else lr
    trainer = with_augmentation(model, augment, seed=seed) if augment is not None and augment.enabled else model
    train = repeated(train, batch_size=recipe.batch_size, steps=math.ceil(recipe.min_steps / recipe.epochs))
    steps = math.ceil(len(train[1]) / recipe.batch_size)
    validation_batch, per_call = loop_settings(recipe.batch_size)
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate(lr, recipe, steps),
                                                    clipnorm=recipe.clipnorm),
                    loss=loss, metrics=list(metrics), steps_per_execution=per_call)
    with _state_dir(backup) as state:
        best, journal = state / "best.weights.npz", state / "history.csv"
        done = read_journal(journal)
        if done:
            print(f"resuming from epoch {max(done) + 1}/{recipe.epochs}: {backup} holds a killed run's state", flush=True)
        resumable = backup is not None
        keeper = BestWeights(best if resumable else None,
                             best_val_loss=min((e["val_loss"] for e in done.values()), default=math.inf))
        callbacks = [keeper, Journal(journal, durable=resumable)]
        if resumable:
            callbacks.append(keras.callbacks.BackupAndRestore(state / "state", double_checkpoint=True))
        if recipe.patience:
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=recipe.patience))
        trainer.fit(batches(train, batch_size=recipe.batch_size, shuffle=True, seed=seed), shuffle=False,
                    validation_data=batches(valid, batch_size=validation_batch, shuffle=False, seed=seed),
                    epochs=recipe.epochs, class_weight=class_weights(train[1], recipe.class_weight),
                    verbose=verbosity(), callbacks=callbacks)
        rows = read_journal(journal)
        keeper.restore()
    epochs = sorted(rows)
    history = {k: [rows[e][k] for e in epochs] for k in HISTORY_KEYS if k in rows[epochs[0]]}
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    return FitResult(history=history, best_epoch=best_epoch, best_val_loss=history["val_loss"][best_epoch - 1],
                     resumed_from=max(done, default=0))


def write_empty_history(path: Path, *, phase: str) -> None:
    """The history of a phase that trained nothing (the strategy skipped it): the header alone."""
    write_history(path, FitResult(history={k: [] for k in HISTORY_KEYS}, best_epoch=0, best_val_loss=float("nan")),
                  phase=phase)


def write_history(path: Path, result: FitResult, *, phase: str, first_epoch: int = 1) -> None:
    """Per-epoch CSV for DVC plots: epoch, phase, loss, accuracy, val_loss, val_accuracy."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "phase", *HISTORY_KEYS])
        for i in range(len(result.history.get("loss", ()))):
            writer.writerow([first_epoch + i, phase, *(round(result.history[k][i], 6) for k in HISTORY_KEYS)])


def save_model(model: keras.Model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)
