"""Where graft may write: every output path of ``params.yaml`` checked before any stage runs.

DVC deletes a stage's outputs before it runs the stage, so an output path is a permission to
delete. Every ``paths`` key but ``target`` names something graft writes (``source`` and the
default target are written into ``raw``); each must resolve inside the project, must not overlap
another output or the user's images, and a path DVC caches must hold no file git tracks (it
would be deleted: ``paths.split: src`` deleted the code).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from graft.config.sections import ParamError

INSIDE_RAW = ("source",)  # written by ingest into paths.raw: part of that output, not one of their own
NOT_CACHED = ("metrics", "plots")  # folders of DVC outputs with cache: false, which git may track


def _resolve(root: Path, path: Path) -> Path:
    return (path if path.is_absolute() else root / path).resolve()


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def outputs(params, root: Path) -> dict[str, Path]:
    """Every output path of the params, resolved: ``paths.<key>`` -> where."""
    return {name: _resolve(root, value) for name, value in params.paths if name != "target" and name not in INSIDE_RAW}


def check(params, root: Path) -> None:
    """Raise :class:`ParamError` naming the first ``paths`` key that would let graft (or DVC for
    graft) write or delete where it must not."""
    root = root.resolve()
    outs = outputs(params, root)
    raw, target = outs["raw"], _resolve(root, params.paths.target)
    for name, path in outs.items():
        if not (path == root or root in path.parents) or path == root:
            raise ParamError(f"paths.{name}", f"{params.paths.model_dump()[name]} resolves to {path}, outside the "
                             f"project {root} (DVC deletes a stage's outputs before it runs); keep outputs inside it")
    names = list(outs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if _overlap(outs[a], outs[b]):
                raise ParamError(f"paths.{b}", f"{outs[b]} overlaps paths.{a} ({outs[a]}); every output needs a place "
                                 "of its own (DVC deletes each before its stage runs)")
    source = _resolve(root, params.paths.source)
    if raw not in source.parents:
        raise ParamError("paths.source", f"{source} is not inside paths.raw ({raw}), which ingest writes")
    if params.data.target == "fashion_mnist" and raw not in target.parents:
        raise ParamError("paths.target", f"{target}: with data.target: fashion_mnist, ingest writes the default target "
                         f"there, so it must be inside paths.raw ({raw}); for your own images set data.target: folder")
    if params.data.target == "folder":
        for name, path in outs.items():
            if _overlap(path, target):
                raise ParamError(f"paths.{name}", f"{path} overlaps your images in paths.target ({target}); graft "
                                 "never writes into, nor deletes, a folder it does not own: choose a path apart")
    tracked = tracked_files(root, [path for name, path in outs.items() if name not in NOT_CACHED])
    if tracked:
        name = next(n for n, p in outs.items() if n not in NOT_CACHED and (p == tracked[0] or p in tracked[0].parents))
        raise ParamError(f"paths.{name}", f"{outs[name]} holds {tracked[0].relative_to(root)}, which git tracks, and "
                         "DVC deletes an output before its stage runs; choose a path of graft's own")


def tracked_files(root: Path, paths: list[Path]) -> list[Path]:
    """Files git tracks below ``paths`` (none outside a git work tree, or without git)."""
    inside = [p for p in paths if p.exists()]
    if not inside:
        return []
    try:
        result = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", *map(str, inside)],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if result.returncode != 0:  # not a git work tree
        return []
    return [root / name for name in result.stdout.split("\0") if name]


def sweep(params, root: Path) -> None:
    """Remove what killed writers left beside graft's outputs and in its own state (graft's names
    only: graft.files.clean_stale), as every graft command starts: DVC may restore a killed
    stage's outputs from its run cache, and then that stage never runs to clean up after itself."""
    from graft.files import clean_stale, clean_stale_tree, temp_of

    outs = outputs(params, root.resolve())
    for name, path in outs.items():
        clean_stale(path)
        if name in NOT_CACHED and path.is_dir():  # a folder of single-file outputs: their temporaries
            for child in list(path.iterdir()):
                if (final := temp_of(child.name)) is not None:
                    clean_stale(path / final)
    clean_stale_tree(outs["backup"])
