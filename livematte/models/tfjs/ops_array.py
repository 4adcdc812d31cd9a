"""Shape and array ops: Shape, Reshape, slicing, concat/split, pack/unpack, tile, gather, top-k.

Axis arguments are mapped to the stored layout where that is exact (slices, concat, split,
squeeze); ops whose meaning depends on the memory order (Reshape, GatherNd, Pack, ExpandDims)
work in TensorFlow's layout and transpose their input back first when it is stored otherwise.
"""

from __future__ import annotations

import numpy as np

from livematte.models.tfjs.emit import Context, const_arg, const_ints, emits, fail
from livematte.models.tfjs.graph import Value, const_value
from livematte.models.tfjs.layout import (
    align,
    cast,
    drop_axes,
    int64,
    logical,
    norm_perm,
    phys_axis,
    same_memory_order,
    static_length,
    unsqueeze,
)
from livematte.models.tfjs.model import TfNode, tf_dtype
from livematte.models.tfjs.ops_math import binary

_BIG = np.iinfo(np.int64).max
_SMALL = np.iinfo(np.int64).min


@emits("Shape")
def _shape(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x = values[0]
    out = tf_dtype(node.get("out_type", "DT_INT32"), node.name)
    if x.is_const:
        return const_value(np.array(x.logical_const().shape, out))
    if x.dims is not None and all(d is not None for d in x.dims):
        return const_value(np.array(x.dims, out))
    shape = ctx.b.op("Shape", [x], dtype=np.int64, rank=1, dims=(x.rank,))
    if x.perm is not None:  # logical axis a is stored at perm.index(a)
        order = [x.perm.index(a) for a in range(x.rank)]
        shape = ctx.b.op("Gather", [shape, const_value(order, np.int64)], dtype=np.int64, rank=1,
                         dims=(x.rank,), axis=0)
    return cast(ctx.b, shape, out)


@emits("Size")
def _size(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    size = ctx.b.op("Size", [values[0]], dtype=np.int64, rank=0, dims=())
    return cast(ctx.b, size, tf_dtype(node.get("out_type", "DT_INT32"), node.name))


@emits("Reshape")
def _reshape(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x = values[0]
    x = x.with_(perm=None) if same_memory_order(x) else logical(ctx.b, x)
    shape = values[1]
    rank = static_length(shape, f"Reshape node {node.name!r}")
    dims = tuple(int(d) if d >= 0 else None for d in shape.const) if shape.is_const else None
    return ctx.b.op("Reshape", [x, int64(ctx.b, shape)], dtype=x.dtype, rank=rank, dims=dims)


def squeeze(ctx: Context, x: Value, axes: list[int]) -> Value:
    """Remove logical ``axes`` (size 1) of ``x``, keeping its layout."""
    axes = sorted(a + x.rank if a < 0 else a for a in axes)
    dims = None if x.dims is None else tuple(d for i, d in enumerate(x.dims) if i not in axes)
    phys = sorted(phys_axis(x, a) for a in axes)
    return ctx.b.op("Squeeze", [x, const_value(phys, np.int64)], dtype=x.dtype,
                    rank=x.rank - len(axes), perm=drop_axes(x.perm, axes), dims=dims)


@emits("Squeeze")
def _squeeze(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x = values[0]
    axes = node.get("squeeze_dims") or []
    if not axes:
        if x.is_const:
            return const_value(np.squeeze(x.logical_const()))
        if x.dims is None or any(d is None for d in x.dims):
            raise fail(node, "squeezing all size-1 axes needs a static shape")
        axes = [i for i, d in enumerate(x.dims) if d == 1]
    return squeeze(ctx, x, list(axes))


@emits("ExpandDims")
def _expand_dims(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    (axis,) = const_ints(node, values, 1, "dim")
    axis = axis + values[0].rank + 1 if axis < 0 else axis
    return unsqueeze(ctx.b, values[0], [axis])


def slice_(ctx: Context, x: Value, starts: list[int], ends: list[int], axes: list[int],
           steps: list[int]) -> Value:
    """ONNX Slice over logical ``axes`` of ``x`` in its stored layout."""
    if not axes:
        return x
    phys = [phys_axis(x, a) for a in axes]
    inputs = [x] + [const_value(v, np.int64) for v in (starts, ends, phys, steps)]
    dims = None
    if x.dims is not None:
        dims = list(x.dims)
        for a, start, end, step in zip(axes, starts, ends, steps, strict=True):
            if dims[a] is not None:
                dims[a] = len(range(*slice(start, end, step).indices(dims[a])))
        dims = tuple(dims)
    return ctx.b.op("Slice", inputs, dtype=x.dtype, rank=x.rank, perm=x.perm, dims=dims)


@emits("StridedSlice")
def _strided_slice(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x = values[0]
    begin, end, strides = (const_ints(node, values, i, "begin/end/strides") for i in (1, 2, 3))
    masks = {k: int(node.get(k + "_mask", 0)) for k in
             ("begin", "end", "ellipsis", "new_axis", "shrink_axis")}
    entries: list[tuple[int, ...] | None] = []  # (dim, b, e, s, shrink) or None = new axis
    dim = 0
    n = len(begin)
    for i in range(n):
        bit = 1 << i
        if masks["ellipsis"] & bit:
            later = sum(1 for j in range(i + 1, n) if not (masks["new_axis"] >> j) & 1)
            for _ in range(x.rank - dim - later):
                entries.append((dim, 0, _BIG, 1, 0))
                dim += 1
        elif masks["new_axis"] & bit:
            entries.append(None)
        else:
            s = strides[i]
            if masks["shrink_axis"] & bit:
                b_ = begin[i]
                entries.append((dim, b_, b_ + 1 if b_ != -1 else _BIG, 1, 1))
            else:
                b_ = (0 if s > 0 else _BIG) if masks["begin"] & bit else begin[i]
                e_ = (_BIG if s > 0 else _SMALL) if masks["end"] & bit else end[i]
                entries.append((dim, b_, e_, s, 0))
            dim += 1
    while dim < x.rank:
        entries.append((dim, 0, _BIG, 1, 0))
        dim += 1
    if x.is_const:
        arr = x.logical_const()
        index = tuple(
            np.newaxis if e is None else e[1] if e[4] else
            slice(None if e[1] == _BIG else e[1], None if e[2] in (_BIG, _SMALL) else e[2], e[3])
            for e in entries
        )
        return const_value(arr[index])
    news = [i for i, e in enumerate(entries) if e is None]
    if news:
        x = logical(ctx.b, x)
    cuts = [e for e in entries if e is not None and not (e[1] == 0 and e[2] == _BIG and e[3] == 1)]
    y = slice_(ctx, x, [e[1] for e in cuts], [e[2] for e in cuts], [e[0] for e in cuts],
               [e[3] for e in cuts])
    shrink = [e[0] for e in entries if e is not None and e[4]]
    if shrink:
        y = squeeze(ctx, y, shrink)
    if news:
        kept = [e for e in entries if e is None or not e[4]]
        y = unsqueeze(ctx.b, y, [i for i, e in enumerate(kept) if e is None])
    return y


@emits("Slice")
def _slice(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x, begin, size = values
    if begin.is_const and size.is_const:
        b_ = [int(v) for v in begin.const]
        e_ = [_BIG if int(s) == -1 else b + int(s) for b, s in zip(b_, size.const, strict=True)]
        keep = [i for i in range(x.rank) if not (b_[i] == 0 and e_[i] == _BIG)]
        return slice_(ctx, x, [b_[i] for i in keep], [e_[i] for i in keep], keep, [1] * len(keep))
    begin, size = int64(ctx.b, begin), int64(ctx.b, size)
    minus_one = binary(ctx, "Equal", size, const_value(np.int64(-1)))
    stop = binary(ctx, "Add", begin, size)
    end = ctx.b.op("Where", [minus_one, const_value(np.int64(_BIG)), stop], dtype=np.int64, rank=1)
    axes = [phys_axis(x, a) for a in range(x.rank)]
    return ctx.b.op("Slice", [x, begin, end, const_value(axes, np.int64)], dtype=x.dtype,
                    rank=x.rank, perm=x.perm)


@emits("ConcatV2", "Concat")
def _concat(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    if node.op == "Concat":
        axis_v, parts = values[0], values[1:]
    else:
        axis_v, parts = values[-1], values[:-1]
    if not axis_v.is_const:
        raise fail(node, "the axis must be a constant")
    parts, perm, rank = align(ctx.b, parts)
    axis = int(axis_v.const)
    axis = axis + rank if axis < 0 else axis
    dims = None
    if all(p.dims is not None or p.is_const for p in parts):
        shapes = [p.logical_const().shape if p.is_const else p.dims for p in parts]
        total = [s[axis] for s in shapes]
        dims = tuple(
            (None if None in total else sum(total)) if i == axis else shapes[0][i]
            for i in range(rank)
        )
    probe = parts[0].with_(rank=rank, perm=perm)
    return ctx.b.op("Concat", parts, dtype=parts[0].dtype, rank=rank, perm=perm, dims=dims,
                    axis=phys_axis(probe, axis))


def _split(ctx: Context, x: Value, axis: int, sizes: list[int] | None, count: int) -> list[Value]:
    axis = axis + x.rank if axis < 0 else axis
    inputs = [x] if sizes is None else [x, const_value(sizes, np.int64)]
    attrs = {"num_outputs": count} if sizes is None else {}
    spec = (x.dtype, x.rank, x.perm, None)
    return ctx.b.ops("Split", inputs, [spec] * count, axis=phys_axis(x, axis), **attrs)


@emits("Split")
def _split_even(ctx: Context, node: TfNode, values: list[Value]) -> list[Value]:
    (axis,) = const_ints(node, values, 0, "split_dim")
    return _split(ctx, values[1], axis, None, int(node.get("num_split")))


@emits("SplitV")
def _split_v(ctx: Context, node: TfNode, values: list[Value]) -> list[Value]:
    sizes = const_ints(node, values, 1, "size_splits")
    (axis,) = const_ints(node, values, 2, "split_dim")
    if -1 in sizes:
        raise fail(node, "a -1 split size is not supported")
    return _split(ctx, values[0], axis, sizes, len(sizes))


@emits("Pack")
def _pack(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    axis = int(node.get("axis", 0))
    rank = values[0].rank + 1
    axis = axis + rank if axis < 0 else axis
    if all(v.is_const for v in values):
        return const_value(np.stack([v.logical_const() for v in values], axis))
    parts, _, _ = align(ctx.b, [logical(ctx.b, v) for v in values])
    parts = [unsqueeze(ctx.b, p, [axis]) for p in parts]
    inner = parts[0].dims
    dims = None if inner is None else inner[:axis] + (len(values),) + inner[axis + 1:]
    if dims is None:
        dims = (None,) * axis + (len(values),) + (None,) * (rank - axis - 1)
    return ctx.b.op("Concat", parts, dtype=parts[0].dtype, rank=rank, dims=dims, axis=axis)


@emits("Unpack")
def _unpack(ctx: Context, node: TfNode, values: list[Value]) -> list[Value]:
    x = values[0]
    axis = int(node.get("axis", 0))
    axis = axis + x.rank if axis < 0 else axis
    parts = _split(ctx, x, axis, None, int(node.get("num")))
    return [squeeze(ctx, p, [axis]) for p in parts]


@emits("Tile")
def _tile(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x, reps = values
    if reps.is_const and x.perm is not None:
        reps = const_value([int(reps.const[a]) for a in x.perm], np.int64)
    elif x.perm is not None:
        x = logical(ctx.b, x)
    return ctx.b.op("Tile", [x, int64(ctx.b, reps)], dtype=x.dtype, rank=x.rank, perm=x.perm)


@emits("Fill")
def _fill(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    dims, value = values
    rank = static_length(dims, f"Fill node {node.name!r}")
    return ctx.b.op("Expand", [value, int64(ctx.b, dims)], dtype=value.dtype, rank=rank)


@emits("BroadcastTo")
def _broadcast_to(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x, shape = values
    rank = static_length(shape, f"BroadcastTo node {node.name!r}")
    if x.rank < rank:
        x = unsqueeze(ctx.b, x, list(range(rank - x.rank)))
    shape = int64(ctx.b, shape)
    if x.perm is not None:  # the target shape is logical; the tensor is stored permuted
        shape = ctx.b.op("Gather", [shape, const_value(list(x.perm), np.int64)], dtype=np.int64,
                         rank=1, axis=0)
    return ctx.b.op("Expand", [x, shape], dtype=x.dtype, rank=rank, perm=x.perm)


@emits("GatherNd")
def _gather_nd(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    params, indices = logical(ctx.b, values[0]), logical(ctx.b, values[1])
    depth = indices.dims[-1] if indices.dims else None
    if indices.is_const:
        depth = indices.const.shape[-1]
    if depth is None:
        raise fail(node, "the index depth (last dimension of indices) is not known statically")
    rank = indices.rank - 1 + params.rank - int(depth)
    return ctx.b.op("GatherND", [params, int64(ctx.b, indices)], dtype=params.dtype, rank=rank)


@emits("GatherV2")
def _gather(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    params, indices = values[0], values[1]
    (axis,) = const_ints(node, values, 2, "axis")
    if int(node.get("batch_dims", 0)):
        raise fail(node, "batch_dims is not supported")
    axis = axis + params.rank if axis < 0 else axis
    params = logical(ctx.b, params)
    return ctx.b.op("Gather", [params, logical(ctx.b, indices)], dtype=params.dtype,
                    rank=params.rank - 1 + indices.rank, axis=axis)


@emits("Range")
def _range(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    dtype = tf_dtype(node.get("Tidx", "DT_INT32"), node.name)
    start, limit, delta = (cast(ctx.b, v, dtype) for v in values)
    return ctx.b.op("Range", [start, limit, delta], dtype=dtype, rank=1)


@emits("TopKV2")
def _top_k(ctx: Context, node: TfNode, values: list[Value]) -> list[Value]:
    x = logical(ctx.b, values[0])
    k = const_arg(node, values, 1, "k").astype(np.int64).reshape(1)
    vals, idx = ctx.b.ops("TopK", [x, const_value(k)],
                          [(x.dtype, x.rank, None, None), (np.int64, x.rank, None, None)],
                          axis=-1, largest=1, sorted=1)
    return [vals, cast(ctx.b, idx, np.int32)]


@emits("ZerosLike", "OnesLike")
def _zeros_like(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x = values[0]
    fill = const_value(np.array(0 if node.op == "ZerosLike" else 1, x.dtype))
    return binary(ctx, "Add", binary(ctx, "Mul", x, const_value(np.array(0, x.dtype))), fill)


@emits("Transpose")
def _transpose(ctx: Context, node: TfNode, values: list[Value]) -> Value:
    x = values[0]
    order = const_ints(node, values, 1, "perm")
    # TF's transpose(x, order) is x re-labelled: logical axis i of the result is axis order[i].
    base = x.perm or tuple(range(x.rank))
    new_perm = [order.index(a) for a in base]
    if x.is_const:
        return const_value(np.transpose(x.logical_const(), order))
    return x.with_(perm=norm_perm(new_perm), dims=None)  # no node: only the labels change
