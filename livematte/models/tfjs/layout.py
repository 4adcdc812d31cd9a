"""Layout tracking: where a logical (TensorFlow) axis lives in the stored ONNX tensor.

A Value with ``perm`` holds ``transpose(logical, perm)``.  Convolutions want NCHW
(``NCHW_PERM``); element-wise ops work on any layout as long as all operands share it; ops with
axis arguments map them through ``phys_axis``.  A Transpose is only emitted by ``to_perm`` when an
operand really is in another layout, and it is emitted once per tensor and layout (the builder
reuses identical nodes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from livematte.errors import ModelError
from livematte.models.tfjs.graph import ONNX_TYPES, Builder, Value, const_value

NCHW_PERM = (0, 3, 1, 2)


def norm_perm(perm: Sequence[int] | None) -> tuple[int, ...] | None:
    """``perm`` as a tuple, or None when it is the identity."""
    if perm is None:
        return None
    perm = tuple(int(p) for p in perm)
    return None if perm == tuple(range(len(perm))) else perm


def phys_axis(value: Value, axis: int) -> int:
    """Index in the stored tensor of logical ``axis`` (negative axes allowed)."""
    axis = axis + value.rank if axis < 0 else axis
    return value.perm.index(axis) if value.perm else axis


def drop_axes(perm: tuple[int, ...] | None, axes: Sequence[int]) -> tuple[int, ...] | None:
    """The perm left after removing logical ``axes`` (a Squeeze or reduction)."""
    if perm is None:
        return None
    gone = set(axes)
    return norm_perm([p - sum(a < p for a in gone) for p in perm if p not in gone])


def to_perm(b: Builder, value: Value, perm: Sequence[int] | None) -> Value:
    """``value`` stored with layout ``perm`` (None: logical), transposing only if needed."""
    perm = norm_perm(perm)
    if value.perm == perm:
        return value
    current = value.perm or tuple(range(value.rank))
    target = perm or tuple(range(value.rank))
    order = [current.index(axis) for axis in target]
    if value.is_const:
        return value.with_(const=np.transpose(value.const, order), perm=perm)
    # "perm" is also the Value layout keyword of Builder.op, hence ops() with an attr dict.
    spec = (value.dtype, value.rank, perm, value.dims)
    return b.ops("Transpose", [value], [spec], **{"perm": order})[0]


def logical(b: Builder, value: Value) -> Value:
    """``value`` in TensorFlow's own layout."""
    return to_perm(b, value, None)


def same_memory_order(value: Value) -> bool:
    """True when the stored tensor has the logical one's element order: the perm only moves
    axes of static size 1 (e.g. [1,H,W,1] stored NCHW), so a Reshape needs no Transpose."""
    if value.perm is None:
        return True
    if value.dims is None:
        return False
    moving = [axis for axis in value.perm if value.dims[axis] != 1]
    return moving == sorted(moving)


def cast(b: Builder, value: Value, dtype: np.dtype | type) -> Value:
    """``value`` converted to ``dtype`` (no node when it already is)."""
    dtype = np.dtype(dtype)
    if value.dtype == dtype:
        return value
    if value.is_const:
        return value.with_(const=value.const.astype(dtype), dtype=dtype)
    return b.op("Cast", [value], dtype=dtype, rank=value.rank, perm=value.perm, dims=value.dims,
                to=ONNX_TYPES[dtype])


def int64(b: Builder, value: Value) -> Value:
    """Shape-like int tensors as int64 (ONNX wants it for Reshape, Expand, Tile, Pad...)."""
    return cast(b, value, np.int64)


def unsqueeze(b: Builder, value: Value, axes: Sequence[int]) -> Value:
    """Insert size-1 axes at ``axes`` of the output (logical layout)."""
    value = logical(b, value)
    rank = value.rank + len(axes)
    axes = sorted(a + rank if a < 0 else a for a in axes)
    dims = None
    if value.dims is not None:
        rest = iter(value.dims)
        dims = tuple(1 if i in axes else next(rest) for i in range(rank))
    return b.op("Unsqueeze", [value, const_value(axes, np.int64)], dtype=value.dtype, rank=rank,
                dims=dims)


def align(b: Builder, values: Sequence[Value]) -> tuple[list[Value], tuple[int, ...] | None, int]:
    """Bring broadcasting operands to one rank and layout; returns them, the layout and rank.

    The layout is that of the first highest-rank non-constant operand, so constants (biases,
    scales) are transposed once at conversion time and activations are never transposed here.
    """
    rank = max(v.rank for v in values)
    dynamic = [v for v in values if not v.is_const and v.rank == rank]
    perm = dynamic[0].perm if dynamic else None
    out = []
    for v in values:
        if v.rank < rank and (perm is not None or v.is_const):
            if v.is_const:
                arr = v.logical_const().reshape((1,) * (rank - v.rank) + v.logical_const().shape)
                v = const_value(arr)
            else:
                v = unsqueeze(b, v, list(range(rank - v.rank)))
        out.append(to_perm(b, v, perm) if v.rank == rank else v)
    return out, perm, rank


def broadcast_dims(values: Sequence[Value], rank: int) -> tuple[int | None, ...] | None:
    """Static broadcast shape of ``values`` where every operand's dims are known."""
    shapes = []
    for v in values:
        dims = v.dims if v.dims is not None else None
        if v.is_const:
            dims = tuple(v.logical_const().shape)
        if dims is None:
            return None
        shapes.append((1,) * (rank - len(dims)) + tuple(dims))
    out = []
    for column in zip(*shapes, strict=True):
        known = [d for d in column if d is not None and d != 1]
        if any(d is None for d in column):
            out.append(known[0] if known else None)
        else:
            out.append(known[0] if known else 1)
    return tuple(out)


def static_length(value: Value, where: str) -> int:
    """Length of a 1-D shape-like tensor, which must be known at conversion time."""
    if value.is_const:
        return int(value.const.shape[0])
    if value.dims and value.dims[0] is not None:
        return int(value.dims[0])
    raise ModelError(f"{where}: the length of a shape operand is not known statically")


__all__ = [
    "NCHW_PERM",
    "align",
    "broadcast_dims",
    "cast",
    "drop_axes",
    "int64",
    "logical",
    "same_memory_order",
    "norm_perm",
    "phys_axis",
    "static_length",
    "to_perm",
    "unsqueeze",
]
