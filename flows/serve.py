"""Serve the pipeline flow as a scheduled Prefect deployment (retraining on a schedule).

    PREFECT_API_URL=http://127.0.0.1:4200/api python flows/serve.py --cron "0 3 * * *"
    python -m flows.serve --interval 3600 --root /path/to/project -S finetune.lr=0.00005

Needs a real Prefect server (`make serve` starts one on loopback with SQLite, then this). The
project (``--root``) is fixed when the deployment is made; a run cannot choose another. The
deployment's ``params`` parameter (dotted keys -> values, as ``dvc exp run -S``) overrides
params.yaml for a run: ``-S`` sets its default, and a run triggered by hand can set its own
(``prefect deployment run graft-pipeline/graft-retrain -p 'params={"head.lr": 0.0005}'``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from graft.pipeline import overrides
from graft.pipeline.flows import serve

PROJECT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--cron", default="0 3 * * *", help="cron schedule (default: 03:00 every day)")
    when.add_argument("--interval", type=float, help="seconds between runs (instead of --cron)")
    parser.add_argument("--root", default=str(PROJECT), help="the project to run")
    parser.add_argument("--wait-seconds", type=float, default=0.0, help="how long a busy trigger waits")
    parser.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                        help="default params override of every scheduled run (repeatable)")
    parser.add_argument("--name", default="graft-retrain")
    parser.add_argument("--allow-path-overrides", action="store_true",
                        help="let a run's params set paths.* (off: an output path is a permission to delete)")
    args = parser.parse_args(argv)
    schedule = {"interval": args.interval} if args.interval else {"cron": args.cron}
    serve(root=args.root, name=args.name, schedule=schedule, wait_seconds=args.wait_seconds,
          params=overrides.parse_assignments(args.set_param), allow_path_overrides=args.allow_path_overrides)


if __name__ == "__main__":
    main()
