"""ONNX graph builder with constant folding, common-subexpression reuse and dead-node removal.

Every tensor of the graph being converted is a ``Value``: either a constant (a numpy array) or a
named ONNX tensor.  ``Builder.op`` emits one ONNX node; when all its inputs are constants it runs
the node at once with ONNX's own reference implementation (numpy) and returns a constant instead,
so whatever depends only on weights and bound placeholders never reaches the output graph.
Identical nodes (same op, inputs and attributes) are emitted once.

Layout: a 4-D TensorFlow tensor is NHWC; the ONNX tensor holding it may be stored transposed.
``Value.perm`` records that: ``physical = transpose(logical, perm)`` (None: stored as is).
Constants are stored physically too (``const`` is the array as ONNX sees it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from livematte.errors import ModelError
from livematte.models.onnx_edit import ancestors
from livematte.models.tfjs import peephole

OPSET = 18
#: Float weights with at least this many elements are stored as float16 when asked to.
FP16_MIN_SIZE = 16

ONNX_TYPES = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float16): TensorProto.FLOAT16,
    np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.bool_): TensorProto.BOOL,
}


@dataclass(frozen=True)
class Value:
    """One tensor: constant (``const`` set) or the ONNX tensor ``name``.

    ``dims`` is the logical static shape where known (None entries: unknown; None: unknown).
    """

    name: str | None
    dtype: np.dtype
    rank: int
    perm: tuple[int, ...] | None = None
    const: np.ndarray | None = None
    dims: tuple[int | None, ...] | None = None

    @property
    def is_const(self) -> bool:
        return self.const is not None

    def logical_const(self) -> np.ndarray:
        """The constant in TensorFlow's (logical) layout."""
        assert self.const is not None
        if self.perm is None:
            return self.const
        return np.transpose(self.const, np.argsort(self.perm))

    def with_(self, **changes: Any) -> Value:
        return replace(self, **changes)


def const_value(array: Any, dtype: Any = None) -> Value:
    """A constant Value in logical layout."""
    arr = np.asarray(array, dtype=dtype)
    return Value(None, arr.dtype, arr.ndim, None, arr, tuple(arr.shape))


