"""Development-time graph edits: the edited models compute exactly what the originals did."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from livematte.models.onnx_edit import scalar_constants, split_off

ort = pytest.importorskip("onnxruntime")


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feed), strict=True))


def _two_headed() -> onnx.ModelProto:
    """x -> conv -> relu -> "pose"; relu and conv -> a small decoder -> "mask" (and x too)."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    pose = helper.make_tensor_value_info("pose", TensorProto.FLOAT, [1, 3])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 3, 8, 8])
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("ReduceMean", ["r1"], ["pose"], name="mean", axes=[2, 3], keepdims=0),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Add", ["c2", "c1"], ["a"], name="add"),
        helper.make_node("Mul", ["a", "x"], ["mask"], name="mul"),
    ]
    inits = {"w1": rng.normal(size=(3, 3, 3, 3)).astype(np.float32),
             "w2": rng.normal(size=(3, 3, 1, 1)).astype(np.float32)}  # fmt: skip
    return _model(nodes, [x], [pose, mask], inits)


def test_split_off_moves_only_the_heads_nodes_and_keeps_every_value() -> None:
    model = _two_headed()
    trunk, head = split_off(model, ["mask"], "feat_")
    assert [n.name for n in trunk.graph.node] == ["conv1", "relu1", "mean"]
    assert [n.name for n in head.graph.node] == ["conv2", "add", "mul"]
    assert [o.name for o in trunk.graph.output] == ["pose", "feat_0", "feat_1"]
    assert [i.name for i in head.graph.input] == ["feat_0", "feat_1", "x"]
    assert [i.name for i in head.graph.initializer] == ["w2"]
    x = np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32)
    whole = _run(model, {"x": x})
    first = _run(trunk, {"x": x})
    second = _run(head, {"feat_0": first["feat_0"], "feat_1": first["feat_1"], "x": x})
    assert np.array_equal(first["pose"], whole["pose"])
    # ONNX Runtime fuses the whole graph's Conv + Add, the head's alone: float rounding only
    assert np.allclose(second["mask"], whole["mask"], rtol=1e-5, atol=1e-5)


def test_split_off_refuses_unknown_or_all_outputs() -> None:
    with pytest.raises(ValueError, match="cannot split off"):
        split_off(_two_headed(), ["nope"], "f_")
    with pytest.raises(ValueError, match="cannot split off"):
        split_off(_two_headed(), ["pose", "mask"], "f_")


def test_scalar_constants_same_values_cheaper_constants() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "h", "w", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "h", "w", 3])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, "h", "w", 3])
    nodes = [
        helper.make_node("Sub", ["x", "zeros"], ["a"], name="sub0"),
        helper.make_node("Mul", ["a", "scale"], ["b"], name="mul"),
        helper.make_node("Sub", ["b", "one"], ["c"], name="sub1"),
        helper.make_node("Add", ["c", "mixed"], ["y"], name="mixed"),
        # broadcasting the uniform constant widens the output: it must stay as it is
        helper.make_node("Mul", ["x", "wide"], ["z"], name="wide"),
    ]
    inits = {
        "zeros": np.zeros((1, 1, 1, 3), np.float32),
        "scale": np.full((1, 1, 1, 3), 2 / 255, np.float32),
        "one": np.ones((1, 1, 1, 1), np.float32),
        "mixed": np.array([[[[0.0, 1.0, 2.0]]]], np.float32),
        "wide": np.full((2, 1, 1, 3), 0.5, np.float32),
    }
    model = _model(nodes, [x], [y, z], inits)
    edited = scalar_constants(model)
    ops = {n.name: (n.op_type, list(n.input)) for n in edited.graph.node}
    assert ops["sub0"] == ("Identity", ["x"])
    consts = {t.name: numpy_helper.to_array(t) for t in edited.graph.initializer}
    assert consts[ops["mul"][1][1]].shape == () and consts[ops["sub1"][1][1]].shape == ()
    assert ops["mixed"] == ("Add", ["c", "mixed"]) and ops["wide"] == ("Mul", ["x", "wide"])
    assert "zeros" not in consts and "scale" not in consts
    image = np.random.default_rng(2).integers(0, 256, (1, 5, 7, 3)).astype(np.float32)
    before, after = _run(model, {"x": image}), _run(edited, {"x": image})
    assert after["y"].shape == before["y"].shape and after["z"].shape == (2, 5, 7, 3)
    assert np.array_equal(after["y"], before["y"]) and np.array_equal(after["z"], before["z"])
