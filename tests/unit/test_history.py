"""Unit: a phase's DVCLive folder, written as graft writes it, and read back by the one reader."""

from __future__ import annotations

import json

from graft.train.history import open_live, read, write_empty

HEAD = [{"loss": 0.9, "accuracy": 0.5, "val_loss": 0.8, "val_accuracy": 0.55},
        {"loss": 0.7, "accuracy": 0.6, "val_loss": 0.75, "val_accuracy": 0.6}]


def test_rows_come_back_per_epoch_counted_on_across_phases(tmp_path):
    head, fine, empty = tmp_path / "head", tmp_path / "finetune", tmp_path / "skipped"
    open_live(head, HEAD).end()
    live = open_live(fine, HEAD[:1])  # a resumed phase: the checkpoint's epoch first, then the next one
    live.log_metric("train/loss", 0.5)
    live.log_metric("eval/loss", 0.6)
    live.next_step()
    live.end()
    write_empty(empty)
    assert json.loads((head / "metrics.json").read_text()) == {"train": {"loss": 0.7, "accuracy": 0.6},
                                                               "eval": {"loss": 0.75, "accuracy": 0.6}, "step": 1}
    assert read(head) == [{"phase": "head", "epoch": 1, "step": 0, **HEAD[0]},
                          {"phase": "head", "epoch": 2, "step": 1, **HEAD[1]}]
    rows = read([head, empty, fine])
    assert [(r["phase"], r["epoch"], r["step"]) for r in rows] == [("head", 1, 0), ("head", 2, 1), ("finetune", 3, 0),
                                                                   ("finetune", 4, 1)]
    assert rows[-1] == {"phase": "finetune", "epoch": 4, "step": 1, "loss": 0.5, "val_loss": 0.6}
    assert read([head, fine], "finetune") == rows[2:]
    assert read(empty) == [] and (empty / "plots" / "metrics").is_dir()  # a declared plot, even with no epoch
    assert not list(tmp_path.rglob("dvc.yaml"))  # dvc.yaml declares the files: DVCLive writes none
