"""Find and read Fashion-MNIST's IDX files, saying where they came from."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graft.errors import DataNotFound

CLASSES = (
    "T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot",
)  # Fashion-MNIST label order; "/" in "T-shirt/top" is not allowed in a folder name.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # package dataset-fashion-mnist
KERAS_CACHE_DIR = Path("~/.keras/datasets/fashion-mnist").expanduser()
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
DOWNLOAD = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"  # where Keras fetches them
SHA256 = {  # of the published files (Debian's package holds the same): a download must match
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
HOW_TO_GET = (
    "Install Debian's package (sudo apt-get install dataset-fashion-mnist), or put the four "
    "*-ubyte.gz files in a folder and set data.fashion_mnist_dir to it in params.yaml."
)


@dataclass(frozen=True)
class FashionMNIST:
    train_images: np.ndarray  # (n, 28, 28) uint8
    train_labels: np.ndarray  # (n,) uint8
    test_images: np.ndarray
    test_labels: np.ndarray
    origin: str  # where the files were read from, for the user and the ingest report


def read_idx(path: Path) -> np.ndarray:
    """Read one gzipped IDX file (images: ndim 3, labels: ndim 1)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataNotFound(f"{path}: not an unsigned-byte IDX file; {HOW_TO_GET}")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    array = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if array.size != int(np.prod(shape)):
        raise DataNotFound(f"{path}: header says {shape} but holds {array.size} bytes; the file is truncated. {HOW_TO_GET}")
    return array.reshape(shape)


def _has_files(folder: Path) -> bool:
    return all((folder / name).is_file() for pair in FILES.values() for name in pair)


def _read_folder(folder: Path, origin: str) -> FashionMNIST:
    arrays = {}
    for split, (images, labels) in FILES.items():
        arrays[f"{split}_images"] = read_idx(folder / images)
        arrays[f"{split}_labels"] = read_idx(folder / labels)
        if len(arrays[f"{split}_images"]) != len(arrays[f"{split}_labels"]):
            raise DataNotFound(f"{folder}: {images} and {labels} hold different numbers of items. {HOW_TO_GET}")
    return FashionMNIST(**arrays, origin=origin)


def load(folder: Path | None = None) -> FashionMNIST:
    """Load Fashion-MNIST from ``folder`` if given, else the Debian package, else the Keras
    cache, else a Keras download. Raises :class:`DataNotFound` with instructions if all fail."""
    if folder is not None:
        folder = Path(folder)
        if not _has_files(folder):
            raise DataNotFound(f"data.fashion_mnist_dir={folder} lacks the Fashion-MNIST files "
                               f"{[n for pair in FILES.values() for n in pair]}. {HOW_TO_GET}")
        return _read_folder(folder, f"folder {folder} (data.fashion_mnist_dir)")
    if _has_files(DEBIAN_DIR):
        return _read_folder(DEBIAN_DIR, f"Debian package dataset-fashion-mnist ({DEBIAN_DIR})")
    if _has_files(KERAS_CACHE_DIR):
        return _read_folder(KERAS_CACHE_DIR, f"Keras dataset cache ({KERAS_CACHE_DIR})")
    try:
        download(KERAS_CACHE_DIR)
    except Exception as err:  # offline, proxy, a wrong digest, disk full: all mean "not available"
        raise DataNotFound(f"Fashion-MNIST is not in {DEBIAN_DIR} or {KERAS_CACHE_DIR}, and the "
                           f"download failed ({err.__class__.__name__}: {err}). {HOW_TO_GET}") from err
    return _read_folder(KERAS_CACHE_DIR, f"download (now cached in {KERAS_CACHE_DIR})")


def download(folder: Path) -> None:
    """The four files from Keras' mirror into ``folder`` (Keras' dataset cache), each checked
    against its sha256 (a file that does not match is deleted and an error raised)."""
    import keras

    for name, digest in SHA256.items():
        keras.utils.get_file(name, origin=DOWNLOAD + name, file_hash=digest, hash_algorithm="sha256",
                             cache_dir=str(folder.parents[1]), cache_subdir=str(folder.relative_to(folder.parents[1])))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file (the inverse of :func:`read_idx`)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())
