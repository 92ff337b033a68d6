"""A per-image manifest of a class-per-folder dataset: one row a file, whether it decodes or not."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from PIL import Image
from tqdm import tqdm

SPLITS = ("train", "valid", "test")
COLUMNS = ["path", "class", "given_split", "bytes", "decodes", "error", "format", "mode", "width", "height"]


def iter_files(root: Path) -> Iterator[tuple[Path, str, str]]:
    """Yield (file, class folder, given split) for every non-hidden file below ``root``.

    ``root/<class>/<file>``, or ``root/{train,valid,test}/<class>/<file>`` when the data comes
    already split. A file not inside a class folder gets the class ``""``."""
    split_roots = [(root / s, s) for s in SPLITS if (root / s).is_dir()]
    for base, split in split_roots or [(root, "")]:
        for entry in sorted(base.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                for path in sorted(entry.rglob("*")):
                    if path.is_file() and not any(part.startswith(".") for part in path.relative_to(entry).parts):
                        yield path, entry.name, split
            elif entry.is_file():
                yield entry, "", split


def inspect(path: Path) -> dict:
    """Open one file with Pillow and say what it is; never raises for a bad image."""
    row = {"bytes": path.stat().st_size, "decodes": False, "error": "", "format": "", "mode": "",
           "width": 0, "height": 0}
    try:
        with Image.open(path) as img:
            row.update(format=img.format or "", mode=img.mode, width=img.width, height=img.height)
            img.load()
        row["decodes"] = True
    except Exception as err:  # Pillow raises many types for bad files; each is a finding, not a crash
        row["error"] = f"{err.__class__.__name__}: {err}"
    return row


def build(root: str | Path) -> pd.DataFrame:
    root = Path(root)
    files = list(iter_files(root))
    rows = []
    for path, cls, split in tqdm(files, desc=f"inspecting {root}", unit="img", file=sys.stderr,
                                 mininterval=1.0, disable=len(files) < 500):
        rows.append({"path": path.relative_to(root).as_posix(), "class": cls, "given_split": split, **inspect(path)})
    return pd.DataFrame(rows, columns=COLUMNS)
