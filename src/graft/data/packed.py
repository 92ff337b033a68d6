"""A labelled image set as one NumPy archive per split: ``<folder>/{train,test}.npz``, the form
ingest writes the default source task in (48,000 training and 8,000 test images).

Why not class folders of PNGs, as for the target: DVC lists every file of a folder each time a
stage names it (about 30 µs a file, docs/benchmarks.md "A no-op"), and the source task's 56,000
PNGs made up most of a no-op ``dvc repro``. The target stays in class folders, the layout users
bring and look at. A user's own source task may still be class folders (graft.train.pretrain
reads either).

Each archive holds ``images`` (uint8, n x height x width, or x channels), ``labels`` (int32,
indices into ``classes``), ``classes`` (the class names) and ``index`` (each image's position in
the file it came from, e.g. the official IDX file, so every image stays traceable). Rows are in
class then index order, the order graft.data.load reads class folders in, so both forms give
the same arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from graft.data.decode import conform
from graft.data.load import Images
from graft.errors import MissingInput

SUFFIX = ".npz"


def archive(folder: Path, split: str) -> Path:
    """Where ``split``'s archive of ``folder`` is (it may not exist)."""
    return Path(folder) / f"{split}{SUFFIX}"


def write(path: Path, *, images: np.ndarray, labels: np.ndarray, index: np.ndarray, classes: Sequence[str]) -> None:
    """One archive at ``path``; ``labels`` index ``classes``. Rows are stored in class then
    ``index`` order (see the module docstring), uncompressed: reading it is one copy."""
    order = np.lexsort((index, labels))
    np.savez(path, images=np.asarray(images, np.uint8)[order], labels=np.asarray(labels, np.int32)[order],
             index=np.asarray(index, np.int64)[order], classes=np.array(list(classes), dtype=str))


def read(path: Path, *, classes: Sequence[str], height: int, width: int, channels: int) -> Images:
    """The images of ``classes`` (labels are positions in ``classes``), in class then index order,
    in the model's input contract (graft.data.decode.conform when the size or channels differ)."""
    with np.load(path, allow_pickle=False) as f:
        images, labels, index, stored = f["images"], f["labels"], f["index"], [str(c) for c in f["classes"]]
    missing = [c for c in classes if c not in stored]
    if missing:
        raise MissingInput(f"{path}: no class {missing} (it has {stored}); list only these in data.source_classes, "
                           "or run ingest again (dvc repro ingest) so it writes them")
    rows = [np.flatnonzero(labels == stored.index(c)) for c in classes]
    keep = np.concatenate([np.zeros(0, np.int64), *rows])
    x = images[keep].reshape(len(keep), *images.shape[1:3], -1)  # n x h x w -> n x h x w x 1
    if x.shape[1:] != (height, width, channels):  # Pillow reads h x w as L, h x w x 3 as RGB
        x = np.array([conform(Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img), height=height,
                              width=width, channels=channels) for img in x], np.uint8).reshape(-1, height, width, channels)
    y = np.repeat(np.arange(len(classes), dtype=np.int32), [len(r) for r in rows])
    return Images(x=x, y=y, paths=tuple(Path(f"{path}#{i}") for i in index[keep]), classes=tuple(classes))
