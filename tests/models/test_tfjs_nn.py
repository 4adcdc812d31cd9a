"""Converter unit tests, network ops: weights, fused convolutions, dilated convs, pooling,
resize, tf.cond, layout.  Tiny hand-written graphs checked against numpy references."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
from tfjs_graphs import GraphWriter, T, conv2d_nhwc, convert_and_run, resize_bilinear_tf

from livematte.errors import ModelError
from livematte.models.tfjs import convert_graph_model

pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(7)


def _conv_graph(tmp_path, op, w, bias, fused, stride=1, padding="SAME", quant=None):
    g = GraphWriter()
    g.placeholder("x", [1, -1, -1, w.shape[2]])
    g.const("w", w, quant)
    g.const("b", bias, quant)
    g.op(op, "y", ["x", "w", "b"], strides=[1, stride, stride, 1], padding=padding,
         dilations=[1, 1, 1, 1], data_format="NHWC", fused_ops=fused, num_args=1)
    return g.write(tmp_path, {"y": "y"})


@pytest.mark.parametrize("fused, act", [(["BiasAdd"], None), (["BiasAdd", "Relu"], "relu"),
                                        (["BiasAdd", "Relu6"], "relu6")])
@pytest.mark.parametrize("stride, padding", [(1, "SAME"), (2, "SAME"), (2, "VALID")])
def test_fused_conv2d(tmp_path, fused, act, stride, padding):
    w = RNG.normal(size=(3, 3, 4, 5)).astype(np.float32)
    b = RNG.normal(size=5).astype(np.float32)
    x = RNG.normal(size=(1, 9, 11, 4)).astype(np.float32) * 3
    path = _conv_graph(tmp_path, "_FusedConv2D", w, b, fused, stride, padding)
    want = conv2d_nhwc(x, w, stride, padding=padding) + b
    want = {None: want, "relu": np.maximum(want, 0), "relu6": np.clip(want, 0, 6)}[act]
    got = convert_and_run(path, {"x": x})["y"]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_fused_depthwise_with_uint8_weights_dequantised_like_tfjs(tmp_path):
    w = RNG.normal(size=(3, 3, 4, 2)).astype(np.float32)
    b = RNG.normal(size=8).astype(np.float32)
    x = RNG.normal(size=(1, 8, 8, 4)).astype(np.float32)
    path = _conv_graph(tmp_path, "FusedDepthwiseConv2dNative", w, b, ["BiasAdd", "Relu6"],
                       quant="uint8")
    lo, scale = float(w.min()), (float(w.max()) - float(w.min())) / 255
    wq = (np.round((w - lo) / scale) * scale + lo).astype(np.float32)  # what TF.js loads
    blo, bscale = float(b.min()), (float(b.max()) - float(b.min())) / 255
    bq = (np.round((b - blo) / bscale) * bscale + blo).astype(np.float32)
    want = np.clip(conv2d_nhwc(x, wq, padding="SAME", depthwise=True) + bq, 0, 6)
    np.testing.assert_allclose(convert_and_run(path, {"x": x})["y"], want, atol=1e-4)


def test_float16_weights_and_fp16_storage(tmp_path):
    w = RNG.normal(size=(1, 1, 3, 64)).astype(np.float32)
    path = _conv_graph(tmp_path, "_FusedConv2D", w, np.zeros(64, np.float32), ["BiasAdd"],
                       quant="float16")
    x = RNG.normal(size=(1, 4, 4, 3)).astype(np.float32)
    want = conv2d_nhwc(x, w.astype(np.float16).astype(np.float32))
    for fp16 in (False, True):
        got = convert_and_run(path, {"x": x}, fp16_weights=fp16)["y"]
        np.testing.assert_allclose(got, want, atol=1e-5)
    stored = onnx.load_from_string(convert_graph_model(path, fp16_weights=True, layout="nhwc"))
    assert {t.data_type for t in stored.graph.initializer if len(t.dims) == 4} == {
        onnx.TensorProto.FLOAT16}


def test_truncated_weights_are_a_clear_error(tmp_path):
    path = _conv_graph(tmp_path, "_FusedConv2D", np.ones((1, 1, 2, 2), np.float32),
                       np.ones(2, np.float32), ["BiasAdd"])
    (tmp_path / "weights.bin").write_bytes(b"\0" * 10)
    with pytest.raises(ModelError, match="truncated"):
        convert_graph_model(path)


@pytest.mark.parametrize("height, width", [(12, 12), (13, 10)])
def test_space_to_batch_conv_becomes_one_dilated_conv(tmp_path, height, width):
    """TensorFlow's dilated depthwise conv: Pad -> SpaceToBatchND -> conv -> BatchToSpaceND,
    with the divisibility padding computed from the runtime shape, as in RVM."""
    g = GraphWriter()
    g.placeholder("x", [1, -1, -1, 3])
    g.const("pads", [[0, 0], [2, 2], [2, 2], [0, 0]])
    g.op("Pad", "xp", ["x", "pads"])
    g.op("Shape", "shape", ["xp"], out_type=T("DT_INT32"))
    for i, (b, e) in enumerate([(1, 2), (2, 3)]):
        g.const(f"b{i}", [b])
        g.const(f"e{i}", [e])
        g.const(f"one{i}", [1])
        g.op("StridedSlice", f"dim{i}", ["shape", f"b{i}", f"e{i}", f"one{i}"], shrink_axis_mask=1)
    g.const("rate", [2, 2])
    g.op("Pack", "hw", ["dim0", "dim1"], N=2, axis=0)
    g.op("FloorMod", "mod", ["hw", "rate"])
    g.op("Sub", "sub", ["rate", "mod"])
    g.op("FloorMod", "extra", ["sub", "rate"])
    for i in range(2):
        g.const(f"i{i}", [i])
        g.const(f"i{i}e", [i + 1])
        g.const(f"s{i}", [1])
        g.op("StridedSlice", f"x{i}", ["extra", f"i{i}", f"i{i}e", f"s{i}"], shrink_axis_mask=1)
        g.op("StridedSlice", f"c{i}", ["extra", f"i{i}", f"i{i}e", f"s{i}"], shrink_axis_mask=1)
        g.const(f"z{i}", 0)
        g.op("Pack", f"p{i}", [f"z{i}", f"x{i}"], N=2, axis=0)
        g.op("Pack", f"k{i}", [f"z{i}", f"c{i}"], N=2, axis=0)
    g.op("Pack", "paddings", ["p0", "p1"], N=2, axis=0)
    g.op("Pack", "crops", ["k0", "k1"], N=2, axis=0)
    g.op("SpaceToBatchND", "s2b", ["xp", "rate", "paddings"])
    w = RNG.normal(size=(3, 3, 3, 1)).astype(np.float32)
    g.const("w", w)
    g.op("DepthwiseConv2dNative", "dw", ["s2b", "w"], strides=[1, 1, 1, 1], padding="VALID",
         dilations=[1, 1, 1, 1], data_format="NHWC")
    g.op("BatchToSpaceND", "y", ["dw", "rate", "crops"])
    path = g.write(tmp_path, {"y": "y"})
    x = RNG.normal(size=(1, height, width, 3)).astype(np.float32)
    want = conv2d_nhwc(np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)]), w, dilation=2,
                       depthwise=True)
    np.testing.assert_allclose(convert_and_run(path, {"x": x})["y"], want, atol=1e-5)
    ops = [n.op_type for n in onnx.load_from_string(convert_graph_model(path)).graph.node]
    assert ops.count("Conv") == 1 and "Shape" not in ops and "Mod" not in ops



@pytest.mark.parametrize("align_corners, half_pixel", [(False, True), (True, False),
                                                       (False, False)])
@pytest.mark.parametrize("size", [(14, 10), (3, 5)])
def test_resize_bilinear_flags(tmp_path, align_corners, half_pixel, size):
    g = GraphWriter()
    g.placeholder("x", [1, -1, -1, 2])
    g.const("size", list(size))
    g.op("ResizeBilinear", "y", ["x", "size"], align_corners=align_corners,
         half_pixel_centers=half_pixel)
    x = RNG.normal(size=(1, 7, 5, 2)).astype(np.float32)
    got = convert_and_run(g.write(tmp_path, {"y": "y"}), {"x": x})["y"]
    np.testing.assert_allclose(got, resize_bilinear_tf(x, size, align_corners, half_pixel),
                               atol=1e-5)


def test_pooling_same_excludes_padding_and_mean(tmp_path):
    g = GraphWriter()
    g.placeholder("x", [1, -1, -1, 3])
    g.op("AvgPool", "avg", ["x"], ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME",
         data_format="NHWC")
    g.op("MaxPool", "max", ["x"], ksize=[1, 3, 3, 1], strides=[1, 1, 1, 1], padding="SAME",
         data_format="NHWC")
    g.const("axes", [1, 2])
    g.op("Mean", "mean", ["x", "axes"], keep_dims=True)
    x = RNG.normal(size=(1, 5, 5, 3)).astype(np.float32)
    out = convert_and_run(g.write(tmp_path, {"avg": "avg", "max": "max", "mean": "mean"}),
                          {"x": x})
    padded = np.pad(x, [(0, 0), (0, 1), (0, 1), (0, 0)], constant_values=np.nan)
    blocks = padded.reshape(1, 3, 2, 3, 2, 3)
    np.testing.assert_allclose(out["avg"], np.nanmean(blocks, axis=(2, 4)), atol=1e-6)
    pm = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=-np.inf)
    want_max = np.max([pm[:, i:i + 5, j:j + 5] for i in range(3) for j in range(3)], axis=0)
    np.testing.assert_allclose(out["max"], want_max)
    np.testing.assert_allclose(out["mean"], x.mean(axis=(1, 2), keepdims=True), atol=1e-6)


def _cond_graph(tmp_path):
    g = GraphWriter()
    g.placeholder("x", [1, 4, 4, 1])
    g.placeholder("ratio", None)
    g.const("one", np.float32(1.0))
    g.op("Equal", "eq", ["ratio", "one"])
    g.op("Switch", "sw", ["x", "eq"])
    g.op("Identity", "then", ["sw:1"])
    g.const("two", np.float32(2.0))
    g.op("Mul", "else", ["sw", "two"])
    g.op("Merge", "out", ["then", "else"], N=2)
    return g.write(tmp_path, {"y": "out"})


def test_tf_cond_resolved_by_binding_the_predicate(tmp_path):
    path = _cond_graph(tmp_path)
    x = RNG.normal(size=(1, 4, 4, 1)).astype(np.float32)
    np.testing.assert_array_equal(convert_and_run(path, {"x": x}, bind={"ratio": 1.0})["y"], x)
    np.testing.assert_allclose(convert_and_run(path, {"x": x}, bind={"ratio": 0.5})["y"], 2 * x)
    with pytest.raises(ModelError, match="Switch node 'sw'.*bind its placeholder"):
        convert_graph_model(path, input_shapes={"ratio": ()})


def test_unsupported_op_names_op_and_node(tmp_path):
    g = GraphWriter()
    g.placeholder("x", [1, 2])
    g.op("Erfinv", "weird", ["x"])
    with pytest.raises(ModelError, match=r"^cannot convert Erfinv node 'weird': unsupported op$"):
        convert_graph_model(g.write(tmp_path, {"y": "weird"}))


def test_nchw_boundary_needs_no_transpose_and_bytes_are_deterministic(tmp_path):
    w = RNG.normal(size=(3, 3, 3, 4)).astype(np.float32)
    path = _conv_graph(tmp_path, "_FusedConv2D", w, np.ones(4, np.float32), ["BiasAdd", "Relu"])
    first = convert_graph_model(path, layout="nchw")
    assert hashlib.sha256(first).digest() == hashlib.sha256(
        convert_graph_model(path, layout="nchw")).digest()
    ops = [n.op_type for n in onnx.load_from_string(first).graph.node]
    assert "Transpose" not in ops
    nhwc_ops = [n.op_type for n in onnx.load_from_string(
        convert_graph_model(path, layout="nhwc")).graph.node]
    assert nhwc_ops.count("Transpose") == 2  # in and out, nothing inside


def test_reshape_of_a_one_channel_map_needs_no_transpose(tmp_path):
    """[1,H,W,1] stored NCHW has the NHWC element order already (MoveNet's centre heatmap)."""
    w = RNG.normal(size=(1, 1, 3, 1)).astype(np.float32)
    g = GraphWriter()
    g.placeholder("x", [1, -1, -1, 3])
    g.const("w", w)
    g.const("b", np.zeros(1, np.float32))
    g.op("_FusedConv2D", "c", ["x", "w", "b"], strides=[1, 1, 1, 1], padding="VALID",
         dilations=[1, 1, 1, 1], data_format="NHWC", fused_ops=["BiasAdd"], num_args=1)
    g.op("Sigmoid", "s", ["c"])
    g.const("flat", [1, -1])
    g.op("Reshape", "y", ["s", "flat"])
    path = g.write(tmp_path, {"y": "y"})
    x = RNG.normal(size=(1, 5, 7, 3)).astype(np.float32)
    got = convert_and_run(path, {"x": x.transpose(0, 3, 1, 2)}, layout="nchw")["y"]
    want = 1 / (1 + np.exp(-conv2d_nhwc(x, w)))
    np.testing.assert_allclose(got, want.reshape(1, -1), atol=1e-6)
    ops = [n.op_type for n in onnx.load_from_string(convert_graph_model(path)).graph.node]
    assert "Transpose" not in ops


def test_conv_over_features_plus_image_is_split_for_fast_kernels(tmp_path):
    """RVM's decoder pattern: conv(concat(features, skip, 3-channel image)) becomes
    conv(concat(features, skip)) + conv(image): same values, NCHWc-friendly channel counts."""
    g = GraphWriter()
    g.placeholder("a", [1, -1, -1, 5])
    g.placeholder("b", [1, -1, -1, 3])
    g.placeholder("img", [1, -1, -1, 3])
    g.const("axis", 3)
    g.op("ConcatV2", "cat", ["a", "b", "img", "axis"], N=3)
    w = RNG.normal(size=(3, 3, 11, 4)).astype(np.float32)
    bias = RNG.normal(size=4).astype(np.float32)
    g.const("w", w)
    g.const("bias", bias)
    g.op("_FusedConv2D", "y", ["cat", "w", "bias"], strides=[1, 1, 1, 1], padding="SAME",
         dilations=[1, 1, 1, 1], data_format="NHWC", fused_ops=["BiasAdd", "Relu"], num_args=1)
    path = g.write(tmp_path, {"y": "y"})
    feeds = {k: RNG.normal(size=(1, 6, 7, c)).astype(np.float32)
             for k, c in (("a", 5), ("b", 3), ("img", 3))}
    x = np.concatenate([feeds["a"], feeds["b"], feeds["img"]], axis=3)
    want = np.maximum(conv2d_nhwc(x, w, padding="SAME") + bias, 0)
    np.testing.assert_allclose(convert_and_run(path, feeds)["y"], want, atol=1e-4)
    ops = [n.op_type for n in onnx.load_from_string(convert_graph_model(path)).graph.node]
    assert ops.count("Conv") == 2 and ops.count("Concat") == 1
