"""Adapter contracts for external matting models, tested with tiny look-alike ONNX graphs.

The real RVM / MODNet weights cannot be downloaded here, so each test builds a graph with
the same input/output signature (names, layouts, dtypes) and a trivially predictable body:

* RVM look-alike: pha = mean of src over channels, fgr = src, r1o..r3o = r_i + 1 and
  r4o = r4i + downsample_ratio, so the carried state counts frames and records the ratio.
* MODNet look-alike: matte = (mean of input over channels + 1) / 2, which undoes MODNet's
  (x - 0.5) / 0.5 normalisation, so a grey level g maps to g / 255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from livematte.config import MattingConfig, RuntimeConfig, TemporalConfig  # noqa: E402
from livematte.errors import ModelError  # noqa: E402
from livematte.frame import Frame, Mode  # noqa: E402
from livematte.models.session import create_session  # noqa: E402
from livematte.stages.matting import (  # noqa: E402
    MattingStage,
)
from livematte.stages.matting_adapters import (  # noqa: E402
    MODNetAdapter,
    RobustVideoMattingAdapter,
    adapter_for_session,
)

OPSET = [helper.make_opsetid("", 17)]


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _state(i: int) -> list[str]:
    return ["b", f"c{i}", f"h{i}", f"w{i}"]  # recurrent states: any shape, like RVM's


def build_rvm(path: Path, dtype=TensorProto.FLOAT) -> Path:
    """An ONNX graph with RVM's published signature."""
    dyn = ["b", 3, "h", "w"]
    inputs = [helper.make_tensor_value_info("src", dtype, dyn)]
    inputs += [helper.make_tensor_value_info(f"r{i}i", dtype, _state(i)) for i in range(1, 5)]
    inputs.append(helper.make_tensor_value_info("downsample_ratio", TensorProto.FLOAT, [1]))
    one = helper.make_tensor("one", dtype, [], [1.0])
    nodes = [
        helper.make_node("Identity", ["src"], ["fgr"]),
        helper.make_node("ReduceMean", ["src"], ["pha"], axes=[1], keepdims=1),
        helper.make_node("Add", ["r1i", "one"], ["r1o"]),
        helper.make_node("Add", ["r2i", "one"], ["r2o"]),
        helper.make_node("Add", ["r3i", "one"], ["r3o"]),
        helper.make_node("Cast", ["downsample_ratio"], ["ratio_t"], to=dtype),
        helper.make_node("Add", ["r4i", "ratio_t"], ["r4o"]),
    ]
    outputs = [
        helper.make_tensor_value_info("fgr", dtype, dyn),
        helper.make_tensor_value_info("pha", dtype, ["b", 1, "h", "w"]),
    ]
    outputs += [helper.make_tensor_value_info(f"r{i}o", dtype, _state(i)) for i in range(1, 5)]
    graph = helper.make_graph(nodes, "rvm_lookalike", inputs, outputs, initializer=[one])
    return _save(graph, path)


