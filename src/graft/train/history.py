"""The per-epoch metrics of every training phase, logged through DVCLive, and the one reader of them.

Each phase has its own DVCLive folder (graft.artifacts.live_dir): ``metrics.json`` (the last
epoch's values and its step) and ``plots/metrics/{train,eval}/{loss,accuracy}.tsv`` (one row a
step, step = epoch - 1 within the phase). dvc.yaml declares both as the stage's metrics and plots,
so ``dvc exp show`` sees a running experiment's epochs, ``dvc plots show/diff`` draw them, and
VS Code's DVC extension and Studio need nothing more. Hence ``dvcyaml=False`` (DVCLive writing a
dvc.yaml of its own would be a second pipeline file) and ``save_dvc_exp=False`` (graft never makes
an experiment: ``dvc exp run`` does, and under ``dvc repro`` DVCLive would only warn).

DVCLive's own ``resume=True`` is not used: it continues from the step in ``metrics.json``, but
``dvc repro`` deletes a stage's outputs before it runs the stage again, and a kill can fall between
DVCLive's append of an epoch and graft's checkpoint of it (graft.train.callbacks), so its files
could hold an epoch the resumed run trains again. The checkpoint's rows are the truth: a resumed
phase writes them to a fresh folder first (:func:`open_live`), and its step numbering continues
from the last checkpointed epoch. The reader imports neither Keras nor DVCLive (the callback that
logs each epoch is graft.train.callbacks.LiveLog).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")  # what each phase logs of Keras' logs, per epoch


def metric_name(key: str) -> str:
    """DVCLive's name of a Keras log key (as its Keras callback spells it): ``val_loss`` -> ``eval/loss``."""
    return key.replace("val_", "eval/") if key.startswith("val_") else f"train/{key}"


def open_live(folder: Path, rows: Sequence[dict] = ()):
    """A DVCLive logger writing to ``folder`` (emptied), holding ``rows`` (the checkpoint's
    finished epochs, in order) as steps 0 .. len(rows) - 1; the next epoch it logs is step len(rows)."""
    from dvclive import Live

    live = Live(dir=str(folder), resume=False, dvcyaml=False, save_dvc_exp=False, report=None)
    for row in rows:
        log_epoch(live, row)
    (Path(live.plots_dir) / "metrics").mkdir(parents=True, exist_ok=True)  # a declared plot, even with no epoch
    return live


def write_empty(folder: Path) -> None:
    """The DVCLive folder of a phase that trained nothing (the strategy skipped it): no step."""
    open_live(folder).end()


def log_epoch(live, row: dict) -> None:
    """One finished epoch's values (floats, as graft's checkpoint keeps them), then DVCLive's next step."""
    for key in HISTORY_KEYS:
        if key in row:
            live.log_metric(metric_name(key), float(row[key]))
    live.next_step()


def read(dirs: Path | Sequence[Path], phase: str | None = None) -> list[dict]:
    """The per-epoch rows of the phases' DVCLive folders ``dirs``, in order: ``phase`` (the
    folder's name), ``epoch`` (counted on across the folders, 1-based: fine-tuning's first epoch
    follows the head phase's last), ``step`` (DVCLive's, within the phase) and each logged key of
    loss, accuracy, val_loss, val_accuracy. With ``phase``, only that phase's rows."""
    rows, epochs = [], 0
    for folder in [dirs] if isinstance(dirs, Path) else dirs:
        folder = Path(folder)
        steps: dict[int, dict] = {}
        for key in HISTORY_KEYS:
            table = folder / "plots" / "metrics" / f"{metric_name(key)}.tsv"
            if table.is_file():
                with open(table, newline="") as f:
                    for line in csv.DictReader(f, delimiter="\t"):
                        steps.setdefault(int(line["step"]), {})[key] = float(line[key.removeprefix("val_")])
        for step in sorted(steps):
            rows.append({"phase": folder.name, "epoch": epochs + step + 1, "step": step, **steps[step]})
        epochs += len(steps)
    return [row for row in rows if phase is None or row["phase"] == phase]
