"""Writing outputs so that a crash never leaves a half-written file that looks complete, nor a
moment with nothing published; and the one chunked file digest."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 20
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


# The names graft gives the temporary siblings of an output (tempfile's 8 random characters), and
# the previous version of a folder set aside while the new one goes in.
_TEMP_OF = re.compile(r"^\.(?P<final>.+)\.[a-z0-9_]{8}\.(tmp|old)(\..*)?$")
SYNCFS_OVER = 256  # files: past this many, one syncfs of the filesystem is cheaper than an fsync each


def temp_of(name: str) -> str | None:
    """The name of the file or folder a temporary of graft's, named ``name``, was to become."""
    match = _TEMP_OF.match(name)
    return match["final"] if match else None


def clean_stale(final: Path) -> list[Path]:
    """Remove what a killed writer left beside ``final`` (only names graft makes), after putting a
    folder back that was set aside when the kill came between two renames. Returns what went."""
    removed: list[Path] = []
    if not final.parent.is_dir():
        return removed
    for sibling in sorted(final.parent.iterdir()):
        if temp_of(sibling.name) != final.name:
            continue
        if sibling.name.endswith(".old") and not os.path.lexists(final):
            os.rename(sibling, final)  # the old version was aside and the new one never arrived
            continue
        shutil.rmtree(sibling) if sibling.is_dir() and not sibling.is_symlink() else sibling.unlink()
        removed.append(sibling)
    return removed


def clean_stale_tree(folder: Path) -> None:
    """:func:`clean_stale` for everything below ``folder`` (graft's own state, such as that of
    killed training phases: DVC may restore a stage's output from its run cache, and then the
    stage whose state it was never runs to clean it), and the folders that leaves empty."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob(".*"), key=lambda p: len(p.parts), reverse=True):
        if (final := temp_of(path.name)) is not None and os.path.lexists(path):
            clean_stale(path.with_name(final))
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()


def fsync_tree(path: Path) -> None:
    """Flush a file, or a folder and everything in it, to the disk."""
    if path.is_file():
        files, folders = [path], [path.parent]
    else:
        entries = list(path.rglob("*"))
        files = [p for p in entries if p.is_file() and not p.is_symlink()]
        folders = [*(p for p in entries if p.is_dir() and not p.is_symlink()), path]
    if len(files) + len(folders) > SYNCFS_OVER and _syncfs(path):
        return
    for file in files:
        with open(file, "rb") as f:
            os.fsync(f.fileno())
    for folder in folders:
        fsync_dir(folder)


def _syncfs(path: Path) -> bool:
    """Flush the whole filesystem that holds ``path`` (Linux syncfs); False where there is none."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return getattr(_libc, "syncfs", lambda _: -1)(fd) == 0
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the system
    or the filesystem cannot."""
    try:
        result = _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    except AttributeError:  # a libc without renameat2
        return False
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def replace_folder(new: Path, final: Path) -> None:
    """Put the folder ``new`` at ``final``. With a published ``final``, the two are exchanged in one
    step where the filesystem can (readers always see a whole folder), else the old one is renamed
    aside first and put back by :func:`clean_stale` if a kill comes between the two renames; the
    old version is removed only once the new one is in."""
    if not os.path.lexists(final):
        os.rename(new, final)
    elif exchange(new, final):
        shutil.rmtree(new)  # now the old version
    else:
        aside = final.with_name(new.name.removesuffix(".tmp") + ".old")
        os.rename(final, aside)
        os.rename(new, final)
        shutil.rmtree(aside)
    fsync_dir(final.parent)


@contextlib.contextmanager
def atomic_path(final: str | Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; put it in place only if the block succeeds, flushed to
    disk first. With ``directory=True`` the temporary path is an empty folder that replaces
    ``final`` (:func:`replace_folder`). Leftovers of a killed writer are removed first."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(final)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the published folder is not
    else:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + "".join(final.suffixes), dir=final.parent)
        os.close(fd)
        tmp = Path(name)
        tmp.unlink()  # writers create it; some (Keras) refuse to overwrite
    try:
        yield tmp
        fsync_tree(tmp)
        if directory:
            replace_folder(tmp, final)
        else:
            os.replace(tmp, final)
            fsync_dir(final.parent)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


_FICLONE = 0x40049409  # linux/fs.h: share the source's blocks, copy-on-write (btrfs, XFS, ...)


def clone_or_copy(src: Path, dst: Path) -> str:
    """A new file at ``dst`` with ``src``'s content that shares nothing with it graft could change:
    a reflink where the filesystem has them, else a copy. ``src`` is only read (its mode, link
    count, inode and mtime stay as they are). Returns "reflink" or "copy"."""
    import fcntl

    with open(src, "rb") as source, open(dst, "xb") as target:
        try:
            fcntl.ioctl(target.fileno(), _FICLONE, source.fileno())
            how = "reflink"
        except OSError:  # EOPNOTSUPP, EXDEV, EINVAL: no reflinks here
            shutil.copyfileobj(source, target, CHUNK)
            how = "copy"
    shutil.copystat(src, dst)
    return how


def write_json(path: str | Path, data: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def update_sha256(digest, path: str | Path) -> None:
    """Feed a file to ``digest`` a chunk at a time (memory bounded by the chunk, not the file)."""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    update_sha256(digest, path)
    return digest.hexdigest()
