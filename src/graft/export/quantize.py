"""int8 static quantization (QDQ) of the exported model with onnxruntime, calibrated on train images,
then graft's two int8 graph passes (graft.export.int8_passes)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from graft.errors import QuantizationUnavailable
from graft.export import contract
from graft.export.int8_passes import pack_pixel_columns, pixels_as_quantized_input


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over an array of uint8 images."""

    def __init__(self, x: np.ndarray, batch_size: int = 32):
        self._batches = iter([x[i:i + batch_size] for i in range(0, len(x), batch_size)])

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {contract.INPUT_NAME: batch}


def quantize(float_model: Path, out: Path, *, calibration: np.ndarray, pixels_as_quantized: bool = True,
             pack_columns: bool = True) -> dict[str, bool]:
    """Write an int8 QDQ model (int8 weights per channel, uint8 activations: the VNNI fast path).
    With ``pixels_as_quantized``, the uint8 input feeds the first op directly
    (:func:`pixels_as_quantized_input`); with ``pack_columns`` too, a first convolution over a
    number of input channels that is not a multiple of 4 (grayscale, RGB) reads the pixels with
    columns packed into channels (:func:`pack_pixel_columns`). Both passes keep every output bit.
    Returns which of them applied (a graph they do not match is left as quantize_static wrote it).
    :class:`QuantizationUnavailable` when onnxruntime's quantizer fails (the float model is still
    shipped); a failure in graft's own passes is a bug, and raises as it is."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="graft-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(out), _Batches(calibration), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            calibrate_method=CalibrationMethod.MinMax)
        except Exception as err:  # onnxruntime's quantizer, any type: it cannot quantize this graph
            raise QuantizationUnavailable(f"onnxruntime could not quantize the model: {err.__class__.__name__}: "
                                          f"{err}") from err
    source, proto = onnx.load(str(float_model)), onnx.load(str(out))
    passes = {"pixels_as_quantized_input": pixels_as_quantized and pixels_as_quantized_input(proto)}
    passes["pack_pixel_columns"] = pack_columns and passes["pixels_as_quantized_input"] and pack_pixel_columns(proto)
    # keep the float model's metadata (classes, input contract, provenance; the standard fields,
    # which the quantizer replaces with its own) on the int8 file; the input and output keep the
    # float model's named batch axis as they are
    for field in ("doc_string", "model_version", "producer_name", "producer_version"):
        setattr(proto, field, getattr(source, field))
    del proto.metadata_props[:]
    proto.metadata_props.extend(source.metadata_props)
    proto.metadata_props.add(key="graft.precision", value="int8")
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    return passes
