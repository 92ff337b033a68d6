"""What copying a user's images into the split costs, against hard-linking them, side by side.

    python bench/user_folder_disk.py [--workdir /tmp/graft-bench-disk]

Writes a user folder of the default task's target images (Fashion-MNIST Sandal and Shirt, all
14,000, as ``train/<class>`` and ``test/<class>`` PNGs, outside any project), runs the data gate
once, then for each mode in turn (``hard_links`` True: what graft did before; False: what it
does now for a folder it does not own) in a fresh DVC repository with ``cache.type =
hardlink,symlink`` as graft's: ``split`` into ``data/split``, then ``dvc add data/split`` (what
DVC does to a stage output when the stage finishes: moves it into the cache and links it back).
Reports, per mode: split time, the disk the user folder and the repository take together
(``du -sc``, each inode once), the extra over the user folder alone, and whether any of the
user's files changed mode or link count. Prints a Markdown table with the machine and date.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLASSES = ("Sandal", "Shirt")


def du_kib(*paths: Path) -> int:
    """Disk use of ``paths`` together, each inode counted once (``du -sc``), KiB."""
    out = subprocess.run(["du", "-sck", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1].split()[0])


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mode, p.stat().st_nlink) for p in folder.rglob("*") if p.is_file()}


def write_user_folder(folder: Path) -> None:
    from graft.data import fashion_mnist, ingest

    if (folder.parent / f".{folder.name}.complete").is_file():
        return
    data = fashion_mnist.load(None)
    for split, images, labels in (("train", data.train_images, data.train_labels),
                                  ("test", data.test_images, data.test_labels)):
        ingest.write_pngs(images=images, labels=labels, split=split, classes=CLASSES, out=folder, per_class=None)
    (folder.parent / f".{folder.name}.complete").write_text("")


def dvc(repo: Path, *args: str) -> None:
    environment = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(BIN / "dvc"), *args], cwd=repo, env=environment, check=True, capture_output=True, timeout=1800)


def measure(mode: bool, *, user: Path, manifest_csv: Path, repo: Path, params) -> dict:
    from graft.data import split

    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    dvc(repo, "init", "-q")
    dvc(repo, "config", "cache.type", "hardlink,symlink")
    before, alone = snapshot(user), du_kib(user)
    t0 = time.perf_counter()
    split.split(manifest_csv=manifest_csv, data_dir=user, out_dir=repo / "data" / "split", classes=CLASSES,
                seed=params.seed, hard_links=mode, **params.split.model_dump())
    split_s = time.perf_counter() - t0
    after_split = du_kib(user, repo) - alone
    dvc(repo, "add", "-q", "data/split")
    after_add = du_kib(user, repo) - alone
    after = snapshot(user)
    changed = sum(before[p] != after.get(p) for p in before)
    return {"mode": "hard links (before)" if mode else "copies (now)", "split_s": split_s,
            "user_kib": alone, "extra_after_split_kib": after_split, "extra_after_add_kib": after_add,
            "user_files": len(before), "user_files_changed": changed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/graft-bench-disk"))
    args = parser.parse_args()
    from graft import config
    from graft.data import validate
    from graft.data.annotate import Checks

    params = config.load(ROOT / "params.yaml")
    user = args.workdir / "my images"
    write_user_folder(user)
    checks = Checks(classes=CLASSES, channels=params.image.channels, settings=params.validate)
    validate.validate(target_dir=user, checks=checks, out_dir=args.workdir / "validation")
    manifest_csv = args.workdir / "validation" / "manifest.csv"
    rows = [measure(mode, user=user, manifest_csv=manifest_csv, repo=args.workdir / "repo", params=params)
            for mode in (True, False)]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"{date.today()}, {cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
          f"{rows[0]['user_files']} images in the user folder ({rows[0]['user_kib'] / 1024:.0f} MiB on disk)\n")
    print("| split | split (s) | extra disk after split (MiB) | extra after `dvc add` (MiB) "
          "| user files whose mode or link count changed |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['split_s']:.1f} | {r['extra_after_split_kib'] / 1024:.1f} | "
              f"{r['extra_after_add_kib'] / 1024:.1f} | {r['user_files_changed']} of {r['user_files']} |")


if __name__ == "__main__":
    main()
