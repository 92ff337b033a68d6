"""int8 static quantization (QDQ) of the exported model with onnxruntime, calibrated on train images."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from graft import onnx_meta


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over an array of uint8 images."""

    def __init__(self, x: np.ndarray, batch_size: int = 32):
        self._batches = iter([x[i:i + batch_size] for i in range(0, len(x), batch_size)])

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {onnx_meta.INPUT_NAME: batch}


def quantize(float_model: Path, out: Path, *, calibration: np.ndarray) -> None:
    """Write an int8 QDQ model (int8 weights per channel, uint8 activations: the VNNI fast path)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="graft-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out), _Batches(calibration), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        calibrate_method=CalibrationMethod.MinMax)
    # keep the float model's metadata (classes, input contract, provenance) on the int8 file
    source, proto = onnx.load(str(float_model)), onnx.load(str(out))
    del proto.metadata_props[:]
    proto.metadata_props.extend(source.metadata_props)
    proto.metadata_props.add(key="graft.precision", value="int8")
    onnx.save(proto, str(out))
