"""Person-ROI fusion in the matting stage: when it runs, and on real photos (the pure rules:
tests/ops/test_person_roi.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from media import SHARED_DATA, needs_shared

from livematte.config import MattingConfig, load_config
from livematte.frame import Frame, Mode
from livematte.ops.person_roi import CropMask
from livematte.stages.matting import MattingStage
from livematte.stages.matting_adapters import SelfieSegmentationAdapter

DATA = SHARED_DATA
needs_data = needs_shared()


class BrightSession:
    """Fake 64x64 NHWC model: 'person' where the input is bright (0.2 elsewhere)."""

    input_shapes = {"image": [1, 64, 64, 3]}
    output_names = ["segmentation"]
    provider = "fake"

    def run(self, inputs: dict) -> dict:
        x = inputs["image"].mean(axis=3, keepdims=True)
        return {"segmentation": np.where(x > 0.5, 0.8, 0.2).astype(np.float32)}


@pytest.mark.parametrize(
    ("person_roi", "with_masks", "changed"),
    [(False, True, False), (True, False, False), (True, True, True)],
)
def test_stage_fuses_only_when_on_and_masks_given(person_roi, with_masks, changed):
    image = np.full((128, 128, 3), 30, np.uint8)
    image[32:96, 32:96] = 220

    def factory(*_args, **_kw):
        return BrightSession()

    cfg = MattingConfig(
        model="x",
        refine="none",
        clip_low=0.0,
        clip_high=1.0,
        foreground=False,
        person_roi=person_roi,
    )
    stage = MattingStage(cfg, session_factory=factory)
    assert isinstance(stage.adapter("x"), SelfieSegmentationAdapter)
    prob = np.full((128, 128), 0.99, np.float32)  # sure of a person over the left half
    masks = [CropMask(prob, np.array([[0.5, 0.0, 0.0], [0.0, 1.0, 0.0]]))] if with_masks else []
    alpha = stage.process(Frame(image=image, person_masks=masks)).alpha
    plain = MattingStage(cfg, session_factory=factory).process(Frame(image=image)).alpha
    assert np.array_equal(alpha, plain) != changed
    if changed:
        assert alpha[64, 20] > 0.9 and abs(alpha[64, 110] - 0.2) < 1e-3


def test_person_roi_runs_the_keypoint_stage():
    pytest.importorskip("onnxruntime")
    from livematte.api import build_pipeline
    from livematte.stages.keypoints import KeypointStage

    cfg = load_config("live", {"matting.person_roi": True, "matting.foreground": False})
    with build_pipeline(cfg) as pipeline:
        assert isinstance(pipeline.stages[0], KeypointStage)
    assert load_config("photo").matting.person_roi
    assert not load_config("live").matting.person_roi


@needs_data
def test_fusion_lowers_sad_on_real_portraits():
    pytest.importorskip("onnxruntime")
    from livematte.stages.keypoints import KeypointStage

    cfg = load_config(
        "live", {"keypoints.enabled": True, "runtime.mode": "image", "matting.foreground": False}
    )
    keypoints = KeypointStage(cfg.keypoints, cfg.runtime)
    plain = MattingStage(cfg.matting)
    fused = MattingStage(MattingConfig(**{**cfg.matting.__dict__, "person_roi": True}))
    folder = DATA / "matting" / "p3m_pseudo_gt"
    sad_plain = sad_fused = 0.0
    # Photos where the whole-frame model misses part of the person (eval_matting.py p3m).
    for name in ("p_09ba26b4", "p_818e689d", "p_a09f6d7a"):
        image = cv2.imread(str(folder / f"{name}.jpg"))
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2))
        gt = cv2.imread(str(folder / f"{name}_alpha.png"), 0).astype(np.float32) / 255
        gt = cv2.resize(gt, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_AREA)
        frame = keypoints.process(Frame(image=image, mode=Mode.IMAGE))
        assert frame.person_masks and len(frame.person_masks) == len(frame.people)
        assert frame.person_masks[0].track_id == frame.people[0].track_id
        sad_plain += np.abs(plain.process(Frame(image=image)).alpha - gt).sum()
        sad_fused += np.abs(fused.process(frame).alpha - gt).sum()
    assert sad_fused < 0.8 * sad_plain


class BigThingsSession:
    """Fake 64x64 NHWC model that only sees bright things spanning several of its pixels."""

    input_shapes = {"image": [1, 64, 64, 3]}
    output_names = ["segmentation"]
    provider = "fake"

    def run(self, inputs: dict) -> dict:
        bright = cv2.blur(inputs["image"][0].mean(axis=2), (9, 9)) > 0.5
        return {"segmentation": np.where(bright, 0.9, 0.05).astype(np.float32)[None, ..., None]}


def test_a_closer_look_finds_every_small_person_given():
    from livematte.frame import Person

    image = np.full((640, 640, 3), 30, np.uint8)
    centres = [(100, 120), (500, 420), (320, 560)]
    for x, y in centres:
        image[y - 10 : y + 10, x - 6 : x + 6] = 230  # three people, far too small at 64 px
    cfg = MattingConfig(
        refine="none", clip_low=0.0, clip_high=1.0, foreground=False, person_crops=True
    )
    stage = MattingStage(cfg, session_factory=lambda *_a, **_k: BigThingsSession())
    people = [
        Person(i, np.zeros((33, 4), np.float32), (x - 6.0, y - 10.0, x + 6.0, y + 10.0), 1.0)
        for i, (x, y) in enumerate(centres)
    ]
    alpha = stage.process(Frame(image=image, people=people)).alpha
    assert all(alpha[y, x] > 0.5 for x, y in centres)
    assert alpha[300, 300] < 0.1 and alpha[20, 620] < 0.1
    # The whole frame alone misses them; two of three given: the third stays missed.
    plain = stage.process(Frame(image=image)).alpha
    assert all(plain[y, x] < 0.1 for x, y in centres)
    some = stage.process(Frame(image=image, people=people[:2])).alpha
    assert some[120, 100] > 0.5 and some[420, 500] > 0.5 and some[560, 320] < 0.1


def test_a_closer_look_past_the_image_edge_takes_two_more_fills():
    image = np.full((640, 640, 3), 30, np.uint8)
    cfg = MattingConfig(refine="none", foreground=False, person_crops=True)
    stage = MattingStage(cfg, session_factory=lambda *_a, **_k: BigThingsSession())
    inside, at_edge = (300.0, 300.0, 340.0, 380.0), (300.0, 0.0, 340.0, 80.0)
    crops = stage.person_crops(image, [inside, at_edge])
    assert crops[0].refills == ()
    assert len(crops[1].refills) == 2
    assert all(r.shape == crops[1].probability.shape for r in crops[1].refills)
