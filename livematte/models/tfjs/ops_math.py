"""Element-wise, comparison, cast and reduction ops: layout-agnostic, so they keep their input's."""

from __future__ import annotations

import numpy as np

from livematte.models.tfjs.emit import Context, const_ints, emits, fail
from livematte.models.tfjs.graph import Value, const_value
from livematte.models.tfjs.layout import (
    align,
    broadcast_dims,
    cast,
    drop_axes,
    phys_axis,
    unsqueeze,
)
from livematte.models.tfjs.model import TfNode, tf_dtype

_BINARY = {
    "Add": "Add",
    "AddV2": "Add",
    "BiasAdd": "Add",
    "Sub": "Sub",
    "Mul": "Mul",
    "RealDiv": "Div",
    "Div": "Div",
    "Maximum": "Max",
    "Minimum": "Min",
    "Pow": "Pow",
    "Equal": "Equal",
    "Less": "Less",
    "LessEqual": "LessOrEqual",
    "Greater": "Greater",
    "GreaterEqual": "GreaterOrEqual",
    "LogicalAnd": "And",
    "LogicalOr": "Or",
}
_COMPARISONS = {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or"}


def binary(ctx: Context, onnx_op: str, a: Value, b: Value, **attrs: object) -> Value:
    """``onnx_op(a, b)`` with TensorFlow broadcasting, in the layout of the activation."""
    (a, b), perm, rank = align(ctx.b, [a, b])
    if onnx_op == "Sub" and a.name is not None and a.name == b.name and rank == 0:
        return const_value(np.zeros((), a.dtype))  # x - x of a shape scalar: constant 0
    dtype = np.dtype(np.bool_) if onnx_op in _COMPARISONS else a.dtype
    dims = broadcast_dims([a, b], rank)
    return ctx.b.op(onnx_op, [a, b], dtype=dtype, rank=rank, perm=perm, dims=dims, **attrs)


@emits(*_BINARY)
def _binary(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    if node.op == "BiasAdd" and node.get("data_format", "NHWC") != "NHWC":
        raise fail(node, "only NHWC BiasAdd is supported")
    return binary(ctx, _BINARY[node.op], values[0], values[1])


@emits("NotEqual")
def _not_equal(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    eq = binary(ctx, "Equal", values[0], values[1])
    return ctx.b.op("Not", [eq], dtype=np.bool_, rank=eq.rank, perm=eq.perm, dims=eq.dims)


@emits("SquaredDifference")
def _squared_difference(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    d = binary(ctx, "Sub", values[0], values[1])
    return binary(ctx, "Mul", d, d)


@emits("FloorDiv")
def _floor_div(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    a, b = values
    if a.dtype.kind == "f":
        q = binary(ctx, "Div", a, b)
        return ctx.b.op("Floor", [q], dtype=q.dtype, rank=q.rank, perm=q.perm, dims=q.dims)
    # Integer division rounding toward -inf, as TensorFlow: (a - mod(a, b)) / b is exact.
    exact = binary(ctx, "Sub", a, binary(ctx, "Mod", a, b))
    return binary(ctx, "Div", exact, b)


@emits("FloorMod")
def _floor_mod(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    a, b = values
    if a.dtype.kind in "iu":
        return binary(ctx, "Mod", a, b)  # fmod=0: the sign of the divisor, as TensorFlow
    q = binary(ctx, "Div", a, b)
    q = ctx.b.op("Floor", [q], dtype=q.dtype, rank=q.rank, perm=q.perm, dims=q.dims)
    return binary(ctx, "Sub", a, binary(ctx, "Mul", q, b))


_UNARY = {
    "Relu": "Relu",
    "Sigmoid": "Sigmoid",
    "Tanh": "Tanh",
    "Exp": "Exp",
    "Log": "Log",
    "Abs": "Abs",
    "Neg": "Neg",
    "Sqrt": "Sqrt",
    "Floor": "Floor",
    "Ceil": "Ceil",
    "Round": "Round",
    "Reciprocal": "Reciprocal",
    "Softplus": "Softplus",
    "Elu": "Elu",
    "LogicalNot": "Not",
}


def unary(ctx: Context, onnx_op: str, x: Value, **attrs: object) -> Value:
    return ctx.b.op(onnx_op, [x], dtype=x.dtype, rank=x.rank, perm=x.perm, dims=x.dims, **attrs)


@emits(*_UNARY)
def _unary(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    return unary(ctx, _UNARY[node.op], values[0])


def activation(ctx: Context, kind: str, x: Value, node: TfNode) -> Value:
    """TensorFlow activation ``kind`` applied to ``x`` (shared with the fused convolutions)."""
    if kind == "Relu6":
        lo, hi = const_value(np.float32(0)), const_value(np.float32(6))
        return ctx.b.op("Clip", [x, lo, hi], dtype=x.dtype, rank=x.rank, perm=x.perm, dims=x.dims)
    if kind == "LeakyRelu":
        alpha = float(node.get("leakyrelu_alpha", node.get("alpha", 0.2)))
        return unary(ctx, "LeakyRelu", x, alpha=alpha)
    if kind in _UNARY:
        return unary(ctx, _UNARY[kind], x)
    raise fail(node, f"unsupported activation {kind}")


@emits("Relu6", "LeakyRelu")
def _activation(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    return activation(ctx, node.op, values[0], node)


@emits("Rsqrt")
def _rsqrt(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    return unary(ctx, "Reciprocal", unary(ctx, "Sqrt", values[0]))


@emits("Square")
def _square(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    return binary(ctx, "Mul", values[0], values[0])


@emits("Identity", "StopGradient", "Snapshot")
def _identity(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    return values[0]


@emits("Cast")
def _cast(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    return cast(ctx.b, values[0], tf_dtype(node.get("DstT"), f"Cast node {node.name!r}"))


@emits("AddN")
def _add_n(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    vals, perm, rank = align(ctx.b, values)
    return ctx.b.op("Sum", vals, dtype=vals[0].dtype, rank=rank, perm=perm,
                    dims=broadcast_dims(vals, rank))


@emits("Select", "SelectV2")
def _select(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    cond, x, y = values
    if node.op == "Select" and cond.rank == 1 and x.rank > 1:
        # tf.compat.v1 Select: a vector condition picks whole rows.
        cond = unsqueeze(ctx.b, cond, list(range(1, x.rank)))
    (cond, x, y), perm, rank = align(ctx.b, [cond, x, y])
    return ctx.b.op("Where", [cond, x, y], dtype=x.dtype, rank=rank, perm=perm,
                    dims=broadcast_dims([cond, x, y], rank))


_REDUCE = {"Mean": "ReduceMean", "Sum": "ReduceSum", "Max": "ReduceMax", "Min": "ReduceMin",
           "Prod": "ReduceProd"}


@emits(*_REDUCE)
def _reduce(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x = values[0]
    axes = sorted({a + x.rank if a < 0 else a for a in const_ints(node, values, 1, "axes")})
    keep = bool(node.get("keep_dims", False))
    phys = [phys_axis(x, a) for a in axes]
    perm = x.perm if keep else drop_axes(x.perm, axes)
    rank = x.rank if keep else x.rank - len(axes)
    dims = None
    if x.dims is not None:
        dims = tuple(1 if i in axes else d for i, d in enumerate(x.dims) if keep or i not in axes)
    return ctx.b.op(_REDUCE[node.op], [x, const_value(phys, np.int64)], dtype=x.dtype, rank=rank,
                    perm=perm, dims=dims, keepdims=int(keep))


@emits("ArgMax", "ArgMin")
def _arg_max(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x = values[0]
    (axis,) = const_ints(node, values, 1, "dimension")
    axis = axis + x.rank if axis < 0 else axis
    out = ctx.b.op("ArgMax" if node.op == "ArgMax" else "ArgMin", [x], dtype=np.int64,
                   rank=x.rank - 1, perm=drop_axes(x.perm, [axis]), axis=phys_axis(x, axis),
                   keepdims=0)
    return cast(ctx.b, out, tf_dtype(node.get("output_type", "DT_INT64"), node.name))
