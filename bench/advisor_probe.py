"""The advisor's measurements and decision alone, on the training sets of bench/strategies.py
(default task and digits, its sizes and seeds), with the features computed once and cached, so
two versions of the probe can be compared on the very same features without training anything.

    .venv/bin/python bench/advisor_probe.py [project_root] [--params params.yaml] [--cache /tmp/advisor-probe]
        [--seeds 3] [--sizes 10,100] [--digit-sizes 10,60] [--out reports/strategies/advisor_probe.json]

Needs a finished default run's model A and split (as bench/strategies.py). The first run writes
each training set's source-base and random-base features to ``--cache``; later runs read them.
To compare with another checkout's probe, run it with that checkout's code and params first::

    PYTHONPATH=/work/main/src .venv/bin/python bench/advisor_probe.py --params /work/main/params.yaml --out before.json

Prints a Markdown row per run: the probe accuracies (source / random base), their errors, the
gain, the scenario and the choice, and the seconds the two probes took.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import graft  # noqa: F401  (telemetry off)
from graft import artifacts, config
from graft.evaluate.compare import pool_subset
from graft.model.saved import load
from graft.strategy import advisor as advise
from graft.strategy.measure import measure, random_features
from graft.train.features import compute

sys.path.insert(0, str(Path(__file__).parent))
from stage_times import machine  # noqa: E402
from strategies import digits, subset  # noqa: E402


def features_of(*, params, source, train, seed: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The source base's and a random base's features of ``train`` (seeded as the advise stage seeds them)."""
    if cache.is_file():
        with np.load(cache) as saved:
            return saved["ours"], saved["random"]
    empty = (train[0][:0], train[1][:0])
    ours = compute(source=source, params=params, train=train, valid=empty)[0].train[0]
    random = random_features(params, train[0], seed=seed)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, ours=ours, random=random)
    return ours, random


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--cache", default="/tmp/advisor-probe")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sizes", default="10,100")
    parser.add_argument("--digit-sizes", default="10,60")
    parser.add_argument("--out", default="reports/strategies/advisor_probe.json")
    args = parser.parse_args()
    os.chdir(args.root)
    params = config.load(Path(args.params))
    digit_params = config.with_changes(params, {"data": {"target": "folder", "target_classes": list(map(str, range(10)))},
                                                "paths": {"target": "digits"}})
    source, data = None, digits()
    started, load_start, runs = datetime.datetime.now().astimezone(), os.getloadavg(), []
    print("| task | per class | seed | probe / random | errors | gain | scenario | advisor | probe seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in [params.seed + i for i in range(args.seeds)]:
        for task, sizes in (("default", args.sizes), ("digits", args.digit_sizes)):
            for size in [int(s) for s in sizes.split(",") if s]:
                p = config.with_changes(params if task == "default" else digit_params, {"seed": seed})
                train = (pool_subset(p, per_class=size, seed=seed) if task == "default"
                         else subset(data["pool"], per_class=size, seed=seed))
                cache = Path(args.cache) / f"{task}-{size}-{seed}.npz"
                if source is None and not cache.is_file():
                    source = load(artifacts.SOURCE_MODEL.path(params.paths))
                ours, random = features_of(params=p, source=source, train=train, seed=seed, cache=cache)
                start = time.perf_counter()
                m = measure(params=p, features=ours, random=random, y=train[1])
                seconds = time.perf_counter() - start
                record = advise.advise(config.with_changes(p, {"strategy": "auto"}), m)
                runs.append({"task": task, "per_class": size, "seed": seed, "measurements": record.measurements,
                             "scenario": record.scenario, "advised": record.advised_choice,
                             "probe_seconds": round(seconds, 3)})
                print(f"| {task} | {size} | {seed} | {m.probe_accuracy:.4f} / {m.random_probe_accuracy:.4f} | "
                      f"{m.errors} / {m.random_errors} | {m.probe_gain:.2f} | {record.scenario['size']}, "
                      f"{record.scenario['domain']} | {record.advised_choice} | {seconds:.2f} |", flush=True)
    meta = {"machine": machine(), "started": started.isoformat(timespec="seconds"), "load_average_start": load_start,
            "load_average_end": os.getloadavg(), "advisor": params.advisor.model_dump(), "graft": graft.__file__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    print(f"\n{meta['machine']}, {meta['started']}, load average {load_start[0]:.2f} at start, "
          f"{meta['load_average_end'][0]:.2f} at end; graft from {graft.__file__}; {args.out}")


if __name__ == "__main__":
    main()
