"""Training speed and accuracy by precision and XLA, side by side in one run: float32 against
mixed_bfloat16 (params.yaml ``precision``), each with XLA compilation of the training step off
(Keras' default on a CPU) and on (``jit_compile=True``).

    .venv/bin/python bench/precision.py [--rounds 3] [--per-class 600] [--epochs 3]

Data: the real Fashion-MNIST source task (the Debian package, /usr/share/datasets/fashion-mnist),
``--per-class`` training images of each of params.yaml's source classes (the first ones, seeded
holdout as pretrain's), 250 test images of each; the target task (Sandal vs Shirt) with 500
training, 150 valid and 500 test images of each class. Params are the project's params.yaml,
with the epochs cut to ``--epochs``.

Per configuration and round: pretrain the default compact CNN from scratch through graft's own
fit loop (graft.train.fit), then the head phase and fine-tuning of block3 through the frozen
base (graft.train.recipe), all under the configuration's dtype policy
(graft.model.precision.policy). Speed is images/s of the epochs after the first (the first
pays for tracing and, with XLA, compilation; its time is reported separately). Accuracy is the
trained model's own on the test images. The configurations run interleaved, round after round,
so that the machine's load hits them alike; the table gives the median over rounds and the
spread (min-max), and each configuration's ratio to float32 without XLA per round (median,
min-max). The load average is printed before and after.

Also pretrain's images/s as a fraction of the machine's measured rate: training FLOPs per image
(3x the forward pass's multiply-adds x 2: forward, and the two products of the backward pass)
x images/s over the float32 matmul rate (NumPy, as bench/onnx_speed.py) and the bfloat16
matmul rate (TensorFlow, 2048^2). Prints Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import graft  # noqa: F401  (telemetry off)
from graft import config
from graft.data.fashion_mnist import DEBIAN_DIR
from graft.data.fashion_mnist import load as load_fashion
from graft.model import precision
from graft.model.build import build_source_model
from graft.train import fit as fit_module
from graft.train.fit import fit, seed_everything
from graft.train.pretrain import holdout
from graft.train.recipe import finetune, train_head

sys.path.insert(0, str(Path(__file__).parent))
from onnx_speed import flops_per_image, matmul_gflops  # noqa: E402
from stage_times import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [("float32", False), ("mixed_bfloat16", False), ("float32", True), ("mixed_bfloat16", True)]
NAMES = ("T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot")


def per_class(images, labels, classes, n: int, *, skip: int = 0):
    """The first ``n`` images (after ``skip``) of each class, labelled 0.. in ``classes`` order."""
    idx = [np.flatnonzero(labels == NAMES.index(c))[skip:skip + n] for c in classes]
    return (np.concatenate([images[i] for i in idx])[..., None],
            np.concatenate([np.full(len(i), k, dtype=np.int64) for k, i in enumerate(idx)]))


class EpochTimes:
    """Wall time of each epoch of every fit (a Keras callback added by :func:`patched`)."""

    def __init__(self):
        import keras

        self.times: list[float] = []
        outer = self

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                outer.times.append(time.perf_counter() - self.start)

        self.callback = Timer


@contextlib.contextmanager
def patched(*, jit: bool, timer: EpochTimes):
    """graft's fit loop as it is, but compiled with ``jit_compile=jit`` and with an epoch timer."""
    import keras

    compile_, fit_ = keras.Model.compile, keras.Model.fit

    def compile(self, *args, **kwargs):
        return compile_(self, *args, jit_compile=jit, **kwargs)

    def fit(self, *args, callbacks=(), **kwargs):
        return fit_(self, *args, callbacks=[*callbacks, timer.callback()], **kwargs)

    keras.Model.compile, keras.Model.fit = compile, fit
    try:
        yield
    finally:
        keras.Model.compile, keras.Model.fit = compile_, fit_


def run(params, data, *, policy: str, jit: bool) -> dict:
    import keras

    keras.backend.clear_session()
    seed_everything(params.seed)
    (sx, sy), (stx, sty), (tx, ty), (vx, vy), (ttx, tty) = data
    fit_idx, val_idx = holdout(len(sy), fraction=params.pretrain.valid_fraction, seed=params.seed)
    out = {}
    with precision.policy(policy):
        timer = EpochTimes()
        with patched(jit=jit, timer=timer):
            source = build_source_model(params)
            fit(source, train=(sx[fit_idx], sy[fit_idx]), valid=(sx[val_idx], sy[val_idx]), recipe=params.pretrain,
                seed=params.seed)
        out["pretrain_ips"] = len(fit_idx) / statistics.median(timer.times[1:])
        out["pretrain_first_s"] = timer.times[0]
        out["pretrain_acc"] = float((source.predict(stx, batch_size=256, verbose=0).argmax(1) == sty).mean())
        with patched(jit=jit, timer=EpochTimes()):
            model, _ = train_head(source=source, train=(tx, ty), valid=(vx, vy), num_classes=2, head=params.head,
                                  seed=params.seed, augment=params.augment)
        timer = EpochTimes()
        with patched(jit=jit, timer=timer):
            finetune(model=model, recipe=params.finetune, lr=params.finetune_lr, unfreeze=params.finetune.unfreeze,
                     train=(tx, ty), valid=(vx, vy), seed=params.seed, augment=params.augment)
        out["finetune_ips"] = len(ty) / statistics.median(timer.times[1:])
        out["finetune_first_s"] = timer.times[0]
        out["finetune_acc"] = float((model.predict(ttx, batch_size=256, verbose=0).argmax(1) == tty).mean())
    out["flops"] = flops_per_image(source)
    return out


