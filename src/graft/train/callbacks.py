"""The fit loop's callbacks: the best weights by validation loss, and the checkpoint that lets a
killed phase resume exactly where it was.

Keras' own BackupAndRestore keeps the weights, the optimizer and the epoch, but not the state of
the random generators of dropout and augmentation, nor early stopping's counter, nor anything
of graft's own (the history, the best weights so far); and its files and graft's could disagree
after a kill between two of them. :class:`Checkpoint` writes all of it as one folder, put in
place in one rename at the end of every epoch, so a resumed phase continues the uninterrupted
run bit for bit (tests/unit/test_engine.py kills one and compares).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np

from graft.files import atomic_path
from graft.train.history import HISTORY_KEYS, log_epoch


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the lowest validation loss, in memory (the checkpoint
    saves them). Cheaper than Keras' ModelCheckpoint, which writes the whole model at every
    improvement."""

    def __init__(self):
        super().__init__()
        self.best, self.weights = math.inf, None

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_loss"] < self.best:
            self.best, self.weights = logs["val_loss"], self.model.get_weights()

    def restore(self) -> None:
        """Put the best weights back."""
        if self.weights is not None:
            self.model.set_weights(self.weights)


def seed_states(model: keras.Model) -> list:
    """The state variables of the model's random generators (dropout, augmentation): Keras
    leaves them out of ``get_weights`` and of its checkpoints."""
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


class Checkpoint(keras.callbacks.Callback):
    """The history of the finished epochs, and, with a ``folder``, everything a killed phase needs
    to go on as if it had not been killed: weights, optimizer, random generators, the best weights
    so far, early stopping's state. Put it last among the callbacks: it saves what the others hold
    at the end of each epoch, and sets early stopping's state after that resets itself."""

    def __init__(self, folder: Path | None, *, keeper: BestWeights, stopper=None):
        super().__init__()
        self.folder, self.keeper, self.stopper = folder, keeper, stopper
        self.rows: list[dict[str, float]] = []
        self._stopper_state = None

    def restore(self, trainer: keras.Model) -> int:
        """Load a killed run's state into ``trainer``; return the epochs it had finished (0: none)."""
        if self.folder is None or not (self.folder / "state.json").is_file():
            return 0
        state = json.loads((self.folder / "state.json").read_text())
        with np.load(self.folder / "arrays.npz") as arrays:
            trainer.set_weights(_take(arrays, "weight", state["weights"]))
            if not trainer.optimizer.built:
                trainer.optimizer.build(trainer.trainable_variables)
            for variable, value in zip(trainer.optimizer.variables, _take(arrays, "optimizer", state["optimizer"])):
                variable.assign(value)
            for variable, value in zip(seed_states(trainer), _take(arrays, "seed", state["seeds"])):
                variable.assign(value)
            if state["best_weights"]:
                self.keeper.weights = _take(arrays, "best", state["best_weights"])
        self.keeper.best, self.rows, self._stopper_state = state["best_val_loss"], state["rows"], state["stopper"]
        return state["epoch"]

    def on_train_begin(self, logs=None):
        if self.stopper is not None and self._stopper_state is not None:  # after EarlyStopping reset itself
            self.stopper.wait, self.stopper.best, self.stopper.best_epoch = (
                self._stopper_state["wait"], self._stopper_state["best"], self._stopper_state["best_epoch"])

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch + 1, **{k: float(logs[k]) for k in HISTORY_KEYS if k in logs}})
        if self.folder is None:
            return
        trainer = self.model
        parts = {"weights": ("weight", trainer.get_weights()),
                 "optimizer": ("optimizer", [v.numpy() for v in trainer.optimizer.variables]),
                 "seeds": ("seed", [v.numpy() for v in seed_states(trainer)]),
                 "best_weights": ("best", self.keeper.weights or [])}
        arrays = {f"{prefix}{i}": value for prefix, values in parts.values() for i, value in enumerate(values)}
        stopper = None if self.stopper is None else {"wait": self.stopper.wait, "best": float(self.stopper.best),
                                                     "best_epoch": self.stopper.best_epoch}
        state = {"epoch": epoch + 1, "rows": self.rows, "best_val_loss": self.keeper.best, "stopper": stopper,
                 **{key: len(values) for key, (_, values) in parts.items()}}
        with atomic_path(self.folder, directory=True) as tmp:  # all of it or none of it: one rename
            np.savez(tmp / "arrays.npz", **arrays)
            (tmp / "state.json").write_text(json.dumps(state))


class LiveLog(keras.callbacks.Callback):
    """Logs each finished epoch's loss and accuracy (train and valid) to DVCLive, as floats, the
    values graft's checkpoint keeps (so a resumed phase's files equal the uninterrupted run's)."""

    def __init__(self, live):
        super().__init__()
        self.live = live

    def on_epoch_end(self, epoch, logs=None):
        log_epoch(self.live, logs)

    def on_train_end(self, logs=None):
        self.live.end()


def _take(arrays, prefix: str, count: int) -> list[np.ndarray]:
    return [arrays[f"{prefix}{i}"] for i in range(count)]
