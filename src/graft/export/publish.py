"""The folder other teams consume, verified before it is published (stage ``export``).

``<paths.export>/`` holds ``model.onnx`` (raw uint8 pixels in, probabilities out, metadata
readable with onnxruntime alone), ``labels.json``, ``model_card.md``, ``export.json`` and, when
its test accuracy is within ``export.int8_max_drop`` points of the float model,
``model.int8.onnx``. Everything is written to a temporary folder and renamed into place only
after onnxruntime matched Keras on the whole test split at batch sizes 1 and 32.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import graft
from graft import artifacts
from graft.errors import QuantizationUnavailable
from graft.evaluate.gate import require
from graft.export import card, contract
from graft.export.onnx import model_version, to_onnx
from graft.export.parity import check_parity, onnx_predict
from graft.files import atomic_path, write_json
from graft.model import precision
from graft.records import ExportRecord, Labels


def try_int8(float_path: Path, out: Path, *, calibration: np.ndarray, x: np.ndarray, y: np.ndarray,
             float_accuracy: float, max_drop_points: float) -> dict:
    """Quantize; keep ``out`` only if its test accuracy is within ``max_drop_points`` of float."""
    from graft.export.quantize import quantize

    try:
        passes = quantize(float_path, out, calibration=calibration)
    except QuantizationUnavailable as err:  # an optional extra onnxruntime cannot make here: ship the float model
        out.unlink(missing_ok=True)
        return {"shipped": False, "reason": str(err)}
    accuracy = float((onnx_predict(out, x, batch_size=32).argmax(1) == y).mean())
    drop = (float_accuracy - accuracy) * 100
    report = {"accuracy": accuracy, "float_accuracy": float_accuracy, "drop_points": round(drop, 4),
              "max_drop_points": max_drop_points, "shipped": drop <= max_drop_points, "graph_passes": passes}
    if not report["shipped"]:
        out.unlink()
        report["reason"] = f"test accuracy {drop:.2f} points below float (limit {max_drop_points})"
    return report


def export(*, model, out_dir: Path, test_x: np.ndarray, test_y: np.ndarray, calibration: np.ndarray | None,
           classes, image, rules, settings, extra: dict, card_inputs: dict | None = None, gate=None) -> ExportRecord:
    """Write and verify the export folder (``settings``: the ``export`` params section); return its
    record. ``rules``: the image files the model takes (graft.data.decode.Rules), for its
    metadata. With a ``gate`` decision (a GateRecord), refuse (:class:`graft.errors.GateRefused`,
    nothing written) an unblessed model unless ``export.allow_unblessed``."""
    gate_note = None
    if gate is not None:
        require(gate, allow_unblessed=settings.allow_unblessed)
        gate_note = {"blessed": gate.blessed, "reasons": gate.reasons, "published_anyway": not gate.blessed}
        extra = {**extra, "gate": gate_note}
    input_spec = {"name": contract.INPUT_NAME, "height": image.height, "width": image.width,
                  "channels": image.channels}
    metadata = contract.describe(classes=classes, height=image.height, width=image.width, channels=image.channels,
                                 formats=rules.formats, max_pixels=rules.max_pixels,
                                 extra={"version": graft.__version__, **extra})
    model = precision.cast(model, precision.FLOAT32)  # the inference model is float32, whatever trained it
    expected = model.predict(test_x, batch_size=256, verbose=0)
    name = {a: a.name for a in (artifacts.MODEL_ONNX, artifacts.MODEL_INT8, artifacts.LABELS, artifacts.MODEL_CARD,
                                artifacts.EXPORT_RECORD)}
    with atomic_path(out_dir, directory=True) as tmp:
        float_path = tmp / name[artifacts.MODEL_ONNX]
        version = model_version(exported_at=datetime.now(timezone.utc))
        to_onnx(model, float_path, opset=settings.opset, metadata=metadata, version=version,
                doc_string=contract.doc_string(classes=classes, height=image.height, width=image.width,
                                               channels=image.channels))
        parity = check_parity(float_path, expected=expected, x=test_x, y=test_y, tolerance=settings.tolerance)
        int8 = None
        if calibration is not None:
            int8 = try_int8(float_path, tmp / name[artifacts.MODEL_INT8], calibration=calibration, x=test_x,
                            y=test_y, float_accuracy=parity["batch_32"]["accuracy"],
                            max_drop_points=settings.int8_max_drop)
        write_json(tmp / name[artifacts.LABELS], Labels(classes=list(classes), input=input_spec,
                                                        output=contract.OUTPUT_NAME).to_json())
        if card_inputs is not None:
            (tmp / name[artifacts.MODEL_CARD]).write_text(card.render(**card_inputs, input_spec=input_spec, int8=int8))
        record = ExportRecord(model_version=version, parity=parity, int8=int8, gate=gate_note)
        write_json(tmp / name[artifacts.EXPORT_RECORD], record.to_json())
    return record


def calibration_set(train_x: np.ndarray, *, seed: int, count: int) -> np.ndarray:
    """The train images the int8 model is calibrated on: ``count`` of them, seeded, in split order."""
    return train_x[np.sort(np.random.default_rng(seed).permutation(len(train_x))[:count])]


