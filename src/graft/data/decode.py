"""Opening and decoding image files safely, the one way graft does it everywhere: the data gate's
manifest, training, the autoencoder's unlabelled folder, export's checks and ``graft predict``.

A file is opened only when it is a regular file (a FIFO, socket or device would block or never
end), only in an allowed Pillow format (others are identified from their header, never
decoded), only up to a pixel limit (a decompression bomb is an error, never decoded), and never
truncated (``ImageFile.LOAD_TRUNCATED_IMAGES`` stays False). Then :func:`normalize` makes it
upright grayscale or RGB, and :func:`decode` resizes it to the model's input contract (uint8
NHWC). Imports only NumPy and Pillow: the consumer's ``graft.predict`` uses it without TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from graft.errors import BadImage

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


@dataclass(frozen=True, kw_only=True)
class Rules:
    """How files are opened: ``validate.formats`` and ``validate.max_pixels`` (a model records
    the rules it was trained under in its metadata, for ``graft predict``)."""
    formats: tuple[str, ...]
    max_pixels: int

    @classmethod
    def of(cls, validate) -> Rules:
        """The rules of the ``validate`` params section."""
        return cls(formats=tuple(validate.formats), max_pixels=validate.max_pixels)


def is_image_candidate(path: Path) -> bool:
    """A file graft reads as an image: an image suffix and not hidden. Whether it is a regular file
    is checked when it is opened (:func:`special_file`), so a FIFO is named, not skipped."""
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES and not path.is_dir()


def special_file(path: str | Path) -> str | None:
    """Why ``path`` is not a regular file graft may read (a FIFO, socket or device blocks or never
    ends; a link loop or dangling link cannot be read), else None."""
    try:
        mode = os.stat(path).st_mode  # follows a symbolic link
    except OSError as err:
        return f"cannot read: {err.strerror or err}"
    if stat.S_ISREG(mode):
        return None
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a folder" if stat.S_ISDIR(mode)
            else "not a regular file")
    return f"{kind}, not a regular file; graft reads regular files only"


def friendly(err: Exception, rules: Rules) -> str:
    """What went wrong opening an image, in words, for a message or the manifest."""
    if isinstance(err, BadImage):
        return str(err)
    if isinstance(err, UnidentifiedImageError):
        return "not an image Pillow can identify (garbage, or not an image file at all)"
    if isinstance(err, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"decompression bomb: {err} (validate.max_pixels: {rules.max_pixels}); not decoded"
    message = str(err).replace("<_io.BytesIO object at ", "<").strip()
    if "truncated" in message.lower():
        return f"truncated image data: {message}"
    return f"{err.__class__.__name__}: {message}"


@contextlib.contextmanager
def open_image(path: str | Path, rules: Rules) -> Iterator[Image.Image]:
    """The loaded image at ``path``, or :class:`BadImage` saying why not (see the module docstring)."""
    if (problem := special_file(path)) is not None:
        raise BadImage(f"{path}: {problem}")
    if os.path.getsize(path) == 0:
        raise BadImage(f"{path}: empty file (0 bytes)")
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = rules.max_pixels  # Pillow raises at twice this; the check below is exact
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.format not in rules.formats:
                    raise BadImage(f"{img.format or 'unknown'} images are not allowed "
                                   f"(validate.formats: {', '.join(rules.formats)}); not decoded")
                if img.width * img.height > rules.max_pixels:
                    raise BadImage(f"decompression bomb: {img.width}x{img.height} = {img.width * img.height} pixels, "
                                   f"over validate.max_pixels ({rules.max_pixels}); not decoded")
                img.load()
                yield img
    except BadImage:
        raise
    except Exception as err:  # Pillow raises many types for bad files: each is the file's fault, said in words
        raise BadImage(friendly(err, rules)) from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous


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


def decode(path: str | Path, *, height: int, width: int, channels: int, rules: Rules) -> np.ndarray:
    """One file -> uint8 array (height, width, channels): opened under ``rules``, :func:`normalize`d,
    then resized bilinearly when the size differs. :class:`BadImage` names the file and why."""
    try:
        with open_image(path, rules) as img:
            return conform(img, height=height, width=width, channels=channels)
    except BadImage as err:
        message = str(err)
        raise BadImage(message if message.startswith(str(path)) else f"{path}: {message}") from None


def conform(img: Image.Image, *, height: int, width: int, channels: int) -> np.ndarray:
    """A loaded image -> the model's input contract, uint8 (height, width, channels): :func:`normalize`d,
    then resized bilinearly when the size differs (files through :func:`decode`, arrays through
    graft.data.packed)."""
    img = normalize(img, channels=channels)
    if img.size != (width, height):
        img = img.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(img, dtype=np.uint8)
    return array[..., None] if channels == 1 else array
