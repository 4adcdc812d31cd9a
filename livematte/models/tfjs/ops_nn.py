"""Convolutions (plain, depthwise, TF.js-fused), pooling, bilinear resize, padding, and the
SpaceToBatchND -> conv -> BatchToSpaceND pattern TensorFlow uses for dilated convolutions.

All of them run in NCHW: their input is brought to ``NCHW_PERM`` (a no-op when the producer is
already NCHW, which is the case everywhere inside a network) and their output stays NCHW.
"""

from __future__ import annotations

import numpy as np

from livematte.models.tfjs.emit import Context, const_arg, const_ints, emits, fail
from livematte.models.tfjs.graph import Value, const_value
from livematte.models.tfjs.layout import NCHW_PERM, cast, int64, to_perm, unsqueeze
from livematte.models.tfjs.model import TfNode
from livematte.models.tfjs.ops_math import activation, binary

_CONVS = ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative")


def _spatial(node: TfNode, key: str) -> list[int]:
    values = node.get(key) or [1, 1, 1, 1]
    if node.get("data_format", "NHWC") != "NHWC":
        raise fail(node, "only NHWC data_format is supported")
    return [int(values[1]), int(values[2])]


def _padding(node: TfNode) -> dict[str, object]:
    padding = node.get("padding", "VALID")
    if padding == "SAME":
        return {"auto_pad": "SAME_UPPER"}  # TensorFlow puts the odd pixel at the end
    if padding == "VALID":
        return {"pads": [0, 0, 0, 0]}
    if padding == "EXPLICIT":
        p = node.get("explicit_paddings")  # NHWC (begin, end) pairs
        return {"pads": [p[2], p[4], p[3], p[5]]}
    raise fail(node, f"unsupported padding {padding!r}")


