"""Wall time of each stage of the default pipeline, as a user sees it (DVC overhead included).

    .venv/bin/python bench/stage_times.py [project_root]

Runs `dvc repro --force --single-item <stage>` for every stage in DVC's order (so each stage is
timed on its own, after its inputs exist), then prints a Markdown table with the machine and the
date, ready for docs/benchmarks.md. It re-runs the whole pipeline: about as long as `make run`.
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
from graft.dag import _env, stage_order


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))) / 2**20
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def main(root: Path) -> None:
    rows, total = [], 0.0
    for stage in stage_order(root):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", stage],
                       cwd=root, env=_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        total += seconds
        rows.append(f"| {stage} | {seconds:.1f} |")
        print(f"{stage}: {seconds:.1f} s", file=sys.stderr)
    print(f"Measured {datetime.date.today()} on {machine()}.\n")
    print("| stage | wall time (s) |\n|---|---:|")
    print("\n".join(rows))
    print(f"| **total** | **{total:.1f}** |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve())
