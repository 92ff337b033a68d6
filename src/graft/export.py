"""Stage ``export``: ``model.onnx`` that takes raw pixels and says what it is; verified, not trusted.

The file is written beside its final path, checked with onnxruntime against Keras on the whole
test split, and renamed into place only if every probability is within ``export.tolerance``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import graft
from graft import model as graft_model, onnx_meta, splits
from graft.atomic import atomic_path, write_json
from graft.config import Params


class ParityError(RuntimeError):
    """onnxruntime and Keras disagree beyond the tolerance."""


def to_onnx(model, path: Path, *, opset: int, metadata: dict[str, str]) -> None:
    """Export an inference model (no training-only layers) with a named output and metadata."""
    import onnx

    model(np.zeros((1, *model.input_shape[1:]), dtype="uint8"))  # Keras needs a call before export
    with tempfile.TemporaryDirectory(prefix="graft-onnx-") as tmp:
        raw_path = Path(tmp) / "raw.onnx"
        model.export(str(raw_path), format="onnx", opset_version=opset, verbose=False)
        proto = onnx.load(str(raw_path))
    graph = proto.graph
    if graph.input[0].name != onnx_meta.INPUT_NAME:
        raise RuntimeError(f"exported input is named {graph.input[0].name!r}, expected {onnx_meta.INPUT_NAME!r}")
    old = graph.output[0].name
    if old != onnx_meta.OUTPUT_NAME:
        for node in graph.node:
            node.output[:] = [onnx_meta.OUTPUT_NAME if o == old else o for o in node.output]
            node.input[:] = [onnx_meta.OUTPUT_NAME if i == old else i for i in node.input]
        graph.output[0].name = onnx_meta.OUTPUT_NAME
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def check_parity(path: Path, *, model, x: np.ndarray, tolerance: float, batch_size: int = 256) -> dict:
    """Run onnxruntime and Keras on ``x``; raise :class:`ParityError` beyond ``tolerance``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours = np.concatenate([session.run([onnx_meta.OUTPUT_NAME], {onnx_meta.INPUT_NAME: x[i:i + batch_size]})[0]
                           for i in range(0, len(x), batch_size)])
    keras_probs = model.predict(x, batch_size=batch_size, verbose=0)
    diff = float(np.abs(ours - keras_probs).max()) if len(x) else 0.0
    same_top1 = int((ours.argmax(1) == keras_probs.argmax(1)).sum())
    result = {"images": int(len(x)), "max_abs_diff": diff, "same_top1": same_top1, "tolerance": tolerance}
    if diff > tolerance or same_top1 != len(x):
        raise ParityError(f"onnxruntime differs from Keras by up to {diff:.3g} (tolerance {tolerance}); "
                          f"top-1 agrees on {same_top1}/{len(x)} test images. The ONNX file was not published.")
    return result


def export(*, model, out: Path, x_check: np.ndarray, classes, image, opset: int, tolerance: float,
           extra: dict) -> dict:
    metadata = onnx_meta.describe(classes=classes, height=image.height, width=image.width,
                                  channels=image.channels, extra={"version": graft.__version__, **extra})
    with atomic_path(out) as tmp:
        to_onnx(model, tmp, opset=opset, metadata=metadata)
        return check_parity(tmp, model=model, x=x_check, tolerance=tolerance)


def run(params: Params) -> None:
    test = splits.load(params, "test")
    model = graft_model.load(params.paths.finetuned_model)
    result = export(model=model, out=params.paths.onnx_model, x_check=test.x, classes=params.data.target_classes,
                    image=params.image, opset=params.export.opset, tolerance=params.export.tolerance,
                    extra={"base": params.base.kind})
    write_json(params.paths.metrics / "export.json", {"onnx": str(params.paths.onnx_model), "parity": result})
    print(f"export: {params.paths.onnx_model} ({params.paths.onnx_model.stat().st_size / 1e3:.0f} kB); "
          f"onnxruntime matches Keras on {result['images']} test images, max |diff| {result['max_abs_diff']:.2g}",
          file=sys.stdout)
