"""The converter's peephole rewrites: each one fires on its pattern, leaves look-alikes alone,
and computes what the original nodes computed (ONNX Runtime on both graphs)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from livematte.models.tfjs import peephole
from livematte.models.tfjs.graph import _live_nodes

ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(7)


def _init(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _conv_weights(name: str, out: int, cin: int, k: int = 1) -> list[onnx.TensorProto]:
    w = RNG.standard_normal((out, cin, k, k)).astype(np.float32)
    return [_init(name, w), _init(name + "_b", RNG.standard_normal(out).astype(np.float32))]


def _model(nodes, inits, outputs=("y",), channels=32) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, "h", "w"])
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, [None] * 4) for o in outputs]
    model = helper.make_model(helper.make_graph(nodes, "t", [x], outs, inits),
                              opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def _rewrite(model: onnx.ModelProto) -> onnx.ModelProto:
    inits = list(model.graph.initializer)
    nodes = peephole.optimize(list(model.graph.node), inits)
    nodes = _live_nodes(nodes, [o.name for o in model.graph.output])
    used = {n for node in nodes for n in node.input}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:], out.graph.initializer[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(t for t in inits if t.name in used)
    onnx.checker.check_model(out)
    return out


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def _same(before: onnx.ModelProto, after: onnx.ModelProto, shape=(1, 32, 13, 17)) -> None:
    x = (RNG.standard_normal(shape) * 4).astype(np.float32)
    for a, b in zip(_run(before, x), _run(after, x), strict=True):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-5 * max(1.0, float(np.abs(a).max()))


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def _hard_swish_nodes(x: str, y: str) -> list[onnx.NodeProto]:
    # TensorFlow's spelling, as the converter emits it: (x / 6) * relu6(x + 3)
    return [
        helper.make_node("Mul", ["sixth", x], [y + "_s"]),
        helper.make_node("Add", [x, "three"], [y + "_a"]),
        helper.make_node("Clip", [y + "_a", "zero", "six"], [y + "_c"]),
        helper.make_node("Mul", [y + "_s", y + "_c"], [y]),
    ]


CONSTS = [_init("sixth", np.full((1, 1, 1, 1), 1 / 6, np.float32)),
          _init("three", np.full((1, 1, 1, 1), 3, np.float32)),
          _init("zero", np.float32(0)), _init("six", np.float32(6))]


def test_hard_swish_and_hard_sigmoid_become_single_ops() -> None:
    nodes = [helper.make_node("Conv", ["x", "w", "w_b"], ["c"]), *_hard_swish_nodes("c", "hs"),
             helper.make_node("Add", ["hs", "three"], ["a"]),
             helper.make_node("Clip", ["a", "zero", "six"], ["cl"]),
             helper.make_node("Mul", ["cl", "sixth"], ["y"])]
    before = _model(nodes, [*_conv_weights("w", 32, 32), *CONSTS])
    after = _rewrite(before)
    assert _ops(after) == ["Conv", "HardSwish", "HardSigmoid"]
    _same(before, after)


def test_hard_swish_with_a_shared_intermediate_is_left_alone() -> None:
    nodes = [*_hard_swish_nodes("x", "hs"), helper.make_node("Add", ["hs", "hs_a"], ["y"])]
    before = _model(nodes, CONSTS)
    assert "HardSwish" not in _ops(_rewrite(before))


def test_wrong_constants_are_not_hard_swish() -> None:
    consts = [*CONSTS[:2], _init("zero", np.float32(0)), _init("six", np.float32(5))]
    before = _model(_hard_swish_nodes("x", "y"), consts)
    assert _ops(_rewrite(before)) == _ops(before)


def test_spatial_mean_before_a_conv_is_global_average_pool() -> None:
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
             helper.make_node("Conv", ["m", "w", "w_b"], ["y"])]
    before = _model(nodes, [_init("axes", np.array([2, 3], np.int64)),
                            *_conv_weights("w", 16, 32)])
    after = _rewrite(before)
    assert _ops(after) == ["GlobalAveragePool", "Conv"]
    _same(before, after)
    # Not over H, W, or not feeding a conv: unchanged.
    for axes, consumer in (([1, 2], "Conv"), ([2, 3], "Relu")):
        inputs = ["m", "w", "w_b"] if consumer == "Conv" else ["m"]
        other = _model([nodes[0], helper.make_node(consumer, inputs, ["y"])],
                       [_init("axes", np.array(axes, np.int64)), *_conv_weights("w", 16, 32)])
        assert "GlobalAveragePool" not in _ops(_rewrite(other))


def _resize_nodes(factor_of: str, factor: int) -> list[onnx.NodeProto]:
    """Resize x to ``factor`` times the spatial size of ``factor_of``, TF.js-style."""
    return [
        helper.make_node("Shape", [factor_of], ["shp"]),
        helper.make_node("Gather", ["shp", "nhwc"], ["g"], axis=0),
        helper.make_node("Cast", ["g"], ["g32"], to=TensorProto.INT32),
        helper.make_node("Slice", ["g32", "one", "three"], ["hw"]),
        helper.make_node("Mul", ["hw", "factor"], ["hw2"]),
        helper.make_node("Cast", ["hw2"], ["hw64"], to=TensorProto.INT64),
        helper.make_node("Shape", ["x"], ["shx"]),
        helper.make_node("Slice", ["shx", "zero_i", "two"], ["nc"]),
        helper.make_node("Concat", ["nc", "hw64"], ["sizes"], axis=0),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
    ]


RESIZE_CONSTS = [_init("nhwc", np.array([0, 2, 3, 1], np.int64)),
                 _init("one", np.array([1], np.int64)), _init("three", np.array([3], np.int64)),
                 _init("zero_i", np.array([0], np.int64)), _init("two", np.array([2], np.int64))]


@pytest.mark.parametrize("factor", [2, 3])
def test_resize_to_a_multiple_of_its_own_size_uses_constant_scales(factor) -> None:
    before = _model(_resize_nodes("x", factor),
                    [*RESIZE_CONSTS, _init("factor", np.array([factor, factor], np.int32))])
    after = _rewrite(before)
    assert _ops(after) == ["Resize"]
    scales = numpy_helper.to_array(after.graph.initializer[0])
    assert scales.tolist() == [1, 1, factor, factor]
    _same(before, after)


def test_resize_to_another_tensors_size_keeps_its_sizes() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["other"]), *_resize_nodes("other", 2)]
    before = _model(nodes, [*RESIZE_CONSTS, _init("factor", np.array([2, 2], np.int32))])
    assert "Shape" in _ops(_rewrite(before))  # a different tensor: no proof, no rewrite
    uneven = _model(_resize_nodes("x", 2), [*RESIZE_CONSTS,
                                            _init("factor", np.array([2, 3], np.int32))])
    assert "Shape" in _ops(_rewrite(uneven))


def _split_model(out_channels: int) -> onnx.ModelProto:
    nodes = [helper.make_node("Conv", ["x", "w", "w_b"], ["c"], kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "v", "v_b"], ["d"], kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "d"], ["s"]),
             helper.make_node("Relu", ["s"], ["r"]),
             helper.make_node("Split", ["r"], ["a", "b"], axis=1, num_outputs=2),
             helper.make_node("Sigmoid", ["a"], ["y"]), helper.make_node("Tanh", ["b"], ["z"])]
    inits = [*_conv_weights("w", out_channels, 32, 3), *_conv_weights("v", out_channels, 32, 3)]
    return _model(nodes, inits, outputs=("y", "z"))


def test_split_of_a_conv_chain_becomes_one_chain_per_half() -> None:
    before = _split_model(64)
    after = _rewrite(before)
    ops = _ops(after)
    assert "Split" not in ops and ops.count("Conv") == 4 and ops.count("Add") == 2
    _same(before, after)


def test_split_into_halves_off_the_channel_block_is_kept() -> None:
    # 40 channels: halves of 20 would each be padded to 32 by ONNX Runtime's NCHWc layout.
    assert "Split" in _ops(_rewrite(_split_model(40)))


def test_rewrites_are_deterministic() -> None:
    model = _split_model(32)
    first, second = _rewrite(model), _rewrite(model)
    assert first.SerializeToString(deterministic=True) == second.SerializeToString(
        deterministic=True)
