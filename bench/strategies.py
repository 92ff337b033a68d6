"""Every transfer strategy against the others and against scratch, on the default task and on a
cross-domain task, over seeds and training-set sizes; and which one the advisor picks.

    .venv/bin/python bench/strategies.py [project_root] [--seeds 3] [--sizes 10,100] [--digit-sizes 10,60]
        [--source models/source.keras] [--tasks default,digits] [--out reports/strategies/strategies.json]

Needs a finished default run's model A (``models/source.keras``, or ``--source``) and split.

- default: Sandal vs Shirt (Fashion-MNIST), the project's own target. Training sets of N images per
  class are drawn from the labelled pool the split left for training (never valid or test,
  graft.evaluate.compare.pool_subset); valid and test are the split's.
- digits: scikit-learn's bundled 8x8 handwritten digits (``load_digits``, shipped inside the
  wheel, no download), 10 classes, scaled up to 28x28 grayscale: another image domain for the
  same model A. Per class, seeded: 40 valid images, a pool of 60 for training, the rest (74 to
  83) test.

Per task, size and seed: the advisor's measurements and choice (graft.strategy, the same code as
the ``advise`` stage), then every choice trained by the pipeline's own recipe
(graft.train.recipe.transfer, on the cached features): feature extraction, fine-tuning the top
part (``finetune.unfreeze``), the top half (``advisor.top_half``) and all of the base, and the
scratch baseline, which is also what the advisor's fifth answer ("do not transfer") ships. Params
are the project's params.yaml.

The advisor's choice is recomputed from each run's recorded measurements under the current
``advisor:`` thresholds (``readvise``), so ``--summarize-only`` re-scores recorded runs after a
threshold changes, without training anything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import graft  # noqa: F401  (telemetry off)
from graft import artifacts, config
from graft.data.load import load_split
from graft.evaluate.compare import accuracy, pool_subset
from graft.model.saved import load
from graft.strategy import advisor as advise
from graft.strategy.measure import measure, random_features
from graft.strategy.plan import plan_for
from graft.train.features import compute
from graft.train.recipe import transfer

sys.path.insert(0, str(Path(__file__).parent))
from stage_times import machine  # noqa: E402

STRATEGIES = ("feature_extraction", "finetune_top", "finetune_top_half", "finetune_all")  # transfer
CHOICES = (*STRATEGIES, "scratch")  # everything the advisor can pick (and every alternative it is scored against)


def digits(*, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's 8x8 digits at 28x28: {"pool": ..., "valid": ..., "test": ...} as (uint8 NHWC, labels)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    big = np.stack([np.asarray(Image.fromarray((img * 255 / 16).astype(np.uint8)).resize((28, 28), Image.Resampling.BILINEAR))
                    for img in data.images])[..., None]
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"valid": [], "pool": [], "test": []}
    for k in range(10):
        members = rng.permutation(np.flatnonzero(data.target == k))
        parts["valid"] += list(members[:40])
        parts["pool"] += list(members[40:100])
        parts["test"] += list(members[100:])
    return {name: (big[np.sort(idx)], data.target[np.sort(idx)].astype(np.int32)) for name, idx in parts.items()}


def subset(pool: tuple[np.ndarray, np.ndarray], *, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(pool[1] == k))[:per_class] for k in np.unique(pool[1])]))
    return pool[0][idx], pool[1][idx]


def one_run(*, params: config.Params, source, train, valid, test, seed: int) -> dict:
    """The advisor's choice and every choice's test accuracy for one training set and seed."""
    params = config.with_changes(params, {"seed": seed})
    start = time.perf_counter()
    features = compute(source=source, params=params, train=train, valid=valid)[0]
    m = measure(params=params, features=features.train[0], random=random_features(params, train[0], seed=seed),
                y=train[1])
    record = advise.advise(config.with_changes(params, {"strategy": "auto"}), m)
    scores = {}
    for choice in CHOICES:  # each as the pipeline trains it (the head phase again each time: the same, by its seed)
        plan = plan_for(choice, top_part=params.finetune.unfreeze, top_half=params.advisor.top_half)
        result = transfer(params=params, plan=plan, source=source, train=train, valid=valid, seed=seed,
                          features=features)
        scores[choice] = accuracy(result.final, test)
    return {"seed": seed, "per_class": int(np.bincount(train[1]).min()), "advised": record.advised_choice,
            "scenario": record.scenario, "measurements": record.measurements, "accuracy": scores,
            "seconds": round(time.perf_counter() - start, 1)}


def readvise(runs: list[dict], advisor) -> None:
    """The advisor's choice from each run's recorded measurements under the current thresholds
    (a pure function of both, so thresholds can be revised without training anything again)."""
    for r in runs:
        m = r["measurements"]
        measured = advise.Measurements(per_class=m["per_class"], probe_accuracy=m["probe_accuracy"],
                                       random_probe_accuracy=m["random_probe_accuracy"], images=m["images"])
        size, domain = advise.scenario(measured, advisor)
        r["scenario"], r["advised"] = {"size": size, "domain": domain}, advise.SCENARIOS[size, domain]


def summarize(runs: list[dict]) -> list[dict]:
    """Per task and size: each choice's mean and std over seeds, the advisor's picks, its mean
    accuracy, and its mean shortfall (points) against the best choice of the same seed."""
    rows = []
    for key in sorted({(r["task"], r["per_class"]) for r in runs}):
        group = [r for r in runs if (r["task"], r["per_class"]) == key]
        row = {"task": key[0], "per_class": key[1], "seeds": [r["seed"] for r in group]}
        for name in CHOICES:
            values = [r["accuracy"][name] for r in group]
            row[name] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
        row["advised"] = [r["advised"] for r in group]
        row["advised_accuracy"] = statistics.fmean(r["accuracy"][r["advised"]] for r in group)
        row["best_fixed"] = max(CHOICES, key=lambda s: row[s]["mean"])
        row["advised_shortfall"] = statistics.fmean(max(r["accuracy"][c] for c in CHOICES) - r["accuracy"][r["advised"]]
                                                    for r in group) * 100
        row["probe_gain"] = statistics.fmean(r["measurements"]["probe_gain"] for r in group)
        row["probe_accuracy"] = statistics.fmean(r["measurements"]["probe_accuracy"] for r in group)
        row["random_probe_accuracy"] = statistics.fmean(r["measurements"]["random_probe_accuracy"] for r in group)
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    head = ("| task | per class | probe / random probe (gain) | " + " | ".join(CHOICES)
            + " | advisor picked | its accuracy | below the best of each seed |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cells = [f"{r[s]['mean']:.2%} ± {r[s]['std'] * 100:.2f}" + (" **best**" if s == r["best_fixed"] else "")
                 for s in CHOICES]
        picks = ", ".join(sorted(set(r["advised"])))
        lines.append(f"| {r['task']} | {r['per_class']} | {r['probe_accuracy']:.2%} / {r['random_probe_accuracy']:.2%} "
                     f"({r['probe_gain']:.2f}) | " + " | ".join(cells)
                     + f" | {picks} | {r['advised_accuracy']:.2%} | {r['advised_shortfall']:.2f} points |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sizes", default="10,100", help="default task: training images per class")
    parser.add_argument("--digit-sizes", default="10,60", help="digits task: training images per class (at most 60)")
    parser.add_argument("--tasks", default="default,digits")
    parser.add_argument("--source", default=None, help="model A (default: paths.source_model)")
    parser.add_argument("--out", default="reports/strategies/strategies.json")
    parser.add_argument("--summarize-only", action="store_true", help="train nothing; summarize --out's runs")
    args = parser.parse_args()
    os.chdir(args.root)
    params = config.load()
    source_path = Path(args.source or artifacts.SOURCE_MODEL.path(params.paths))
    seeds = [params.seed + i for i in range(args.seeds)]
    load_start = os.getloadavg()
    started = datetime.datetime.now().astimezone()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(out.read_text())["runs"] if out.is_file() else []  # a stopped bench resumes
    done = {(r["task"], r["per_class"], r["seed"]) for r in runs}
    tasks = args.tasks.split(",")

    def record(task, size, run):
        runs.append({"task": task, **run})
        print(f"strategies: {task} {size}/class seed {run['seed']}: advisor {run['advised']} "
              f"(gain {run['measurements']['probe_gain']:.2f}); "
              + ", ".join(f"{k} {v:.4f}" for k, v in run["accuracy"].items()) + f" [{run['seconds']} s]", flush=True)
        out.write_text(json.dumps({"runs": runs}, indent=1))

    if not args.summarize_only:
        source = load(source_path)
        valid, test = (load_split(params, name) for name in ("valid", "test"))
        data = digits()
    # digits come as arrays, not a folder: paths.target only has to be a folder graft would accept
    digit_params = config.with_changes(params, {"data": {"target": "folder", "target_classes": list(map(str, range(10)))},
                                                "paths": {"target": "digits"}})
    for seed in [] if args.summarize_only else seeds:  # seed-major: a bench stopped early still has every task and size
        for task, sizes in (("default", args.sizes), ("digits", args.digit_sizes)):
            for size in [int(s) for s in sizes.split(",") if s]:
                if task not in tasks or (task, size, seed) in done:
                    continue
                if task == "default":
                    run = one_run(params=params, source=source, train=pool_subset(params, per_class=size, seed=seed),
                                  valid=(valid.x, valid.y), test=(test.x, test.y), seed=seed)
                else:
                    run = one_run(params=digit_params, source=source, train=subset(data["pool"], per_class=size, seed=seed),
                                  valid=data["valid"], test=data["test"], seed=seed)
                record(task, size, run)
    readvise(runs, params.advisor)
    rows = summarize(runs)
    when = started.isoformat(timespec="seconds")
    meta = {"source_model": str(source_path), "machine": machine(), "started": when,
            "load_average_start": load_start, "load_average_end": os.getloadavg(), "seeds": seeds,
            "advisor": params.advisor.model_dump(), "finetune_unfreeze": params.finetune.unfreeze}
    if args.summarize_only and out.is_file():  # the runs' own record, with the advisor it was re-scored under
        meta = {**json.loads(out.read_text()).get("meta", {}), "advisor": meta["advisor"], "readvised": when}
    load_start = meta["load_average_start"]
    out.write_text(json.dumps({"meta": meta, "summary": rows, "runs": runs}, indent=1))
    print(markdown(rows))
    print(f"\n{meta['machine']}, {meta['started']}, load average {load_start[0]:.2f} at start, "
          f"{meta['load_average_end'][0]:.2f} at end; {out}")


if __name__ == "__main__":
    main()
