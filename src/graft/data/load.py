"""Read image folders, and the split's train/ valid/ test/ folders, into arrays in the model's
input contract."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graft import artifacts
from graft.artifacts import SPLITS
from graft.data.decode import Rules, decode, is_image_candidate
from graft.errors import BadImage, MissingInput, listing


@dataclass(frozen=True)
class Images:
    x: np.ndarray  # uint8 (n, h, w, c)
    y: np.ndarray  # int32 class indices
    paths: tuple[Path, ...]
    classes: tuple[str, ...]


def load_folder(folder: str | Path, *, classes: Sequence[str], height: int, width: int, channels: int, rules: Rules,
                progress: bool = True) -> Images:
    """Load ``folder/<class>/*`` for the given classes, in class then file-name order."""
    folder = Path(folder)
    files: list[tuple[Path, int]] = []
    for index, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            raise MissingInput(f"{class_dir}: missing; expected one folder per class {list(classes)}")
        files += [(p, index) for p in sorted(class_dir.iterdir()) if is_image_candidate(p)]
    x = decode_all([p for p, _ in files], height=height, width=width, channels=channels, rules=rules,
                   label=f"reading {folder}", progress=progress)
    y = np.array([label for _, label in files], dtype=np.int32)
    return Images(x=x, y=y, paths=tuple(p for p, _ in files), classes=tuple(classes))


def decode_all(files: Sequence[Path], *, height: int, width: int, channels: int, rules: Rules, label: str,
               progress: bool = True) -> np.ndarray:
    """Every file decoded (graft.data.decode) into one uint8 array, or one :class:`BadImage` that
    names the files that could not be (graft.errors.listing)."""
    from tqdm import tqdm

    x = np.empty((len(files), height, width, channels), dtype=np.uint8)
    bad = []
    bar = tqdm(files, desc=label, unit="img", disable=not progress or len(files) < 500, file=sys.stderr,
               mininterval=1.0)
    for i, path in enumerate(bar):
        try:
            x[i] = decode(path, height=height, width=width, channels=channels, rules=rules)
        except BadImage as err:
            bad.append(str(err))
    if bad:
        raise BadImage(f"{len(bad)} of {len(files)} files ({label.removeprefix('reading ')}) cannot be read; remove or "
                       "replace them:\n" + listing(bad))
    return x


def load_split(params, name: str, *, progress: bool = True) -> Images:
    """The split stage's ``name`` folder (train, valid or test) as arrays."""
    return load_folder(artifacts.SPLIT.path(params.paths) / name, classes=params.data.target_classes,
                       **decode_args(params), progress=progress)


def decode_args(params) -> dict:
    """The keywords of graft.data.decode.decode for these params: the model's input size and the
    data gate's rules (``image`` and ``validate``)."""
    image = params.image
    return {"height": image.height, "width": image.width, "channels": image.channels,
            "rules": Rules.of(params.validate)}


def split_counts(split_csv: Path) -> dict[str, dict[str, int]]:
    """Images per split and class, from split.csv ({} before the split stage ran)."""
    if not Path(split_csv).is_file():
        return {}
    table = pd.read_csv(split_csv, keep_default_na=False)
    table = table[table["split"].isin(SPLITS)]  # not "" (unused) nor "excluded"
    return {s: {c: int(n) for c, n in g.groupby("class").size().items()} for s, g in table.groupby("split")}
