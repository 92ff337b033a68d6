"""Inference speed, side by side in one run: Keras predict, a direct Keras call, onnxruntime float
and onnxruntime int8, at batch 1 (latency) and batch 32 (throughput).

    .venv/bin/python bench/onnx_speed.py [project_root]

Models: the default pipeline's fine-tuned model (``models/finetuned.keras``, after ``make run``)
and MobileNetV2 at 224x224 with random weights (speed does not depend on the weights). Also
reports each float model's throughput as a fraction of the machine's measured float32 matmul
rate (FLOPs per image x images/s / matmul FLOP/s). Prints Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import graft  # noqa: F401  (telemetry off)
from graft import export, model as M, onnx_meta
from graft.config import Base, Head, Image, Params
from graft.quantize import quantize

sys.path.insert(0, str(Path(__file__).parent))
from stage_times import machine  # noqa: E402


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


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


def latency_ms(fn, x, runs: int) -> tuple[float, float]:
    fn(x)
    times = sorted(_timed(lambda: fn(x)) * 1e3 for _ in range(runs))
    return statistics.median(times), times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]


def throughput(fn, x, seconds: float = 3.0) -> float:
    fn(x)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(x)
        done += len(x)
    return done / (time.perf_counter() - start)


def bench(name: str, model, calibration: np.ndarray, gflops: float, runs: int) -> list[str]:
    import onnxruntime as ort

    shape = model.input_shape[1:]
    rng = np.random.default_rng(0)
    x1, x32 = (rng.integers(0, 256, (n, *shape), dtype=np.uint8) for n in (1, 32))
    with tempfile.TemporaryDirectory() as tmp:
        float_path, int8_path = Path(tmp) / "m.onnx", Path(tmp) / "m.int8.onnx"
        export.to_onnx(model, float_path, opset=17, metadata={})
        quantize(float_path, int8_path, calibration=calibration)
        sessions = {p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (float_path, int8_path)}

        def run_onnx(path):
            return lambda x: sessions[path].run([onnx_meta.OUTPUT_NAME], {onnx_meta.INPUT_NAME: x})

        engines = {
            "Keras `predict`": lambda x: model.predict(x, verbose=0),
            "Keras direct call": lambda x: model(x, training=False),
            "onnxruntime float": run_onnx(float_path),
            "onnxruntime int8": run_onnx(int8_path),
        }
        results = {}
        for engine, fn in engines.items():
            p50, p99 = latency_ms(fn, x1, runs)
            results[engine] = (p50, p99, throughput(fn, x32))
            print(f"{name} / {engine}: {results[engine]}", file=sys.stderr)
    flops = flops_per_image(model)
    base_p50, _, base_tp = results["Keras `predict`"]
    rows = []
    for engine, (p50, p99, tp) in results.items():
        rows.append(f"| {name} | {engine} | {p50:.2f} | {p99:.2f} | {tp:,.0f} | "
                    f"{base_p50 / p50:.1f}x | {tp / base_tp:.1f}x | "
                    + (f"{flops * tp / 1e9 / gflops:.1%}" if "int8" not in engine else "-") + " |")
    rows.append(f"| {name} | FLOPs per image | {flops / 1e6:,.1f} M | | | | | |")
    return rows


def main(root: Path) -> None:
    gflops = matmul_gflops()
    rows = []
    finetuned = root / "models" / "finetuned.keras"
    if finetuned.is_file():
        model = M.load(finetuned)
        calib = np.random.default_rng(1).integers(0, 256, (64, *model.input_shape[1:]), dtype=np.uint8)
        rows += bench("default (compact CNN, 28x28x1)", model, calib, gflops, runs=300)
    params = Params(base=Base(kind="mobilenet_v2", weights="none", input_size=224),
                    image=Image(height=224, width=224, channels=3))
    mobilenet = M.graft_head(M.build_source_model(params), num_classes=2, head=Head(dropout=0.0), seed=0)
    calib = np.random.default_rng(1).integers(0, 256, (32, 224, 224, 3), dtype=np.uint8)
    rows += bench("MobileNetV2 224x224x3", mobilenet, calib, gflops, runs=50)
    print(f"Measured {datetime.date.today()} on {machine()}; float32 matmul (NumPy, 2048^2): {gflops:.0f} GFLOP/s.\n")
    print("| model | engine | batch-1 p50 (ms) | batch-1 p99 (ms) | batch-32 images/s | "
          "batch-1 speed-up vs predict | batch-32 speed-up vs predict | share of matmul peak |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve())
