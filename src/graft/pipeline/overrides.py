"""Params overrides for one run, as ``dvc exp run -S key=value`` gives them: dotted keys -> values.

:func:`apply` writes them into ``params.yaml`` and nothing else, so DVC sees a params change and
re-runs exactly the stages that read those keys. The new file is checked by :mod:`graft.config`
before it replaces the old one (atomically: a rename), so a bad override names the key and leaves
``params.yaml`` untouched. Comments and layout survive (ruamel round trip). The values stay in the
workspace afterwards, as with ``dvc exp run -S``: ``params.yaml``, ``dvc.lock`` and the published
model then agree, and ``git diff params.yaml`` shows what the current model was trained with.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from graft import config
from graft.errors import ConfigError
from graft.files import atomic_path

UNSET = "<unset>"


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``["head.lr=0.0005", ...]`` (the ``-S`` syntax) -> ``{"head.lr": "0.0005", ...}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"params override {item!r}: write it as key=value, e.g. head.lr=0.0005")
        out[key.strip()] = value
    return out


def _value(value: Any) -> Any:
    """Strings are read as YAML, as ``dvc exp run -S`` reads them ("0.0005" is a float, "null" None)."""
    if not isinstance(value, str):
        return value
    try:
        return config.read_yaml(value) if value.strip() else value
    except yaml.YAMLError:
        return value


def _round_trip():
    from ruamel.yaml import YAML

    rt = YAML()
    rt.width = 4096  # never re-wrap long lists
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))

    def represent_float(r, value: float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:  # 5e-05 is a string to YAML 1.1 readers; 5.0e-05 is a float to all
            text = f"{mantissa}.0e{exponent}"
        return r.represent_scalar("tag:yaml.org,2002:float", text)

    rt.representer.add_representer(float, represent_float)
    return rt


def apply(params_file: str | Path, overrides: Mapping[str, Any], *, allow_paths: bool = False,
          wait_seconds: float = 10.0) -> dict[str, tuple[Any, Any]]:
    """Set each dotted key of ``overrides`` in ``params_file``; return ``{key: (old, new)}``.

    Raises :class:`ConfigError` (and writes nothing) when a key is unknown, a value has the wrong
    type, the result fails any check of :func:`graft.config.load` or DVC cannot build its graph
    from it, or a key is under ``paths`` and ``allow_paths`` is false: an output path is a
    permission to delete (DVC deletes outputs before a stage runs), not a run's parameter. The
    file is replaced while holding DVC's own repository lock, so it never changes under a running
    ``dvc repro`` (one started by hand included); that wait is ``wait_seconds`` at most.
    """
    params_file = Path(params_file)
    if not overrides:
        return {}
    paths = sorted(k for k in overrides if str(k).split(".")[0] == "paths")
    if paths and not allow_paths:
        raise ConfigError(f"params override {paths[0]}: paths.* cannot be set by a run (DVC deletes a stage's "
                          f"outputs before it runs, so an output path is a permission to delete); change "
                          f"{params_file} itself, or serve a deployment that allows path overrides")
    rt = _round_trip()
    doc = rt.load(params_file.read_text())
    changes: dict[str, tuple[Any, Any]] = {}
    for key, raw in overrides.items():
        parts = str(key).split(".")
        node = doc
        for depth, part in enumerate(parts[:-1]):
            if part not in node:
                from ruamel.yaml.comments import CommentedMap

                node[part] = CommentedMap()  # an optional section left out of the file; config checks the key
            node = node[part]
            if not isinstance(node, Mapping):
                raise ConfigError(f"params override {key}: {'.'.join(parts[:depth + 1])} is a value, not a section "
                                  f"of {params_file}; use a key such as head.lr")
        new = _value(raw)
        changes[key] = (node.get(parts[-1], UNSET), new)
        node[parts[-1]] = new
    text = io.StringIO()
    rt.dump(doc, text)
    given = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    with dvc_repo_lock(params_file.parent, wait_seconds=wait_seconds, doing=f"params override ({given})"):
        with atomic_path(params_file) as tmp:
            tmp.write_text(text.getvalue())
            try:
                config.load(tmp)
                check_graph(params_file.parent, tmp)
            except ConfigError as err:
                raise ConfigError(f"params override rejected ({given}); {params_file} is unchanged: "
                                  + str(err).replace(str(tmp), str(params_file))) from None
    return changes


@contextlib.contextmanager
def dvc_repo_lock(root: Path, *, wait_seconds: float, doing: str) -> Iterator[None]:
    """Hold DVC's own lock of the repository at ``root`` (what every ``dvc`` command takes), or
    refuse after ``wait_seconds`` with the reason."""
    from dvc.lock import LockError, make_lock

    tmp_dir = root / ".dvc" / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    lock = make_lock(str(tmp_dir / "lock"), tmp_dir=str(tmp_dir), wait=False)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            lock.lock()
            break
        except LockError:
            if time.monotonic() >= deadline:
                raise ConfigError(f"{doing}: a dvc process holds {root} (a `dvc repro` running?); nothing was "
                                  f"changed; try again when it has finished") from None
            time.sleep(0.5)
    try:
        yield
    finally:
        lock.unlock()


def check_graph(root: Path, params_file: Path) -> None:
    """DVC's graph of ``root``'s dvc.yaml with ``params_file`` as its params must build (outputs
    that overlap, templates that do not resolve...), tried in a scratch copy of the pipeline."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with tempfile.TemporaryDirectory(prefix="graft-graph-") as scratch:
        shutil.copy2(root / "dvc.yaml", Path(scratch) / "dvc.yaml")
        shutil.copy2(params_file, Path(scratch) / "params.yaml")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # "Initialized DVC repository."
                Repo.init(scratch, no_scm=True)
            with Repo(scratch) as repo:
                repo.index.check_graph()
        except DvcException as err:
            raise ConfigError(f"dvc.yaml with these params: {' '.join(str(err).split())}") from None
