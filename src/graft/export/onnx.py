"""Keras model -> ONNX file: an inference model (no training-only layers), raw uint8 pixels in
(preprocessing lives inside the model), named probabilities out, graft's metadata attached: the
standard fields (``doc_string``, ``model_version``, ``producer_name`` and ``producer_version``,
a batch axis named ``batch``) and graft's own (``metadata_props``, graft.export.contract)."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import graft
from graft.export import contract, passes

PRODUCER = "graft"
BATCH_AXIS = "batch"  # the symbolic name of the first axis of the input and the output


def model_version(*, exported_at: datetime) -> int:
    """The ONNX ``model_version`` of a model exported at ``exported_at``: its UTC time as the
    integer YYYYMMDDHHMMSS (20261202143005), which grows with every export (a second apart or
    more), fits ONNX's int64 and reads as a date. The content's own identity (git revision, data
    and params hashes) is in graft's metadata; this field orders the exports."""
    return int(exported_at.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S"))


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


def name_batch_axis(graph) -> None:
    """Give the first axis of the graph's input and outputs the symbolic name ``batch`` instead of
    the converter's ``unk__NN``, everywhere that symbol appears (the recorded shapes of the
    tensors in between too), so shape inference and consumers see one batch axis."""
    old = {v.type.tensor_type.shape.dim[0].dim_param for v in (*graph.input[:1], *graph.output)
           if v.type.tensor_type.shape.dim and not v.type.tensor_type.shape.dim[0].HasField("dim_value")}
    old.discard("")
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in old:
                dim.dim_param = BATCH_AXIS
    for value in (*graph.input[:1], *graph.output):  # an axis with no symbol at all gets the name too
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_AXIS


def to_onnx(model, path: Path, *, opset: int, metadata: dict[str, str], doc_string: str, version: int) -> None:
    """Export an inference model (no training-only layers) with a named output, a named batch
    axis and metadata: ``doc_string`` (what it classifies, its input contract), ``version`` (the
    ONNX ``model_version``, :func:`model_version`) and graft's ``metadata`` (metadata_props)."""
    import onnx
    import tensorflow as tf

    _normalization_reads_its_variables(model)
    model(np.zeros((1, *model.input_shape[1:]), dtype="uint8"))  # Keras needs a call before export
    signature = [tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8, name=contract.INPUT_NAME)]
    with tempfile.TemporaryDirectory(prefix="graft-onnx-") as tmp:
        raw_path = Path(tmp) / "raw.onnx"
        model.export(str(raw_path), format="onnx", opset_version=opset, input_signature=signature, verbose=False)
        proto = onnx.load(str(raw_path))
    graph = proto.graph
    if graph.input[0].name != contract.INPUT_NAME:
        raise RuntimeError(f"exported input is named {graph.input[0].name!r}, expected {contract.INPUT_NAME!r}")
    old = graph.output[0].name
    if old != contract.OUTPUT_NAME:
        for node in graph.node:
            node.output[:] = [contract.OUTPUT_NAME if o == old else o for o in node.output]
            node.input[:] = [contract.OUTPUT_NAME if i == old else i for i in node.input]
        graph.output[0].name = contract.OUTPUT_NAME
    passes.scaling_after_layout(proto)  # same outputs, without onnxruntime's slow NHWC Mul
    name_batch_axis(graph)
    proto.doc_string, proto.model_version = doc_string, version
    proto.producer_name, proto.producer_version = PRODUCER, graft.__version__
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
