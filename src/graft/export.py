"""Stage ``export``: the folder other teams consume, verified before it is published.

``<paths.export>/`` holds ``model.onnx`` (raw uint8 pixels in, probabilities out, metadata
readable with onnxruntime alone), ``labels.json``, ``model_card.md``, ``export.json`` and, when
its test accuracy is within ``export.int8_max_drop`` points of the float model,
``model.int8.onnx``. Everything is written to a temporary folder and renamed into place only
after onnxruntime matched Keras on the whole test split at batch sizes 1 and 32.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np

import graft
from graft import gate as release_gate, model as graft_model, model_card, onnx_meta, onnx_passes, provenance, splits
from graft.atomic import atomic_path, write_json
from graft.config import Params
from graft.summary import split_counts

FLOAT_NAME, INT8_NAME = "model.onnx", "model.int8.onnx"


class ParityError(RuntimeError):
    """onnxruntime and Keras disagree beyond the tolerance."""


def _normalization_reads_its_variables(model) -> None:
    """Keras' Normalization layer (inside EfficientNet) keeps its mean and variance as eager
    tensors, which the ONNX converter turns into graph inputs nobody feeds; point them at the
    layer's own (per-channel) variables instead, which are exported as constants."""
    import keras

    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.Normalization) and layer.input_mean is None and layer.built:
            ndim = len(layer._build_input_shape)
            if layer._keep_axis != (ndim - 1,):
                raise RuntimeError(f"{layer.name}: only per-channel Normalization layers can be exported")
            layer.mean, layer.variance = layer.adapt_mean, layer.adapt_variance


def to_onnx(model, path: Path, *, opset: int, metadata: dict[str, str]) -> None:
    """Export an inference model (no training-only layers) with a named output and metadata."""
    import onnx
    import tensorflow as tf

    _normalization_reads_its_variables(model)
    model(np.zeros((1, *model.input_shape[1:]), dtype="uint8"))  # Keras needs a call before export
    signature = [tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8, name=onnx_meta.INPUT_NAME)]
    with tempfile.TemporaryDirectory(prefix="graft-onnx-") as tmp:
        raw_path = Path(tmp) / "raw.onnx"
        model.export(str(raw_path), format="onnx", opset_version=opset, input_signature=signature, verbose=False)
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
    onnx_passes.scaling_after_layout(proto)  # same outputs, without onnxruntime's slow NHWC Mul
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def onnx_predict(path: Path, x: np.ndarray, *, batch_size: int) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([onnx_meta.OUTPUT_NAME], {onnx_meta.INPUT_NAME: x[i:i + batch_size]})[0]
                           for i in range(0, len(x), batch_size)])


def check_parity(path: Path, *, expected: np.ndarray, x: np.ndarray, y: np.ndarray | None,
                 tolerance: float, batch_sizes=(1, 32)) -> dict:
    """onnxruntime against Keras' probabilities ``expected`` at each batch size: max |diff| within
    ``tolerance``, the same top-1 on every image (and so the same accuracy). Raises :class:`ParityError`."""
    result: dict = {"images": int(len(x)), "tolerance": tolerance}
    for batch_size in batch_sizes:
        ours = onnx_predict(path, x, batch_size=batch_size)
        diff = float(np.abs(ours - expected).max()) if len(x) else 0.0
        same = int((ours.argmax(1) == expected.argmax(1)).sum())
        entry = {"max_abs_diff": diff, "same_top1": same}
        if y is not None and len(y):
            entry["accuracy"] = float((ours.argmax(1) == y).mean())
        result[f"batch_{batch_size}"] = entry
        if diff > tolerance or same != len(x):
            raise ParityError(f"onnxruntime at batch size {batch_size} differs from Keras by up to {diff:.3g} "
                              f"(tolerance {tolerance}); top-1 agrees on {same}/{len(x)} test images. "
                              "Nothing was published.")
    result["max_abs_diff"] = max(result[f"batch_{b}"]["max_abs_diff"] for b in batch_sizes)
    return result


def try_int8(float_path: Path, out: Path, *, calibration: np.ndarray, x: np.ndarray, y: np.ndarray,
             float_accuracy: float, max_drop_points: float) -> dict:
    """Quantize; keep ``out`` only if its test accuracy is within ``max_drop_points`` of float."""
    from graft.quantize import quantize

    try:
        passes = quantize(float_path, out, calibration=calibration)
        accuracy = float((onnx_predict(out, x, batch_size=32).argmax(1) == y).mean())
    except Exception as err:  # quantization is an optional extra: report, ship the float model
        out.unlink(missing_ok=True)
        return {"shipped": False, "reason": f"quantization failed: {err.__class__.__name__}: {err}"}
    drop = (float_accuracy - accuracy) * 100
    report = {"accuracy": accuracy, "float_accuracy": float_accuracy, "drop_points": round(drop, 4),
              "max_drop_points": max_drop_points, "shipped": drop <= max_drop_points, "graph_passes": passes}
    if not report["shipped"]:
        out.unlink()
        report["reason"] = f"test accuracy {drop:.2f} points below float (limit {max_drop_points})"
    return report


