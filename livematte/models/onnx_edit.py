"""Development-time ONNX graph edits that keep every value the same and save run time.

Used by the converter scripts (``scripts/convert_mediapipe.py``, ``scripts/convert_movenet.py``)
on the embedded models before they are written; nothing here runs when livematte runs models
(the ``onnx`` import alone takes ~1 s here) but ``ancestors``, which the TF.js converter shares.

* ``split_off``: move the nodes only some outputs need into a second model.  BlazePose's
  landmark model spends ~7.5 of its ~17.5 ms (one core) on its 256x256 person-mask decoder;
  split, the keypoint stage runs the decoder only for the people whose mask someone uses.
* ``scalar_constants``: an elementwise Add/Sub/Mul/Div by a constant whose values are all equal
  takes that value as a scalar, and one by 0 (Add/Sub) or 1 (Mul/Div) becomes an Identity.
  ONNX Runtime broadcasts a ``[1, 1, 1, 3]`` constant over an NHWC image three values at a time:
  MoveNet's input scaling (``(x - [0,0,0]) * [s,s,s] - [[[[1]]]]``) cost ~4 of its ~45 ms at
  384x224, a scalar almost nothing.  Same values bit for bit (each element meets the same
  number).

Example::

    trunk, head = split_off(onnx.load("pose_landmark_full.onnx"), ["segmentation"], "mask_input_")
    model = scalar_constants(onnx.load("movenet_multipose.onnx"))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

#: Ops whose output is their inputs broadcast together, element by element.
_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div"})
#: (op, operand index of the constant) -> the constant value that leaves the other operand as is.
_NEUTRAL = {("Add", 0): 0.0, ("Add", 1): 0.0, ("Sub", 1): 0.0, ("Mul", 0): 1.0, ("Mul", 1): 1.0,
            ("Div", 1): 1.0}  # fmt: skip


def _producers(nodes: Sequence[onnx.NodeProto]) -> dict[str, int]:
    """Tensor name -> index of the node computing it."""
    return {out: i for i, node in enumerate(nodes) for out in node.output if out}


def ancestors(nodes: Sequence[onnx.NodeProto], tensors: Iterable[str]) -> set[int]:
    """Indices of the nodes ``tensors`` depend on (also the TF.js converter's dead-node
    removal, ``tfjs/graph.py``)."""
    producer = _producers(nodes)
    seen: set[int] = set()
    stack = list(tensors)
    while stack:
        i = producer.get(stack.pop())
        if i is None or i in seen:
            continue
        seen.add(i)
        stack.extend(t for t in nodes[i].input if t)
    return seen


def _value_infos(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    return {v.name: v for v in [*g.input, *g.value_info, *g.output]}


def _submodel(
    model: onnx.ModelProto,
    name: str,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
) -> onnx.ModelProto:
    used = {t for node in nodes for t in node.input}
    inits = [t for t in model.graph.initializer if t.name in used]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    out = helper.make_model(graph, opset_imports=list(model.opset_import))
    out.ir_version = model.ir_version
    onnx.checker.check_model(out)
    return out


def _rename(nodes: list[onnx.NodeProto], names: dict[str, str]) -> list[onnx.NodeProto]:
    out = []
    for node in nodes:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        for seq in (copy.input, copy.output):
            for i, t in enumerate(seq):
                seq[i] = names.get(t, t)
        out.append(copy)
    return out


def split_off(
    model: onnx.ModelProto, head_outputs: Sequence[str], prefix: str
) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """Split ``model`` in two: a trunk and a head computing ``head_outputs`` from it.

    The trunk computes every other graph output plus the tensors the head needs from it,
    named ``prefix`` + 0, 1, ... (in the order the head first uses them); the head takes those
    (and any graph input it uses directly, under its own name) and computes ``head_outputs``.
    Nodes both need stay in the trunk; nodes only the head needs move.  Node order, names and
    attributes are kept, so both parts compute exactly what the whole did.

    Raises:
        ValueError: ``head_outputs`` are not graph outputs, or nothing would be left.
    """
    graph = model.graph
    outputs = [o.name for o in graph.output]
    missing = [o for o in head_outputs if o not in outputs]
    kept = [o for o in outputs if o not in head_outputs]
    if missing or not kept or not head_outputs:
        raise ValueError(f"cannot split off {list(head_outputs)} from outputs {outputs}")
    trunk = ancestors(graph.node, kept)
    head = sorted(ancestors(graph.node, head_outputs) - trunk)
    producer = _producers(graph.node)
    graph_inputs = {i.name for i in graph.input}
    cut: list[str] = []
    direct: list[str] = []
    for i in head:
        for t in graph.node[i].input:
            if producer.get(t) in trunk and t not in cut:
                cut.append(t)
            elif t in graph_inputs and t not in direct:
                direct.append(t)
    infos = _value_infos(model)
    names = {t: f"{prefix}{k}" for k, t in enumerate(cut)}

    def info(tensor: str, as_name: str) -> onnx.ValueInfoProto:
        vi = onnx.ValueInfoProto()
        vi.CopyFrom(infos[tensor])
        vi.name = as_name
        return vi

    trunk_nodes = _rename([n for i, n in enumerate(graph.node) if i in trunk], names)
    head_nodes = _rename([graph.node[i] for i in head], names)
    out_info = {o.name: o for o in graph.output}
    trunk_model = _submodel(
        model, graph.name, trunk_nodes,
        [i for i in graph.input if i.name in {t for n in trunk_nodes for t in n.input}],
        [out_info[o] for o in kept] + [info(t, names[t]) for t in cut],
    )  # fmt: skip
    head_model = _submodel(
        model, f"{graph.name}_head", head_nodes,
        [info(t, names[t]) for t in cut] + [info(t, t) for t in direct],
        [out_info[o] for o in head_outputs],
    )  # fmt: skip
    return trunk_model, head_model


def scalar_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose uniform elementwise constants are scalars (module docstring).

    A constant is only replaced where that leaves the node's output shape as it was: its
    other operand has at least its rank and, on every axis the constant spans, that size.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {t.name: t for t in graph.initializer}
    infos = _value_infos(model)
    fresh: dict[float, str] = {}
    for node in graph.node:
        if node.op_type not in _ELEMENTWISE or len(node.input) != 2:
            continue
        for k in (0, 1):
            const, other = node.input[k], node.input[1 - k]
            values = numpy_helper.to_array(inits[const]) if const in inits else None
            if values is None or values.size < 1 or values.dtype != np.float32:
                continue
            if not np.all(values == values.ravel()[0]) or not _covers(infos.get(other), values):
                continue
            value = float(values.ravel()[0])
            if _NEUTRAL.get((node.op_type, k)) == value:
                node.op_type = "Identity"
                del node.input[:]
                node.input.append(other)
                break
            if values.ndim == 0:
                continue
            if value not in fresh:
                fresh[value] = f"scalar_{len(fresh)}"
                graph.initializer.append(
                    numpy_helper.from_array(np.array(value, np.float32), fresh[value])
                )
            node.input[k] = fresh[value]
            break
    used = {t for node in graph.node for t in node.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.checker.check_model(out)
    return out


def _covers(info: onnx.ValueInfoProto | None, values: np.ndarray) -> bool:
    """True when a tensor of ``info``'s shape already spans every axis ``values`` spans."""
    if info is None or not info.type.tensor_type.HasField("shape"):
        return False
    dims = info.type.tensor_type.shape.dim
    if len(dims) < values.ndim:
        return False
    for size, dim in zip(reversed(values.shape), reversed(dims), strict=False):
        if size != 1 and not (dim.HasField("dim_value") and dim.dim_value == size):
            return False
    return True
