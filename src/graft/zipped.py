"""``.keras`` files whose bytes follow the model alone.

Keras dates the weights' zip entry by the clock, writes the time into metadata.json, and its
config.json numbers shared objects by their memory address (``shared_object_id``), so a stage
that re-runs with the same result (a forced run, a killed one redone, the same seed) would
write a new file hash, and DVC would re-run every stage after it. Dated ZIP_EPOCH, with shared
objects numbered in order of appearance, the same model is the same bytes, and DVC stops at the
first unchanged output. (NumPy's ``np.savez`` needs none of this: its entries are dated ZIP_EPOCH.)
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

from graft.files import CHUNK

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold (reproducible builds use it)
KERAS_METADATA, KERAS_CONFIG = "metadata.json", "config.json"
SHARED_ID = "shared_object_id"  # Keras' key for an object used in several places of the config (its id())


def _entry(name: str, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, ZIP_EPOCH)
    info.compress_type = compress_type
    info.external_attr = 0o644 << 16
    return info


def _renumber_shared(config, numbers: dict) -> object:
    """``config`` with each shared object's id replaced by its order of first appearance: the same
    objects are shared as before (equal ids stay equal, different ones different)."""
    if isinstance(config, dict):
        return {k: numbers.setdefault(v, len(numbers)) if k == SHARED_ID else _renumber_shared(v, numbers)
                for k, v in config.items()}
    if isinstance(config, list):
        return [_renumber_shared(v, numbers) for v in config]
    return config


def restamp_keras(path: Path) -> None:
    """Rewrite the ``.keras`` file at ``path`` in place with every entry dated ZIP_EPOCH,
    metadata.json's ``date_saved`` at that date too (Keras reads it only to show it) and
    config.json's shared objects numbered in order."""
    staged = path.with_name(path.name + ".restamp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(staged, "w", allowZip64=True) as out:
        for info in src.infolist():
            entry = _entry(info.filename, info.compress_type)
            if info.filename == KERAS_METADATA:
                metadata = json.loads(src.read(info))
                metadata["date_saved"] = "1980-01-01@00:00:00"
                out.writestr(entry, json.dumps(metadata))
                continue
            if info.filename == KERAS_CONFIG:
                out.writestr(entry, json.dumps(_renumber_shared(json.loads(src.read(info)), {})))
                continue
            with src.open(info) as data, out.open(entry, "w", force_zip64=True) as target:
                shutil.copyfileobj(data, target, CHUNK)
    os.replace(staged, path)
