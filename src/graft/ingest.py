"""Stage ``ingest``: write the default data as class-per-folder PNGs, or check the user's folder.

Layout written: ``<source>/{train,test}/<class>/<split>-<index>.png`` for the source task and,
when ``data.target`` is ``fashion_mnist``, ``<target>/{train,test}/<class>/...`` for the target
task. ``<index>`` is the image's position in the official IDX file, so every PNG is traceable.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from graft import fashion_mnist
from graft.atomic import atomic_path, write_json
from graft.config import FASHION_MNIST_CLASSES, Params


class TargetFolderError(FileNotFoundError):
    """The user's target folder is missing or has none of the configured classes."""


def write_pngs(*, images: np.ndarray, labels: np.ndarray, split: str, classes: Sequence[str],
               out: Path, per_class: int | None, label: str = "") -> dict[str, int]:
    """Write the images of ``classes`` (names in Fashion-MNIST label order) under ``out/split/``;
    at most ``per_class`` per class, the first ones in file order. Returns counts per class."""
    jobs = []
    counts = {}
    for name in classes:
        indices = np.flatnonzero(labels == FASHION_MNIST_CLASSES.index(name))[:per_class]
        (out / split / name).mkdir(parents=True, exist_ok=True)
        jobs += [(out / split / name / f"{split}-{i:05d}.png", images[i]) for i in indices]
        counts[name] = len(indices)

    def save(job):
        path, pixels = job
        Image.fromarray(pixels, mode="L").save(path, optimize=False)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in tqdm(pool.map(save, jobs), total=len(jobs), desc=f"writing {label or out}/{split}",
                      unit="img", file=sys.stderr, mininterval=1.0, disable=len(jobs) < 500):
            pass
    return counts


def ingest(*, fashion_mnist_dir: Path | None, source_out: Path, source_classes: Sequence[str],
           source_per_class: int | None, source_test_per_class: int | None,
           target: str, target_dir: Path, target_classes: Sequence[str],
           target_train_pool_per_class: int | None, target_test_per_class: int | None) -> dict:
    """Write the source task (and the default target task) as PNG folders; return a report."""
    if target == "folder":
        check_target_folder(target_dir, target_classes)
    data = fashion_mnist.load(fashion_mnist_dir)
    print(f"ingest: Fashion-MNIST from {data.origin}", file=sys.stderr)
    report: dict = {"origin": data.origin, "source": {}, "target": {}}
    outputs = [("source", source_out, source_classes, source_per_class, source_test_per_class)]
    if target == "fashion_mnist":
        outputs.append(("target", target_dir, target_classes, target_train_pool_per_class, target_test_per_class))
    else:
        report["target"] = {"folder": str(target_dir)}
    for key, out, classes, train_cap, test_cap in outputs:
        with atomic_path(out, directory=True) as tmp:
            report[key] = {
                "train": write_pngs(images=data.train_images, labels=data.train_labels, split="train",
                                    classes=classes, out=tmp, per_class=train_cap, label=str(out)),
                "test": write_pngs(images=data.test_images, labels=data.test_labels, split="test",
                                   classes=classes, out=tmp, per_class=test_cap, label=str(out)),
            }
    return report


def check_target_folder(folder: Path, classes: Sequence[str]) -> None:
    """The user's own images: there, and laid out as ``<class>/`` or ``{train,valid,test}/<class>/``."""
    if not folder.is_dir():
        raise TargetFolderError(f"paths.target={folder} does not exist. Put your images there as "
                                f"<class>/<image> folders (classes {list(classes)}), or set data.target: fashion_mnist")
    roots = [folder / s for s in ("train", "valid", "test") if (folder / s).is_dir()] or [folder]
    if not any((root / c).is_dir() for root in roots for c in classes):
        raise TargetFolderError(f"paths.target={folder} has no folder named after any of data.target_classes "
                                f"{list(classes)}; expected {folder}/<class>/<image> or {folder}/train/<class>/<image>")


def run(params: Params) -> None:
    report = ingest(
        fashion_mnist_dir=params.data.fashion_mnist_dir,
        source_out=params.paths.source, source_classes=params.data.source_classes,
        source_per_class=params.data.source_per_class, source_test_per_class=params.data.source_test_per_class,
        target=params.data.target, target_dir=params.paths.target, target_classes=params.data.target_classes,
        target_train_pool_per_class=params.data.target_train_pool_per_class,
        target_test_per_class=params.data.target_test_per_class,
    )
    write_json(params.paths.metrics / "ingest.json", report)
    for key in ("source", "target"):
        if "train" in report[key]:
            print(f"ingest: {key}: {sum(report[key]['train'].values())} train + "
                  f"{sum(report[key]['test'].values())} test images in {len(report[key]['train'])} classes")
