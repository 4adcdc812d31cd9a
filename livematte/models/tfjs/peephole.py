"""Peephole rewrites of the emitted ONNX nodes into forms ONNX Runtime's CPU kernels fuse.

ONNX Runtime (level ALL) runs convolutions in its blocked NCHWc layout and reorders a tensor
back to plain NCHW (a full copy) before every node it cannot run blocked; what TensorFlow
spells as several elementwise ops costs such round trips.  Each rewrite below computes the
same values (within float rounding, checked against TensorFlow by the parity tests):

* hard-swish ``x * relu6(x + 3) / 6`` -> ``HardSwish(x)`` (fused into the convolution);
* hard-sigmoid ``relu6(x + 3) / 6`` -> ``HardSigmoid(x, 1/6, 1/2)`` (fused likewise);
* ``ReduceMean`` over H, W of a convolution's input -> ``GlobalAveragePool`` (runs blocked);
* ``Resize`` to ``k`` times the input's own height and width, computed from its ``Shape`` at
  run time -> ``Resize`` by constant scales ``[1, 1, k, k]`` (runs blocked; same sampling:
  ONNX derives the scale from the sizes, which is exactly ``k``);
* ``Split`` of a convolution's output into channel halves (with a Relu / Sigmoid / Tanh or a
  sum or product of such convolutions in between) -> one convolution per half, no copy.

Measured on RVM MobileNetV3 at 320x176 (BENCHMARKS.md, "Speed: the RVM network").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

#: ONNX Runtime's NCHWc channel block (16 with AVX-512, 8 with AVX2): a convolution is only
#: split where each half stays a multiple of it, else the halves' padding costs more than the
#: Split saved (RVM's 20-channel GRU: 2 x 32 padded channels instead of 48).
_BLOCK = 16
#: Elementwise activations a channel split can pass through (they act per element).
_UNARY = frozenset({"Relu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "LeakyRelu"})


class _Graph:
    """Producer / consumer maps and small constants over a node list being rewritten."""

    def __init__(self, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> None:
        self.nodes = nodes
        self.inits = inits
        self.by_name = {t.name: t for t in inits}
        self.producer = {out: node for node in nodes for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in nodes:
            for name in node.input:
                self.consumers[name].append(node)
        self._fresh = 0

    def const(self, name: str) -> np.ndarray | None:
        tensor = self.by_name.get(name)
        return None if tensor is None else numpy_helper.to_array(tensor)

    def scalar(self, name: str, value: float) -> bool:
        arr = self.const(name)
        return arr is not None and arr.size == 1 and float(arr.ravel()[0]) == np.float32(value)

    def op(self, name: str, op_type: str) -> onnx.NodeProto | None:
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def only_use(self, name: str) -> bool:
        return len(self.consumers.get(name, [])) == 1

    def add_init(self, hint: str, array: np.ndarray) -> str:
        self._fresh += 1
        name = f"{hint}_pp{self._fresh}"
        tensor = numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.inits.append(tensor)
        self.by_name[name] = tensor
        return name


def optimize(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> list[onnx.NodeProto]:
    """The rewritten node list (topological order kept); new constants are appended to
    ``inits``.  Nodes left without a use are not removed here (the builder drops them)."""
    g = _Graph(list(nodes), inits)
    out = []
    for node in g.nodes:
        out.extend(_rewrite(g, node))
    g = _Graph(out, inits)  # new constants: "scales_ppN" here, "<weight>_ppN" below
    out = []
    for node in g.nodes:
        out.extend(_split_conv(g, node))
    return out


def _rewrite(g: _Graph, node: onnx.NodeProto) -> Iterator[onnx.NodeProto]:
    if node.op_type == "Mul":
        x = _hard_swish_input(g, node)
        if x is not None:
            yield helper.make_node("HardSwish", [x], list(node.output), name=node.name)
            return
        x = _hard_sigmoid_input(g, node)
        if x is not None:
            yield helper.make_node("HardSigmoid", [x], list(node.output), name=node.name,
                                   alpha=float(np.float32(1 / 6)), beta=0.5)
            return
    if node.op_type == "ReduceMean" and _is_global_mean(g, node):
        yield helper.make_node("GlobalAveragePool", [node.input[0]], list(node.output),
                               name=node.name)
        return
    if node.op_type == "Resize":
        scale = _integer_upscale(g, node)
        if scale is not None:
            scales = g.add_init("scales", np.array([1, 1, scale, scale], np.float32))
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            yield helper.make_node("Resize", [node.input[0], "", scales], list(node.output),
                                   name=node.name, **attrs)
            return
    yield node


# --- hard-swish / hard-sigmoid ------------------------------------------------------------


def _other(node: onnx.NodeProto, name: str) -> str:
    return node.input[1] if node.input[0] == name else node.input[0]


def _relu6_plus3(g: _Graph, name: str) -> str | None:
    """x when ``name`` is ``Clip(x + 3, 0, 6)``."""
    clip = g.op(name, "Clip")
    if clip is None or len(clip.input) != 3 or not g.only_use(name):
        return None
    if not (g.scalar(clip.input[1], 0.0) and g.scalar(clip.input[2], 6.0)):
        return None
    add = g.op(clip.input[0], "Add")
    if add is None or not g.only_use(add.output[0]):
        return None
    for i in (0, 1):
        if g.scalar(add.input[i], 3.0):
            return add.input[1 - i]
    return None


def _hard_sigmoid_input(g: _Graph, mul: onnx.NodeProto) -> str | None:
    """x when ``mul`` is ``Clip(x + 3, 0, 6) * (1/6)``."""
    for i in (0, 1):
        if g.scalar(mul.input[i], 1 / 6):
            return _relu6_plus3(g, mul.input[1 - i])
    return None


def _hard_swish_input(g: _Graph, mul: onnx.NodeProto) -> str | None:
    """x when ``mul`` is ``(x * (1/6)) * Clip(x + 3, 0, 6)`` or ``x * hard_sigmoid(x)``."""
    for i in (0, 1):
        a, b = mul.input[i], mul.input[1 - i]
        x = _relu6_plus3(g, b)
        scaled = g.op(a, "Mul")
        if (x is not None and scaled is not None and g.only_use(a) and x in scaled.input
                and g.scalar(_other(scaled, x), 1 / 6)):
            return x
        inner = g.op(b, "Mul")
        if inner is not None and g.only_use(b) and _hard_sigmoid_input(g, inner) == a:
            return a
    return None


# --- global mean ----------------------------------------------------------------------------


def _is_global_mean(g: _Graph, node: onnx.NodeProto) -> bool:
    """``ReduceMean`` over axes 2, 3 keeping them, of a 4-D tensor (its consumers are all
    convolutions, which only take 4-D inputs here)."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("keepdims", 1) != 1 or attrs.get("noop_with_empty_axes", 0) or len(node.input) < 2:
        return False
    axes = g.const(node.input[1])
    users = g.consumers.get(node.output[0], [])
    return (axes is not None and sorted(axes.ravel().tolist()) == [2, 3] and bool(users)
            and all(u.op_type == "Conv" and u.input[0] == node.output[0] for u in users))