def export(*, model, out_dir: Path, test_x: np.ndarray, test_y: np.ndarray, calibration: np.ndarray | None,
           classes, image, opset: int, tolerance: float, int8_max_drop: float, extra: dict,
           card: dict | None = None, gate: dict | None = None, allow_unblessed: bool = False) -> dict:
    """Write and verify the export folder; return the export report. With a ``gate`` decision,
    refuse (:class:`graft.gate.GateRefused`, nothing written) an unblessed model unless allowed."""
    if gate is not None:
        release_gate.require(gate, allow_unblessed=allow_unblessed)
        extra = {**extra, "gate": {"blessed": gate["blessed"], "reasons": gate["reasons"],
                                   "published_anyway": not gate["blessed"]}}
    input_spec = {"name": onnx_meta.INPUT_NAME, "height": image.height, "width": image.width,
                  "channels": image.channels}
    metadata = onnx_meta.describe(classes=classes, height=image.height, width=image.width,
                                  channels=image.channels, extra={"version": graft.__version__, **extra})
    expected = model.predict(test_x, batch_size=256, verbose=0)
    with atomic_path(out_dir, directory=True) as tmp:
        to_onnx(model, tmp / FLOAT_NAME, opset=opset, metadata=metadata)
        report = {"parity": check_parity(tmp / FLOAT_NAME, expected=expected, x=test_x, y=test_y, tolerance=tolerance)}
        if calibration is not None:
            report["int8"] = try_int8(tmp / FLOAT_NAME, tmp / INT8_NAME, calibration=calibration, x=test_x,
                                      y=test_y, float_accuracy=report["parity"]["batch_32"]["accuracy"],
                                      max_drop_points=int8_max_drop)
        write_json(tmp / "labels.json", {"classes": list(classes), "input": input_spec,
                                         "output": onnx_meta.OUTPUT_NAME})
        if card is not None:
            (tmp / "model_card.md").write_text(model_card.render(**card, input_spec=input_spec,
                                                                 int8=report.get("int8")))
        if gate is not None:
            report["gate"] = extra["gate"]
        write_json(tmp / "export.json", report)
    return report


def calibration_set(train_x: np.ndarray, *, seed: int, count: int) -> np.ndarray:
    """The train images the int8 model is calibrated on: ``count`` of them, seeded, in split order."""
    return train_x[np.sort(np.random.default_rng(seed).permutation(len(train_x))[:count])]


def run(params: Params) -> None:
    paths = params.paths
    test, train = splits.load(params, "test"), splits.load(params, "train")
    scores = json.loads((paths.metrics / "metrics.json").read_text())
    gate = json.loads((paths.metrics / "gate.json").read_text())
    pretrain = json.loads((paths.metrics / "pretrain.json").read_text())
    prov = {"version": graft.__version__, "git_revision": provenance.git_revision(),
            "data_hash": provenance.dvc_hash(paths.split), "params_hash": provenance.params_hash(params)}
    extra = {**prov, "base": params.base.kind,
             "metrics": {name: {"accuracy": scores[name]["accuracy"], "loss": scores[name]["loss"]}
                         for name in ("head", "finetuned")}}
    e = params.export
    calibration = calibration_set(train.x, seed=params.seed, count=e.calibration_images) if e.quantize else None
    report = export(model=graft_model.load(paths.finetuned_model), out_dir=paths.export, test_x=test.x,
                    test_y=test.y, calibration=calibration, classes=params.data.target_classes, image=params.image,
                    opset=e.opset, tolerance=e.tolerance, int8_max_drop=e.int8_max_drop, extra=extra,
                    card={"classes": params.data.target_classes, "counts": split_counts(paths.split / "split.csv"),
                          "scores": scores, "pretrain": pretrain, "provenance": prov,
                          "params": dataclasses.asdict(params), "gate": gate},
                    gate=gate, allow_unblessed=e.allow_unblessed)
    parity = report["parity"]
    print(f"export: {paths.export / FLOAT_NAME}: onnxruntime matches Keras on {parity['images']} test images "
          f"at batch 1 and 32 (max |diff| {parity['max_abs_diff']:.2g})")
    if "int8" in report:
        q = report["int8"]
        print(f"export: int8 {'shipped as ' + INT8_NAME if q['shipped'] else 'not shipped'}"
              + (f", test accuracy {q['accuracy']:.4f} vs float {q['float_accuracy']:.4f}" if "accuracy" in q else "")
              + (f" ({q['reason']})" if not q["shipped"] else ""))
