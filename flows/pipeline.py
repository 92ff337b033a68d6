"""Prefect flow over graft's DVC pipeline: one task per DVC stage, in the order DVC gives.

Each task is ``dvc repro --single-item <stage>``, so DVC decides what is up to date: running
this flow after ``dvc repro`` changes nothing, and vice versa.

    python flows/pipeline.py            # a run against a temporary local Prefect server
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import graft  # noqa: F401  (DVC, GX and Prefect telemetry off before Prefect is imported)

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_ENABLED", "true")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

from prefect import flow, task  # noqa: E402

from graft.dag import repro_stage, stage_order  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]


@task(name="dvc-stage", task_run_name="{stage}")
def run_stage(stage: str, root: str) -> dict:
    result = repro_stage(stage, root)
    print(f"{stage}: {'ran' if result.ran else 'up to date, skipped by DVC'}")
    return {"stage": stage, "ran": result.ran}


@flow(name="graft-pipeline", log_prints=True)
def pipeline(root: str = str(PROJECT)) -> list[dict]:
    """Run every DVC stage of the project at ``root`` in DVC's order; return what ran."""
    return [run_stage(stage, root) for stage in stage_order(root)]


if __name__ == "__main__":
    runs = pipeline(sys.argv[1] if len(sys.argv) > 1 else str(PROJECT))
    print("ran:", [r["stage"] for r in runs if r["ran"]] or "nothing (all up to date)")