# --- Resize by an integer factor of the input's own size -------------------------------------

# A symbolic 1-D int tensor: one (coefficient, source tensor, axis) per element, meaning
# ``coefficient * shape(source)[axis]``; None where an element is not of that form.
_Sym = list[tuple[int, str, int] | None]


def _symbolic(g: _Graph, name: str, depth: int = 0) -> _Sym | None:
    node = g.producer.get(name)
    if node is None or depth > 12:
        return None
    op = node.op_type
    if op == "Shape":
        return [(1, node.input[0], axis) for axis in range(4)]  # rank checked by the user
    if op == "Cast":
        return _symbolic(g, node.input[0], depth + 1)
    if op == "Gather":
        src, idx = _symbolic(g, node.input[0], depth + 1), g.const(node.input[1])
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
        if src is None or idx is None or idx.ndim != 1 or axis != 0:
            return None
        return [src[int(i)] if -len(src) <= int(i) < len(src) else None for i in idx]
    if op == "Slice":
        src = _symbolic(g, node.input[0], depth + 1)
        args = [g.const(n) if n else None for n in node.input[1:]]
        if src is None or any(a is None for a in args[:2]) or any(
            len(node.input) > k and node.input[k] and args[k - 1] is None for k in (3, 4)
        ):
            return None
        if len(args) > 2 and args[2] is not None and args[2].ravel().tolist() != [0]:
            return None
        step = int(args[3].ravel()[0]) if len(args) > 3 and args[3] is not None else 1
        start, end = int(args[0].ravel()[0]), int(args[1].ravel()[0])
        return src[slice(start, min(end, len(src)), step)]
    if op == "Mul":
        for i in (0, 1):
            factor, src = g.const(node.input[i]), _symbolic(g, node.input[1 - i], depth + 1)
            if factor is None or src is None or not np.issubdtype(factor.dtype, np.integer):
                continue
            if factor.size not in (1, len(src)):
                return None
            factor = np.broadcast_to(factor.ravel(), (len(src),))
            return [None if s is None else (s[0] * int(f), s[1], s[2])
                    for s, f in zip(src, factor, strict=True)]
        return None
    if op == "Concat":
        parts = [_symbolic(g, n, depth + 1) for n in node.input]
        return None if any(p is None for p in parts) else [e for p in parts for e in p]
    return None


