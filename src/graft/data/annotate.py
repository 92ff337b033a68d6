"""The columns the data gate checks, derived from the manifest (pure): duplicate groups, copies
and near-duplicates across classes and given folders, what is quarantined, and one row a class."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from graft.data import duplicates

POOL = {"": "pool", "train": "pool", "valid": "valid", "test": "test"}  # what a given folder becomes
KEEP_ORDER = {"pool": 0, "valid": 1, "test": 2}  # of two near-duplicates across folders, the higher one is kept


@dataclass(frozen=True, kw_only=True)
class Checks:
    """What the data gate checks: the configured classes, the model's channels and the
    ``validate`` params section (``settings``)."""
    classes: tuple[str, ...]
    channels: int
    settings: object  # graft.config.sections.Validate

    @classmethod
    def of(cls, params) -> Checks:
        return cls(classes=tuple(params.data.target_classes), channels=params.image.channels, settings=params.validate)


def _others(table: pd.DataFrame, keys: pd.Series, differs: str) -> list[str | None]:
    """For each row, the paths of the rows with the same key and a different ``differs`` value."""
    out: list[str | None] = [None] * len(table)
    shared = keys.duplicated(keep=False).to_numpy()
    if not shared.any():
        return out
    positions = np.flatnonzero(shared)
    sub = pd.DataFrame({"key": keys.to_numpy()[positions], "value": table[differs].to_numpy()[positions],
                        "path": table["path"].to_numpy()[positions], "at": positions})
    for _, members in sub.groupby("key"):
        for at, value in zip(members["at"], members["value"]):
            hits = members.loc[members["value"] != value, "path"].tolist()
            if hits:
                out[at] = "; ".join(hits)
    return out


def annotate(table: pd.DataFrame, checks: Checks) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add the derived columns the suites check (pure). Returns (all files, usable images).

    Columns added to every row: ``group`` (duplicate group: the smallest sha256 among exact and
    near-duplicates), ``quarantine`` (why the file is set aside, or ""). The images frame has
    the decodable files of configured classes and the cross-file findings."""
    table = table.copy()
    table["set"] = table["given_split"].map(POOL).fillna("pool")
    table["quarantine"] = ""
    images = table[table["decodes"] & table["class"].isin(checks.classes)].copy()
    images["aspect"] = images[["width", "height"]].max(axis=1) / images[["width", "height"]].min(axis=1).clip(lower=1)
    sha = images["sha256"]
    images["same_image_in_other_class"] = _others(images, sha, "class")
    images["copy_in_other_split"] = _others(images, sha, "set")
    hashes = images["phash"].tolist()
    pairs = duplicates.near_pairs(hashes, distance) if (distance := checks.settings.near_duplicate_distance) >= 0 else []
    near_class: list[list[str]] = [[] for _ in hashes]
    near_split: list[list[str]] = [[] for _ in hashes]
    drop: dict[int, str] = {}
    paths, classes, sets, shas = (images[c].tolist() for c in ("path", "class", "set", "sha256"))
    for i, j in pairs:
        if shas[i] == shas[j]:
            continue  # exact copies: checked by sha256 above
        bits = duplicates.hamming(hashes[i], hashes[j])
        if classes[i] != classes[j]:
            near_class[i].append(f"{paths[j]} ({bits} bits apart)")
            near_class[j].append(f"{paths[i]} ({bits} bits apart)")
        if sets[i] != sets[j]:
            near_split[i].append(f"{paths[j]} ({bits} bits apart)")
            near_split[j].append(f"{paths[i]} ({bits} bits apart)")
            low, high = (i, j) if KEEP_ORDER[sets[i]] < KEEP_ORDER[sets[j]] else (j, i)
            drop[low] = f"near-duplicate of {paths[high]} in the given {sets[high]} folder ({bits} bits apart)"
    images["near_duplicate_in_other_class"] = ["; ".join(x) or None for x in near_class]
    images["near_duplicate_in_other_split"] = ["; ".join(x) or None for x in near_split]
    table["group"] = ""
    table.loc[images.index, "group"] = duplicates.groups(shas, pairs)
    # quarantine: what the run sets aside instead of failing
    if checks.settings.on_bad_file == "quarantine":
        bad = ~table["decodes"]
        table.loc[bad, "quarantine"] = table.loc[bad, "error"]
        small = images.index[(images["width"] < checks.settings.min_size) | (images["height"] < checks.settings.min_size)]
        table.loc[small, "quarantine"] = f"smaller than validate.min_size ({checks.settings.min_size} pixels)"
    if checks.settings.near_duplicate_leak == "quarantine":
        for position, reason in drop.items():
            index = images.index[position]
            if not table.at[index, "quarantine"]:
                table.at[index, "quarantine"] = reason
    images["quarantine"] = table.loc[images.index, "quarantine"]
    return table, images.reset_index(drop=True)


def class_table(table: pd.DataFrame, folders: dict[str, list[str]], checks: Checks) -> pd.DataFrame:
    """One row a configured class or class folder: usable images (not quarantined) and the imbalance."""
    usable = table[table["decodes"] & (table["quarantine"] == "")]
    counts = usable.groupby("class").size()
    seen = {name for names in folders.values() for name in names}
    rows = [{"class": c, "configured": True, "has_folder": c in seen, "images": int(counts.get(c, 0))}
            for c in checks.classes]
    files = table.groupby("class").size()
    rows += [{"class": c, "configured": False, "has_folder": True, "images": None, "files": int(files.get(c, 0))}
             for c in sorted(seen - set(checks.classes))]
    frame = pd.DataFrame(rows, columns=["class", "configured", "has_folder", "images", "files"])
    largest = max([r["images"] for r in rows if r["configured"]] or [0])
    frame["imbalance"] = [largest / max(n, 1) if c else None for c, n in zip(frame["configured"], frame["images"])]
    frame[["images", "files"]] = frame[["images", "files"]].astype("Int64")
    frame["imbalance"] = frame["imbalance"].astype("Float64")
    return frame
