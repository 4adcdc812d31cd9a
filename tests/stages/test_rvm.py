"""The RVM engine (working size, person gating, crops, recurrent state) and "auto" model choice.

The network here is a look-alike with the converted TF.js signature (no ``downsample_ratio``;
state inputs declare their channels 16, 20, 40, 64): pha = mean of src over channels, fgr = src,
rKo = rKi + 1, so the carried state counts frames.  The real network is exercised by
tests/models/test_sources.py and scripts/eval_matting.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from livematte.config import MattingConfig, RuntimeConfig, TemporalConfig  # noqa: E402
from livematte.frame import Frame, Mode  # noqa: E402
from livematte.models import registry  # noqa: E402
from livematte.models.session import create_session  # noqa: E402
from livematte.stages import matting_adapters as adapters  # noqa: E402
from livematte.stages import model_choice  # noqa: E402
from livematte.stages.matting import MattingStage  # noqa: E402
from livematte.stages.rvm import (  # noqa: E402
    PERSON_SIDE,
    RvmMatting,
    gate_from_evidence,
    person_boxes,
    working_scale,
)

CHANNELS = (16, 20, 40, 64)


def build_converted_rvm(path: Path) -> Path:
    """An ONNX graph with the converted RVM signature (see the module docstring)."""
    dyn = [1, 3, "h", "w"]
    inputs = [helper.make_tensor_value_info("src", TensorProto.FLOAT, dyn)]
    outputs = [
        helper.make_tensor_value_info("fgr", TensorProto.FLOAT, dyn),
        helper.make_tensor_value_info("pha", TensorProto.FLOAT, [1, 1, "h", "w"]),
    ]
    nodes = [
        helper.make_node("Identity", ["src"], ["fgr"]),
        helper.make_node("ReduceMean", ["src"], ["pha"], axes=[1], keepdims=1),
    ]
    for i, c in enumerate(CHANNELS, 1):
        shape = [1, c, f"h{i}", f"w{i}"]
        inputs.append(helper.make_tensor_value_info(f"r{i}i", TensorProto.FLOAT, shape))
        outputs.append(helper.make_tensor_value_info(f"r{i}o", TensorProto.FLOAT, shape))
        nodes.append(helper.make_node("Add", [f"r{i}i", "one"], [f"r{i}o"]))
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    graph = helper.make_graph(nodes, "rvm_converted_lookalike", inputs, outputs, [one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def rvm(tmp_path) -> adapters.RobustVideoMattingAdapter:
    session = create_session(build_converted_rvm(tmp_path / "rvm.onnx"))
    found = adapters.adapter_for_session(session, MattingConfig())
    assert isinstance(found, adapters.RobustVideoMattingAdapter) and not found.has_ratio
    return found


def white_on_black(w: int, h: int, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    image = np.zeros((h, w, 3), np.uint8)
    for x0, y0, x1, y1 in boxes:
        image[y0:y1, x0:x1] = 255
    return image


def evidence_of(boxes, size):
    """An evidence function that says "person" exactly in ``boxes`` (on a 64x64 grid)."""

    def evidence(frame: Frame) -> np.ndarray:
        grid = np.zeros((64, 64), np.float32)
        sx, sy = 64 / size[0], 64 / size[1]
        for x0, y0, x1, y1 in boxes:
            grid[round(y0 * sy) : round(y1 * sy), round(x0 * sx) : round(x1 * sx)] = 1.0
        return grid

    return evidence


def test_initial_state_has_the_declared_channels(rvm):
    rvm.predict_at(np.zeros((64, 64, 3), np.uint8), (64, 64))
    assert [s.shape for s in rvm.state] == [(1, c, 1, 1) for c in CHANNELS]
    assert all(float(s.ravel()[0]) == 1.0 for s in rvm.state)


def test_working_scale_follows_the_person_not_the_frame():
    # A person 1000 px tall in a 2000 px photo is brought to PERSON_SIDE ...
    assert working_scale((2000, 1500), 1000) == pytest.approx(PERSON_SIDE / 1000)
    # ... a small one is enlarged relative to the frame (bounded by the frame's MAX_SIDE) ...
    assert working_scale((2000, 1500), 200) == pytest.approx(1024 / 2000)
    # ... never above the frame's own resolution; no person found: the frame at MAX_SIDE.
    assert working_scale((300, 200), 50) == 1.0
    assert working_scale((4000, 3000), None) == pytest.approx(1024 / 4000)


def test_person_boxes_ignore_specks_and_sort_by_area():
    evidence = np.zeros((100, 100), np.float32)
    evidence[10:90, 60:95] = 0.9
    evidence[20:40, 5:20] = 0.8
    evidence[0:2, 0:2] = 1.0  # 4 cells of 10,000: noise
    boxes = person_boxes(evidence, (200, 100))
    assert [(b.x0, b.y0, b.x1, b.y1) for b in boxes] == [(120, 10, 190, 90), (10, 20, 40, 40)]


def test_gate_keeps_whole_shapes_the_evidence_agrees_with():
    alpha = np.zeros((100, 100), np.float32)
    alpha[20:90, 40:70] = 1.0  # the person, of which the segmenter saw only the top 60%
    alpha[10:30, 5:20] = 1.0  # a statue / poster shape, 10% of it touched by the evidence
    alpha[50, 72] = 0.3  # a hair strand next to the person (below 0.5)
    evidence = np.zeros((50, 50), np.float32)  # another grid
    evidence[10:31, 20:35] = 1.0
    evidence[5:7, 2:10] = 1.0
    gate = gate_from_evidence(alpha, evidence, person_side=70)
    assert gate[85, 55] == 1.0  # the part of the person the segmenter missed is kept
    assert gate[20, 12] == 0.0  # the other shape is dropped whole
    assert gate[50, 72] > 0.0  # the strand is inside the margin
    assert gate[5, 95] == 0.0


def test_gate_always_keeps_the_shape_the_evidence_overlaps_most():
    alpha = np.zeros((100, 100), np.float32)
    alpha[10:90, 30:70] = 1.0
    evidence = np.zeros((100, 100), np.float32)
    evidence[10:30, 30:70] = 1.0  # a quarter of it: under KEEP_OVERLAP, still the person
    assert gate_from_evidence(alpha, evidence, person_side=80)[80, 50] == 1.0


def test_photo_gates_out_what_is_not_a_person(rvm):
    size = (320, 240)
    image = white_on_black(*size, [(40, 40, 120, 200), (200, 40, 280, 200)])  # two "figures"
    engine = RvmMatting(rvm, evidence_of([(40, 40, 120, 200)], size))  # only one is a person
    coarse = engine.photo(Frame(image=image))
    a = coarse.alpha
    h, w = a.shape
    assert a[round(120 * h / 240), round(80 * w / 320)] > 0.95  # the person
    assert a[round(120 * h / 240), round(240 * w / 320)] == 0.0  # the statue / poster
    assert rvm.state is None  # photos leave no recurrent state behind


def test_photo_with_no_person_keeps_nothing(rvm):
    image = white_on_black(160, 120, [(40, 20, 120, 100)])
    coarse = RvmMatting(rvm, evidence_of([], (160, 120))).photo(Frame(image=image))
    assert not coarse.alpha.any()


def test_several_people_are_matted_in_their_own_crops(rvm, monkeypatch):
    size = (640, 360)
    people = [(40, 60, 140, 340), (400, 100, 480, 300)]
    engine = RvmMatting(rvm, evidence_of(people, size))
    seen = []
    run = rvm.predict_at
    monkeypatch.setattr(rvm, "predict_at", lambda im, sz: seen.append(im.shape[:2]) or run(im, sz))
    coarse = engine.photo(Frame(image=white_on_black(*size, people)))
    shapes = set(seen)
    assert (360, 640) in shapes  # the whole frame
    assert len(shapes) == 3  # plus one crop per person
    h, w = coarse.alpha.shape
    assert coarse.alpha[round(200 * h / 360), round(440 * w / 640)] > 0.95


def test_video_state_resets_on_cut_seek_and_size(rvm):
    size = (320, 180)
    engine = RvmMatting(rvm, evidence_of([(100, 20, 200, 170)], size))
    image = white_on_black(*size, [(100, 20, 200, 170)])

    def step(index, img=image):
        engine.video(Frame(image=img, index=index, mode=Mode.VIDEO), scene_cut_threshold=40.0)
        return float(rvm.state[0].ravel()[0])

    assert [step(i) for i in range(3)] == [1, 2, 3]
    assert step(10) == 1  # seek
    assert step(11, np.full_like(image, 255)) == 1  # scene cut (mean change ~ 200 levels)
    big = white_on_black(640, 360, [(200, 40, 400, 340)])
    assert step(12, big) == 1  # resolution change
    assert engine.resets == 3


def _install_fake(cache: Path, onnx_path: Path) -> None:
    cache.mkdir(parents=True)
    target = cache / "rvm_mobilenetv3.tfjs.onnx"
    target.write_bytes(onnx_path.read_bytes())
    # Recorded as made by the converter installed now (an older one would be converted again).
    from livematte.models.tfjs import CONVERTER_VERSION

    record = {"source": "test", "converter_version": CONVERTER_VERSION}
    (cache / "rvm_mobilenetv3.tfjs.json").write_text(json.dumps(record))


def test_auto_prefers_installed_rvm_except_live_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEMATTE_CACHE", str(tmp_path / "cache"))
    assert model_choice.resolve_model("auto", "image", ("cpu",)) == "embedded"
    _install_fake(tmp_path / "cache" / "models", build_converted_rvm(tmp_path / "r.onnx"))
    assert registry.installed_path("rvm_mobilenetv3") is not None
    assert model_choice.resolve_model("auto", "image", ("cpu",)) == "rvm_mobilenetv3"
    assert model_choice.resolve_model("auto", "video", ("cpu",)) == "rvm_mobilenetv3"
    assert model_choice.resolve_model("auto", "live", ("cpu",)) == "embedded"
    monkeypatch.setattr(model_choice, "gpu_active", lambda providers: True)
    assert model_choice.resolve_model("auto", "live", ("cuda", "cpu")) == "rvm_mobilenetv3"
    assert model_choice.resolve_model("embedded", "image", ("cpu",)) == "embedded"
    assert (
        model_choice.resolve_model("selfie_segmentation", "image", ("cpu",))
        == "selfie_segmentation"
    )


def test_stage_reports_the_model_it_used(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEMATTE_CACHE", str(tmp_path / "cache"))
    _install_fake(tmp_path / "cache" / "models", build_converted_rvm(tmp_path / "r.onnx"))
    image = white_on_black(320, 240, [(100, 40, 220, 240)])
    stage = MattingStage(MattingConfig(), TemporalConfig(), RuntimeConfig(mode="image"))
    assert stage.describe().startswith("rvm_mobilenetv3")
    frame = stage.process(Frame(image=image))
    assert frame.alpha.shape == (240, 320)
    assert stage.describe() == ("rvm_mobilenetv3 (cpu) + selfie_segmentation person gating")
    offline = MattingStage(MattingConfig(model="embedded"), TemporalConfig(), RuntimeConfig())
    offline.process(Frame(image=image))
    assert offline.describe() == "selfie_segmentation (cpu)"


def test_video_holds_the_last_evidence_through_a_dropout(rvm):
    size = (320, 180)
    person = [(100, 20, 200, 170)]
    seen = {"boxes": person}
    engine = RvmMatting(rvm, lambda frame: evidence_of(seen["boxes"], size)(frame))
    image = white_on_black(*size, person)
    first = engine.video(Frame(image=image, index=0, mode=Mode.VIDEO), 40.0).alpha
    seen["boxes"] = []  # the segmenter misses the person on the next frame
    second = engine.video(Frame(image=image, index=1, mode=Mode.VIDEO), 40.0).alpha
    assert first.max() > 0.95 and np.array_equal(first > 0.5, second > 0.5)
    third = engine.video(Frame(image=image, index=5, mode=Mode.VIDEO), 40.0).alpha  # a seek
    assert not third.any()  # nothing held across a seek


def test_grey_photo_is_sized_by_rvms_own_person_when_the_evidence_sees_a_part(rvm, monkeypatch):
    # The evidence sees a 100 px part of a 400 px figure (the segmenter in grey); RVM sees all.
    size = (640, 480)
    figure = [(100, 40, 300, 440)]
    part = [(150, 200, 250, 300)]
    sizes = []
    run = rvm.predict_at
    monkeypatch.setattr(rvm, "predict_at", lambda im, sz: sizes.append(sz) or run(im, sz))
    grey = white_on_black(*size, figure)
    RvmMatting(rvm, evidence_of(part, size)).photo(Frame(image=grey))
    # The figure at PERSON_SIDE (scale 0.64), not the part (which would keep the full frame).
    assert sizes[-1] == rvm.working_size(*size, PERSON_SIDE / 400)
    assert sizes[-1][0] < size[0]
    # The same layout in colour keeps the evidence's size, with no extra look.
    colour = grey.copy()
    colour[grey[..., 0] > 0] = (150, 200, 255)
    sizes.clear()
    RvmMatting(rvm, evidence_of(part, size)).photo(Frame(image=colour))
    assert set(sizes) == {rvm.working_size(*size, 1.0)}
    # And in grey when both agree: the evidence's size, as in colour.
    sizes.clear()
    RvmMatting(rvm, evidence_of(figure, size)).photo(Frame(image=colour))
    in_colour = sizes[-1]
    RvmMatting(rvm, evidence_of(figure, size)).photo(Frame(image=grey))
    assert sizes[-1] == in_colour
