"""Unit: the int8 graph passes keep every output bit, on small models shaped like graft's exports."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from graft.quantize import pack_pixel_columns, quantize


def exported_like(tmp_path, *, height: int, width: int, channels: int, kernel: int = 3, stride: int = 1):
    """A float model as graft's export leaves it: uint8 NHWC pixels -> NCHW (on uint8) -> Cast ->
    Mul(1/255) -> Conv -> Relu -> Conv -> Relu -> GlobalAveragePool -> Flatten."""
    rng = np.random.default_rng(channels * 100 + kernel)
    pad = kernel // 2
    layout = (helper.make_node("Reshape", ["pixels", "nchw_shape"], ["nchw"]) if channels == 1
              else helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2]))
    initializers = [
        numpy_helper.from_array(np.array([-1, 1, height, width], np.int64), "nchw_shape"),
        numpy_helper.from_array(np.array(1 / 255, np.float32), "factor"),
        numpy_helper.from_array(rng.normal(0, 0.5, (8, channels, kernel, kernel)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b2"),
    ]
    nodes = [layout,
             helper.make_node("Cast", ["nchw"], ["x"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["x", "factor"], ["scaled"]),
             helper.make_node("Conv", ["scaled", "w1", "b1"], ["c1"], pads=[pad] * 4, strides=[stride] * 2),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1] * 4),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["out"])]
    if channels != 1:
        initializers = initializers[1:]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("pixels", TensorProto.UINT8,
                                                                         [None, height, width, channels])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 8])], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "float.onnx"
    onnx.save(onnx.shape_inference.infer_shapes(model), str(path))
    return path


def run(path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"pixels": x})[0]


def optimized_ops(path, tmp_path) -> list[str]:
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]


@pytest.mark.parametrize(("height", "width", "channels", "kernel"), [(6, 8, 1, 3), (5, 12, 3, 5), (4, 4, 1, 3)])
def test_packed_columns_give_the_same_outputs_bit_for_bit(tmp_path, height, width, channels, kernel):
    source = exported_like(tmp_path, height=height, width=width, channels=channels, kernel=kernel)
    rng = np.random.default_rng(0)
    calibration = rng.integers(0, 256, (16, height, width, channels), dtype=np.uint8)
    calibration[0] = 255
    packed, unpacked = tmp_path / "packed.onnx", tmp_path / "unpacked.onnx"
    quantize(source, packed, calibration=calibration)
    quantize(source, unpacked, calibration=calibration, pack_columns=False)

    graph = onnx.load(str(packed)).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    packed_weight = next(w for w in weights.values() if w.dtype == np.int8 and w.ndim == 4 and w.shape[0] == 32)
    assert packed_weight.shape == (32, 4 * channels, kernel, 3)  # 4 columns side by side, kernel reaching one either way
    x = rng.integers(0, 256, (9, height, width, channels), dtype=np.uint8)
    x[0], x[1] = 0, 255
    np.testing.assert_array_equal(run(packed, x), run(unpacked, x))
    np.testing.assert_array_equal(run(packed, x[:1]), run(unpacked, x[:1]))
    # what onnxruntime runs: both int8 convolutions, and no transposes to or from them
    ops = optimized_ops(packed, tmp_path)
    assert ops.count("QLinearConv") == 2 and "Transpose" not in ops[:ops.index("QLinearConv", ops.index("QLinearConv") + 1)]


@pytest.mark.parametrize(("width", "stride"), [(10, 1), (8, 2)])
def test_packing_leaves_other_first_convolutions_alone(tmp_path, width, stride):
    """A width that four does not divide, a strided convolution: left as they are."""
    source = exported_like(tmp_path, height=6, width=width, channels=1, stride=stride)
    calibration = np.random.default_rng(1).integers(0, 256, (8, 6, width, 1), dtype=np.uint8)
    out = tmp_path / "int8.onnx"
    quantize(source, out, calibration=calibration, pack_columns=False)
    model = onnx.load(str(out))
    serialized = model.SerializeToString()
    assert not pack_pixel_columns(model)
    assert model.SerializeToString() == serialized
