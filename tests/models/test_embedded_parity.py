"""The embedded ONNX models reproduce the TFLite originals and MediaPipe's own goldens.

``tflite_reference.npz`` holds the TFLite originals' outputs on the shipped sample photo (made by
``scripts/check_parity.py --write-reference`` with ai-edge-litert); comparing against it here
keeps the conversion honest on every run without TFLite installed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import REPO, SHARED_DATA

ort = pytest.importorskip("onnxruntime")

DATA = REPO / "livematte" / "models" / "data"
SAMPLE = REPO / "livematte" / "samples" / "astronaut.jpg"
REFERENCE = Path(__file__).with_name("tflite_reference.npz")
GOLDEN = SHARED_DATA / "mediapipe_golden"

# pixel / 255 * scale + offset, as each model was trained
NORMALISATION = {
    "selfie_segmentation": (1.0, 0.0),
    "selfie_segmentation_landscape": (1.0, 0.0),
    "pose_detection": (2.0, -1.0),
    "pose_landmark_full": (1.0, 0.0),
}
# Largest |onnx - tflite| allowed, relative to the output's range.  The pose segmentation head
# has logits in the thousands where TFLite's own two CPU back ends differ by 4.6e-3 relative.
TOLERANCE = {"pose_landmark_full/segmentation": 1e-2}
DEFAULT_TOLERANCE = 2e-3


def _session(name: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(DATA / f"{name}.onnx"), providers=["CPUExecutionProvider"])


def _input(image: np.ndarray, name: str, session: ort.InferenceSession) -> np.ndarray:
    _, height, width, _ = session.get_inputs()[0].shape
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    scale, offset = NORMALISATION[name]
    rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    return (rgb * scale + offset)[None]


def test_manifest_matches_files() -> None:
    manifest = json.loads((DATA / "MANIFEST.json").read_text())
    assert manifest["source"]["package"] == "mediapipe"
    assert manifest["source"]["version"] == "0.10.21"
    assert manifest["license"] == "Apache-2.0"
    mediapipe = {name for name, entry in manifest["models"].items() if "tflite" in entry}
    # the others come from scripts/convert_movenet.py; the mask decoder is split off the
    # landmark model (scripts/convert_mediapipe.py SPLIT)
    assert mediapipe == set(NORMALISATION) | {"pose_landmark_full_mask"}
    models = manifest["models"]
    trunk, head = models["pose_landmark_full"], models["pose_landmark_full_mask"]
    assert trunk["split_off"] == "pose_landmark_full_mask"
    assert head["split_from"] == "pose_landmark_full"
    assert head["tflite_sha256"] == trunk["tflite_sha256"]
    for entry in manifest["models"].values():
        digest = hashlib.sha256((DATA / entry["onnx"]).read_bytes()).hexdigest()
        assert digest == entry["onnx_sha256"]
        assert len(entry.get("tflite_sha256") or entry["source"]["tarball_sha256"]) == 64


@pytest.mark.parametrize("name", sorted(NORMALISATION))
def test_outputs_match_tflite_reference(name: str) -> None:
    reference = np.load(REFERENCE)
    session = _session(name)
    batch = _input(cv2.imread(str(SAMPLE)), name, session)
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {"image": batch}), strict=True))
    if name == "pose_landmark_full":  # its mask decoder is split off: run it on the features
        head = _session("pose_landmark_full_mask")
        feed = {i.name: outputs[i.name] for i in head.get_inputs()}
        outputs["segmentation"] = head.run(["segmentation"], feed)[0]
    keys = [k for k in reference.files if k.startswith(name + "/")]
    assert keys, f"no reference values stored for {name}"
    for key in keys:
        expected = reference[key].astype(np.float32)
        got = outputs[key.split("/", 1)[1]]
        assert got.shape == expected.shape, key
        span = float(np.ptp(expected)) or 1.0
        relative = float(np.max(np.abs(got - expected))) / span
        assert relative <= TOLERANCE.get(key, DEFAULT_TOLERANCE), f"{key}: {relative:.2e}"


def test_selfie_mask_matches_mediapipe_golden() -> None:
    if not GOLDEN.is_dir():
        pytest.skip(f"MediaPipe goldens not found at {GOLDEN} (../shared/data is absent)")
    image = cv2.imread(str(GOLDEN / "portrait.jpg"))
    expected = cv2.imread(str(GOLDEN / "portrait_expected_selfie_segmentation.png"))[..., 0] > 127
    session = _session("selfie_segmentation")
    mask = session.run(None, {"image": _input(image, "selfie_segmentation", session)})[0][0, ..., 0]
    mask = cv2.resize(mask, (image.shape[1], image.shape[0])) > 0.5
    iou = (mask & expected).sum() / (mask | expected).sum()
    assert iou >= 0.97, f"IoU {iou:.4f}"


def test_pose_landmarks_on_sample_are_plausible() -> None:
    """The astronaut's nose lands on her face: a semantic check beyond numeric parity."""
    image = cv2.imread(str(SAMPLE))
    session = _session("pose_landmark_full")
    # the sample is a head-and-shoulders portrait: the whole image is a fair crop
    out = session.run(
        ["landmarks", "presence"], {"image": _input(image, "pose_landmark_full", session)}
    )
    landmarks = out[0].reshape(39, 5)
    assert out[1][0, 0] > 0.5
    nose_x, nose_y = landmarks[0, :2] / 256.0 * 512.0
    assert 150 < nose_x < 300 and 60 < nose_y < 220, (nose_x, nose_y)