def build_modnet(path: Path) -> Path:
    """An ONNX graph with MODNet's published signature."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, "h", "w"])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], axes=[1], keepdims=1),
        helper.make_node("Add", ["m", "one"], ["m1"]),
        helper.make_node("Mul", ["m1", "half"], ["output"]),
    ]
    graph = helper.make_graph(nodes, "modnet_lookalike", [x], [y], initializer=[one, half])
    return _save(graph, path)


def build_unsupported(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "bad", [x], [y])
    return _save(graph, path)


def grey(w: int, h: int, level: int) -> np.ndarray:
    return np.full((h, w, 3), level, np.uint8)


@pytest.fixture
def rvm_path(tmp_path: Path) -> Path:
    return build_rvm(tmp_path / "rvm_lookalike.onnx")


def test_rvm_adapter_carries_and_resets_state(rvm_path):
    adapter = adapter_for_session(create_session(rvm_path), MattingConfig())
    assert isinstance(adapter, RobustVideoMattingAdapter) and adapter.recurrent
    for n in range(1, 4):
        coarse = adapter.predict(grey(64, 48, 51))
        assert float(adapter.state[0].ravel()[0]) == n  # state went around n times
    assert coarse.alpha.shape == (48, 64)
    assert np.allclose(coarse.alpha, 51 / 255, atol=1e-5)
    assert coarse.foreground is not None and coarse.foreground.shape == (48, 64, 3)
    assert float(adapter.state[3].ravel()[0]) == pytest.approx(3.0)  # auto ratio: 1 below 512
    adapter.predict(grey(80, 48, 51))  # resolution change: state starts again from zeros
    assert float(adapter.state[0].ravel()[0]) == 1
    adapter.reset()
    assert adapter.state is None


def test_rvm_auto_downsample_ratio_and_max_side(rvm_path):
    adapter = RobustVideoMattingAdapter(create_session(rvm_path), max_side=640)
    coarse = adapter.predict(grey(1280, 720, 10))
    assert coarse.alpha.shape == (360, 640)  # capped at max_side before the model
    assert float(adapter.state[3].ravel()[0]) == pytest.approx(512 / 640)
    fixed = RobustVideoMattingAdapter(create_session(rvm_path), downsample_ratio=0.25)
    fixed.predict(grey(64, 48, 10))
    assert float(fixed.state[3].ravel()[0]) == pytest.approx(0.25)


def test_rvm_fp16_model(tmp_path):
    path = build_rvm(tmp_path / "rvm16.onnx", TensorProto.FLOAT16)
    adapter = adapter_for_session(create_session(path), MattingConfig())
    coarse = adapter.predict(grey(32, 32, 255))
    assert coarse.alpha.dtype == np.float32 and np.allclose(coarse.alpha, 1.0, atol=1e-3)


def test_stage_owns_recurrent_state_by_mode(rvm_path):
    stage = MattingStage(MattingConfig(model=str(rvm_path)), TemporalConfig(), RuntimeConfig())
    image = grey(96, 64, 128)
    for i in range(3):
        frame = stage.process(Frame(image=image, index=i, mode=Mode.VIDEO))
    adapter = stage.adapter(str(rvm_path))
    assert float(adapter.state[0].ravel()[0]) == 3
    assert frame.alpha.shape == (64, 96) and frame.foreground.shape == (64, 96, 3)
    stage.process(Frame(image=image, mode=Mode.IMAGE))  # IMAGE mode: stateless
    assert adapter.state is None  # the photo passes start from zeros and leave none behind
    stage.process(Frame(image=grey(64, 96, 128), index=0, mode=Mode.VIDEO))  # new resolution
    assert float(adapter.state[0].ravel()[0]) == 1
    stage.process(Frame(image=grey(64, 96, 128), index=1, mode=Mode.VIDEO))
    assert float(adapter.state[0].ravel()[0]) == 2
    stage.process(Frame(image=grey(64, 96, 128), index=7, mode=Mode.VIDEO))  # a seek
    assert float(adapter.state[0].ravel()[0]) == 1
    stage.reset()
    assert adapter.state is None
    stage.close()


@pytest.mark.parametrize(
    ("w", "h", "expected"),
    [
        (1920, 1080, (896, 512)),  # both sides above 512: short side -> 512, x32
        (300, 200, (768, 512)),  # both below: short side -> 512
        (640, 480, (640, 480)),  # straddles 512: kept, floored to x32
        (1080, 1920, (512, 896)),
        (20, 10, (1024, 512)),
    ],
)
def test_modnet_input_size(tmp_path, w, h, expected):
    adapter = adapter_for_session(
        create_session(build_modnet(tmp_path / "m.onnx")), MattingConfig()
    )
    assert isinstance(adapter, MODNetAdapter)
    assert adapter.input_size(w, h) == expected
    coarse = adapter.predict(grey(w, h, 204))
    assert coarse.alpha.shape == expected[::-1]
    assert np.allclose(coarse.alpha, 204 / 255, atol=1e-4)  # normalisation round-trips


def test_stage_with_modnet_lookalike(tmp_path):
    path = build_modnet(tmp_path / "modnet.onnx")
    stage = MattingStage(
        MattingConfig(model=str(path), clip_low=0.0, clip_high=1.0),
        TemporalConfig(),
        RuntimeConfig(),
    )
    frame = stage.process(Frame(image=grey(200, 150, 102)))
    assert frame.alpha.shape == (150, 200)
    assert np.allclose(frame.alpha, 102 / 255, atol=2e-3)
    assert set(frame.timings) >= {"segment", "temporal", "refine", "foreground"}


def test_unsupported_signature(tmp_path):
    session = create_session(build_unsupported(tmp_path / "bad.onnx"))
    with pytest.raises(ModelError, match="signature"):
        adapter_for_session(session, MattingConfig())


def test_missing_model_file(tmp_path):
    stage = MattingStage(MattingConfig(model=str(tmp_path / "nope.onnx")))
    with pytest.raises(ModelError):
        stage.process(Frame(image=grey(32, 32, 0)))
