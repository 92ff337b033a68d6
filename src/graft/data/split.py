"""The ``train/ valid/ test/<class>/`` directories (stage ``split``): stratified, deterministic, stable.

Every usable image (it decodes, its class is configured, it is not quarantined) belongs to a
duplicate group (exact copies and perceptual near-duplicates, from ``validate``). Each group
gets ``u = hash(seed, group) in [0, 1)``, and within each class ``[0, 1)`` is cut into
intervals, in this order: ``split.test_fraction`` (only when the class has no given
``test/`` folder), ``split.valid_fraction`` (only without a given ``valid/``), then
``split.train_fraction`` (null: the rest); images in a given ``test/`` or ``valid/`` folder
stay there, and images in ``train/`` or in ``<class>/`` at the top are the pool the fractions
divide. So:

- an image's split depends only on its own group's hash and the params, never on the other
  images: adding images never moves an existing image (unless a new image is a duplicate or
  near-duplicate of it, which joins their groups so that they share a split);
- duplicates and near-duplicates always share a split: no test image has a twin in train;
- the optional caps ``split.train_per_class`` / ``split.valid_per_class`` keep the images with
  the lowest ``u`` of an interval and leave the rest unused. With a cap that binds, a new image
  with a lower hash can take an existing image's place, which then becomes unused: it still
  never moves between train, valid and test.

Files are hard-linked from graft's own ingested data, and reflinked or copied from a user's
folder (never linked to it), and ``split.csv`` records every file of the manifest: train, valid, test, "" (usable, unused) or
"excluded" (with the reason).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from graft import artifacts
from graft.artifacts import SPLITS
from graft.data import manifest
from graft.errors import SplitError
from graft.files import atomic_path, clone_or_copy


def order_key(seed: int, path: str) -> str:
    return hashlib.sha256(f"{seed}:{path}".encode()).hexdigest()


def unit(seed: int, group: str) -> float:
    """The group's position in [0, 1): the first 52 bits of sha256(seed:group)."""
    return int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:13], 16) / 16 ** 13


def assign(table: pd.DataFrame, *, classes: Sequence[str], seed: int, test_fraction: float, valid_fraction: float,
           train_fraction: float | None, train_per_class: int | None, valid_per_class: int | None) -> pd.DataFrame:
    """Add ``u`` and ``split`` (train, valid, test, "" unused, "excluded") to a manifest; pure."""
    table = table.copy()
    if "group" not in table:
        table["group"] = table["sha256"]
    if "quarantine" not in table:
        table["quarantine"] = ""
    usable = table["decodes"] & table["class"].isin(classes) & (table["quarantine"] == "")
    table["u"] = [unit(seed, g) if ok else np.nan for g, ok in zip(table["group"], usable)]
    table["split"] = "excluded"
    table["reason"] = np.where(~table["decodes"], "does not decode: " + table["error"].astype(str),
                               np.where(~table["class"].isin(classes), "not a configured class", table["quarantine"]))
    given = table["given_split"]
    for cls in classes:
        rows = usable & (table["class"] == cls)
        given_here = set(given[rows])
        for name in ("test", "valid"):
            table.loc[rows & (given == name), "split"] = name
        pool = rows & ~given.isin(["test", "valid"])
        table.loc[pool, "split"] = ""
        start = 0.0
        for name, fraction in (("test", test_fraction), ("valid", valid_fraction), ("train", train_fraction)):
            if name in given_here and name != "train":
                continue
            stop = 1.0 if fraction is None else start + fraction
            table.loc[pool & (table["u"] >= start) & (table["u"] < stop), "split"] = name
            start = stop
        for name, cap in (("train", train_per_class), ("valid", valid_per_class)):
            chosen = table[rows & (table["split"] == name)]
            if cap is not None and len(chosen) > cap:
                table.loc[chosen.sort_values(["u", "path"]).index[cap:], "split"] = ""
        missing = [name for name in SPLITS if not (rows & (table["split"] == name)).any()]
        if missing:
            raise SplitError(
                f"class {cls!r} gets no {' and no '.join(missing)} image(s): {int(pool.sum())} pool images, "
                f"split.test_fraction={test_fraction}, valid_fraction={valid_fraction}, train_fraction={train_fraction}; "
                "raise the fraction, add images, or give the split as a folder (test/ or valid/)")
    table.loc[table["split"] != "excluded", "reason"] = ""
    return table.sort_values(["split", "class", "path"]).reset_index(drop=True)


def split(*, manifest_csv: Path, data_dir: Path, out_dir: Path, classes: Sequence[str], seed: int,
          test_fraction: float, valid_fraction: float, train_fraction: float | None, train_per_class: int | None,
          valid_per_class: int | None, hard_links: bool) -> pd.DataFrame:
    """Assign every file of the manifest (:func:`assign`) and write ``out_dir``: the split folders
    and split.csv. Returns the table. ``hard_links`` only for graft's own data (ingest's
    ``paths.raw``): a user's images are reflinked or copied, never linked, so that nothing DVC or
    graft does to the split (DVC makes linked files read-only and part of its cache) reaches them."""
    table = assign(manifest.read(manifest_csv), classes=classes, seed=seed, test_fraction=test_fraction,
                   valid_fraction=valid_fraction, train_fraction=train_fraction, train_per_class=train_per_class,
                   valid_per_class=valid_per_class)
    with atomic_path(out_dir, directory=True) as tmp:
        for cls in classes:
            for name in SPLITS:
                (tmp / name / cls).mkdir(parents=True)
        used = table[table["split"].isin(SPLITS)]
        for path, cls, name in zip(used["path"], used["class"], used["split"]):
            dst = tmp / name / cls / Path(path).name
            if dst.exists():  # same file name in two folders of one class (given splits, subfolders)
                dst = dst.with_stem(f"{dst.stem}-{order_key(seed, path)[:8]}")
            if hard_links:
                os.link(data_dir / path, dst)
            else:
                clone_or_copy(data_dir / path, dst)
        columns = ["path", "class", "given_split", "split", "group", "u", "reason"]
        table[columns].to_csv(tmp / artifacts.SPLIT_TABLE.name, index=False)
    return table


