"""Detector maths: anchors, decoding, weighted NMS, letterbox and ROI geometry."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from livematte.ops.pose_detection import (
    DETECTOR_SIZE,
    ROI_SCALE,
    Detections,
    Roi,
    box_iou,
    crop_roi,
    decode_detections,
    letterbox,
    normalize_radians,
    remove_letterbox,
    roi_from_alignment,
    ssd_anchors,
    weighted_nms,
)


def test_anchor_count_and_layout() -> None:
    a = ssd_anchors()
    assert a.shape == (2254, 2)
    # Stride 8: 28x28 cells, 2 anchors each, row-major (y outer, x inner).
    assert np.allclose(a[0], [0.5 / 28, 0.5 / 28]) and np.allclose(a[1], a[0])
    assert np.allclose(a[2], [1.5 / 28, 0.5 / 28])
    assert np.allclose(a[2 * 28], [0.5 / 28, 1.5 / 28])
    # Stride 16 starts after 28*28*2 anchors.
    assert np.allclose(a[1568], [0.5 / 14, 0.5 / 14])
    # The three stride-32 layers share one 7x7 map with 6 anchors per cell.
    start = 1568 + 14 * 14 * 2
    assert np.allclose(a[start : start + 6], [0.5 / 7, 0.5 / 7])
    assert np.allclose(a[start + 6], [1.5 / 7, 0.5 / 7])
    assert np.allclose(a[-1], [6.5 / 7, 6.5 / 7])
    assert (a > 0).all() and (a < 1).all()


def _raw(n: int = 2254) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n, 12), np.float32), np.full(n, -10.0, np.float32)


def test_decode_box_and_keypoints() -> None:
    anchors = ssd_anchors()
    boxes, scores = _raw()
    i = 100  # stride-8 anchor
    boxes[i, :4] = [22.4, -11.2, 44.8, 67.2]  # dx, dy, w, h in 224-px units
    boxes[i, 4:6] = [11.2, 22.4]
    scores[i] = 2.0
    dets = decode_detections(boxes, scores, anchors, min_score=0.5)
    assert len(dets) == 1
    cx, cy = anchors[i] + [0.1, -0.05]
    assert dets.boxes[0] == pytest.approx([cx - 0.1, cy - 0.15, cx + 0.1, cy + 0.15], abs=1e-6)
    assert dets.keypoints[0, 0] == pytest.approx(anchors[i] + [0.05, 0.1], abs=1e-6)
    assert dets.keypoints[0, 1] == pytest.approx(anchors[i], abs=1e-6)
    assert dets.scores[0] == pytest.approx(1 / (1 + math.exp(-2.0)), rel=1e-6)


@pytest.mark.parametrize(
    ("logit", "min_score", "kept"),
    [(0.0, 0.5, 1), (-0.1, 0.5, 0), (1e6, 0.5, 1), (-1e6, 0.0, 1), (1.0, 0.75, 0)],
)
def test_decode_threshold_and_clipping(logit: float, min_score: float, kept: int) -> None:
    boxes, scores = _raw()
    boxes[5, 2:4] = 10.0
    scores[5] = logit
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings from huge logits
        dets = decode_detections(boxes, scores, ssd_anchors(), min_score=min_score)
    assert len(dets) == kept + (2253 if min_score == 0.0 else 0)


def test_decode_drops_negative_sizes_and_checks_shapes() -> None:
    boxes, scores = _raw()
    boxes[7, 2] = -5.0
    scores[7] = 5.0
    assert len(decode_detections(boxes, scores, ssd_anchors())) == 0
    with pytest.raises(ValueError, match="anchors"):
        decode_detections(boxes[:10], scores[:10], ssd_anchors())


def test_box_iou() -> None:
    a = np.array([[0, 0, 2, 2]], float)
    b = np.array([[1, 1, 3, 3], [2, 2, 3, 3], [0, 0, 2, 2], [5, 5, 5, 5]], float)
    assert box_iou(a, b)[0] == pytest.approx([1 / 7, 0.0, 1.0, 0.0])


def test_weighted_nms_merges_overlaps() -> None:
    dets = Detections(
        scores=np.array([0.6, 0.9, 0.8], np.float32),
        boxes=np.array(
            [[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]], np.float32
        ),
        keypoints=np.zeros((3, 4, 2), np.float32) + np.array([0.0, 1.0, 0.5])[:, None, None],
    )
    out = weighted_nms(dets, iou_threshold=0.3)
    assert len(out) == 2
    assert out.scores.tolist() == pytest.approx([0.9, 0.8])
    expected = (0.9 * dets.boxes[1] + 0.6 * dets.boxes[0]) / 1.5
    assert out.boxes[0] == pytest.approx(expected, abs=1e-6)
    assert out.keypoints[0, 0, 0] == pytest.approx(0.9 / 1.5)
    assert out.boxes[1] == pytest.approx(dets.boxes[2])
    assert len(weighted_nms(dets, max_count=1)) == 1
    assert len(weighted_nms(Detections.empty())) == 0


def test_weighted_nms_keeps_separate_people() -> None:
    boxes = np.array([[0, 0, 0.2, 0.2], [0.5, 0, 0.7, 0.2], [0, 0.5, 0.2, 0.7]], np.float32)
    dets = Detections(np.array([0.7, 0.8, 0.9], np.float32), boxes, np.zeros((3, 4, 2), np.float32))
    out = weighted_nms(dets)
    assert out.scores.tolist() == pytest.approx([0.9, 0.8, 0.7])


def test_letterbox_pads_and_round_trips() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :, 2] = 255  # red in BGR
    tensor, pad = letterbox(img)
    assert tensor.shape == (1, DETECTOR_SIZE, DETECTOR_SIZE, 3) and tensor.dtype == np.float32
    assert pad == pytest.approx([0.0, 0.25, 0.0, 0.25])
    assert tensor[0, 0, 112] == pytest.approx([-1, -1, -1])  # padding
    assert tensor[0, 112, 112] == pytest.approx([1, -1, -1])  # red first (RGB)
    # A detection at letterbox fractions maps back to pixels and keypoints alike.
    pts = np.array([[20.0, 30.0], [150.0, 90.0]])
    frac = np.stack([pts[:, 0] / 200, 0.25 + pts[:, 1] / 100 * 0.5], axis=1)
    dets = Detections(
        np.ones(1, np.float32),
        np.concatenate([frac[0], frac[1]])[None].astype(np.float32),
        np.repeat(frac[None, :1], 4, axis=1).astype(np.float32),
    )
    back = remove_letterbox(dets, pad, 200, 100)
    assert back.boxes[0] == pytest.approx(pts.reshape(-1), abs=1e-3)
    assert back.keypoints[0, 0] == pytest.approx(pts[0], abs=1e-3)


@pytest.mark.parametrize(
    ("angle", "expected"),
    [(0.0, 0.0), (math.pi, -math.pi), (3 * math.pi / 2, -math.pi / 2), (-7.0, -7 + 2 * math.pi)],
)
def test_normalize_radians(angle: float, expected: float) -> None:
    assert normalize_radians(angle) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("scale_point", "rotation"),
    [
        ((100, 50), 0.0),
        ((150, 100), math.pi / 2),
        ((50, 100), -math.pi / 2),
        ((100, 150), -math.pi),
    ],
)
def test_roi_rotation_and_size(scale_point: tuple[int, int], rotation: float) -> None:
    roi = roi_from_alignment(np.array([100.0, 100.0]), np.array(scale_point, float))
    assert roi.cx == 100 and roi.cy == 100
    assert roi.size == pytest.approx(2 * 50 * ROI_SCALE)
    assert roi.rotation == pytest.approx(rotation)
    # The crop's "up" (top-centre) lies on the ray from the centre through the scale point.
    top = roi.to_image(np.array([0.5, 0.0]))
    direction = (np.array(scale_point) - 100) / 50
    assert top == pytest.approx(100 + direction * roi.size / 2)


def test_roi_projection_round_trip() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        roi = Roi(*rng.uniform(0, 500, 2), rng.uniform(10, 400), rng.uniform(-math.pi, math.pi))
        crop_pts = rng.uniform(-0.2, 1.2, (50, 2))
        img_pts = roi.to_image(crop_pts)
        assert roi.to_crop(img_pts) == pytest.approx(crop_pts, abs=1e-9)
        m = roi.crop_to_image(256)
        via_matrix = crop_pts * 256 @ m[:, :2].T + m[:, 2]
        assert via_matrix == pytest.approx(img_pts, abs=1e-6)
        corners = roi.corners()
        assert np.linalg.norm(corners[0] - corners[1]) == pytest.approx(roi.size)
        assert roi.bounds()[:2] == pytest.approx(corners.min(axis=0))


def test_crop_roi_samples_rotated_region() -> None:
    img = np.zeros((300, 400, 3), np.uint8)
    img[95:106, 245:256] = 255  # bright square centred at (250, 100)
    roi = Roi(200.0, 150.0, 200.0, math.radians(30))
    crop = crop_roi(img, roi, 128)
    assert crop.shape == (128, 128, 3)
    ys, xs = np.nonzero(crop[:, :, 0] > 128)
    found = roi.to_image(np.array([xs.mean(), ys.mean()]) / 128)
    assert found == pytest.approx([250, 100], abs=2.0)


def test_crop_roi_fills_outside_the_image_as_asked() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    img[:10] = 200  # a bright band along the top edge
    roi = Roi(50.0, 0.0, 100.0, 0.0)  # the top half of the crop lies above the image
    streaked = crop_roi(img, roi, 64)
    black = crop_roi(img, roi, 64, fill="black")
    mirror = crop_roi(img, roi, 64, fill="mirror")
    assert (streaked[:30] == 200).all() and (black[:30] == 0).all()
    assert (mirror[:26] == 0).all() and (mirror[28:30] == 200).all()  # the band mirrored
    assert np.array_equal(streaked[36:], black[36:]) and np.array_equal(black[36:], mirror[36:])


def test_roi_past_edge() -> None:
    assert not Roi(50.0, 50.0, 100.0, 0.0).past_edge(100, 100)
    assert Roi(50.0, 40.0, 100.0, 0.0).past_edge(100, 100)
    assert Roi(50.0, 50.0, 100.0, math.radians(45)).past_edge(100, 100)  # corners stick out
    assert not Roi(50.0, 50.0, 60.0, math.radians(45)).past_edge(100, 100)
