"""``graft compare``: transfer against the same network trained from scratch, honestly.

Transfer is the pipeline's recipe (graft.train.recipe) following the plan ``advise`` recorded;
scratch is the ``scratch`` stage's recipe: the same architecture from random weights, the same
images, the same epoch budget. Several seeds give a mean and a standard deviation; several
training-set sizes (drawn from the labelled pool the split did not use for valid or test) give
a data-efficiency curve.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pandas as pd

from graft import artifacts
from graft.data.decode import decode
from graft.data.load import decode_args, load_split
from graft.data.split import order_key
from graft.errors import PoolTooSmall
from graft.evaluate import figures
from graft.evaluate.lift import lift
from graft.files import write_json
from graft.model.saved import load
from graft.train.features import compute, why_not_cached
from graft.train.recipe import train_scratch, transfer


def accuracy(model, test) -> float:
    return float((model.predict(test[0], verbose=0).argmax(1) == test[1]).mean())


def transfer_accuracy(*, params, plan, source, train, valid, test, seed: int, features=None) -> tuple[float, float]:
    """The pipeline's recipe under ``plan``: test accuracy of the head-phase and the final model.
    ``features`` (graft.train.features.compute of ``train`` and ``valid``) skips the frozen base
    in the head phase, as the pipeline does."""
    result = transfer(params=params, plan=plan, source=source, train=train, valid=valid, seed=seed, features=features)
    return accuracy(result.head, test), accuracy(result.final, test)


def scratch_accuracy(*, params, train, valid, test, seed: int) -> float:
    return accuracy(train_scratch(params=params, train=train, valid=valid, seed=seed)[0], test)


def pool_subset(params, *, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` labelled images per class from the train split and the unused pool (never
    valid or test), in a seeded hash order, so larger sizes contain smaller ones."""
    table = pd.read_csv(artifacts.SPLIT_TABLE.path(params.paths), keep_default_na=False)
    table = table[table["split"].isin(["train", ""])].copy()
    table["key"] = [order_key(seed, p) for p in table["path"]]
    chosen = table.sort_values("key").groupby("class").head(per_class)
    classes = list(params.data.target_classes)
    short = {c: n for c, n in chosen.groupby("class").size().items() if n < per_class}
    if short or set(chosen["class"]) != set(classes):
        raise PoolTooSmall(f"--sizes {per_class}: the labelled pool has fewer images for {short or classes}")
    x = np.stack([decode(params.paths.target / p, **decode_args(params)) for p in chosen["path"]])
    return x, np.array([classes.index(c) for c in chosen["class"]], dtype=np.int32)


def _mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "runs": values}


def compare(*, params, plan, seeds: list[int], sizes: list[int], out_dir: Path) -> dict:
    """Transfer by ``plan`` and scratch at each seed, and the data-efficiency curve; write
    ``out_dir/compare.json`` (and the curve's picture); return the summary."""
    source = load(artifacts.SOURCE_MODEL.path(params.paths))
    data = {name: load_split(params, name) for name in ("train", "valid", "test")}
    train, valid, test = ((d.x, d.y) for d in data.values())

    def cached(train_set):
        return None if why_not_cached(params) else compute(source=source, params=params, train=train_set, valid=valid)[0]

    features = cached(train)
    by_seed = {"head": [], "transfer": [], "scratch": []}
    for seed in seeds:
        head, final = transfer_accuracy(params=params, plan=plan, source=source, train=train, valid=valid, test=test,
                                        seed=seed, features=features)
        by_seed["head"].append(head)
        by_seed["transfer"].append(final)
        by_seed["scratch"].append(scratch_accuracy(params=params, train=train, valid=valid, test=test, seed=seed))
        print(f"compare: seed {seed}: head phase {head:.4f}, transfer ({plan.label}) {final:.4f}, "
              f"scratch {by_seed['scratch'][-1]:.4f}")
    curve = []
    for size in sizes:
        subset = pool_subset(params, per_class=size, seed=seeds[0])
        row = {"per_class": size,
               "transfer": transfer_accuracy(params=params, plan=plan, source=source, train=subset, valid=valid,
                                             test=test, seed=seeds[0], features=cached(subset))[1],
               "scratch": scratch_accuracy(params=params, train=subset, valid=valid, test=test, seed=seeds[0])}
        curve.append(row)
        print(f"compare: {size} per class: transfer {row['transfer']:.4f}, scratch {row['scratch']:.4f}")
    summary = {name: _mean_std(values) for name, values in by_seed.items()}
    summary["lift"] = lift(transfer=summary["transfer"]["mean"],
                           scratch=summary["scratch"]["mean"]).to_json()
    summary.update(plan=plan.label, seeds=seeds, train_per_class=int(np.bincount(data["train"].y).min()),
                   data_efficiency=curve)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "compare.json", summary)
    if curve:
        figures.data_efficiency(out_dir / "data_efficiency.png", curve)
    return summary
