"""Head phase with cached features against the naive frozen-base fit, side by side in one run.

    .venv/bin/python bench/head_cache.py [project_root] [--epochs 20]

Needs a finished default run (``make run``): model A (``models/source.keras``) and the split.
Both paths train the same head (params.yaml's head section, cache on or off) for the same
epochs on the same images with the same seed; the cached path's time includes computing the
features. Also reports the frozen base's forward pass in images/s and as a fraction of the
machine's measured float32 matmul rate. Prints Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np

import graft  # noqa: F401  (telemetry off)
from graft import artifacts, config
from graft.data.load import load_split
from graft.model.build import graft_head
from graft.model.saved import load
from graft.model.surgery import feature_extractor
from graft.train.features import compute, extract
from graft.train.recipe import train_head

sys.path.insert(0, str(Path(__file__).parent))
from onnx_speed import flops_per_image, matmul_gflops  # noqa: E402
from stage_times import machine  # noqa: E402


def main(root: Path, epochs: int) -> None:
    os.chdir(root)
    params = config.load()
    head = params.head.model_copy(update={"epochs": epochs, "patience": None})
    source = load(artifacts.SOURCE_MODEL.path(params.paths))
    train, valid = load_split(params, "train"), load_split(params, "valid")
    common = {"source": source, "train": (train.x, train.y), "valid": (valid.x, valid.y),
              "num_classes": len(params.data.target_classes), "head": head, "seed": params.seed, "augment": None}

    start = time.perf_counter()
    naive, _ = train_head(**common)
    naive_s = time.perf_counter() - start

    start = time.perf_counter()  # the features stage's own path, then train_head's
    features, _ = compute(source=source, params=params.model_copy(update={"head": head}), train=common["train"],
                          valid=common["valid"])
    features_s = time.perf_counter() - start
    cached, _ = train_head(**common, features=features)
    cached_s = time.perf_counter() - start

    test = load_split(params, "test")
    extractor = feature_extractor(graft_head(source, num_classes=common["num_classes"], head=head, seed=params.seed))
    p_naive, p_cached = naive.predict(test.x, verbose=0), cached.predict(test.x, verbose=0)
    flops = flops_per_image(extractor)
    gflops = matmul_gflops()
    _, forward = extract(extractor, np.concatenate([train.x, valid.x] * 4))  # a longer pass for the rate
    print(f"Measured {datetime.date.today()} on {machine()}; load average before the run "
          f"{os.getloadavg()[0]:.2f}.\n")
    print(f"Head phase, {epochs} epochs, {len(train.y)} train and {len(valid.y)} valid images, "
          f"head {list(head.dense) or 'linear'} on {head.pooling}-pooled {params.base.kind} features:\n")
    print("| path | wall time (s) |\n|---|---:|")
    print(f"| naive: fit through the frozen base every epoch | {naive_s:.1f} |")
    print(f"| cached: features once ({features_s:.1f} s) + fit the head on them | {cached_s:.1f} |")
    print(f"| **speed-up** | **{naive_s / cached_s:.1f}x** |\n")
    print(f"Same model either way: max |p_naive - p_cached| on the {len(test.y)} test images "
          f"{np.abs(p_naive - p_cached).max():.2e}, top-1 agreement "
          f"{(p_naive.argmax(1) == p_cached.argmax(1)).mean():.2%}.\n")
    print(f"Frozen base forward pass: {forward:.0f} images/s x {flops / 1e6:.1f} MFLOP/image = "
          f"{forward * flops / 1e9:.1f} GFLOP/s, {forward * flops / 1e9 / gflops:.0%} of the measured float32 "
          f"matmul rate ({gflops:.0f} GFLOP/s, 2048x2048 NumPy).")


if __name__ == "__main__":
    cli = argparse.ArgumentParser()
    cli.add_argument("root", nargs="?", default=".")
    cli.add_argument("--epochs", type=int, default=20)
    args = cli.parse_args()
    main(Path(args.root).resolve(), args.epochs)
