"""A quick look at a data folder before DVC hashes it: DVC blocks forever reading a named pipe."""

from __future__ import annotations

import os
from pathlib import Path

from graft.data.decode import special_file
from graft.errors import BadImage, listing


def special_files(folder: Path) -> list[str]:
    """Every entry below ``folder`` that is not a regular file, a folder or a link to one: named
    pipes, sockets, devices, dangling or looping links, with why. Links to folders are not
    followed (the data gate reports them), so a loop cannot make the walk endless."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            if os.path.isdir(path):
                continue  # a link to a folder: not followed
            if (problem := special_file(path)) is not None:
                found.append(f"{path}: {problem}")
    return sorted(found)


def check(folders: dict[str, Path]) -> None:
    """Raise :class:`BadImage` naming every special file in the folders (param -> folder)."""
    found = [f"{key}: {entry}" for key, folder in folders.items() if folder.is_dir() for entry in special_files(folder)]
    if found:
        raise BadImage(f"{len(found)} entries are not files graft or DVC can read (DVC would block reading a named "
                       "pipe); remove them:\n" + listing(found))