@emits(*_CONVS)
def _conv(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x = to_perm(ctx.b, values[0], NCHW_PERM)
    kernel = const_arg(node, values, 1, "the filter").astype(np.float32)
    kh, kw = kernel.shape[:2]
    depthwise = "Depthwise" in node.op
    if depthwise:  # [kh, kw, cin, mult] -> [cin*mult, 1, kh, kw], output channel c*mult + m
        cin = kernel.shape[2]
        weight = kernel.reshape(kh, kw, -1).transpose(2, 0, 1)[:, None]
        group = cin
    else:  # HWIO -> OIHW
        weight = kernel.transpose(3, 2, 0, 1)
        group = 1
    attrs: dict[str, object] = {
        "kernel_shape": [kh, kw],
        "strides": _spatial(node, "strides"),
        "dilations": _spatial(node, "dilations"),
        "group": group,
    }
    attrs.update(_padding(node))
    if node.name in ctx.dilated:
        if attrs["dilations"] != [1, 1] or attrs.get("pads") != [0, 0, 0, 0]:
            raise fail(node, "a space-to-batch convolution must be VALID and undilated")
        attrs["dilations"], attrs["pads"] = ctx.dilated[node.name]
    fused = list(node.get("fused_ops") or [])
    bias, used = None, 2  # inputs: x, filter, then the fused ops' arguments in order
    if fused[:1] == ["BiasAdd"]:
        bias = const_arg(node, values, 2, "the fused bias").astype(np.float32).ravel()
        fused, used = fused[1:], 3
    elif fused[:1] == ["FusedBatchNorm"]:
        scale, offset, mean, var = (const_arg(node, values, 2 + i, "batch norm") for i in range(4))
        factor = scale / np.sqrt(var + float(node.get("epsilon", 1e-3)))
        weight = weight * factor.reshape(-1, 1, 1, 1)
        bias = (offset - mean * factor).astype(np.float32)
        fused, used = fused[1:], 6
    dims = (None, None, None, int(weight.shape[0]))
    split = _small_tail(ctx, node, weight.shape[1]) if group == 1 else None
    if split is not None:  # see _small_tail
        head, tail = split
        cut = weight.shape[1] - tail.dims[3]
        y = ctx.b.op("Add", [
            _conv_node(ctx, head, weight[:, :cut], bias, dims, attrs),
            _conv_node(ctx, to_perm(ctx.b, tail, NCHW_PERM), weight[:, cut:], None, dims, attrs),
        ], dtype=np.float32, rank=4, perm=NCHW_PERM, dims=dims)
    else:
        y = _conv_node(ctx, x, weight, bias, dims, attrs)
    for kind in fused:
        if kind == "Prelu":
            y = _prelu(ctx, node, y, values[used])
        else:
            y = activation(ctx, kind, y, node)
    return y


def _conv_node(ctx: Context, x: Value, weight: np.ndarray, bias: np.ndarray | None,
               dims: tuple[int | None, ...], attrs: dict[str, object]) -> Value:
    inputs = [x, const_value(np.ascontiguousarray(weight, np.float32))]
    if bias is not None:
        inputs.append(const_value(bias))
    return ctx.b.op("Conv", inputs, dtype=np.float32, rank=4, perm=NCHW_PERM, dims=dims, **attrs)


def _small_tail(ctx: Context, node: TfNode, channels: int) -> tuple[Value, Value] | None:
    """(head, tail) when the conv reads a channel concat whose last part is a few channels and
    the others a multiple of 8, e.g. RVM's decoder: features + skip + the 3-channel image.

    ONNX Runtime runs such convs (35..171 input channels) outside its NCHWc kernels; two convs
    (head: multiple of 8 channels, tail: 3) summed cost 11% less CPU for the whole RVM network
    at 320x180 (65.0 -> 58.0 ms median, one A/B run; BENCHMARKS.md).  The head is a new concat
    of the other parts.
    """
    producer = ctx.node(node.inputs[0][0])
    if producer.op != "ConcatV2" or len(producer.inputs) < 3:
        return None
    axis = ctx.value(producer.inputs[-1])
    parts = [ctx.value(ref) for ref in producer.inputs[:-1]]
    tail = parts[-1]
    if not axis.is_const or int(axis.const) not in (3, -1) or tail.dims is None:
        return None
    small = tail.dims[3]
    if small is None or small >= 8 or (channels - small) % 8 or channels % 8 == 0:
        return None
    head = [to_perm(ctx.b, p, NCHW_PERM) for p in parts[:-1]]
    if len(head) > 1:
        dims = (None, None, None, channels - small)
        head = [ctx.b.op("Concat", head, dtype=np.float32, rank=4, perm=NCHW_PERM, dims=dims,
                         axis=1)]
    return head[0], parts[-1]


def _prelu(ctx: Context, node: TfNode, y: Value, alpha: Value) -> Value:
    if alpha.rank != 1:
        raise fail(node, "Prelu alpha must be per channel")
    alpha_nchw = to_perm(ctx.b, unsqueeze(ctx.b, alpha, [0, 1, 2]), NCHW_PERM)
    return ctx.b.op("PRelu", [y, alpha_nchw], dtype=y.dtype, rank=4, perm=NCHW_PERM)


def _same_nc(x: Value) -> tuple[int | None, ...] | None:
    """Static dims of a pooled or resized NHWC tensor: batch and channels kept."""
    return None if x.dims is None else (x.dims[0], None, None, x.dims[3])


@emits("AvgPool", "MaxPool")
def _pool(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x = to_perm(ctx.b, values[0], NCHW_PERM)
    attrs: dict[str, object] = {"kernel_shape": _spatial(node, "ksize"),
                                "strides": _spatial(node, "strides")}
    attrs.update(_padding(node))
    if node.op == "AvgPool":
        attrs["count_include_pad"] = 0  # TensorFlow averages over the valid pixels only
    onnx_op = "AveragePool" if node.op == "AvgPool" else "MaxPool"
    return ctx.b.op(onnx_op, [x], dtype=x.dtype, rank=4, perm=NCHW_PERM, dims=_same_nc(x),
                    **attrs)


@emits("ResizeBilinear", "ResizeNearestNeighbor")
def _resize(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x = to_perm(ctx.b, values[0], NCHW_PERM)
    size = int64(ctx.b, values[1])
    align_corners = bool(node.get("align_corners", False))
    half_pixel = bool(node.get("half_pixel_centers", False))
    if align_corners and half_pixel:
        raise fail(node, "align_corners and half_pixel_centers together")
    bilinear = node.op == "ResizeBilinear"
    if align_corners:
        mode = "align_corners"
    elif half_pixel:
        mode = "half_pixel" if bilinear else "tf_half_pixel_for_nn"
    else:
        mode = "asymmetric"
    attrs: dict[str, object] = {"mode": "linear" if bilinear else "nearest",
                                "coordinate_transformation_mode": mode}
    # Full NCHW sizes rather than Resize's "axes" attribute: ONNX Runtime 1.32 rejects constant
    # sizes combined with axes, and older runtimes lack axes altogether.
    shape = ctx.b.op("Shape", [x], dtype=np.int64, rank=1, dims=(4,))
    batch_channels = ctx.b.op("Slice", [shape, const_value([0], np.int64),
                                        const_value([2], np.int64)], dtype=np.int64, rank=1)
    size = ctx.b.op("Concat", [batch_channels, size], dtype=np.int64, rank=1, axis=0)
    if not bilinear:
        attrs["nearest_mode"] = "round_prefer_ceil" if align_corners else "floor"
    y = ctx.b.op("Resize", [x, None, None, size], dtype=np.float32, rank=4, perm=NCHW_PERM,
                 dims=_same_nc(x), **attrs)
    return cast(ctx.b, y, x.dtype)


@emits("Pad", "PadV2", "MirrorPad")
def _pad(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x = values[0]
    pads = const_arg(node, values, 1, "paddings").astype(np.int64).reshape(x.rank, 2)
    order = x.perm or tuple(range(x.rank))
    onnx_pads = [int(pads[a, 0]) for a in order] + [int(pads[a, 1]) for a in order]
    inputs = [x, const_value(onnx_pads, np.int64)]
    attrs: dict[str, object] = {}
    if node.op == "PadV2":
        inputs.append(cast(ctx.b, values[2], x.dtype))
    if node.op == "MirrorPad":
        mode = node.get("mode", "REFLECT")
        if mode != "REFLECT":
            raise fail(node, f"unsupported mirror mode {mode}")
        attrs["mode"] = "reflect"
    return ctx.b.op("Pad", inputs, dtype=x.dtype, rank=x.rank, perm=x.perm, **attrs)


def _element(ctx: Context, ref: tuple[str, int], path: list[int]) -> Value:
    """Element ``path`` of a small tensor, looking through Pack nodes so that identical
    scalars stay identical (the padding and crop ends of a dilated conv cancel exactly)."""
    producer = ctx.node(ref[0])
    if path and producer.op == "Pack" and int(producer.get("axis", 0)) == 0:
        return _element(ctx, producer.inputs[path[0]], path[1:])
    if producer.op == "Identity":
        return _element(ctx, producer.inputs[0], path)
    value = ctx.value(ref)
    if value.is_const:
        return const_value(value.logical_const()[tuple(path)])
    if not path:
        return value
    raise fail(producer, "space-to-batch paddings are not resolvable at conversion time")


@emits("SpaceToBatchND")
def _space_to_batch(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    """Fold SpaceToBatchND -> VALID conv -> BatchToSpaceND into one dilated convolution.

    With paddings P and crops C, the three ops equal a convolution dilated by the block shape
    on the input padded by (P[:,0] - C[:,0], P[:,1] - C[:,1]).
    """
    block = const_ints(node, values, 1, "block_shape")
    convs = ctx.consumers(node.name)
    if len(block) != 2 or len(convs) != 1 or convs[0].op not in _CONVS:
        raise fail(node, "only SpaceToBatchND feeding one 2-D convolution is supported")
    conv = convs[0]
    after = ctx.consumers(conv.name)
    if len(after) != 1 or after[0].op != "BatchToSpaceND":
        raise fail(node, "the convolution after SpaceToBatchND must feed BatchToSpaceND")
    b2s = after[0]
    b2s_block = ctx.value(b2s.inputs[1])
    if not b2s_block.is_const or [int(v) for v in b2s_block.const] != block:
        raise fail(b2s, "block shape differs from its SpaceToBatchND")
    pads = []
    for side in (0, 1):
        for axis in (0, 1):
            p = _element(ctx, node.inputs[2], [axis, side])
            c = _element(ctx, b2s.inputs[2], [axis, side])
            diff = binary(ctx, "Sub", p, c)
            if not diff.is_const or int(diff.const) < 0:
                raise fail(node, "paddings minus crops must be constant and non-negative")
            pads.append(int(diff.const))
    ctx.dilated[conv.name] = (block, pads)
    return values[0]


@emits("BatchToSpaceND")
def _batch_to_space(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    producer = ctx.node(node.inputs[0][0])
    if producer.name not in ctx.dilated:
        raise fail(node, "only BatchToSpaceND after a SpaceToBatchND convolution is supported")
    return values[0]
