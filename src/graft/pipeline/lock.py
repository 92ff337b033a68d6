"""One pipeline run at a time per project."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from graft.errors import PipelineBusy


@contextlib.contextmanager
def pipeline_lock(root: str | Path = ".", *, wait_seconds: float = 0.0) -> Iterator[IO]:
    """One pipeline run at a time per project: an exclusive lock on ``.dvc/tmp/graft-pipeline.lock``.

    A second run waits up to ``wait_seconds`` for it, then raises :class:`PipelineBusy` naming
    the holder, instead of meeting DVC's own lock halfway through a stage. The operating system
    drops the lock when its holder exits, however it exits, so a killed run never leaves it behind.
    Yields the locked file: a stage's ``dvc repro`` inherits it (graft.pipeline.runner), so the
    lock is held for as long as either process lives.
    """
    path = Path(root) / ".dvc" / "tmp" / "graft-pipeline.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise PipelineBusy(f"pipeline busy: another run (pid {holder}) holds {path}; this trigger "
                                       f"waited {wait_seconds:.0f} s and gives up without touching the workspace") from None
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
