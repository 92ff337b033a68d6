"""Where a model came from: git revision, DVC data version, params hash. Never raises."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import yaml

from graft.files import update_sha256

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


def tree_digest(folder: str | Path, *, skip: tuple[str, ...] = ()) -> str:
    """sha256 over every file below ``folder`` (but not inside a folder named in ``skip``): its
    relative path and its content, in path order (the test images a model was scored on, as the
    release gate compares them; graft's own code, for a resume key)."""
    folder, digest = Path(folder), hashlib.sha256()
    files = (p for p in folder.rglob("*") if p.is_file() and not set(p.relative_to(folder).parts[:-1]) & set(skip))
    for path in sorted(files):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        update_sha256(digest, path)
    return digest.hexdigest()
