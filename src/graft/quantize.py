"""int8 static quantization (QDQ) of the exported model with onnxruntime, calibrated on train images."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from graft import onnx_meta
from graft.onnx_passes import LAYOUT_OPS, is_layout_step, sole_consumer


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over an array of uint8 images."""

    def __init__(self, x: np.ndarray, batch_size: int = 32):
        self._batches = iter([x[i:i + batch_size] for i in range(0, len(x), batch_size)])

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {onnx_meta.INPUT_NAME: batch}


def quantize(float_model: Path, out: Path, *, calibration: np.ndarray, pixels_as_quantized: bool = True,
             float_input_conv: bool = True) -> None:
    """Write an int8 QDQ model (int8 weights per channel, uint8 activations: the VNNI fast path).
    With ``pixels_as_quantized``, the uint8 input feeds the first op directly
    (:func:`pixels_as_quantized_input`); with ``float_input_conv`` too, a first convolution over
    a single input channel stays in float (:func:`single_channel_input_conv`)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="graft-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
        conv = single_channel_input_conv(onnx.load(str(prepared))) if float_input_conv else None
        quantize_static(str(prepared), str(out), _Batches(calibration), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=[conv] if conv else [])
    source, proto = onnx.load(str(float_model)), onnx.load(str(out))
    if pixels_as_quantized:
        pixels_as_quantized_input(proto)
    # keep the float model's metadata (classes, input contract, provenance) on the int8 file
    del proto.metadata_props[:]
    proto.metadata_props.extend(source.metadata_props)
    proto.metadata_props.add(key="graft.precision", value="int8")
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))


def single_channel_input_conv(model) -> str | None:
    """The name of the float model's first convolution when it reads one channel (grayscale
    pixels) straight from the pixel scaling (``Cast``, ``Mul``, layout ops), else None.

    onnxruntime's int8 convolution is slow on a single input channel: a 3x3 kernel gives dot
    products of length 9, so the time goes into per-pixel work rather than arithmetic. On the
    default model (profiled on one thread, batch 32) it took about 570 us, a quarter of the int8
    model's time, against about 100 us for the same convolution in float (onnxruntime's blocked
    kernel, the whole batch at once). It is 1.5% of the model's FLOPs; kept in float it is
    faster and no less accurate (its input is exact, see :func:`pixels_as_quantized_input`); its
    output is quantized for the next convolution as before."""
    from onnx import numpy_helper

    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    only_consumer = sole_consumer(graph)
    tensor = graph.input[0].name
    while (node := only_consumer(tensor)) is not None:
        if node.op_type == "Conv":
            weight = initializers.get(node.input[1])
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            if weight is not None and group == 1 and numpy_helper.to_array(weight).shape[1] == 1:
                return node.name
            return None
        if node.op_type not in ("Cast", "Mul", *LAYOUT_OPS):
            return None
        tensor = node.output[0]
    return None


def pixels_as_quantized_input(model) -> bool:
    """Let the quantized model read its uint8 pixels as what they are: a quantized tensor.

    The float model scales raw pixels inside the graph: ``Cast(uint8 -> float)``, ``Mul`` by a
    constant ``c`` (1/255), then for the compact CNN a ``Reshape`` from NHWC to NCHW. Static
    quantization wraps each of these in QuantizeLinear/DequantizeLinear pairs, and onnxruntime
    runs the scaling as a QLinearMul (about a fifth of the default model's int8 time). But
    ``float(x) * c`` is exactly ``DequantizeLinear(x, scale=c, zero_point=0)``; so this pass
    replaces the chain ``Cast -> Q/DQ -> Mul(c) -> Q/DQ [-> layout ops -> Q/DQ]`` with
    ``[layout ops on uint8 ->] DequantizeLinear(c, 0)``, and the first convolution reads the
    pixels directly. Its input is then the float model's ``float(x) * c`` itself rather than a
    re-quantized copy (the same values when the calibration images reached 255: the pixel
    scaling's calibrated scale is then ``c``; otherwise the unrewritten model would clip).

    When the op after the scaling was kept in float (:func:`single_channel_input_conv`), the
    pixels reach it as ``Cast`` and ``Mul(c)`` instead (after the layout ops, on uint8): a
    DequantizeLinear there would make onnxruntime quantize that convolution after all.

    Changes ``model`` (an onnx ModelProto from ``quantize_static``, QDQ format) in place and
    returns True; returns False and leaves it untouched when the graph does not start that way
    (e.g. a ``x / 127.5 - 1`` scaling, whose zero point 127.5 is not an integer)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    producer = {name: node for node in graph.node for name in node.output}
    only_consumer = sole_consumer(graph)

    def scalar_constant(name: str):
        """A scalar constant's float32 value and the nodes computing it (an initializer, or a
        DequantizeLinear of initializers used by nothing else), or (None, [])."""
        if name in initializers:
            value = numpy_helper.to_array(initializers[name])
            return (np.float32(value.reshape(())), []) if value.size == 1 and value.dtype == np.float32 else (None, [])
        node = producer.get(name)
        if (node is None or node.op_type != "DequantizeLinear" or only_consumer(name) is None
                or not all(i in initializers for i in node.input if i)):
            return None, []
        q, scale, *zero = (numpy_helper.to_array(initializers[i]) for i in node.input if i)
        if q.size != 1 or scale.size != 1 or any(z.size != 1 for z in zero):
            return None, []
        level = np.int32(q.reshape(())) - (np.int32(zero[0].reshape(())) if zero else np.int32(0))
        return np.float32(level) * np.float32(scale.reshape(())), [node]  # as DequantizeLinear computes it

    pixels = graph.input[0]
    start = pixels.name  # after the layout ops that already run on the uint8 pixels (graft.onnx_passes)
    while (node := only_consumer(start)) is not None and is_layout_step(node, start, initializers):
        start = node.output[0]
    cast = only_consumer(start)
    if (pixels.type.tensor_type.elem_type != TensorProto.UINT8 or cast is None or cast.op_type != "Cast"
            or helper.get_attribute_value(cast.attribute[0]) != TensorProto.FLOAT):
        return False
    removed, layout, factors = [cast], [], []
    end, ends_dequantized = cast.output[0], False
    while (node := only_consumer(end)) is not None:
        if node.op_type == "QuantizeLinear" and (dq := only_consumer(node.output[0])) is not None \
                and dq.op_type == "DequantizeLinear":
            removed += [node, dq]
            end, ends_dequantized = dq.output[0], True
            continue
        if node.op_type == "Mul" and not factors and not layout:
            factor, makers = scalar_constant(node.input[1] if node.input[0] == end else node.input[0])
            if factor is None:
                break
            factors.append(factor)
            removed += [node, *makers]
        elif is_layout_step(node, end, initializers):
            layout.append(node)
        else:
            break
        end, ends_dequantized = node.output[0], False
    if not ends_dequantized or len(factors) != 1 or not (np.isfinite(factors[0]) and factors[0] > 0):
        return False

    new_nodes, tensor = [], start
    for node in layout:  # the same layout ops, on the uint8 pixels
        copy = helper.make_node(node.op_type, [tensor, *node.input[1:]], [f"{node.output[0]}_uint8"],
                                name=f"{node.name}_uint8", domain=node.domain)
        copy.attribute.extend(node.attribute)
        new_nodes.append(copy)
        tensor = copy.output[0]
    scale = f"{pixels.name}_scale"
    graph.initializer.append(numpy_helper.from_array(np.array(factors[0], np.float32), scale))
    following = only_consumer(end)
    if following is not None and following.op_type == "Conv" and following.input[1] in initializers:
        # a float convolution (excluded from quantization): float(x) * c, as the float model computes it
        new_nodes += [helper.make_node("Cast", [tensor], [f"{pixels.name}_float"], name=f"{pixels.name}_Cast",
                                       to=TensorProto.FLOAT),
                      helper.make_node("Mul", [f"{pixels.name}_float", scale], [end], name=f"{pixels.name}_Mul")]
    else:
        zero_point = f"{pixels.name}_zero_point"
        graph.initializer.append(numpy_helper.from_array(np.array(0, np.uint8), zero_point))
        new_nodes.append(helper.make_node("DequantizeLinear", [tensor, scale, zero_point], [end],
                                          name=f"{pixels.name}_DequantizeLinear"))

    gone = {id(node) for node in removed + layout}
    first = next(i for i, node in enumerate(graph.node) if id(node) in gone)
    if start != pixels.name:  # after the layout ops that make ``start`` (a removed constant may come earlier)
        first = max(first, 1 + next(i for i, node in enumerate(graph.node) if start in node.output))
    nodes = list(graph.node)
    kept = [n for n in nodes[:first] if id(n) not in gone] + new_nodes + [n for n in nodes[first:] if id(n) not in gone]
    del graph.node[:]
    graph.node.extend(kept)  # still topologically sorted: the new nodes need only ``start``
    used = {name for node in graph.node for name in node.input}
    unused = [i for i in graph.initializer if i.name not in used]
    for initializer in unused:
        graph.initializer.remove(initializer)
    produced = {name for node in graph.node for name in node.output}
    stale = [v for v in graph.value_info if v.name not in produced or v.name == end]
    for info in stale:
        graph.value_info.remove(info)
    return True
