"""Unit: the int8 graph passes keep every output bit, on small models shaped like graft's exports."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from graft.export.int8_passes import pack_pixel_columns
from graft.export.quantize import quantize
from tests.helpers import optimized_ops


def exported_like(tmp_path, *, height: int, width: int, channels: int, kernel=(3, 3), stride: int = 1,
                  relu: bool = True):
    """A float model as graft's export leaves it: uint8 NHWC pixels -> NCHW (on uint8) -> Cast ->
    Mul(1/255) -> Conv [-> Relu] -> Conv -> Relu -> GlobalAveragePool -> Flatten."""
    rng = np.random.default_rng(channels * 100 + kernel[0] * 10 + kernel[1])
    layout = (helper.make_node("Reshape", ["pixels", "nchw_shape"], ["nchw"]) if channels == 1
              else helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2]))
    initializers = [
        numpy_helper.from_array(np.array(1 / 255, np.float32), "factor"),
        numpy_helper.from_array(rng.normal(0, 0.5, (8, channels, *kernel)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b2"),
    ]
    if channels == 1:
        initializers.append(numpy_helper.from_array(np.array([-1, 1, height, width], np.int64), "nchw_shape"))
    first = "r1" if relu else "c1"
    nodes = [layout,
             helper.make_node("Cast", ["nchw"], ["x"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["x", "factor"], ["scaled"]),
             helper.make_node("Conv", ["scaled", "w1", "b1"], ["c1"], strides=[stride] * 2,
                              pads=[kernel[0] // 2, kernel[1] // 2] * 2),
             *([helper.make_node("Relu", ["c1"], ["r1"])] if relu else []),
             helper.make_node("Conv", [first, "w2", "b2"], ["c2"], pads=[1] * 4),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["out"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("pixels", TensorProto.UINT8,
                                                                         [None, height, width, channels])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 8])], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "float.onnx"
    onnx.save(onnx.shape_inference.infer_shapes(model), str(path))
    return path


def run(path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"pixels": x})[0]


def int8(tmp_path, source, calibration, *, pack: bool):
    out = tmp_path / ("packed.onnx" if pack else "unpacked.onnx")
    passes = quantize(source, out, calibration=calibration, pack_columns=pack)
    return out, passes


@pytest.mark.parametrize(("height", "width", "channels", "kernel", "relu"), [
    (6, 8, 1, (3, 3), True),     # the default model's case: grayscale, 3x3
    (5, 12, 3, (5, 5), True),    # RGB (a Transpose to NCHW), a 5x5 kernel
    (4, 4, 1, (3, 3), False),    # one packed column; no Relu between the conv and its quantization
    (5, 8, 1, (1, 1), True),     # a 1x1 kernel: reaches no neighbouring packed column
    (5, 16, 2, (3, 11), True),   # two channels, a 3x11 kernel: reaches two packed columns either way
])
def test_packed_columns_give_the_same_outputs_bit_for_bit(tmp_path, height, width, channels, kernel, relu):
    source = exported_like(tmp_path, height=height, width=width, channels=channels, kernel=kernel, relu=relu)
    rng = np.random.default_rng(0)
    calibration = rng.integers(0, 256, (16, height, width, channels), dtype=np.uint8)
    calibration[0] = 255
    packed, passes = int8(tmp_path, source, calibration, pack=True)
    unpacked, unpacked_passes = int8(tmp_path, source, calibration, pack=False)
    assert passes == {"pixels_as_quantized_input": True, "pack_pixel_columns": True}
    assert unpacked_passes == {"pixels_as_quantized_input": True, "pack_pixel_columns": False}

    weights = [numpy_helper.to_array(i) for i in onnx.load(str(packed)).graph.initializer]
    reach = -(-(kernel[1] // 2) // 4)  # packed columns the kernel reaches either way
    assert any(w.dtype == np.int8 and w.shape == (32, 4 * channels, kernel[0], 2 * reach + 1) for w in weights)
    x = rng.integers(0, 256, (9, height, width, channels), dtype=np.uint8)
    x[0], x[1] = 0, 255
    np.testing.assert_array_equal(run(packed, x), run(unpacked, x))
    np.testing.assert_array_equal(run(packed, x[:1]), run(unpacked, x[:1]))
    # what onnxruntime runs: both int8 convolutions, and no transposes to or from them
    ops = optimized_ops(packed, tmp_path)
    second_conv = ops.index("QLinearConv", ops.index("QLinearConv") + 1)
    assert ops.count("QLinearConv") == 2 and "Transpose" not in ops[:second_conv]


def _unpacked_int8(tmp_path, *, width: int = 8, channels: int = 1, stride: int = 1) -> onnx.ModelProto:
    source = exported_like(tmp_path, height=6, width=width, channels=channels, stride=stride)
    calibration = np.random.default_rng(1).integers(0, 256, (8, 6, width, channels), dtype=np.uint8)
    out, _ = int8(tmp_path, source, calibration, pack=False)
    return onnx.load(str(out))


def _first_conv(model: onnx.ModelProto):
    return next(n for n in model.graph.node if n.op_type == "Conv")


def _nonzero_weight_zero_point(model: onnx.ModelProto) -> onnx.ModelProto:
    weight_dq = next(n for n in model.graph.node if n.output[0] == _first_conv(model).input[1])
    zero = next(i for i in model.graph.initializer if i.name == weight_dq.input[2])
    zero.CopyFrom(numpy_helper.from_array(np.full(8, 3, np.int8), zero.name))
    return model


def _float_bias(model: onnx.ModelProto) -> onnx.ModelProto:
    conv = _first_conv(model)
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(8, np.float32), "float_bias"))
    conv.input[2] = "float_bias"
    return model


@pytest.mark.parametrize("case", ["width not divided by 4", "stride 2", "4 channels", "weight zero point not 0",
                                  "float bias"])
def test_packing_leaves_other_first_convolutions_alone(tmp_path, case):
    model = {
        "width not divided by 4": lambda: _unpacked_int8(tmp_path, width=10),
        "stride 2": lambda: _unpacked_int8(tmp_path, stride=2),
        "4 channels": lambda: _unpacked_int8(tmp_path, channels=4),
        # the packed kernel's zeros would not be weight 0; a float bias would need tiling too
        "weight zero point not 0": lambda: _nonzero_weight_zero_point(_unpacked_int8(tmp_path)),
        "float bias": lambda: _float_bias(_unpacked_int8(tmp_path)),
    }[case]()
    serialized = model.SerializeToString()
    assert not pack_pixel_columns(model)
    assert model.SerializeToString() == serialized
    (tmp_path / "control").mkdir()
    assert pack_pixel_columns(_unpacked_int8(tmp_path / "control"))  # the same graph otherwise: packed
