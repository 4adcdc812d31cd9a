"""Converter unit tests, array and math ops (the ones MoveNet's post-processing and RVM's
recurrent decoder use), on tiny hand-written graphs checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from tfjs_graphs import GraphWriter, T, convert_and_run

pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(3)
I32 = T("DT_INT32")


@pytest.mark.parametrize(
    "spec, masks, index",
    [
        (([1, 0, 2], [3, 0, 8], [1, 1, 2]), {}, np.s_[1:3, 0:0, 2:8:2]),
        (([0, 1], [0, 3], [1, 1]), {"begin_mask": 1, "end_mask": 1}, np.s_[:, 1:3]),
        (([1], [2], [1]), {"shrink_axis_mask": 1}, np.s_[1]),
        (([0, -1], [0, 0], [1, 1]), {"begin_mask": 1, "end_mask": 1, "shrink_axis_mask": 2},
         np.s_[:, -1]),
        (([0, 0, 0], [0, 0, 0], [1, 1, 1]), {"begin_mask": 5, "end_mask": 5, "new_axis_mask": 2},
         np.s_[:, None, :]),
        (([0, 1], [0, 2], [1, 1]), {"ellipsis_mask": 1}, np.s_[..., 1:2]),
        (([0, 0], [0, 0], [1, -1]), {"begin_mask": 3, "end_mask": 3}, np.s_[:, ::-1]),
    ],
)
def test_strided_slice_masks(tmp_path, spec, masks, index):
    g = GraphWriter()
    g.placeholder("x", [4, 5, 9])
    for name, values in zip(("b", "e", "s"), spec, strict=True):
        g.const(name, values)
    g.op("StridedSlice", "y", ["x", "b", "e", "s"], **masks)
    x = RNG.normal(size=(4, 5, 9)).astype(np.float32)
    got = convert_and_run(g.write(tmp_path, {"y": "y"}), {"x": x})["y"]
    np.testing.assert_array_equal(got, x[index])


def test_nchw_tensor_shape_reshape_slice_pad_and_concat(tmp_path):
    """A 4-D tensor stored NCHW inside: Shape, StridedSlice, Slice with a runtime size, Pad,
    ConcatV2, Split and Reshape must still mean what they mean on the NHWC tensor."""
    g = GraphWriter()
    g.placeholder("x", [1, -1, -1, 4])
    g.const("w", np.eye(4, dtype=np.float32)[None, None])
    g.const("bias", np.zeros(4, np.float32))
    g.op("_FusedConv2D", "c", ["x", "w", "bias"], strides=[1, 1, 1, 1], padding="VALID",
         dilations=[1, 1, 1, 1], data_format="NHWC", fused_ops=["BiasAdd"], num_args=1)
    g.op("Shape", "shape", ["c"], out_type=I32)
    g.const("one", [1])
    g.const("three", [3])
    g.const("step", [1])
    g.op("StridedSlice", "hw", ["shape", "one", "three", "step"])
    g.const("begin", [0, 1, 0, 1])
    g.const("minus1", [-1])
    g.const("lead", [1])
    g.const("axis0", 0)
    g.const("two", [2])
    g.op("Sub", "hw2", ["hw", "one"])
    g.op("ConcatV2", "size", ["lead", "hw2", "two", "axis0"], N=3)
    g.op("Slice", "sl", ["c", "begin", "size"])
    g.const("pads", [[0, 0], [1, 0], [0, 2], [0, 0]])
    g.op("Pad", "pad", ["sl", "pads"])
    g.const("axis3", 3)
    g.op("ConcatV2", "cat", ["pad", "pad", "axis3"], N=2)
    g.const("dim3", 3)
    g.op("Split", "split", ["dim3", "cat"], num_split=2)
    g.const("flat", [1, -1])
    g.op("Reshape", "y", ["split:1", "flat"])
    path = g.write(tmp_path, {"y": "y", "shape": "shape"})
    x = RNG.normal(size=(1, 5, 6, 4)).astype(np.float32)
    out = convert_and_run(path, {"x": x.transpose(0, 3, 1, 2)}, layout="nchw")
    want = np.pad(x[:, 1:5, 0:5, 1:3], [(0, 0), (1, 0), (0, 2), (0, 0)]).reshape(1, -1)
    np.testing.assert_allclose(out["y"], want, atol=1e-6)
    np.testing.assert_array_equal(out["shape"], [1, 5, 6, 4])


def test_broadcast_to_recurrent_state_in_nchw(tmp_path):
    """RVM's initial state: zeros [1,1,1,1] (or [1,C,1,1] NCHW) broadcast to the feature map."""
    g = GraphWriter()
    g.placeholder("feat", [1, -1, -1, 8])
    g.placeholder("state", None)
    g.op("Shape", "shape", ["feat"], out_type=I32)
    g.op("BroadcastTo", "b", ["state", "shape"])
    g.op("AddV2", "y", ["b", "feat"])
    path = g.write(tmp_path, {"y": "y"})
    feat = RNG.normal(size=(1, 8, 3, 5)).astype(np.float32)  # NCHW at the boundary
    for state in (np.zeros((1, 1, 1, 1), np.float32), np.ones((1, 8, 1, 1), np.float32)):
        got = convert_and_run(path, {"feat": feat, "state": state}, layout="nchw",
                              input_shapes={"state": (None, None, None, None)})["y"]
        np.testing.assert_allclose(got, feat + state)


