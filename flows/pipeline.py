"""Run graft's DVC pipeline as one Prefect flow run (graft.pipeline.flows.pipeline).

    python flows/pipeline.py [project_root] [-S key=value ...] [--wait-seconds N]

With no Prefect server configured (PREFECT_API_URL unset), a temporary local one is started.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from graft.pipeline import overrides
from graft.pipeline.flows import pipeline_for

PROJECT = Path(__file__).resolve().parents[1]
pipeline = pipeline_for(PROJECT)  # this project's flow: the entrypoint `prefect deploy` takes (flows/pipeline.py:pipeline)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=str(PROJECT), help="the project (default: this one)")
    parser.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                        help="params override for this run, as dvc exp run -S (repeatable)")
    parser.add_argument("--wait-seconds", type=float, default=0.0, help="how long to wait for a busy pipeline")
    args = parser.parse_args(argv)
    params = overrides.parse_assignments(args.set_param)
    state = pipeline_for(args.root)(wait_seconds=args.wait_seconds, params=params, return_state=True)
    if not state.is_completed():
        print(f"graft-pipeline: {state.name}: {state.message}")
        return 2 if state.is_cancelled() else 1
    print("ran:", [r["stage"] for r in state.result() if r["ran"]] or "nothing (all up to date)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
