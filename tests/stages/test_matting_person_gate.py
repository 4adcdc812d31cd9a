"""Person gating of the coarse mask (``person_gate.core_gate``) and its use by the photo preset."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from media import SHARED_DATA, needs_shared

from livematte.ops.person_gate import core_gate


def canvas() -> np.ndarray:
    return np.zeros((200, 300), np.float32)


def person(alpha: np.ndarray, value: float = 0.97) -> np.ndarray:
    """A confident head-and-shoulders blob in the right half."""
    cv2.ellipse(alpha, (200, 200), (70, 80), 0, 180, 360, value, -1)
    cv2.circle(alpha, (200, 90), 30, value, -1)
    return alpha


def test_a_doubtful_object_away_from_the_person_is_faded_out():
    alpha = person(canvas())
    cv2.rectangle(alpha, (20, 100), (40, 190), 0.6, -1)  # a "statue" the model half believes
    gate = core_gate(alpha, [], (600, 400))
    assert gate[120:130, 25:35].max() == 0.0
    assert gate[150:200, 180:220].min() == 1.0  # the person itself is untouched
    assert gate[95, 167] > 0.5  # and so is a soft margin around it (hair, edges)


def test_a_person_found_keeps_what_is_in_their_box():
    alpha = person(canvas())
    cv2.rectangle(alpha, (20, 100), (40, 190), 0.6, -1)
    # The box is in image pixels; the image is twice the grid.
    gate = core_gate(alpha, [(30.0, 100.0, 110.0, 390.0)], (600, 400))
    assert gate[120:130, 25:35].min() == 1.0


def test_with_people_found_a_small_core_away_from_them_is_dropped():
    alpha = person(canvas())
    cv2.rectangle(alpha, (10, 10), (40, 30), 0.95, -1)  # confident poster text, top left
    person_box = (130.0, 55.0, 270.0, 200.0)
    assert core_gate(alpha, [], (300, 200))[20, 25] == 1.0  # nobody found: it may be a person
    gate = core_gate(alpha, [person_box], (300, 200))
    assert gate[20, 25] == 0.0
    assert gate[150:200, 180:220].min() == 1.0


def test_a_person_the_model_doubts_whole_is_kept():
    # No core anywhere near: a grey copy of a photo, the person at 0.6-0.7 throughout.
    alpha = person(canvas(), value=0.65)
    cv2.circle(alpha, (30, 30), 4, 0.95, -1)  # a confident speck elsewhere
    gate = core_gate(alpha, [], (300, 200))
    assert gate[150:200, 180:220].min() == 1.0


def test_a_shape_cut_deeply_is_kept_whole():
    # Legs the model is sure of, a torso above them it doubts (a plaid shirt): one shape.
    alpha = canvas()
    cv2.rectangle(alpha, (130, 120), (170, 199), 0.95, -1)
    cv2.rectangle(alpha, (110, 10), (190, 120), 0.65, -1)
    gate = core_gate(alpha, [], (300, 200))
    assert gate[15:25, 140:160].min() == 1.0


def test_no_core_no_gate():
    alpha = np.full((50, 80), 0.6, np.float32)
    np.testing.assert_array_equal(core_gate(alpha, [], (80, 50)), 1.0)
    np.testing.assert_array_equal(core_gate(np.zeros((50, 80), np.float32), [], (80, 50)), 1.0)


P3M = SHARED_DATA / "matting" / "p3m_pseudo_gt"


@needs_shared("matting", "p3m_pseudo_gt", "p_71bcce3a.jpg")
def test_photo_preset_does_not_matte_the_statue():
    pytest.importorskip("onnxruntime")
    from livematte.config import load_config
    from livematte.frame import Frame
    from livematte.stages.matting import MattingStage

    image = cv2.imread(str(P3M / "p_71bcce3a.jpg"))
    gt = cv2.imread(str(P3M / "p_71bcce3a_alpha.png"), 0).astype(np.float32) / 255
    sad = {}
    for gate in (False, True):
        overrides = {"matting.model": "embedded", "matting.foreground": False}
        cfg = load_config("photo", {**overrides, "matting.person_gate": gate})
        alpha = MattingStage(cfg.matting, cfg.temporal, cfg.runtime).process(Frame(image)).alpha
        sad[gate] = float(np.abs(alpha - gt).sum() / 1000)
    # No person is found on this photo (a close-up with a blurred face): the gate alone.
    assert sad[True] < 60.0 < sad[False]


def test_person_gate_alone_runs_the_keypoint_stage():
    pytest.importorskip("onnxruntime")
    from livematte.api import build_pipeline
    from livematte.config import load_config
    from livematte.stages.keypoints import KeypointStage

    def kinds(gate: bool) -> list[type]:
        overrides = {
            "matting.person_roi": False,
            "matting.person_crops": False,
            "matting.person_gate": gate,
        }
        with build_pipeline(load_config("photo", overrides)) as pipeline:
            return [type(stage) for stage in pipeline.stages]

    assert KeypointStage in kinds(True)
    assert KeypointStage not in kinds(False)
