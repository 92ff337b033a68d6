"""A per-file manifest of a class-per-folder dataset, built in one streaming pass.

One row a file: where it is (relative path, class folder, given split), what it holds (bytes,
sha256, a perceptual hash) and what Pillow made of it (format, mode, size, channels, EXIF
orientation, whether it decodes and why not). The pass runs on every core (a process pool
over chunks of files); a worker holds one decoded image at a time and sends back only rows.

Files are opened safely: only the formats in ``validate.formats`` are decoded (others are
identified from their header, never decoded), Pillow's decompression-bomb limit is set to
``validate.max_pixels`` and its warning is an error, and truncated files are errors
(``ImageFile.LOAD_TRUNCATED_IMAGES`` stays False). Hidden files and folders (a name starting
with ".") are skipped; a symbolic link to a file is followed, one to a folder is not (it is
reported as a bad entry, so a link loop cannot make the walk endless).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from graft.artifacts import SPLITS
from graft.data.decode import Rules, normalize, open_image, special_file
from graft.errors import BadImage
from graft.files import sha256_file

COLUMNS = ["path", "class", "given_split", "bytes", "sha256", "phash", "format", "mode", "width", "height",
           "channels", "orientation", "decodes", "error"]
HASH_SIZE = 16  # the perceptual hash keeps HASH_SIZE x HASH_SIZE low DCT frequencies: 256 bits
_DCT_SIZE = 32
PARALLEL_MIN_FILES = 256  # below this, one process is faster than starting a pool


@dataclass(frozen=True)
class Entry:
    path: str  # absolute
    rel: str  # relative to the root, POSIX
    cls: str  # class folder ("" outside one)
    given_split: str  # train, valid, test or ""
    problem: str = ""  # set when the walk itself found the entry unusable


def walk(root: Path) -> tuple[list[Entry], dict[str, list[str]], int]:
    """Every non-hidden file below ``root``: ``root/<class>/...`` or ``root/{train,valid,test}/<class>/...``.

    Returns the entries (sorted by relative path), the class folders seen in each given split
    ("" for the root) and how many hidden entries were skipped."""
    entries: list[Entry] = []
    folders: dict[str, list[str]] = {}
    hidden = 0
    link_to_folder = "a symbolic link to a folder (not followed)"

    def listing(folder: str) -> list[os.DirEntry]:
        nonlocal hidden
        with os.scandir(folder) as it:
            children = sorted(it, key=lambda e: e.name)
        hidden += sum(1 for c in children if c.name.startswith("."))
        return [c for c in children if not c.name.startswith(".")]

    def file(child: os.DirEntry, rel: str, cls: str, split: str) -> None:
        problem = ""
        if child.is_symlink() and os.path.isdir(child.path):
            problem = link_to_folder
        entries.append(Entry(child.path, rel, cls, split, problem))

    def visit(folder: str, prefix: str, cls: str, split: str) -> None:
        for child in listing(folder):
            if child.is_dir(follow_symlinks=False):
                visit(child.path, f"{prefix}{child.name}/", cls, split)
            else:
                file(child, prefix + child.name, cls, split)

    for entry in listing(str(root)):
        if entry.is_dir(follow_symlinks=False) and entry.name in SPLITS:
            for child in listing(entry.path):
                if child.is_dir(follow_symlinks=False):
                    folders.setdefault(entry.name, []).append(child.name)
                    visit(child.path, f"{entry.name}/{child.name}/", child.name, entry.name)
                else:
                    file(child, f"{entry.name}/{child.name}", "", entry.name)
        elif entry.is_dir(follow_symlinks=False):
            folders.setdefault("", []).append(entry.name)
            visit(entry.path, f"{entry.name}/", entry.name, "")
        else:
            file(entry, entry.name, "", "")
    entries.sort(key=lambda e: e.rel)
    return entries, folders, hidden


def _dct_matrix(n: int = _DCT_SIZE) -> np.ndarray:
    k = np.arange(n)
    d = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    d[0] /= np.sqrt(2.0)
    return d.astype(np.float32)


_DCT = _dct_matrix()[:HASH_SIZE]


def perceptual_hashes(thumbs: np.ndarray) -> list[str]:
    """pHash of (n, 32, 32) grayscale thumbnails: the 16x16 lowest DCT frequencies, each bit
    "above the image's median coefficient", as 64 hex digits (256 bits)."""
    if len(thumbs) == 0:
        return []
    coefficients = (_DCT @ thumbs.astype(np.float32) @ _DCT.T).reshape(len(thumbs), -1)
    median = np.median(coefficients[:, 1:], axis=1, keepdims=True)  # the DC term says only "how bright"
    return [row.tobytes().hex() for row in np.packbits(coefficients > median, axis=1)]


def _unread(error: str) -> dict:
    """The fields of a file nothing could be read from (yet)."""
    return {"bytes": 0, "sha256": "", "format": "", "mode": "", "width": 0, "height": 0, "channels": 0,
            "orientation": 0, "decodes": False, "error": error}


def inspect(path: str, rules: Rules) -> tuple[dict, np.ndarray | None]:
    """One file -> (manifest fields without path/class, 32x32 grayscale thumbnail or None). Never
    raises: what is wrong with a file is a finding. It is read twice, a chunk at a time to hash it
    (memory bounded by the chunk) and then by the one safe decoder (graft.data.decode)."""
    row = _unread("")
    if (problem := special_file(path)) is not None:
        row["error"] = problem
        return row, None
    try:
        row["bytes"], row["sha256"] = os.path.getsize(path), sha256_file(path)
        with open_image(path, rules) as img:
            row.update(format=img.format or "", mode=img.mode, width=img.width, height=img.height,
                       channels=len(img.getbands()), orientation=int(img.getexif().get(0x0112, 1) or 1))
            thumb = normalize(img, channels=1).resize((_DCT_SIZE, _DCT_SIZE), Image.Resampling.BILINEAR)
            pixels = np.asarray(thumb, dtype=np.uint8)
    except OSError as err:
        row["error"] = f"cannot read: {err.strerror or err}"
        return row, None
    except BadImage as err:
        row["error"] = str(err).removeprefix(f"{path}: ")
        if not row["format"]:  # what Pillow saw of the header, for the manifest
            row.update(_header(path))
        return row, None
    row["decodes"] = True
    return row, pixels


def _header(path: str) -> dict:
    """Format, mode, size and channels from the header alone, for a file that was not decoded."""
    try:
        with Image.open(path) as img:  # identify only: nothing is decoded
            return {"format": img.format or "", "mode": img.mode, "width": img.width, "height": img.height,
                    "channels": len(img.getbands())}
    except Exception:  # nothing Pillow recognises: the error already says so
        return {}


def inspect_chunk(chunk: Sequence[Entry], rules: Rules) -> list[tuple]:
    """Rows for a chunk of entries, perceptual hashes computed for the chunk at once."""
    rows, thumbs, where = [], [], []
    for entry in chunk:
        if entry.problem:
            fields, pixels = _unread(entry.problem), None
        else:
            fields, pixels = inspect(entry.path, rules)
        rows.append({"path": entry.rel, "class": entry.cls, "given_split": entry.given_split, "phash": "", **fields})
        if pixels is not None:
            thumbs.append(pixels)
            where.append(len(rows) - 1)
    for index, value in zip(where, perceptual_hashes(np.stack(thumbs) if thumbs else np.empty((0, 32, 32)))):
        rows[index]["phash"] = value
    return [tuple(row[c] for c in COLUMNS) for row in rows]  # tuples: half the pickling of dicts


def _chunks(items: Sequence[Entry], size: int) -> Iterator[Sequence[Entry]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def scan(root: str | Path, *, rules: Rules, workers: int) -> tuple[pd.DataFrame, dict[str, list[str]], int]:
    """The manifest of ``root`` (one row a file, sorted by path), the class folders per given split
    and the number of hidden entries skipped. ``workers``: processes (0: every core)."""
    from tqdm import tqdm

    root = Path(root)
    entries, folders, hidden = walk(root)
    workers = workers or os.cpu_count() or 1
    size = max(64, min(1000, len(entries) // (workers * 8) + 1))
    rows: list[tuple] = []
    bar = tqdm(total=len(entries), desc=f"inspecting {root}", unit="img", file=sys.stderr, mininterval=1.0,
               disable=len(entries) < 2000)
    if workers > 1 and len(entries) >= PARALLEL_MIN_FILES:
        # fork: workers start in milliseconds and inherit the imported modules; they touch only Pillow and NumPy
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for chunk_rows in pool.map(inspect_chunk, _chunks(entries, size), [rules] * (len(entries) // size + 1)):
                rows += chunk_rows
                bar.update(len(chunk_rows))
    else:
        for chunk in _chunks(entries, size):
            rows += inspect_chunk(chunk, rules)
            bar.update(len(chunk))
    bar.close()
    table = pd.DataFrame.from_records(rows, columns=COLUMNS)
    table = table.astype({"bytes": "int64", "width": "int64", "height": "int64", "channels": "int64",
                          "orientation": "int64", "decodes": bool})
    return table, folders, hidden


def build(root: str | Path, *, rules: Rules, workers: int) -> pd.DataFrame:
    """The manifest of ``root`` alone (see :func:`scan`)."""
    return scan(root, rules=rules, workers=workers)[0]


def read(path: str | Path) -> pd.DataFrame:
    """A manifest CSV written by ``validate`` back into the types :func:`build` gives."""
    table = pd.read_csv(path, keep_default_na=False, dtype=str)
    for column in ("bytes", "width", "height", "channels", "orientation"):
        if column in table:
            table[column] = table[column].astype("int64")
    table["decodes"] = table["decodes"] == "True"
    return table
