"""Running one DVC stage the way ``dvc repro`` does, for drivers such as the Prefect flow: under
a time limit, holding the pipeline lock, its output passed on line by line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from graft.errors import StageFailed, StageTimeout


@dataclass(frozen=True)
class StageRun:
    stage: str
    ran: bool  # False when DVC found nothing changed and skipped it
    output: str


def stage_env() -> dict[str, str]:
    """Stage commands (``graft ...``) come from the interpreter's own environment."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


DVC_LOCK_BUSY = "Unable to acquire lock"  # dvc.lock.FAILED_TO_LOCK_MESSAGE: another dvc process holds the repo


def lock_was_busy(output: str) -> bool:
    """DVC refused to start because another ``dvc`` process (a person's ``dvc status``, say) held
    the repository lock: nothing ran, so running the stage again is safe and may succeed."""
    return DVC_LOCK_BUSY in output and "Running stage" not in output


def repro_stage(stage: str, root: str | Path, *, timeout: float, lock: IO | None = None,
                on_line: Callable[[str], None] | None = None) -> StageRun:
    """``dvc repro --single-item <stage>``: runs the stage only if its deps, params or outs changed.

    The stage runs in a process group of its own. Past ``timeout`` seconds the whole group (DVC,
    the stage, whatever they started) is killed and :class:`StageTimeout` says so. ``lock``, the
    pipeline lock's file, is inherited, so a stage outliving the flow still holds the project.
    ``on_line`` gets each line of output as it comes."""
    process = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--single-item", stage], cwd=root,
                               env=stage_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, pass_fds=(lock.fileno(),) if lock is not None else ())
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        process.wait(timeout=timeout)
    except BaseException as stopped:  # past the time limit, or the driver itself stopped (Ctrl-C, a cancelled task)
        os.killpg(process.pid, signal.SIGKILL)  # the whole group: DVC, the stage and whatever it started
        process.wait(timeout=60)
        reader.join(timeout=10)
        if isinstance(stopped, subprocess.TimeoutExpired):
            raise StageTimeout(stage, timeout, "".join(lines)) from None
        raise
    reader.join(timeout=10)
    output = "".join(lines)
    if process.returncode != 0:
        raise StageFailed(stage, process.returncode, output)
    skipped = re.search(rf"Stage '{re.escape(stage)}' didn't change, skipping", output) is not None
    return StageRun(stage=stage, ran=not skipped, output=output)
