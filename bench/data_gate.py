"""Benchmark the data gate: manifest + validation (GX) + split over 7k, 35k and 70k Fashion-MNIST PNGs.

    python bench/data_gate.py [--sizes 7000,35000,70000] [--workdir /tmp/graft-bench]

Writes the PNGs (all ten classes, as ``train/<class>`` and ``test/<class>``, the first images of
each class in IDX order, in proportion to the official 60,000/10,000 split) with the ingest
helper, then runs each size in a fresh process (so peak memory is per size): ``validate``
with the default params and all ten classes configured, then ``split`` with the default split
params. Peak memory is sampled (psutil, every 50 ms) as the summed RSS of the process and its
manifest workers; ``ru_maxrss`` of the process and of its largest child are given beside it.
Prints a Markdown table with the machine, date and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_dataset(folder: Path, size: int) -> None:
    from graft.data import fashion_mnist, ingest
    from graft.data.fashion_mnist import CLASSES as FASHION_MNIST_CLASSES

    if (folder / ".complete").is_file():
        return
    data = fashion_mnist.load(None)
    per_class = {"train": size * 6000 // 70000, "test": size * 1000 // 70000}
    for split, images, labels in (("train", data.train_images, data.train_labels),
                                  ("test", data.test_images, data.test_labels)):
        ingest.write_pngs(images=images, labels=labels, split=split, classes=FASHION_MNIST_CLASSES, out=folder,
                          per_class=per_class[split])
    (folder / ".complete").write_text("")


class PeakRSS:
    """Summed RSS of this process and its children, sampled in a thread."""

    def __init__(self, interval: float = 0.05):
        import psutil

        self.process, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            total = 0
            for p in [self.process, *self.process.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except Exception:  # a worker that just exited
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def measure_one(folder: Path, out: Path) -> dict:
    """Validate and split ``folder`` in this process; return times and memory."""
    from graft import config
    from graft.data import split, validate
    from graft.data.annotate import Checks
    from graft.data.fashion_mnist import CLASSES as FASHION_MNIST_CLASSES

    params = config.load(ROOT / "params.yaml")
    checks = Checks(classes=FASHION_MNIST_CLASSES, channels=params.image.channels, settings=params.validate)
    cpu0 = os.times()
    with PeakRSS() as peak:
        t0 = time.perf_counter()
        summary = validate.validate(target_dir=folder, checks=checks, out_dir=out / "validation")
        t1 = time.perf_counter()
        s = params.split
        table = split.split(manifest_csv=out / "validation" / "manifest.csv", data_dir=folder, out_dir=out / "split",
                            classes=FASHION_MNIST_CLASSES, seed=params.seed, **s.model_dump(),
                            hard_links=False)  # a user's folder: copies, as the split stage makes them
        t2 = time.perf_counter()
    cpu1 = os.times()
    counts = table[table["split"].isin(["train", "valid", "test"])].groupby("split").size().to_dict()
    return {"files": summary.files, "validate_s": t1 - t0, "split_s": t2 - t1, "total_s": t2 - t0,
            "cpu_s": (cpu1.user + cpu1.system + cpu1.children_user + cpu1.children_system)
            - (cpu0.user + cpu0.system + cpu0.children_user + cpu0.children_system),
            "peak_rss_mb": peak.peak / 2**20,
            "maxrss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "maxrss_child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "warnings": len(summary.warnings), "quarantined": summary.quarantined, "split": counts}


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="7000,35000,70000")
    parser.add_argument("--workdir", default="/tmp/graft-bench-data-gate")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one folder in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(Path(args.one), Path(args.one + "-out"))))
        return
    work = Path(args.workdir)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        folder = work / f"fashion-mnist-{size}"
        write_dataset(folder, size)
        load_before = os.getloadavg()
        result = subprocess.run([sys.executable, __file__, "--one", str(folder)], capture_output=True, text=True)
        if result.returncode:
            sys.exit(f"size {size} failed:\n{result.stderr}")
        row = json.loads(result.stdout.strip().splitlines()[-1])
        row["load"] = (load_before, os.getloadavg())
        rows.append(row)
        print(f"{size}: {row}", file=sys.stderr)
    print(f"Measured {date.today()} on {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}.\n")
    print("| images | validate (s) | split (s) | total (s) | CPU time (s) | peak RSS, process + workers (MB) "
          "| ru_maxrss process / largest worker (MB) | load average before -> after (1 min) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['files']:,} | {r['validate_s']:.1f} | {r['split_s']:.1f} | {r['total_s']:.1f} | {r['cpu_s']:.1f} "
              f"| {r['peak_rss_mb']:.0f} | {r['maxrss_self_mb']:.0f} / {r['maxrss_child_mb']:.0f} "
              f"| {r['load'][0][0]:.2f} -> {r['load'][1][0]:.2f} |")
    last = rows[-1]
    print(f"\nLargest size: {last['warnings']} warning(s), {last['quarantined']} quarantined, split {last['split']}.")


if __name__ == "__main__":
    main()