def _integer_upscale(g: _Graph, node: onnx.NodeProto) -> int | None:
    """k when ``node`` resizes its 4-D input to [N, C, k*H, k*W] of that same input."""
    if len(node.input) != 4 or node.input[1] or node.input[2]:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if "axes" in attrs or attrs.get("keep_aspect_ratio_policy", b"stretch") != b"stretch":
        return None
    sizes = _symbolic(g, node.input[3])
    x = node.input[0]
    if sizes is None or len(sizes) != 4 or sizes[:2] != [(1, x, 0), (1, x, 1)]:
        return None
    if sizes[2] is None or sizes[3] is None or sizes[2][1:] != (x, 2) or sizes[3][1:] != (x, 3):
        return None
    k = sizes[2][0]
    return k if k == sizes[3][0] and k > 1 else None


# --- channel split of convolutions ----------------------------------------------------------


def _split_conv(g: _Graph, node: onnx.NodeProto) -> Iterator[onnx.NodeProto]:
    """``Split`` of a convolution chain's channels into halves -> one chain per half."""
    if node.op_type != "Split" or len(node.output) != 2 or len(node.input) != 1:
        yield node
        return
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("axis") != 1 or attrs.get("num_outputs") != 2:
        yield node
        return
    parts = []
    for half in (0, 1):
        chain = _sliced(g, node.input[0], half, 0)
        if chain is None:
            yield node
            return
        parts.append(chain)
    for half, (nodes, _) in enumerate(parts):
        nodes[-1].output[0] = node.output[half]  # the chain's end takes the split's place
        yield from nodes


def _sliced(g: _Graph, name: str, half: int, depth: int
            ) -> tuple[list[onnx.NodeProto], str] | None:
    """Nodes computing channel half ``half`` of ``name`` without the whole, and their output.

    ``name`` must have a single use (the split) all the way down to the convolutions, so the
    whole tensor is never needed.
    """
    node = g.producer.get(name)
    if node is None or depth > 4 or not g.only_use(name):
        return None
    tag = f"{node.output[0]}_half{half}"
    if node.op_type == "Conv":
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = g.const(node.input[1])
        bias = g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if weight is None or attrs.get("group", 1) != 1 or weight.shape[0] % (2 * _BLOCK):
            return None
        n = weight.shape[0] // 2
        part = slice(half * n, (half + 1) * n)
        inputs = [node.input[0], g.add_init(node.input[1], weight[part])]
        if bias is not None:
            inputs.append(g.add_init(node.input[2], bias[part]))
        return [helper.make_node("Conv", inputs, [tag], name=tag, **attrs)], tag
    if node.op_type in _UNARY:
        inner = _sliced(g, node.input[0], half, depth + 1)
        if inner is None:
            return None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        rest = list(node.input[1:])
        if any(r and g.const(r) is None for r in rest) or any(
            r and g.const(r).size != 1 for r in rest
        ):
            return None
        step = helper.make_node(node.op_type, [inner[1], *rest], [tag], name=tag, **attrs)
        return [*inner[0], step], tag
    if node.op_type in ("Add", "Mul") and len(node.input) == 2:
        left = _sliced(g, node.input[0], half, depth + 1)
        right = _sliced(g, node.input[1], half, depth + 1)
        if left is None or right is None:
            return None
        step = helper.make_node(node.op_type, [left[1], right[1]], [tag], name=tag)
        return [*left[0], *right[0], step], tag
    return None


__all__ = ["optimize"]
