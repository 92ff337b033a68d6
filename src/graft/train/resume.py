"""Where a killed training phase keeps its state, keyed by what the phase depends on, so that the
next run resumes it (and a run with other inputs never does)."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from graft.files import update_sha256


def fingerprint(*parts) -> str:
    """A short key of what a phase depends on: files and arrays by content, params sections and values as JSON."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            update_sha256(digest, part)
        elif isinstance(part, np.ndarray):
            digest.update(f"{part.dtype.str}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).data)
        else:
            value = part.model_dump(mode="json") if isinstance(part, BaseModel) else part
            digest.update(json.dumps(value, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def backup_dir(root: Path, phase: str, *parts) -> Path:
    """``root/phase/<key>``: a run with other inputs, or other code, never resumes from this one's
    state (the key covers ``parts`` and every file of the graft package)."""
    return root / phase / fingerprint(*parts, code_digest())


@functools.cache
def code_digest() -> str:
    from graft.provenance import tree_digest

    # not the bytecode: Python writes .pyc files as modules are first imported, so a killed run and
    # its resumption would see different trees of the same code
    return tree_digest(Path(__file__).parents[1], skip=("__pycache__",))


@contextmanager
def state_dir(backup: Path | None) -> Iterator[Path]:
    if backup is None:
        with tempfile.TemporaryDirectory(prefix="graft-fit-") as tmp:
            yield Path(tmp)
        return
    for stale in backup.parent.glob("*"):  # state of the same phase with other inputs: never resumable
        if stale != backup:
            shutil.rmtree(stale, ignore_errors=True)
    backup.mkdir(parents=True, exist_ok=True)
    yield backup
    shutil.rmtree(backup, ignore_errors=True)  # reached only when the phase finished
