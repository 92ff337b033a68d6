"""Wall time and peak memory of each stage of the default pipeline, as a user sees it (DVC
overhead included).

    .venv/bin/python bench/stage_times.py [project_root]

Runs `dvc repro --force --single-item <stage>` for every stage in DVC's order (so each stage is
timed on its own, after its inputs exist), each under a fresh Python process whose children's
peak resident memory (``ru_maxrss``: the largest of DVC and the stage process) is the stage's
peak, then prints a Markdown table with the machine and the date, ready for
docs/benchmarks.md. It re-runs the whole pipeline: about as long as `make run`.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import graft  # noqa: F401  (telemetry off)
from graft.pipeline.dag import stage_order
from graft.pipeline.runner import stage_env


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))) / 2**20
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def main(root: Path) -> None:
    rows, total = [], 0.0
    load = os.getloadavg()[0]
    for stage in stage_order(root):
        start = time.perf_counter()
        peak_kib = subprocess.run([sys.executable, "-c", PEAK, sys.executable, "-m", "dvc", "repro", "--force",
                                   "--single-item", stage], cwd=root, env=stage_env(), check=True, capture_output=True,
                                  text=True).stdout.strip()
        seconds = time.perf_counter() - start
        total += seconds
        rows.append(f"| {stage} | {seconds:.1f} | {int(peak_kib) / 1024:.0f} |")
        print(f"{stage}: {seconds:.1f} s, {int(peak_kib) / 1024:.0f} MiB", file=sys.stderr)
    print(f"Measured {datetime.date.today()} on {machine()}; load average before the run {load:.2f}.\n")
    print("| stage | wall time (s) | peak memory (MiB) |\n|---|---:|---:|")
    print("\n".join(rows))
    print(f"| **total** | **{total:.1f}** | |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve())
