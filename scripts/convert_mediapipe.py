#!/usr/bin/env python3
"""Convert MediaPipe's TFLite person models into the ONNX files livematte embeds.

Run once at development time (needs the ``dev`` extra: ``tflite`` for the flatbuffer schema and
``onnx`` for graph building; no TensorFlow)::

    pip download mediapipe==0.10.21 --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 -d /tmp/mp
    python scripts/convert_mediapipe.py /tmp/mp/mediapipe-0.10.21-*.whl

The wheel is opened as a zip; the four .tflite files are parsed, their fp16 DEQUANTIZE and
DENSIFY (sparse) weights are folded at conversion time, and each graph is rebuilt in ONNX with
NCHW activations inside and the original NHWC tensors at the edges, so outputs are comparable
value by value with the TFLite originals.  Weights are stored as fp16 initializers with a Cast to
fp32 (exact: the originals are fp16).  The result is deterministic: the same wheel gives the same
bytes, which ``--check`` verifies against the committed manifest.  The landmark model's
person-mask decoder is then split off into a model of its own (``SPLIT``): same values, and
the keypoint stage pays for it only when a mask is used.

Facts this depends on (checked against the TFLite reference runner by scripts/check_parity.py):
TFLite SAME padding puts the odd pixel at the end, so pads are written out explicitly;
RESIZE_BILINEAR here uses half_pixel_centers; the custom op Convolution2DTransposeBias keeps its
options as a raw little-endian struct {padding, stride_w, stride_h} with 1=SAME, 2=VALID and OHWI
weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from livematte.models.onnx_edit import split_off  # noqa: E402

OUT_DIR = Path(__file__).resolve().parents[1] / "livematte" / "models" / "data"
WHEEL_NAME = "mediapipe-0.10.21-cp312-cp312-manylinux_2_28_x86_64.whl"

#: name -> (path inside the wheel, names given to the model's outputs in TFLite order)
MODELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "selfie_segmentation": (
        "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        ("segmentation",),
    ),
    "selfie_segmentation_landscape": (
        "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite",
        ("segmentation",),
    ),
    "pose_detection": (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        ("boxes", "scores"),
    ),
    "pose_landmark_full": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        ("landmarks", "presence", "segmentation", "heatmap", "world_landmarks"),
    ),
}

#: name -> (name of the second model, the outputs it computes, its inputs' prefix): these
#: outputs' own nodes are split off into a model of their own (``onnx_edit.split_off``).
#: BlazePose's 256x256 person-mask decoder is ~7.5 of the landmark model's ~17.5 ms on one core;
#: the keypoint stage runs it only for masks someone uses.
SPLIT: dict[str, tuple[str, tuple[str, ...], str]] = {
    "pose_landmark_full": ("pose_landmark_full_mask", ("segmentation",), "mask_input_"),
}

OPSET = 17
IR_VERSION = 8  # old enough for every onnxruntime >= 1.17 to load

_NUMPY_TYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.INT64: np.int64,
}
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _opcode_name(model: tflite.Model, op: tflite.Operator) -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == tflite.BuiltinOperator.CUSTOM:
        return code.CustomCode().decode()
    return tflite.opcode2name(builtin)


def _options(op: tflite.Operator, cls: type) -> object:
    table = op.BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _index_vector(dim: tflite.DimensionMetadata, which: str) -> np.ndarray:
    kind = getattr(dim, f"{which}Type")()
    table = getattr(dim, which)()
    vector_cls = {
        tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
        tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
        tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector,
    }[kind]
    vec = vector_cls()
    vec.Init(table.Bytes, table.Pos)
    return vec.ValuesAsNumpy().astype(np.int64)


def densify(values: np.ndarray, sparsity: tflite.SparsityParameters, shape: tuple) -> np.ndarray:
    """Expand a TFLite sparse tensor (dense/CSR dims in traversal order, no blocks) to dense."""
    order = list(sparsity.TraversalOrderAsNumpy())
    if order != list(range(len(shape))) or not sparsity.BlockMapIsNone():
        raise NotImplementedError("block-sparse or reordered tensors are not used by these models")
    dims = [sparsity.DimMetadata(i) for i in range(sparsity.DimMetadataLength())]
    dense = np.zeros(shape, dtype=values.dtype)
    flat = dense.reshape(-1)
    strides = np.cumprod((list(shape[1:]) + [1])[::-1])[::-1]

    def walk(level: int, position: int, offset: int) -> None:
        # position: index into the segment array of this level; offset: flat output offset.
        dim = dims[level]
        if dim.Format() == tflite.DimensionType.DENSE:
            children = [(i, position * dim.DenseSize() + i) for i in range(dim.DenseSize())]
        else:
            segments = _index_vector(dim, "ArraySegments")
            indices = _index_vector(dim, "ArrayIndices")
            start, end = segments[position], segments[position + 1]
            children = [(int(indices[k]), k) for k in range(start, end)]
        for coordinate, child_position in children:
            child_offset = offset + coordinate * strides[level]
            if level == len(shape) - 1:
                flat[child_offset] = values[child_position]
            else:
                walk(level + 1, child_position, child_offset)

    walk(0, 0, 0)
    return dense


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite SAME padding: the odd pixel goes at the end."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


@dataclass
class Value:
    """A tensor during conversion: an ONNX value name, or a folded constant."""

    name: str | None = None
    const: np.ndarray | None = None
    nchw: bool = False  # a 4-D activation held as NCHW inside the ONNX graph


class Converter:
    """Rebuild one TFLite subgraph as an ONNX graph."""

    def __init__(self, data: bytes, model_name: str, output_names: tuple[str, ...]):
        self.model = tflite.Model.GetRootAsModel(data, 0)
        self.graph = self.model.Subgraphs(0)
        self.model_name = model_name
        self.output_names = output_names
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.values: dict[int, Value] = {}
        self._counter = 0

    # -- helpers ---------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}_{self._counter}"

    def shape(self, index: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.graph.Tensors(index).ShapeAsNumpy())

    def buffer(self, index: int) -> np.ndarray | None:
        tensor = self.graph.Tensors(index)
        raw = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(raw, int) or raw is None or len(raw) == 0:
            return None
        values = np.frombuffer(raw.tobytes(), dtype=_NUMPY_TYPES[tensor.Type()])
        sparsity = tensor.Sparsity()
        if sparsity is not None:
            return values  # densified by the DENSIFY op
        return values.reshape(self.shape(index))

    def constant(self, array: np.ndarray, hint: str) -> str:
        """An initializer; fp16 weights stay fp16 on disk and are cast once at load."""
        name = self.fresh(hint)
        if array.dtype == np.float16:
            stored = name + "_fp16"
            self.initializers.append(numpy_helper.from_array(array, stored))
            self.node("Cast", [stored], [name], to=TensorProto.FLOAT)
        else:
            self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op_type: str, inputs: list[str], outputs: list[str], **attrs: object) -> None:
        self.nodes.append(
            helper.make_node(op_type, inputs, outputs, name=f"{op_type}_{len(self.nodes)}", **attrs)
        )

    def get(self, index: int) -> Value:
        if index not in self.values:
            data = self.buffer(index)
            if data is None:
                raise KeyError(f"tensor {index} has no producer and no data")
            self.values[index] = Value(const=data)
        return self.values[index]

    def as_input(self, index: int, *, want_nchw: bool | None = None) -> tuple[str, bool]:
        """ONNX name for a tensor, materialising constants in the layout the consumer needs."""
        value = self.get(index)
        if value.const is not None:
            array = value.const
            if array.dtype != np.float16 and array.dtype != np.float32:
                return self.constant(array, "c"), False
            if want_nchw and array.ndim == 4:
                return self.constant(array.transpose(0, 3, 1, 2), "c"), True
            if want_nchw and array.ndim == 1:
                # A per-channel vector broadcast against NHWC's last axis; NCHW needs [C,1,1].
                return self.constant(array.reshape(-1, 1, 1), "c"), True
            return self.constant(array, "c"), False
        return value.name, value.nchw

    def to_native(self, index: int) -> str:
        """The tensor in TFLite's own (NHWC) layout."""
        name, nchw = self.as_input(index)
        if not nchw:
            return name
        out = self.fresh("nhwc")
        self.node("Transpose", [name], [out], perm=[0, 2, 3, 1])
        return out

    def activation(self, name: str, fused: int) -> str:
        if fused == tflite.ActivationFunctionType.NONE:
            return name
        out = self.fresh("act")
        if fused == tflite.ActivationFunctionType.RELU:
            self.node("Relu", [name], [out])
        elif fused == tflite.ActivationFunctionType.RELU6:
            self.node(
                "Clip",
                [name, self.constant(np.float32(0), "lo"), self.constant(np.float32(6), "hi")],
                [out],
            )
        elif fused == tflite.ActivationFunctionType.RELU_N1_TO_1:
            self.node(
                "Clip",
                [name, self.constant(np.float32(-1), "lo"), self.constant(np.float32(1), "hi")],
                [out],
            )
        elif fused == tflite.ActivationFunctionType.TANH:
            self.node("Tanh", [name], [out])
        else:
            raise NotImplementedError(f"fused activation {fused}")
        return out

    def spatial_pads(
        self,
        in_shape: tuple,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        dilation: tuple[int, int],
        padding: int,
    ) -> list[int]:
        if padding == tflite.Padding.VALID:
            return [0, 0, 0, 0]
        top, bottom = same_pads(in_shape[1], kernel[0], stride[0], dilation[0])
        left, right = same_pads(in_shape[2], kernel[1], stride[1], dilation[1])
        return [top, left, bottom, right]

    # -- ops ---------------------------------------------------------------------------------
    def convert(self) -> onnx.ModelProto:
        graph = self.graph
        (input_index,) = [graph.Inputs(i) for i in range(graph.InputsLength())]
        input_shape = self.shape(input_index)
        nchw_input = self.fresh("image_nchw")
        self.node("Transpose", ["image"], [nchw_input], perm=[0, 3, 1, 2])
        self.values[input_index] = Value(name=nchw_input, nchw=True)

        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            kind = _opcode_name(self.model, op)
            handler = getattr(self, "op_" + kind.lower(), None)
            if handler is None:
                raise NotImplementedError(f"{self.model_name}: op {kind} is not supported")
            handler(op, list(op.InputsAsNumpy()), list(op.OutputsAsNumpy()))

        outputs = []
        for k in range(graph.OutputsLength()):
            index = graph.Outputs(k)
            final = self.output_names[k]
            self.node("Identity", [self.to_native(index)], [final])
            outputs.append(
                helper.make_tensor_value_info(final, TensorProto.FLOAT, self.shape(index))
            )

        onnx_graph = helper.make_graph(
            self.nodes,
            self.model_name,
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(input_shape))],
            outputs,
            self.initializers,
        )
        model = helper.make_model(
            onnx_graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="livematte-convert-mediapipe",
            producer_version="1",
            ir_version=IR_VERSION,
        )
        onnx.checker.check_model(model, full_check=True)
        return model

    def emit(self, out_index: int, name: str, nchw: bool) -> None:
        self.values[out_index] = Value(name=name, nchw=nchw)

    def op_dequantize(self, op, ins, outs) -> None:
        self.values[outs[0]] = Value(const=self.get(ins[0]).const.astype(np.float16))

    def op_densify(self, op, ins, outs) -> None:
        tensor = self.graph.Tensors(ins[0])
        values = self.buffer(ins[0])
        self.values[outs[0]] = Value(const=densify(values, tensor.Sparsity(), self.shape(ins[0])))

    def _conv(self, opts, ins, outs, weights, kernel, kind: str = "", **group: int) -> None:
        """Conv from TFLite options and ONNX-layout weights; ``kind="dw"`` with ``group`` for
        depthwise (the kind only names the tensors, which keeps the output bytes stable)."""
        stride = (opts.StrideH(), opts.StrideW())
        dilation = (opts.DilationHFactor(), opts.DilationWFactor())
        pads = self.spatial_pads(self.shape(ins[0]), kernel, stride, dilation, opts.Padding())
        x, _ = self.as_input(ins[0], want_nchw=True)
        inputs = [x, self.constant(weights, kind or "w")]
        if len(ins) > 2 and ins[2] >= 0:
            inputs.append(self.constant(self.get(ins[2]).const, "b"))
        out = self.fresh(kind + "conv")
        self.node(
            "Conv",
            inputs,
            [out],
            kernel_shape=list(kernel),
            strides=list(stride),
            dilations=list(dilation),
            pads=pads,
            **group,
        )
        self.emit(outs[0], self.activation(out, opts.FusedActivationFunction()), True)

    def op_conv_2d(self, op, ins, outs) -> None:
        weights = self.get(ins[1]).const  # OHWI
        self._conv(_options(op, tflite.Conv2DOptions), ins, outs,
                   weights.transpose(0, 3, 1, 2), weights.shape[1:3])  # fmt: skip

    def op_depthwise_conv_2d(self, op, ins, outs) -> None:
        weights = self.get(ins[1]).const  # [1, H, W, C*M] -> [C*M, 1, H, W]
        self._conv(_options(op, tflite.DepthwiseConv2DOptions), ins, outs,
                   weights.transpose(3, 0, 1, 2), weights.shape[1:3], "dw",
                   group=self.shape(ins[0])[3])  # fmt: skip

    def op_convolution2dtransposebias(self, op, ins, outs) -> None:
        padding, stride_w, stride_h = struct.unpack(
            "<iii", op.CustomOptionsAsNumpy().tobytes()[:12]
        )
        weights = self.get(ins[1]).const  # OHWI
        kernel = weights.shape[1:3]
        in_h, in_w = self.shape(ins[0])[1:3]
        out_h, out_w = self.shape(outs[0])[1:3]
        if padding == 1:  # SAME: the output is input * stride; crop the rest, extra at the end
            total_h = (in_h - 1) * stride_h + kernel[0] - out_h
            total_w = (in_w - 1) * stride_w + kernel[1] - out_w
            pads = [total_h // 2, total_w // 2, total_h - total_h // 2, total_w - total_w // 2]
        elif padding == 2:
            pads = [0, 0, 0, 0]
        else:
            raise NotImplementedError(f"Convolution2DTransposeBias padding {padding}")
        x, _ = self.as_input(ins[0], want_nchw=True)
        w = self.constant(weights.transpose(3, 0, 1, 2), "tw")  # [I, O, H, W]
        b = self.constant(self.get(ins[2]).const, "b")
        out = self.fresh("deconv")
        self.node(
            "ConvTranspose",
            [x, w, b],
            [out],
            kernel_shape=list(kernel),
            strides=[stride_h, stride_w],
            pads=pads,
        )
        self.emit(outs[0], out, True)

    def _binary(self, op, ins, outs, onnx_op: str, options_cls: type) -> None:
        opts = _options(op, options_cls) if op.BuiltinOptions() is not None else None
        nchw = any(self.get(i).nchw for i in ins)
        a, _ = self.as_input(ins[0], want_nchw=nchw)
        b, _ = self.as_input(ins[1], want_nchw=nchw)
        out = self.fresh(onnx_op.lower())
        self.node(onnx_op, [a, b], [out])
        fused = opts.FusedActivationFunction() if opts is not None else 0
        self.emit(outs[0], self.activation(out, fused), nchw)

    def op_add(self, op, ins, outs) -> None:
        self._binary(op, ins, outs, "Add", tflite.AddOptions)

    def op_mul(self, op, ins, outs) -> None:
        self._binary(op, ins, outs, "Mul", tflite.MulOptions)

    def _unary(self, ins, outs, onnx_op: str) -> None:
        x, nchw = self.as_input(ins[0])
        out = self.fresh(onnx_op.lower())
        self.node(onnx_op, [x], [out])
        self.emit(outs[0], out, nchw)

    def op_relu(self, op, ins, outs) -> None:
        self._unary(ins, outs, "Relu")

    def op_logistic(self, op, ins, outs) -> None:
        self._unary(ins, outs, "Sigmoid")

    def op_hard_swish(self, op, ins, outs) -> None:
        self._unary(ins, outs, "HardSwish")

    def _pool(self, op, ins, outs, onnx_op: str) -> None:
        opts = _options(op, tflite.Pool2DOptions)
        kernel = (opts.FilterHeight(), opts.FilterWidth())
        stride = (opts.StrideH(), opts.StrideW())
        pads = self.spatial_pads(self.shape(ins[0]), kernel, stride, (1, 1), opts.Padding())
        x, _ = self.as_input(ins[0], want_nchw=True)
        out = self.fresh(onnx_op.lower())
        # TFLite averages over the valid pixels only: count_include_pad=0 (ONNX's default).
        self.node(onnx_op, [x], [out], kernel_shape=list(kernel), strides=list(stride), pads=pads)
        self.emit(outs[0], self.activation(out, opts.FusedActivationFunction()), True)

    def op_average_pool_2d(self, op, ins, outs) -> None:
        self._pool(op, ins, outs, "AveragePool")

    def op_max_pool_2d(self, op, ins, outs) -> None:
        self._pool(op, ins, outs, "MaxPool")

    def op_mean(self, op, ins, outs) -> None:
        opts = _options(op, tflite.ReducerOptions)
        axes = [int(a) for a in self.get(ins[1]).const.reshape(-1)]
        x, nchw = self.as_input(ins[0])
        if nchw:
            axes = [_NHWC_TO_NCHW_AXIS[a] for a in axes]
        out = self.fresh("mean")
        self.node("ReduceMean", [x], [out], axes=axes, keepdims=int(opts.KeepDims()))
        self.emit(outs[0], out, nchw and bool(opts.KeepDims()))

    def op_resize_bilinear(self, op, ins, outs) -> None:
        opts = _options(op, tflite.ResizeBilinearOptions)
        if opts.AlignCorners():
            mode = "align_corners"
        elif opts.HalfPixelCenters():
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        x, _ = self.as_input(ins[0], want_nchw=True)
        n, _, _, c = self.shape(ins[0])
        height, width = (int(v) for v in self.get(ins[1]).const.reshape(-1))
        sizes = self.constant(np.array([n, c, height, width], dtype=np.int64), "sizes")
        out = self.fresh("resize")
        self.node(
            "Resize", [x, "", "", sizes], [out], mode="linear", coordinate_transformation_mode=mode
        )
        self.emit(outs[0], out, True)

    def op_pad(self, op, ins, outs) -> None:
        paddings = self.get(ins[1]).const.reshape(-1, 2).astype(np.int64)
        x, nchw = self.as_input(ins[0])
        if nchw:
            paddings = paddings[[0, 3, 1, 2]]
        pads = self.constant(np.concatenate([paddings[:, 0], paddings[:, 1]]), "pads")
        out = self.fresh("pad")
        self.node("Pad", [x, pads], [out], mode="constant")
        self.emit(outs[0], out, nchw)

    def op_depth_to_space(self, op, ins, outs) -> None:
        opts = _options(op, tflite.DepthToSpaceOptions)
        x, _ = self.as_input(ins[0], want_nchw=True)
        out = self.fresh("d2s")
        # TensorFlow's NHWC DepthToSpace orders channels as (block_row, block_col, depth): DCR.
        self.node("DepthToSpace", [x], [out], blocksize=opts.BlockSize(), mode="DCR")
        self.emit(outs[0], out, True)

    def op_reshape(self, op, ins, outs) -> None:
        x = self.to_native(ins[0])
        target = self.constant(np.array(self.shape(outs[0]), dtype=np.int64), "shape")
        out = self.fresh("reshape")
        self.node("Reshape", [x, target], [out])
        self.emit(outs[0], out, False)

    def op_concatenation(self, op, ins, outs) -> None:
        opts = _options(op, tflite.ConcatenationOptions)
        nchw = all(self.get(i).nchw for i in ins) and len(self.shape(outs[0])) == 4
        names = [self.as_input(i, want_nchw=True)[0] if nchw else self.to_native(i) for i in ins]
        axis = opts.Axis() % len(self.shape(outs[0]))
        if nchw:
            axis = _NHWC_TO_NCHW_AXIS[axis]
        out = self.fresh("concat")
        self.node("Concat", names, [out], axis=axis)
        self.emit(outs[0], self.activation(out, opts.FusedActivationFunction()), nchw)


def split_model(name: str, onnx_bytes: bytes) -> list[tuple[str, bytes, dict]]:
    """The file(s) written for converted model ``name``: (name, bytes, extra manifest keys).

    Models in ``SPLIT`` give two: the trunk under ``name`` (recording the whole graph's sha256)
    and the split-off part; the others themselves.
    """
    if name not in SPLIT:
        return [(name, onnx_bytes, {})]
    head_name, outputs, prefix = SPLIT[name]
    trunk, head = split_off(onnx.load_model_from_string(onnx_bytes), outputs, prefix)
    return [
        (name, trunk.SerializeToString(deterministic=True),
         {"unsplit_onnx_sha256": sha256_bytes(onnx_bytes), "split_off": head_name}),
        (head_name, head.SerializeToString(deterministic=True), {"split_from": name}),
    ]  # fmt: skip


def convert_all(wheel: Path, out_dir: Path) -> dict:
    """Convert every model in MODELS from the wheel; write .onnx files and MANIFEST.json."""
    wheel_bytes = wheel.read_bytes()
    manifest = {
        "source": {
            "package": "mediapipe",
            "version": "0.10.21",
            "wheel": wheel.name,
            "wheel_sha256": sha256_bytes(wheel_bytes),
        },
        "license": "Apache-2.0",
        "converter": "scripts/convert_mediapipe.py",
        "opset": OPSET,
        "models": {},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name, (member, output_names) in MODELS.items():
            data = archive.read(member)
            model = Converter(data, name, output_names).convert()
            whole = model.SerializeToString(deterministic=True)
            for part, onnx_bytes, extra in split_model(name, whole):
                (out_dir / f"{part}.onnx").write_bytes(onnx_bytes)
                manifest["models"][part] = {
                    "onnx": f"{part}.onnx",
                    "onnx_sha256": sha256_bytes(onnx_bytes),
                    "tflite": member,
                    "tflite_sha256": sha256_bytes(data),
                    **extra,
                }
                print(f"{part}: {len(onnx_bytes)} bytes, sha256 {sha256_bytes(onnx_bytes)}")
    # Keep the entries other converters own (scripts/convert_movenet.py).
    path = out_dir / "MANIFEST.json"
    if path.is_file():
        others = json.loads(path.read_text()).get("models", {})
        for name, entry in others.items():
            manifest["models"].setdefault(name, entry)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help=f"path to {WHEEL_NAME}")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument(
        "--check",
        action="store_true",
        help="convert into a temporary folder and compare with the committed files",
    )
    args = parser.parse_args(argv)
    if not args.wheel.is_file():
        print(f"convert_mediapipe: error: wheel not found: {args.wheel}", file=sys.stderr)
        return 2
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            fresh = convert_all(args.wheel, Path(tmp))
        committed = json.loads((args.out / "MANIFEST.json").read_text())
        ours = {name: committed["models"].get(name) for name in fresh["models"]}
        same = fresh["models"] == ours and fresh["source"] == committed["source"]
        print("identical to committed files" if same else "DIFFERENT from committed files")
        return 0 if same else 1
    convert_all(args.wheel, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