def test_pack_unpack_split_v_tile_and_reductions(tmp_path):
    g = GraphWriter()
    g.placeholder("x", [3, 4])
    g.op("Unpack", "u", ["x"], num=3, axis=0)
    g.op("Pack", "p", ["u:2", "u:0"], N=2, axis=1)
    g.const("sizes", [1, 3])
    g.const("ax1", 1)
    g.op("SplitV", "sv", ["x", "sizes", "ax1"], num_split=2)
    g.const("reps", [2, 1])
    g.op("Tile", "t", ["sv:1", "reps"])
    g.const("r1", [1])
    g.op("Sum", "sum", ["x", "r1"], keep_dims=False)
    g.op("Max", "max", ["x", "r1"], keep_dims=True)
    g.op("AddN", "addn", ["x", "x", "x"], N=3)
    g.const("perm", [1, 0])
    g.op("Transpose", "tr", ["x", "perm"])
    g.const("e0", 0)
    g.op("ExpandDims", "ed", ["tr", "e0"])
    g.op("Squeeze", "sq", ["ed"], squeeze_dims=[0])
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    names = ["p", "t", "sum", "max", "addn", "sq"]
    out = convert_and_run(g.write(tmp_path, {n: n for n in names}), {"x": x})
    np.testing.assert_array_equal(out["p"], np.stack([x[2], x[0]], 1))
    np.testing.assert_array_equal(out["t"], np.tile(x[:, 1:], (2, 1)))
    np.testing.assert_allclose(out["sum"], x.sum(1), atol=1e-6)
    np.testing.assert_array_equal(out["max"], x.max(1, keepdims=True))
    np.testing.assert_allclose(out["addn"], 3 * x, atol=1e-6)
    np.testing.assert_array_equal(out["sq"], x.T)


def test_movenet_style_postprocessing_ops(tmp_path):
    g = GraphWriter()
    g.placeholder("scores", [1, 12])
    g.placeholder("vals", [4, 3, 4])
    g.const("k", 4)
    g.op("TopKV2", "top", ["scores", "k"], sorted=True)
    g.const("three", 3)
    g.op("FloorDiv", "row", ["top:1", "three"])
    g.op("FloorMod", "col", ["top:1", "three"])
    g.const("neg", np.array([-7, 7, -1, 0], np.int32))
    g.op("FloorDiv", "negdiv", ["neg", "three"])
    g.op("Cast", "negf", ["neg"], SrcT=I32, DstT=T("DT_FLOAT"))
    g.const("threef", np.float32(3))
    g.op("FloorMod", "fmod", ["negf", "threef"])
    g.op("Pack", "idx", ["row", "col"], N=2, axis=2)
    g.op("Squeeze", "idx2", ["idx"], squeeze_dims=[0])
    g.op("StridedSlice", "first", ["idx2", "n0b", "n0e", "n0s"], end_mask=1, begin_mask=1)
    g.const("n0b", [0, 0])
    g.const("n0e", [0, 2])
    g.const("n0s", [1, 1])
    g.op("GatherNd", "gathered", ["vals", "first"], Tindices=I32)
    g.const("ax", 1)
    g.op("ArgMax", "am", ["scores", "ax"], output_type=I32)
    g.const("half", np.float32(0.5))
    g.op("Greater", "gt", ["scores", "half"])
    g.const("zeros", np.zeros((1, 12), np.float32))
    g.op("Select", "sel", ["gt", "scores", "zeros"])
    g.const("start", np.float32(0))
    g.const("delta", np.float32(1))
    g.op("Size", "n", ["scores"], out_type=I32)
    g.op("Cast", "nf", ["n"], SrcT=I32, DstT=T("DT_FLOAT"))
    g.op("Range", "rng", ["start", "nf", "delta"], Tidx=T("DT_FLOAT"))
    g.const("fdims", [2, 3])
    g.op("Fill", "fill", ["fdims", "half"])
    names = ["top", "row", "col", "negdiv", "fmod", "gathered", "am", "sel", "rng", "fill"]
    path = g.write(tmp_path, {n: n for n in names})
    scores = RNG.random((1, 12)).astype(np.float32)
    vals = RNG.normal(size=(4, 3, 4)).astype(np.float32)
    out = convert_and_run(path, {"scores": scores, "vals": vals})
    order = np.argsort(-scores[0])[:4]
    np.testing.assert_array_equal(out["top"][0], scores[0, order])
    np.testing.assert_array_equal(out["row"][0], order // 3)
    np.testing.assert_array_equal(out["col"][0], order % 3)
    np.testing.assert_array_equal(out["negdiv"], np.array([-7, 7, -1, 0]) // 3)
    np.testing.assert_allclose(out["fmod"], np.mod(np.array([-7, 7, -1, 0.0]), 3))
    np.testing.assert_array_equal(out["gathered"], vals[order // 3, order % 3])
    np.testing.assert_array_equal(out["am"], [np.argmax(scores[0])])
    np.testing.assert_array_equal(out["sel"], np.where(scores > 0.5, scores, 0))
    np.testing.assert_array_equal(out["rng"], np.arange(12, dtype=np.float32))
    np.testing.assert_array_equal(out["fill"], np.full((2, 3), 0.5, np.float32))
