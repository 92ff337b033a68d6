"""Where a killed training phase keeps its state, keyed by what the phase depends on, so that the
next run resumes it (and a run with other inputs never does)."""

from __future__ import annotations

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
    """``root/phase/<key>``: a run with other inputs never resumes from this one's state."""
    return root / phase / fingerprint(*parts)


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
