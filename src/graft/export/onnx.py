"""Keras model -> ONNX file: an inference model (no training-only layers), raw uint8 pixels in
(preprocessing lives inside the model), named probabilities out, graft's metadata attached."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from graft.export import contract, passes


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
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
