"""Decode image files into the model's input contract (uint8 NHWC at the configured size).

Training, evaluation, export checks and ``graft predict`` all go through :func:`decode`, so
an image is turned into pixels the same way everywhere. Imports only NumPy and Pillow (the
consumer's ``graft.predict`` uses it without TensorFlow).
"""

from __future__ import annotations

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
