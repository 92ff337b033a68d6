"""Inference speed, side by side in one run: Keras predict, a direct Keras call, onnxruntime float
and onnxruntime int8, at batch 1 (latency) and batch 32 (throughput).

    .venv/bin/python bench/onnx_speed.py [project_root] [--threads N]

Models: the default pipeline's fine-tuned model (``models/finetuned.keras``, after ``make run``)
and MobileNetV2 at 224x224 with random weights (speed does not depend on the weights). Also
reports each float model's throughput as a fraction of the machine's measured float32 matmul
rate (FLOPs per image x images/s / matmul FLOP/s). Prints Markdown for docs/benchmarks.md.

The int8 model is made by ``graft.export.quantize.quantize``, as the export stage makes it (the
default model calibrated on the same train images when ``<root>/data/split`` is there); a second
int8 model from plain ``quantize_static`` (without graft's graph passes: the pixel scaling as
a QLinearMul, the first convolution unpacked) is timed beside it for comparison. Batch-32
throughput is measured in interleaved rounds (each engine for 1 s per round, in turn), and
the median round is reported, so that a change in the machine's load hits every engine alike;
the int8/float ratio is also given per round (median, min-max). The load average is printed.
onnxruntime runs in a subprocess without TensorFlow (``bench/ort_worker.py``), as consumers run
it; this process drives it one measurement at a time, so its rounds still interleave with Keras'.
``--threads N`` gives every onnxruntime session N intra-op threads (default: onnxruntime's
choice, one per core); float and int8 always run with the same session options.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import graft  # noqa: F401  (telemetry off)
from graft import config
from graft.export import contract as onnx_meta
from graft.export.onnx import model_version, to_onnx
from graft.export.publish import calibration_set
from graft.export.quantize import quantize
from graft.model.build import build_source_model, graft_head
from graft.model.saved import load

sys.path.insert(0, str(Path(__file__).parent))
from stage_times import machine  # noqa: E402
from timing import latency_ms, throughput, timed  # noqa: E402


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def flops_per_image(model) -> float:
    """Multiply-adds x 2 of the conv and dense layers (the rest is noise), nested models included."""
    import keras

    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += flops_per_image(layer)
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            h, w, c = layer.output.shape[1:]
            total += 2 * h * w * c * np.prod(layer.kernel_size)
        elif isinstance(layer, keras.layers.Conv2D):
            h, w, cout = layer.output.shape[1:]
            cin = layer.input.shape[-1]
            total += 2 * h * w * cout * cin * np.prod(layer.kernel_size) / layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return float(total)


class OrtWorker:
    """onnxruntime sessions in a subprocess without TensorFlow (``bench/ort_worker.py``); a context
    manager, so the worker is gone before the models' temporary folder is."""

    def __init__(self, models: dict[str, Path], shape, threads: int):
        command = [sys.executable, str(Path(__file__).with_name("ort_worker.py")), "--threads", str(threads),
                   "--shape", ",".join(str(d) for d in shape), "--input", onnx_meta.INPUT_NAME,
                   "--output", onnx_meta.OUTPUT_NAME, *(f"{name}={path}" for name, path in models.items())]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if (answer := self._answer()) != "ready":
            raise RuntimeError(f"onnxruntime worker said {answer!r} instead of 'ready'")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _answer(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"onnxruntime worker exited with {self.process.wait()} (its error is above)")
        return json.loads(line)

    def ask(self, command: str, name: str, amount) -> float | list[float]:
        try:
            self.process.stdin.write(f"{command} {name} {amount}\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(f"onnxruntime worker exited with {self.process.wait()} (its error is above)") from None
        return self._answer()


def bench(name: str, model, calibration: np.ndarray, gflops: float, runs: int, rounds: int = 5,
          threads: int = 0) -> list[str]:
    shape = model.input_shape[1:]
    rng = np.random.default_rng(0)
    x1, x32 = (rng.integers(0, 256, (n, *shape), dtype=np.uint8) for n in (1, 32))
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        onnx_models = {"float": Path(tmp) / "m.onnx", "int8": Path(tmp) / "m.int8.onnx",
                       "plain": Path(tmp) / "m.int8.plain.onnx"}
        to_onnx(model, onnx_models["float"], opset=17, metadata={}, doc_string=f"bench: {name}",
                version=model_version(exported_at=datetime.datetime.now(datetime.timezone.utc)))
        quantize(onnx_models["float"], onnx_models["int8"], calibration=calibration)
        quantize(onnx_models["float"], onnx_models["plain"], calibration=calibration, pixels_as_quantized=False)
        worker = stack.enter_context(OrtWorker(onnx_models, shape, threads))

        def keras(fn):
            return (lambda: latency_ms(fn, x1, runs)), (lambda: throughput(fn, x32))

        def onnx(key):
            return (lambda: worker.ask("latency", key, runs)), (lambda: worker.ask("throughput", key, 1.0))

        engines = {
            "Keras `predict`": keras(lambda x: model.predict(x, verbose=0)),
            "Keras direct call": keras(lambda x: model(x, training=False)),
            "onnxruntime float": onnx("float"),
            "onnxruntime int8": onnx("int8"),
            "onnxruntime int8, plain quantize_static": onnx("plain"),
        }
        latency = {engine: tuple(timed_latency()) for engine, (timed_latency, _) in engines.items()}
        per_round = {engine: [] for engine in engines}
        for _ in range(rounds):
            for engine, (_, timed_throughput) in engines.items():
                per_round[engine].append(timed_throughput())
        results = {engine: (*latency[engine], statistics.median(per_round[engine])) for engine in engines}
        for engine in engines:
            print(f"{name} / {engine}: {results[engine]}, rounds {[round(v) for v in per_round[engine]]}",
                  file=sys.stderr)
    flops = flops_per_image(model)
    base_p50, _, base_tp = results["Keras `predict`"]
    rows = []
    for engine, (p50, p99, tp) in results.items():
        rows.append(f"| {name} | {engine} | {p50:.2f} | {p99:.2f} | {tp:,.0f} | "
                    f"{base_p50 / p50:.1f}x | {tp / base_tp:.1f}x | "
                    + (f"{flops * tp / 1e9 / gflops:.1%}" if "int8" not in engine else "-") + " |")
    rows.append(f"| {name} | FLOPs per image | {flops / 1e6:,.1f} M | | | | | |")
    for engine in ("onnxruntime int8", "onnxruntime int8, plain quantize_static"):
        ratios = [i / f for i, f in zip(per_round[engine], per_round["onnxruntime float"])]
        rows.append(f"| {name} | {engine} / float, batch 32 | | | **{statistics.median(ratios):.2f}x** "
                    f"({min(ratios):.2f}-{max(ratios):.2f}) | | | |")
    return rows


def export_calibration(root: Path) -> np.ndarray | None:
    """The train images the export stage calibrates on (same choice as graft.stages.export), if
    the project's split is there."""
    from graft.data.load import decode_args, load_folder

    if not (root / "params.yaml").is_file():
        return None
    params = config.load(root / "params.yaml")
    folder = root / params.paths.split / "train"
    if not folder.is_dir():
        return None
    train = load_folder(folder, classes=params.data.target_classes, **decode_args(params))
    return calibration_set(train.x, seed=params.seed, count=params.export.calibration_images)


def main(root: Path, threads: int = 0) -> None:
    load_before = os.getloadavg()
    gflops = matmul_gflops()
    rows = []
    finetuned = root / "models" / "finetuned.keras"
    if finetuned.is_file():
        model = load(finetuned)
        calib = export_calibration(root)
        if calib is None:
            calib = np.random.default_rng(1).integers(0, 256, (64, *model.input_shape[1:]), dtype=np.uint8)
        rows += bench("default (compact CNN, 28x28x1)", model, calib, gflops, runs=300, threads=threads)
    raw = config.read_yaml((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    raw["base"].update(kind="mobilenet_v2", weights="none", input_size=224)
    raw["image"].update(height=224, width=224, channels=3)
    raw["head"]["dropout"] = 0.0
    raw["finetune"]["unfreeze"] = "block_16"  # MobileNetV2's top block (nothing is fine-tuned here)
    params = config.parse(raw, where="params.yaml (MobileNetV2 at 224)")
    mobilenet = graft_head(build_source_model(params), num_classes=2, head=params.head, seed=0)
    calib = np.random.default_rng(1).integers(0, 256, (32, 224, 224, 3), dtype=np.uint8)
    rows += bench("MobileNetV2 224x224x3", mobilenet, calib, gflops, runs=50, threads=threads)
    load_after = os.getloadavg()
    print(f"Measured {datetime.date.today()} on {machine()}; float32 matmul (NumPy, 2048^2): {gflops:.0f} GFLOP/s; "
          f"load average (1, 5, 15 min) {', '.join(f'{v:.2f}' for v in load_before)} before, "
          f"{', '.join(f'{v:.2f}' for v in load_after)} after; onnxruntime intra-op threads: "
          f"{threads or 'default'}.\n")
    print("| model | engine | batch-1 p50 (ms) | batch-1 p99 (ms) | batch-32 images/s | "
          "batch-1 speed-up vs predict | batch-32 speed-up vs predict | share of matmul peak |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: default)")
    args = parser.parse_args()
    main(Path(args.root).resolve(), threads=args.threads)
