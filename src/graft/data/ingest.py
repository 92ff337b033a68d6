"""Write the default data, or check the user's folder (stage ``ingest``).

Layout written: the source task as ``<source>/{train,test}.npz`` (graft.data.packed: one file
per split, which DVC checks in a moment) and, when ``data.target`` is ``fashion_mnist``, the
target task as class folders of PNGs, the layout of a user's own folder:
``<target>/{train,test}/<class>/<split>-<index>.png``. ``<index>`` is the image's position in the
official IDX file (in the archives, their ``index``), so every image is traceable.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from graft.data import fashion_mnist, packed
from graft.errors import TargetFolderError
from graft.files import atomic_path
from graft.records import IngestRecord


def pick(labels: np.ndarray, classes: Sequence[str], per_class: int | None) -> list[np.ndarray]:
    """Per class (names in Fashion-MNIST label order), the positions of its first ``per_class``
    images in file order (all of them for None)."""
    return [np.flatnonzero(labels == fashion_mnist.CLASSES.index(name))[:per_class] for name in classes]


def write_pngs(*, images: np.ndarray, labels: np.ndarray, split: str, classes: Sequence[str],
               out: Path, per_class: int | None, label: str = "") -> dict[str, int]:
    """Write the images of ``classes`` (names in Fashion-MNIST label order) under ``out/split/``;
    at most ``per_class`` per class, the first ones in file order. Returns counts per class."""
    jobs = []
    picked = pick(labels, classes, per_class)
    for name, indices in zip(classes, picked, strict=True):
        (out / split / name).mkdir(parents=True, exist_ok=True)
        jobs += [(out / split / name / f"{split}-{i:05d}.png", images[i]) for i in indices]

    def save(job):
        path, pixels = job
        Image.fromarray(pixels, mode="L").save(path, optimize=False)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in tqdm(pool.map(save, jobs), total=len(jobs), desc=f"writing {label or out}/{split}",
                      unit="img", file=sys.stderr, mininterval=1.0, disable=len(jobs) < 500):
            pass
    return {name: len(indices) for name, indices in zip(classes, picked, strict=True)}


def write_packed(*, images: np.ndarray, labels: np.ndarray, split: str, classes: Sequence[str], out: Path,
                 per_class: int | None) -> dict[str, int]:
    """As :func:`write_pngs`, into one archive ``out/<split>.npz`` (graft.data.packed)."""
    picked = pick(labels, classes, per_class)
    rows = np.concatenate([np.zeros(0, np.int64), *picked])  # no classes: an empty archive
    packed.write(packed.archive(out, split), images=images[rows], index=rows, classes=classes,
                 labels=np.concatenate([np.zeros(0, np.int32), *(np.full(len(r), i) for i, r in enumerate(picked))]))
    return {name: len(r) for name, r in zip(classes, picked, strict=True)}


def ingest(*, data, source_out: Path, target_dir: Path) -> IngestRecord:
    """Write the source task (and, for ``data.target: fashion_mnist``, the default target task),
    from the ``data`` params section; return what was written."""
    if data.target == "folder":
        check_target_folder(target_dir, data.target_classes)
    images = fashion_mnist.load(data.fashion_mnist_dir)
    print(f"ingest: Fashion-MNIST from {images.origin}", file=sys.stderr)
    written: dict = {"source": {}, "target": {"folder": str(target_dir)}}
    outputs = [("source", source_out, data.source_classes, data.source_per_class, data.source_test_per_class)]
    if data.target == "fashion_mnist":
        outputs.append(("target", target_dir, data.target_classes, data.target_train_pool_per_class,
                        data.target_test_per_class))
    for key, out, classes, train_cap, test_cap in outputs:
        with atomic_path(out, directory=True) as tmp:
            write = write_packed if key == "source" else partial(write_pngs, label=str(out))
            written[key] = {
                "train": write(images=images.train_images, labels=images.train_labels, split="train",
                               classes=classes, out=tmp, per_class=train_cap),
                "test": write(images=images.test_images, labels=images.test_labels, split="test",
                              classes=classes, out=tmp, per_class=test_cap),
            }
    return IngestRecord(origin=images.origin, **written)


def check_target_folder(folder: Path, classes: Sequence[str]) -> None:
    """The user's own images: there, and laid out as ``<class>/`` or ``{train,valid,test}/<class>/``."""
    if not folder.is_dir():
        raise TargetFolderError(f"paths.target={folder} does not exist. Put your images there as "
                                f"<class>/<image> folders (classes {list(classes)}), or set data.target: fashion_mnist")
    roots = [folder / s for s in ("train", "valid", "test") if (folder / s).is_dir()] or [folder]
    if not any((root / c).is_dir() for root in roots for c in classes):
        raise TargetFolderError(f"paths.target={folder} has no folder named after any of data.target_classes "
                                f"{list(classes)}; expected {folder}/<class>/<image> or {folder}/train/<class>/<image>")

