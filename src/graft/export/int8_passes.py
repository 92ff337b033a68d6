"""Two rewrites of the int8 QDQ graph that keep every output bit: the uint8 pixels read as the
quantized tensor they are, and a grayscale (or RGB) first convolution run on pixel columns
packed into channels, onnxruntime's fast int8 path."""

from __future__ import annotations

import numpy as np

from graft.export.passes import attribute, forget, is_layout_step, sole_consumer


def pixels_as_quantized_input(model) -> bool:
    """Let the quantized model read its uint8 pixels as what they are: a quantized tensor.

    The float model scales raw pixels inside the graph: ``Cast(uint8 -> float)`` and ``Mul`` by a
    constant ``c`` (1/255), after the layout ops from NHWC to NCHW, which the export already runs
    on the uint8 pixels (:func:`graft.onnx_passes.scaling_after_layout`). Static quantization
    wraps the Cast and the Mul in QuantizeLinear/DequantizeLinear pairs, and onnxruntime runs the
    scaling as a QLinearMul (about a fifth of the default model's int8 time). But
    ``float(x) * c`` is exactly ``DequantizeLinear(x, scale=c, zero_point=0)``; so this pass
    replaces the chain ``Cast -> Q/DQ -> Mul(c) -> Q/DQ`` with ``DequantizeLinear(c, 0)``, and the
    first convolution reads the pixels directly. Its input is then the float model's ``float(x) * c`` itself rather than a
    re-quantized copy (the same values when the calibration images reached 255: the pixel
    scaling's calibrated scale is then ``c``; otherwise the unrewritten model would clip).

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
            or attribute(cast, "to") != TensorProto.FLOAT):
        return False
    removed, factor = [cast], None
    end, ends_dequantized = cast.output[0], False
    while (node := only_consumer(end)) is not None:
        if node.op_type == "QuantizeLinear" and (dq := only_consumer(node.output[0])) is not None \
                and dq.op_type == "DequantizeLinear":
            removed += [node, dq]
            end, ends_dequantized = dq.output[0], True
            continue
        if node.op_type != "Mul" or factor is not None:
            break
        factor, makers = scalar_constant(node.input[1] if node.input[0] == end else node.input[0])
        if factor is None:
            break
        removed += [node, *makers]
        end, ends_dequantized = node.output[0], False
    if not ends_dequantized or factor is None or not (np.isfinite(factor) and factor > 0):
        return False

    scale = f"{pixels.name}_scale"
    graph.initializer.append(numpy_helper.from_array(np.array(factor, np.float32), scale))
    zero_point = f"{pixels.name}_zero_point"
    graph.initializer.append(numpy_helper.from_array(np.array(0, np.uint8), zero_point))
    new_nodes = [helper.make_node("DequantizeLinear", [start, scale, zero_point], [end],
                                  name=f"{pixels.name}_DequantizeLinear")]

    gone = {id(node) for node in removed}
    first = next(i for i, node in enumerate(graph.node) if id(node) in gone)
    if start != pixels.name:  # after the layout ops that make ``start`` (a removed constant may come earlier)
        first = max(first, 1 + next(i for i, node in enumerate(graph.node) if start in node.output))
    nodes = list(graph.node)
    kept = [n for n in nodes[:first] if id(n) not in gone] + new_nodes + [n for n in nodes[first:] if id(n) not in gone]
    del graph.node[:]
    graph.node.extend(kept)  # still topologically sorted: the new nodes need only ``start``
    forget(graph, {end})  # ``end`` is now the DequantizeLinear's output
    return True


def pack_pixel_columns(model, *, factor: int = 4) -> bool:
    """Run the first int8 convolution on pixels whose columns are packed into channels.

    onnxruntime's fast int8 convolution (batch-parallel, VNNI) needs a multiple of 4 input
    channels; a first convolution over grayscale (1) or RGB (3) pixels takes the slow path: dot
    products of 9 or 27, per-image work, about a quarter of the default model's int8 time. But a
    stride-1 convolution over ``[H, W, C]`` is also a convolution over ``[H, W/f, f*C]`` (``f``
    neighbouring columns side by side in the channels, which in NHWC memory is only a reshape)
    with ``f`` times the output channels, one set per packed column, and a kernel that reaches
    ``ceil(pad/f)`` packed columns either way. Its output ``[H, W/f, f*O]`` is ``[H, W, O]``
    again by a reshape. The packed kernel holds the same int8 weights, with zeros where a packed
    column falls outside the original kernel, so every integer sum is the same (by ONNX's
    semantics; onnxruntime's VNNI kernels compute them exactly, so the outputs are bit-identical).
    onnxruntime runs it (``[N, 28, 7, 4]`` in, 64 channels out on the default model) with no
    transposes around it, since both reshapes stay in its NHWC layout.

    Applies to ``pixels (uint8 NHWC) -> layout op to NCHW -> DequantizeLinear -> Conv (int8
    weights with zero points 0, stride 1, odd kernel with 'same' padding) -> [Relu ->]
    QuantizeLinear (one scale)`` when ``C`` is not a multiple of 4 and ``f`` divides ``W`` (run
    :func:`pixels_as_quantized_input` first). Changes ``model`` in place and returns True;
    otherwise returns False and leaves it untouched."""
    from onnx import helper, numpy_helper

    match = _packable_input_conv(model, factor)
    if match is None:
        return False
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    layout, pixel_dq, conv, weight_dq, bias_dq, quantize_node, (height, width, channels) = match
    weight = numpy_helper.to_array(initializers[weight_dq.input[0]])
    outputs, _, kernel_h, kernel_w = weight.shape
    pad_h, pad_w = kernel_h // 2, kernel_w // 2
    reach = -(-pad_w // factor)  # packed columns the kernel reaches on either side
    packed = np.zeros((factor * outputs, factor * channels, kernel_h, 2 * reach + 1), weight.dtype)
    for k in range(factor):  # output column k of a packed column, input column m
        for m in range(factor):
            for column in range(2 * reach + 1):
                dx = factor * (column - reach) + m - k  # offset in the original columns
                if -pad_w <= dx <= pad_w:
                    packed[k * outputs:(k + 1) * outputs, m * channels:(m + 1) * channels, :, column] = \
                        weight[:, :, :, dx + pad_w]
    initializers[weight_dq.input[0]].CopyFrom(numpy_helper.from_array(packed, weight_dq.input[0]))
    per_channel = [*weight_dq.input[1:], *(bias_dq.input if bias_dq is not None else [])]
    for name in filter(None, per_channel):  # the same for each of the f sets of output channels
        value = numpy_helper.to_array(initializers[name])
        if value.ndim == 1:  # 0-d: one value for all channels, left as it is
            initializers[name].CopyFrom(numpy_helper.from_array(np.tile(value, factor), name))
    for attr in conv.attribute:
        if attr.name == "pads":
            attr.ints[:] = [pad_h, reach, pad_h, reach]
        elif attr.name == "kernel_shape":
            attr.ints[:] = [kernel_h, 2 * reach + 1]

    pack_shape, unpack_shape = f"{graph.input[0].name}_packed_shape", f"{quantize_node.output[0]}_unpacked_shape"
    graph.initializer.extend([
        numpy_helper.from_array(np.array([-1, height, width // factor, factor * channels], np.int64), pack_shape),
        numpy_helper.from_array(np.array([-1, height, width, outputs], np.int64), unpack_shape)])
    packed_pixels = f"{graph.input[0].name}_packed"
    pack = [helper.make_node("Reshape", [graph.input[0].name, pack_shape], [packed_pixels],
                             name=f"{graph.input[0].name}_pack"),
            helper.make_node("Transpose", [packed_pixels], [pixel_dq.input[0]], name=f"{graph.input[0].name}_pack_nchw",
                             perm=[0, 3, 1, 2])]
    quantized = quantize_node.output[0]
    unpacked = f"{quantized}_unpacked"
    unpack = [helper.make_node("Transpose", [quantized], [f"{quantized}_nhwc"], name=f"{quantized}_nhwc", perm=[0, 2, 3, 1]),
              helper.make_node("Reshape", [f"{quantized}_nhwc", unpack_shape], [f"{unpacked}_nhwc"], name=f"{quantized}_unpack"),
              helper.make_node("Transpose", [f"{unpacked}_nhwc"], [unpacked], name=f"{quantized}_nchw", perm=[0, 3, 1, 2])]
    for node in graph.node:
        node.input[:] = [unpacked if name == quantized else name for name in node.input]
    nodes = []
    for node in graph.node:
        if node is layout:
            nodes += pack
            continue
        nodes.append(node)
        if node is quantize_node:
            nodes += unpack
    del graph.node[:]
    graph.node.extend(nodes)
    forget(graph, {pixel_dq.input[0], pixel_dq.output[0], weight_dq.output[0], conv.output[0], quantize_node.input[0],
                   quantized, *([bias_dq.output[0]] if bias_dq is not None else [])})  # reshaped
    return True


def _packable_input_conv(model, factor: int):
    """The nodes :func:`pack_pixel_columns` rewrites, and the pixels' (H, W, C); None when the
    graph does not start with exactly that chain or any condition of the packing fails."""
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    producer = {name: node for node in graph.node for name in node.output}
    only_consumer = sole_consumer(graph)
    readers = [name for node in graph.node for name in node.input]

    def constant(name: str):
        return numpy_helper.to_array(initializers[name]) if name in initializers else None

    def used_once(*names: str) -> bool:  # constants no other node reads (changing them changes only this conv)
        return all(name in initializers and readers.count(name) == 1 for name in names if name)

    pixels = graph.input[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in pixels.type.tensor_type.shape.dim]
    if pixels.type.tensor_type.elem_type != TensorProto.UINT8 or len(dims) != 4 or None in dims[1:]:
        return None
    height, width, channels = dims[1:]
    if channels % 4 == 0 or width % factor:
        return None
    layout = only_consumer(pixels.name)
    pixel_dq = layout and only_consumer(layout.output[0])
    conv = pixel_dq and only_consumer(pixel_dq.output[0])
    if (conv is None or not _nhwc_to_nchw(layout, (height, width, channels), initializers)
            or pixel_dq.op_type != "DequantizeLinear" or conv.op_type != "Conv" or conv.input[0] != pixel_dq.output[0]
            or any(v is None or v.size != 1 for v in map(constant, filter(None, pixel_dq.input[1:])))):
        return None
    weight_dq = producer.get(conv.input[1])
    if (weight_dq is None or weight_dq.op_type != "DequantizeLinear" or only_consumer(weight_dq.output[0]) is not conv
            or not used_once(*weight_dq.input)):
        return None
    weight, scale, *zero = (constant(name) for name in weight_dq.input)
    if weight.dtype != np.int8 or weight.ndim != 4 or weight.shape[1] != channels or (zero and np.any(zero[0])):
        return None  # the packed kernel's zeros are weight 0 only for int8 with zero point 0
    outputs, _, kernel_h, kernel_w = weight.shape
    if not (scale.ndim == 0 or (scale.shape == (outputs,) and attribute(weight_dq, "axis", 1) == 0)):
        return None
    bias_dq = producer.get(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else None
    if len(conv.input) > 2 and conv.input[2]:
        if (bias_dq is None or bias_dq.op_type != "DequantizeLinear" or only_consumer(bias_dq.output[0]) is not conv
                or not used_once(*bias_dq.input)):
            return None  # e.g. a float bias: it would need tiling too
        bias, bias_scale, *_ = (constant(name) for name in bias_dq.input)
        if bias.shape != (outputs,) or not (bias_scale.ndim == 0 or bias_scale.shape == (outputs,)):
            return None
    pad_h, pad_w = kernel_h // 2, kernel_w // 2
    if (attribute(conv, "group", 1) != 1 or attribute(conv, "auto_pad", b"NOTSET") != b"NOTSET"
            or any(s != 1 for s in attribute(conv, "strides", [1, 1]))
            or any(d != 1 for d in attribute(conv, "dilations", [1, 1]))
            or list(attribute(conv, "pads", [0, 0, 0, 0])) != [pad_h, pad_w, pad_h, pad_w]
            or kernel_h % 2 == 0 or kernel_w % 2 == 0):
        return None
    quantize_node = only_consumer(conv.output[0])
    if quantize_node is not None and quantize_node.op_type == "Relu":
        quantize_node = only_consumer(quantize_node.output[0])
    if (quantize_node is None or quantize_node.op_type != "QuantizeLinear"
            or any(v is None or v.size != 1 for v in map(constant, filter(None, quantize_node.input[1:])))):
        return None  # the unpacking reshape needs one scale for all output channels
    return layout, pixel_dq, conv, weight_dq, bias_dq, quantize_node, (height, width, channels)


def _nhwc_to_nchw(node, shape: tuple[int, int, int], initializers) -> bool:
    """``node`` turns NHWC pixels of ``shape`` (H, W, C) into NCHW: a Transpose (0, 3, 1, 2), or,
    for one channel, a Reshape to ``[N, 1, H, W]``."""
    from onnx import numpy_helper

    height, width, channels = shape
    if node.op_type == "Transpose":
        return list(attribute(node, "perm", [])) == [0, 3, 1, 2]
    if node.op_type == "Reshape" and channels == 1 and node.input[1] in initializers:
        target = numpy_helper.to_array(initializers[node.input[1]])
        return target.shape == (4,) and target[0] in (-1, 0) and list(target[1:]) == [1, height, width]
    return False