def bf16_matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    import tensorflow as tf

    a = tf.random.stateless_normal((n, n), seed=(0, 1), dtype=tf.bfloat16)
    b = tf.random.stateless_normal((n, n), seed=(0, 2), dtype=tf.bfloat16)
    tf.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def spread(values, digits: int = 0) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main(*, rounds: int, n_per_class: int, epochs: int) -> None:
    fit_module.verbosity = lambda: 0  # no per-epoch lines: this prints one line per run
    params = config.load(ROOT / "params.yaml")
    cut = {"epochs": epochs, "min_steps": 0}
    params = params.model_copy(update={"pretrain": params.pretrain.model_copy(update=cut),
                                       "head": params.head.model_copy(update=cut),
                                       "finetune": params.finetune.model_copy(update=cut)})
    fm = load_fashion(DEBIAN_DIR)
    source, target = params.data.source_classes, params.data.target_classes
    data = (per_class(fm.train_images, fm.train_labels, source, n_per_class),
            per_class(fm.test_images, fm.test_labels, source, 250),
            per_class(fm.train_images, fm.train_labels, target, 500),
            per_class(fm.train_images, fm.train_labels, target, 150, skip=500),
            per_class(fm.test_images, fm.test_labels, target, 500))
    load_before = os.getloadavg()
    results: dict[tuple, list[dict]] = {c: [] for c in CONFIGS}
    for r in range(rounds):
        for policy, jit in CONFIGS:
            results[(policy, jit)].append(run(params, data, policy=policy, jit=jit))
            row = results[(policy, jit)][-1]
            print(f"round {r + 1} {policy} xla={'on' if jit else 'off'}: pretrain {row['pretrain_ips']:.0f} img/s, "
                  f"acc {row['pretrain_acc']:.4f}; finetune {row['finetune_ips']:.0f} img/s, "
                  f"acc {row['finetune_acc']:.4f}", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    f32, bf16 = matmul_gflops(), bf16_matmul_gflops()
    base = results[CONFIGS[0]]
    print(f"Measured {datetime.date.today()} on {machine()}; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; {rounds} interleaved rounds; pretrain {len(data[0][1])} source images "
          f"({len(source)} classes, 90% trained), fine-tuning {len(data[2][1])} target images, {epochs} epochs each; "
          f"matmul 2048^2: float32 {f32:.0f} GFLOP/s (NumPy), bfloat16 {bf16:.0f} GFLOP/s (TensorFlow).\n")
    print("| precision | XLA | pretrain images/s | ratio to float32 | first epoch (s) | source test accuracy | "
          "share of float32 / bf16 matmul | fine-tuning images/s | ratio to float32 | first epoch (s) | "
          "target test accuracy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for policy, jit in CONFIGS:
        rows = results[(policy, jit)]
        ratio = {k: [row[k] / b[k] for row, b in zip(rows, base)] for k in ("pretrain_ips", "finetune_ips")}
        train_flops = 3 * rows[0]["flops"]
        share = statistics.median(row["pretrain_ips"] for row in rows) * train_flops / 1e9
        print(f"| {policy} | {'on' if jit else 'off'} | {spread([r['pretrain_ips'] for r in rows])} | "
              f"{spread(ratio['pretrain_ips'], 2)} | {spread([r['pretrain_first_s'] for r in rows], 1)} | "
              f"{spread([r['pretrain_acc'] for r in rows], 4)} | {share / f32:.1%} / {share / bf16:.1%} | "
              f"{spread([r['finetune_ips'] for r in rows])} | {spread(ratio['finetune_ips'], 2)} | "
              f"{spread([r['finetune_first_s'] for r in rows], 1)} | {spread([r['finetune_acc'] for r in rows], 4)} |")
    print(f"\nTraining FLOPs per image (3x forward): {train_flops / 1e6:.1f} M.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    main(rounds=args.rounds, n_per_class=args.per_class, epochs=args.epochs)
