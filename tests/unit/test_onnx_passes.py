"""Unit: the pixel-scaling rewrite of an exported graph keeps every output bit for bit."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from graft.export.passes import scaling_after_layout


def exported_like(*, factor_is_constant: bool = True) -> onnx.ModelProto:
    """What the Keras export gives for pixels: uint8 NHWC -> Cast -> Mul(1/255) -> Transpose to NCHW -> Relu."""
    pixels = helper.make_tensor_value_info("pixels", TensorProto.UINT8, [None, 5, 4, 3])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 3, 5, 4])
    inputs = [pixels]
    if not factor_is_constant:
        inputs.append(helper.make_tensor_value_info("factor", TensorProto.FLOAT, []))
    graph = helper.make_graph(
        [helper.make_node("Cast", ["pixels"], ["x"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["x", "factor"], ["scaled"]),
         helper.make_node("Transpose", ["scaled"], ["nchw"], perm=[0, 3, 1, 2]),
         helper.make_node("Relu", ["nchw"], ["out"])],
        "g", inputs, [out],
        initializer=[numpy_helper.from_array(np.array(1 / 255, np.float32), "factor")] if factor_is_constant else [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return onnx.shape_inference.infer_shapes(model)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"pixels": x})[0]


def test_layout_ops_run_first_on_the_uint8_pixels_with_the_same_outputs():
    model = exported_like()
    x = np.random.default_rng(0).integers(0, 256, (7, 5, 4, 3), dtype=np.uint8)
    x[0] = 255
    before = run(model, x)
    assert scaling_after_layout(model)
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Transpose", "Cast", "Mul", "Relu"]
    np.testing.assert_array_equal(run(model, x), before)  # bit for bit


def test_other_graphs_are_left_as_they_are():
    rewritten = exported_like()
    assert scaling_after_layout(rewritten)
    for model in (exported_like(factor_is_constant=False), rewritten):  # a fed factor; a second pass
        serialized = model.SerializeToString()
        assert not scaling_after_layout(model)
        assert model.SerializeToString() == serialized
