"""The one fit loop every phase uses: learning-rate schedule, class weights, early stopping,
augmentation in training only, best weights by validation loss, and resumable state.

A phase given a ``backup`` folder survives being killed: at the end of every epoch one checkpoint
holds everything it needs (graft.train.callbacks.Checkpoint), so the next run continues from the
last finished epoch exactly as the uninterrupted run would have. The folder is removed when the
phase finishes (graft.train.resume).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from graft.train.augment import with_augmentation
from graft.train.callbacks import BestWeights, Checkpoint, LiveLog
from graft.train.history import HISTORY_KEYS, open_live
from graft.train.resume import state_dir

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

    def record(self) -> dict:
        """What a phase's record keeps of the fit (head.json, finetune.json)."""
        return {"best_epoch": self.best_epoch, "epochs_run": len(self.history["loss"]), "valid_loss": self.best_val_loss,
                "valid_accuracy": self.history["val_accuracy"][self.best_epoch - 1],
                "resumed_from_epoch": self.resumed_from}

    def describe(self, epochs: int) -> str:
        return (f"best epoch {self.best_epoch}/{epochs}, valid loss {self.best_val_loss:.4f}, "
                f"valid accuracy {self.history['val_accuracy'][self.best_epoch - 1]:.4f}")


def trainable_params(model: keras.Model) -> int:
    return int(sum(w.numpy().size for w in model.trainable_weights))


def learning_rate(lr: float, recipe, steps_per_epoch: int):
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


def repeated(train: tuple[np.ndarray, ...], *, batch_size: int, steps: int) -> tuple[np.ndarray, ...]:
    """The training set repeated whole until an epoch has at least ``steps`` batches (``min_steps``):
    a budget counted in epochs alone gives 20 images at batch size 32 one step an epoch."""
    n = len(train[0])
    times = math.ceil(steps * batch_size / n) if n and steps * batch_size > n else 1
    return train if times == 1 else tuple(np.concatenate([a] * times) for a in train)


class EpochOrder(keras.callbacks.Callback):
    """Which epoch is running, for :func:`batches`: each epoch's order of the training images is
    drawn from (seed, epoch) alone, so a resumed phase's epoch k sees what the uninterrupted run's
    epoch k saw, however many iterators Keras makes of the data (it makes two an epoch)."""

    def __init__(self):
        super().__init__()
        import tensorflow as tf

        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)


def batches(arrays: tuple[np.ndarray, ...], *, batch_size: int, seed: int, epoch=None):
    """One epoch of ``arrays`` as a tf.data pipeline of batches, gathered by index (the arrays are
    not copied into a shuffle buffer). With ``epoch`` (:class:`EpochOrder`'s variable) each pass is
    a permutation drawn from (seed, epoch); without, the arrays' own order (validation). Keras'
    own adapter for arrays replays one permutation every epoch under op determinism and costs more
    per epoch, which weighs on short phases."""
    import tensorflow as tf

    n = len(arrays[0])
    if epoch is None:
        order = tf.data.Dataset.range(n)
    else:
        def permutation(_):
            draws = tf.random.stateless_uniform([n], seed=tf.stack([tf.constant(seed, tf.int64), epoch.read_value()]))
            return tf.data.Dataset.from_tensor_slices(tf.argsort(draws, stable=True))

        # flat_map hides the length; stated, Keras knows the epoch's steps (no "ran out of data" warning)
        order = tf.data.Dataset.from_tensors(0).flat_map(permutation).apply(tf.data.experimental.assert_cardinality(n))
    data = tf.data.Dataset.from_tensors(tuple(arrays)).repeat()
    return tf.data.Dataset.zip(order.batch(batch_size), data).map(lambda i, d: tuple(tf.gather(a, i) for a in d))


def classifier_loss(label_smoothing: float):
    """Cross-entropy of integer labels against softmax probabilities; with ``label_smoothing``
    (Szegedy et al. 2016) each label is the one-hot vector mixed with the uniform distribution at
    that share. (Keras' sparse cross-entropy takes no smoothing; its dense one needs one-hot labels.)"""
    if not label_smoothing:
        return "sparse_categorical_crossentropy"

    def smoothed_crossentropy(y_true, y_pred):
        labels = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), y_pred.shape[-1],
                                   dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(labels, y_pred, label_smoothing=label_smoothing)

    return smoothed_crossentropy


def fit(model: keras.Model, *, train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray],
        recipe, seed: int, lr: float | None = None, augment=None,
        backup: Path | None = None, live: Path | None = None, loss: str | None = None,
        metrics: tuple[str, ...] = ("accuracy",)) -> FitResult:
    """Compile ``model`` with Adam (``lr``, else ``recipe.lr``) and train it as ``recipe`` (a
    :class:`graft.config.sections.Fit` section) says;
    leave it holding the weights of the epoch with the lowest validation loss.

    ``augment`` trains through a wrapper with augmentation layers (``model`` itself never gets
    them); ``backup`` makes the phase resumable (see the module docstring); ``live`` is the phase's
    DVCLive folder (graft.train.history), a step an epoch, continued after a resume. ``loss`` and ``metrics``
    are a classifier's unless given (the autoencoder passes its reconstruction loss and none); the
    classifier's loss is smoothed by ``recipe.label_smoothing``."""
    lr = recipe.lr if lr is None else lr
    trainer = with_augmentation(model, augment, seed=seed) if augment is not None and augment.enabled else model
    train = repeated(train, batch_size=recipe.batch_size, steps=math.ceil(recipe.min_steps / recipe.epochs))
    steps = math.ceil(len(train[1]) / recipe.batch_size)
    validation_batch, per_call = loop_settings(recipe.batch_size)
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate(lr, recipe, steps),
                                                    clipnorm=recipe.clipnorm),
                    loss=classifier_loss(recipe.label_smoothing) if loss is None else loss, metrics=list(metrics),
                    steps_per_execution=per_call)
    with state_dir(backup) as state:
        keeper = BestWeights()
        stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=recipe.patience) if recipe.patience else None
        checkpoint = Checkpoint(state / "checkpoint" if backup is not None else None, keeper=keeper, stopper=stopper)
        done = checkpoint.restore(trainer)
        if done:
            print(f"resuming from epoch {done + 1}/{recipe.epochs}: {backup} holds a killed run's state", flush=True)
        order = EpochOrder()
        logger = [LiveLog(open_live(live, checkpoint.rows))] if live is not None else []  # before the checkpoint
        trainer.fit(batches(train, batch_size=recipe.batch_size, seed=seed, epoch=order.epoch), shuffle=False,
                    validation_data=batches(valid, batch_size=validation_batch, seed=seed),
                    epochs=recipe.epochs, initial_epoch=done, class_weight=class_weights(train[1], recipe.class_weight),
                    verbose=verbosity(), callbacks=[order, keeper, *([stopper] if stopper else []), *logger, checkpoint])
        rows = {row["epoch"]: row for row in checkpoint.rows}
        keeper.restore()
    epochs = sorted(rows)
    history = {k: [rows[e][k] for e in epochs] for k in HISTORY_KEYS if k in rows[epochs[0]]}
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    return FitResult(history=history, best_epoch=best_epoch, best_val_loss=history["val_loss"][best_epoch - 1],
                     resumed_from=done)
