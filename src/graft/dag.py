"""The pipeline graph as DVC sees it, for drivers such as the Prefect flow.

The stage order is read from DVC's own graph of ``dvc.yaml``, never written down twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import graft  # noqa: F401  (telemetry off before DVC is imported)


def stage_order(root: str | Path = ".") -> list[str]:
    """Names of the pipeline's stages in an order DVC can run them (dependencies first)."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        names = {stage: getattr(stage, "name", None) or "" for stage in graph.nodes}
        order = nx.lexicographical_topological_sort(graph.reverse(copy=True), key=lambda s: names[s])
        return [names[s] for s in order if names[s]]  # .dvc files (no name) are data, not stages


@dataclass(frozen=True)
class StageRun:
    stage: str
    ran: bool  # False when DVC found nothing changed and skipped it
    output: str


def _env() -> dict[str, str]:
    """Stage commands (``graft ...``) come from the interpreter's own environment."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


DVC_LOCK_BUSY = "Unable to acquire lock"  # dvc.lock.FAILED_TO_LOCK_MESSAGE: another dvc process holds the repo


class StageFailed(RuntimeError):
    """``dvc repro`` of one stage exited non-zero."""

    def __init__(self, stage: str, returncode: int, output: str):
        super().__init__(f"dvc repro {stage} failed (exit {returncode}):\n{output[-4000:]}")
        self.stage, self.returncode, self.output = stage, returncode, output

    @property
    def transient(self) -> bool:
        """DVC refused to start because another ``dvc`` process (a person's ``dvc status``, say) held
        the repository lock: nothing ran, so running the stage again is safe and may succeed."""
        return DVC_LOCK_BUSY in self.output and "Running stage" not in self.output


def repro_stage(stage: str, root: str | Path = ".") -> StageRun:
    """``dvc repro --single-item <stage>``: runs the stage only if its deps, params or outs changed."""
    result = subprocess.run([sys.executable, "-m", "dvc", "repro", "--single-item", stage], cwd=root,
                            env=_env(), capture_output=True, text=True)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise StageFailed(stage, result.returncode, output)
    skipped = re.search(rf"Stage '{re.escape(stage)}' didn't change, skipping", output) is not None
    return StageRun(stage=stage, ran=not skipped, output=output)


class PipelineBusy(RuntimeError):
    """Another pipeline run holds the project."""


@contextlib.contextmanager
def pipeline_lock(root: str | Path = ".", *, wait_seconds: float = 0.0) -> Iterator[Path]:
    """One pipeline run at a time per project: an exclusive lock on ``.dvc/tmp/graft-pipeline.lock``.

    A second run waits up to ``wait_seconds`` for it, then raises :class:`PipelineBusy` naming
    the holder, instead of meeting DVC's own lock halfway through a stage. The operating system
    drops the lock when its holder exits, however it exits, so a killed run never leaves it behind.
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
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