class Builder:
    """Accumulates ONNX nodes and initializers; see the module docstring."""

    def __init__(self, *, fp16_weights: bool = False, optimize: bool = True) -> None:
        self.fp16_weights = fp16_weights
        self.optimize = optimize
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._const_names: dict[tuple[str, tuple[int, ...], bytes], str] = {}
        self._cse: dict[tuple[Any, ...], list[str]] = {}
        self._counter = itertools.count()

    # --- names and constants -------------------------------------------------------------------

    def fresh(self, hint: str) -> str:
        return f"{hint}_{next(self._counter)}"

    def tensor(self, value: Value) -> str:
        """ONNX name of ``value``; constants become (deduplicated) initializers."""
        if value.const is None:
            assert value.name is not None
            return value.name
        arr = np.asarray(value.const)
        arr = arr if arr.flags.c_contiguous else arr.copy()  # (ascontiguousarray makes 0-d 1-d)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        name = self._const_names.get(key)
        if name is not None:
            return name
        if arr.dtype not in ONNX_TYPES:
            raise ModelError(f"constant of dtype {arr.dtype} cannot be stored in ONNX")
        half = self.fp16_weights and arr.dtype == np.float32 and arr.size >= FP16_MIN_SIZE
        stored = self.fresh("w" if arr.size >= FP16_MIN_SIZE else "c")
        self.initializers.append(
            numpy_helper.from_array(arr.astype(np.float16) if half else arr, stored)
        )
        name = stored
        if half:
            # Cast at load: ONNX Runtime folds it into a float32 initializer at session creation.
            name = stored + "_f32"
            self.nodes.append(helper.make_node("Cast", [stored], [name], to=TensorProto.FLOAT))
        self._const_names[key] = name
        return name

    # --- nodes ---------------------------------------------------------------------------------

    def op(
        self,
        op_type: str,
        inputs: list[Value | None],
        *,
        dtype: Any,
        rank: int,
        perm: tuple[int, ...] | None = None,
        dims: tuple[int | None, ...] | None = None,
        **attrs: Any,
    ) -> Value:
        """Emit one single-output node; the output is described by dtype/rank/perm/dims."""
        return self.ops(op_type, inputs, [(dtype, rank, perm, dims)], **attrs)[0]

    def ops(
        self,
        op_type: str,
        inputs: list[Value | None],
        specs: list[tuple[Any, int, tuple[int, ...] | None, tuple[int | None, ...] | None]],
        **attrs: Any,
    ) -> list[Value]:
        """Emit one node with ``len(specs)`` outputs, each ``(dtype, rank, perm, dims)``."""
        present = [v for v in inputs if v is not None]
        if present and all(v.is_const for v in present):
            return self._fold(op_type, inputs, specs, attrs)
        names = [self.tensor(v) if v is not None else "" for v in inputs]
        key = (op_type, tuple(names), len(specs), repr(sorted(attrs.items())))
        outs = self._cse.get(key)
        if outs is None:
            outs = [self.fresh(op_type) for _ in specs]
            self.nodes.append(helper.make_node(op_type, names, outs, name=outs[0], **attrs))
            self._cse[key] = outs
        return [
            Value(name, np.dtype(dt), rank, perm, None, dims)
            for name, (dt, rank, perm, dims) in zip(outs, specs, strict=True)
        ]

    def _fold(
        self,
        op_type: str,
        inputs: list[Value | None],
        specs: list[tuple[Any, int, tuple[int, ...] | None, Any]],
        attrs: dict[str, Any],
    ) -> list[Value]:
        from onnx.reference import ReferenceEvaluator

        feeds = {f"i{k}": v.const for k, v in enumerate(inputs) if v is not None}
        in_names = [f"i{k}" if v is not None else "" for k, v in enumerate(inputs)]
        out_names = [f"o{k}" for k in range(len(specs))]
        node = helper.make_node(op_type, in_names, out_names, **attrs)
        try:
            results = ReferenceEvaluator(node, opsets={"": OPSET}).run(None, feeds)
        except Exception as exc:  # the reference implementation raises many kinds
            raise ModelError(f"constant folding of {op_type} failed: {exc}") from None
        values = []
        for arr, (dt, _rank, perm, _dims) in zip(results, specs, strict=True):
            arr = np.asarray(arr)
            if arr.dtype != np.dtype(dt):
                arr = arr.astype(dt)
            values.append(Value(None, arr.dtype, arr.ndim, perm, arr, None))
        return values

    # --- output --------------------------------------------------------------------------------

    def model(
        self,
        inputs: list[onnx.ValueInfoProto],
        outputs: list[tuple[Value, str]],
        *,
        doc: str,
    ) -> onnx.ModelProto:
        """Finish: name the outputs, drop unused nodes and initializers, return the model."""
        output_infos = []
        renames: dict[str, str] = {}
        input_names = {vi.name for vi in inputs}
        for value, name in outputs:
            src = self.tensor(value)
            producer = next((n for n in self.nodes if src in n.output), None)
            if producer is None or src in input_names or src in renames:
                self.nodes.append(helper.make_node("Identity", [src], [name], name=name))
            else:
                renames[src] = name
            shape = [None] * value.rank
            output_infos.append(
                helper.make_tensor_value_info(name, ONNX_TYPES[value.dtype], shape)
            )
        for node in self.nodes:
            node.input[:] = [renames.get(n, n) for n in node.input]
            node.output[:] = [renames.get(n, n) for n in node.output]
        nodes = peephole.optimize(self.nodes, self.initializers) if self.optimize else self.nodes
        nodes = _live_nodes(nodes, [name for _, name in outputs])
        used = {n for node in nodes for n in node.input}
        inits = [t for t in self.initializers if t.name in used]
        graph = helper.make_graph(nodes, "tfjs", inputs, output_infos, inits)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="livematte.models.tfjs",
            doc_string=doc,
        )
        model.ir_version = 8  # opset 18 needs IR 8; older runtimes refuse newer IR versions
        onnx.checker.check_model(model)
        return model


def _live_nodes(nodes: list[onnx.NodeProto], outputs: list[str]) -> list[onnx.NodeProto]:
    """The nodes the outputs depend on, in emission order (already topological)."""
    live = ancestors(nodes, outputs)
    return [node for i, node in enumerate(nodes) if i in live]
