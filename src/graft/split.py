"""Stage ``split``: ``train/ valid/ test/<class>/`` directories, stratified and deterministic.

Each class's images are ordered by a hash of (seed, relative path), which is stable, then cut:
a ``test/`` folder that comes with the data is the test split as given; otherwise the first
``split.test_fraction`` of the order is. Then ``split.train_per_class`` go to train and
``split.valid_per_class`` of the rest to valid (a given ``valid/`` folder is honoured as well).
Files are hard-linked from the validated folder (copied where links are impossible), and
``split.csv`` records where every file went.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from graft.atomic import atomic_path
from graft.config import Params

SPLITS = ("train", "valid", "test")


def order_key(seed: int, path: str) -> str:
    return hashlib.sha256(f"{seed}:{path}".encode()).hexdigest()


def assign(table: pd.DataFrame, *, classes: Sequence[str], seed: int, train_per_class: int | None,
           valid_per_class: int | None, test_fraction: float) -> pd.DataFrame:
    """Add a ``split`` column (train, valid, test or "" for unused) to a manifest. Pure."""
    table = table[table["decodes"] & table["class"].isin(classes)].copy()
    table["key"] = [order_key(seed, p) for p in table["path"]]
    table = table.sort_values(["class", "key"])
    table["split"] = ""
    for cls in classes:
        rows = table[table["class"] == cls]
        given = rows["given_split"]
        test = rows[given == "test"].index
        valid_given = rows[given == "valid"].index
        pool = rows[~given.isin(["test", "valid"])].index
        if len(test) == 0:
            n_test = max(1, round(len(rows) * test_fraction))
            test, pool = pool[:n_test], pool[n_test:]
        train = pool[:train_per_class]
        rest = pool[len(train):]
        valid = valid_given if len(valid_given) else rest[:valid_per_class]
        for name, index in (("train", train), ("valid", valid), ("test", test)):
            table.loc[index, "split"] = name
    return table.drop(columns="key").sort_values(["split", "class", "path"]).reset_index(drop=True)


def link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def split(*, manifest_csv: Path, data_dir: Path, out_dir: Path, classes: Sequence[str], seed: int,
          train_per_class: int | None, valid_per_class: int | None, test_fraction: float) -> pd.DataFrame:
    table = pd.read_csv(manifest_csv, keep_default_na=False, dtype={"path": str, "class": str, "given_split": str})
    table["decodes"] = table["decodes"].astype(str) == "True"
    table = assign(table, classes=classes, seed=seed, train_per_class=train_per_class,
                   valid_per_class=valid_per_class, test_fraction=test_fraction)
    with atomic_path(out_dir, directory=True) as tmp:
        for cls in classes:
            for name in SPLITS:
                (tmp / name / cls).mkdir(parents=True)
        used = table[table["split"] != ""]
        for path, cls, name in zip(used["path"], used["class"], used["split"]):
            dst = tmp / name / cls / Path(path).name
            if dst.exists():  # same file name in a given train/ and valid/ folder of one class
                dst = dst.with_stem(f"{dst.stem}-{order_key(seed, path)[:8]}")
            link_or_copy(data_dir / path, dst)
        table[["path", "class", "given_split", "split"]].to_csv(tmp / "split.csv", index=False)
    return table


def run(params: Params) -> None:
    s = params.split
    table = split(manifest_csv=params.paths.validation / "manifest.csv", data_dir=params.paths.target,
                  out_dir=params.paths.split, classes=params.data.target_classes, seed=params.seed,
                  train_per_class=s.train_per_class, valid_per_class=s.valid_per_class, test_fraction=s.test_fraction)
    counts = table[table["split"] != ""].groupby(["split", "class"]).size().unstack(fill_value=0)
    print(f"split: images per split and class\n{counts.to_string()}")
