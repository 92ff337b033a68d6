"""Where a model came from: git revision, DVC data version, params hash. Never raises."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import yaml

# What a pipeline run itself rewrites; changes there do not make the code or config dirty.
RUN_RECORDS = (":!dvc.lock", ":!metrics", ":!plots")


def git_revision(root: str | Path = ".") -> str:
    """``<sha>``, or ``<sha>-dirty`` when tracked code or config differ from it (a ``dvc exp run``
    with ``-S`` changes params.yaml, for example); ``unknown`` outside a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *RUN_RECORDS],
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def dvc_hash(path: str | Path, lock: str | Path = "dvc.lock") -> str:
    """The md5 DVC recorded in ``dvc.lock`` for an output (a file or a directory); ``unknown``
    when the stage that makes it has not been run through DVC."""
    try:
        stages = yaml.safe_load(Path(lock).read_text()).get("stages", {})
    except (OSError, yaml.YAMLError, AttributeError):
        return "unknown"
    wanted = Path(path).as_posix().rstrip("/")
    for stage in stages.values():
        for out in stage.get("outs", []):
            if Path(out.get("path", "")).as_posix().rstrip("/") == wanted:
                return out.get("md5", "unknown")
    return "unknown"


def params_hash(params) -> str:
    """sha256 of the params, canonical JSON (key order and formatting do not matter)."""
    data = params.model_dump(mode="json", by_alias=True)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
