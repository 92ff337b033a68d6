"""Decode image files into the model's input contract (uint8 NHWC at the configured size).

Training, evaluation, export checks and ``graft predict`` all go through :func:`decode`, so
an image is turned into pixels the same way everywhere. Imports only numpy and Pillow.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def is_image_candidate(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def normalize(img: Image.Image, *, channels: int) -> Image.Image:
    """A loaded Pillow image -> mode ``L`` (channels 1) or ``RGB`` (channels 3), upright.

    EXIF orientation is applied; palette, alpha, CMYK and 16-bit images are converted
    (alpha composited on white, 16-bit scaled to 8-bit). The manifest's perceptual hash,
    training and ``graft predict`` all see an image through this one function."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(array / 257.0, 0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("L" if channels == 1 else "RGB")


def decode(path: str | Path, *, height: int, width: int, channels: int) -> np.ndarray:
    """One file -> uint8 array (height, width, channels): :func:`normalize`, then a bilinear
    resize when the size differs."""
    with Image.open(path) as img:
        img.load()
        img = normalize(img, channels=channels)
        if img.size != (width, height):
            img = img.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(img, dtype=np.uint8)
    return array[..., None] if channels == 1 else array


@dataclass(frozen=True)
class Images:
    x: np.ndarray  # uint8 (n, h, w, c)
    y: np.ndarray  # int32 class indices
    paths: tuple[Path, ...]
    classes: tuple[str, ...]


def load_folder(folder: str | Path, *, classes: Sequence[str], height: int, width: int, channels: int,
                progress: bool = True) -> Images:
    """Load ``folder/<class>/*`` for the given classes, in class then file-name order."""
    from tqdm import tqdm

    folder = Path(folder)
    files: list[tuple[Path, int]] = []
    for index, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            raise FileNotFoundError(f"{class_dir}: missing; expected one folder per class {list(classes)}")
        files += [(p, index) for p in sorted(class_dir.iterdir()) if is_image_candidate(p)]
    x = np.empty((len(files), height, width, channels), dtype=np.uint8)
    bar = tqdm(files, desc=f"reading {folder}", unit="img", disable=not progress or len(files) < 500,
               file=sys.stderr, mininterval=1.0)
    for i, (path, _) in enumerate(bar):
        x[i] = decode(path, height=height, width=width, channels=channels)
    y = np.array([label for _, label in files], dtype=np.int32)
    return Images(x=x, y=y, paths=tuple(p for p, _ in files), classes=tuple(classes))
