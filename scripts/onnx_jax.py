"""Run (and differentiate) the embedded segmenter's ONNX graph in JAX: dev-only, for training.

Covers exactly the ops of ``livematte/models/data/selfie_segmentation*.onnx`` (our own
conversion, ``scripts/convert_mediapipe.py``): Transpose, Cast (fp16 weights), Conv (grouped),
ConvTranspose (kernel == stride), HardSwish, Relu, Sigmoid, Add, Mul, global AveragePool /
ReduceMean, Resize (linear, half_pixel, to sizes) and Identity.  Any other op is an error.

The weights that the graph stores as float16 and casts to float32 are the trainable
parameters; ``write_params`` puts trained values back into a copy of the graph (as float16
again), so the model's structure, names and size are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import onnx
from onnx import numpy_helper


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def load(model: onnx.ModelProto) -> tuple[dict[str, np.ndarray], Callable]:
    """(params, forward): params maps each cast weight's float32 name to its value;
    ``forward(params, image)`` maps an NHWC float32 batch to the graph's output."""
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    params: dict[str, np.ndarray] = {}
    consts: dict[str, np.ndarray] = {}
    nodes = []
    for node in graph.node:
        if node.op_type == "Cast" and node.input[0] in inits:
            params[node.output[0]] = inits[node.input[0]].astype(np.float32)
        else:
            nodes.append((node.op_type, list(node.input), list(node.output), _attrs(node)))
    for name, value in inits.items():
        if value.dtype != np.float16:
            consts[name] = value
    input_name = graph.input[0].name
    output_name = graph.output[0].name

    def forward(p: dict, image: jnp.ndarray) -> jnp.ndarray:
        env = {**consts, **p, input_name: image}
        for op, ins, outs, at in nodes:
            x = [env[i] if i else None for i in ins]
            env[outs[0]] = _op(op, x, at)
        return env[output_name]

    return params, forward


def _op(op: str, x: list, at: dict) -> jnp.ndarray:
    if op == "Transpose":
        return jnp.transpose(x[0], at["perm"])
    if op == "Conv":
        pads = at.get("pads", [0, 0, 0, 0])
        out = jax.lax.conv_general_dilated(
            x[0],
            x[1],
            window_strides=at.get("strides", [1, 1]),
            padding=[(pads[0], pads[2]), (pads[1], pads[3])],
            rhs_dilation=at.get("dilations", [1, 1]),
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
            feature_group_count=at.get("group", 1),
        )
        return out + x[2][None, :, None, None] if len(x) > 2 and x[2] is not None else out
    if op == "ConvTranspose":
        k, s = at["kernel_shape"], at["strides"]
        assert list(k) == list(s) and not any(at.get("pads", [0])), "only kernel == stride"
        n, _, h, w = x[0].shape
        y = jnp.einsum("ncij,coab->noiajb", x[0], x[1])
        y = y.reshape(n, x[1].shape[1], h * k[0], w * k[1])
        return y + x[2][None, :, None, None]
    if op == "HardSwish":
        return x[0] * jnp.clip(x[0] / 6.0 + 0.5, 0.0, 1.0)
    if op == "Relu":
        return jnp.maximum(x[0], 0.0)
    if op == "Sigmoid":
        return jax.nn.sigmoid(x[0])
    if op == "Add":
        return x[0] + x[1]
    if op == "Mul":
        return x[0] * x[1]
    if op == "AveragePool":
        assert list(at["kernel_shape"]) == list(x[0].shape[2:]), "only global pooling"
        return jnp.mean(x[0], axis=(2, 3), keepdims=True)
    if op == "ReduceMean":
        return jnp.mean(x[0], axis=tuple(at["axes"]), keepdims=bool(at.get("keepdims", 1)))
    if op == "Resize":
        assert at["mode"] == b"linear" and at["coordinate_transformation_mode"] == b"half_pixel"
        shape = tuple(x[0].shape[:2]) + tuple(int(v) for v in np.asarray(x[3])[2:])
        return jax.image.resize(x[0], shape, "linear", antialias=False)
    if op == "Identity":
        return x[0]
    raise ValueError(f"unsupported op {op}")


def write_params(model: onnx.ModelProto, params: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of ``model`` whose cast float16 weights hold ``params`` (rounded to float16)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    source = {n.input[0]: n.output[0] for n in out.graph.node if n.op_type == "Cast"}
    for tensor in out.graph.initializer:
        if tensor.name in source and source[tensor.name] in params:
            value = np.asarray(params[source[tensor.name]], np.float16)
            tensor.CopyFrom(numpy_helper.from_array(value, tensor.name))
    return out
