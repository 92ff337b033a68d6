"""Running one DVC stage the way ``dvc repro`` does, for drivers such as the Prefect flow."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from graft.errors import StageFailed


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


def repro_stage(stage: str, root: str | Path = ".") -> StageRun:
    """``dvc repro --single-item <stage>``: runs the stage only if its deps, params or outs changed."""
    result = subprocess.run([sys.executable, "-m", "dvc", "repro", "--single-item", stage], cwd=root,
                            env=stage_env(), capture_output=True, text=True)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise StageFailed(stage, result.returncode, output)
    skipped = re.search(rf"Stage '{re.escape(stage)}' didn't change, skipping", output) is not None
    return StageRun(stage=stage, ran=not skipped, output=output)
