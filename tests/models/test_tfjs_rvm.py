"""Our converter on RVM's real TF.js export, against TensorFlow's own outputs.

``../shared/models/reference/rvm_lowres_tf_reference.npz`` holds what TensorFlow computes on the
same graph (``downsample_ratio == 1`` branch) for three real photos, two recurrent steps each.
fgr is stored there as float16, so its comparison allows float16's half step near 1 (2.5e-4)
on top of the alpha tolerance.  Skips when ../shared is absent (a bare clone).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from media import SHARED_DATA

ort = pytest.importorskip("onnxruntime")

MODELS = SHARED_DATA.parent / "models"
RVM_JSON = MODELS / "human-models-3.0.4" / "rvm.json"
REFERENCE = MODELS / "reference" / "rvm_lowres_tf_reference.npz"
RVM_JSON_SHA256 = "62f87ca8acb7f8318c4b37e340175df73bb2ecc9c0b8333c80c00515e1502bc2"
#: sha256 of ``convert_rvm``'s bytes per ``CONVERTER_VERSION``: a converter change that alters
#: them fails here until the version is bumped, so cached conversions get redone
#: (``models.converted``) instead of the old bytes being used silently.
RVM_ONNX_SHA256 = {2: "d793e7d4540c14d8d256d1d0a171ee91b3a6e57dcdeb5506c96fd79282e7c23b"}
ALPHA_TOLERANCE = 3e-3  # issue 13's parity bar
FGR_TOLERANCE = ALPHA_TOLERANCE + 2.5e-4

pytestmark = pytest.mark.skipif(
    not (RVM_JSON.is_file() and REFERENCE.is_file()),
    reason=f"shared RVM files not found: {RVM_JSON} / {REFERENCE}",
)


@pytest.fixture(scope="module")
def rvm_onnx() -> bytes:
    from livematte.models.tfjs import convert_rvm

    assert hashlib.sha256(RVM_JSON.read_bytes()).hexdigest() == RVM_JSON_SHA256
    return convert_rvm(RVM_JSON)


def _run_steps(session: ort.InferenceSession, src_nhwc: np.ndarray, steps: int = 2):
    src = np.ascontiguousarray(src_nhwc.transpose(0, 3, 1, 2))
    state = [np.zeros((1, 1, 1, 1), np.float32)] * 4
    for _ in range(steps):
        fgr, pha, *state = session.run(
            None, {"src": src, **{f"r{i + 1}i": s for i, s in enumerate(state)}}
        )
        yield fgr, pha, state


@pytest.mark.parametrize("height, width, states", [
    (96, 160, [(48, 80), (24, 40), (12, 20), (6, 10)]),
    (101, 157, [(51, 79), (26, 40), (13, 20), (7, 10)]),  # any size, not only multiples of 16
])
def test_signature_matches_the_official_release(rvm_onnx: bytes, height, width, states) -> None:
    session = ort.InferenceSession(rvm_onnx, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["src", "r1i", "r2i", "r3i", "r4i"]
    assert [o.name for o in session.get_outputs()] == ["fgr", "pha", "r1o", "r2o", "r3o", "r4o"]
    src = np.random.default_rng(0).random((1, height, width, 3), np.float32)
    *_, (fgr, pha, state) = _run_steps(session, src, 2)
    assert fgr.shape == (1, 3, height, width) and pha.shape == (1, 1, height, width)
    assert [s.shape[1] for s in state] == [16, 20, 40, 64]
    assert [s.shape[2:] for s in state] == states


def test_alpha_and_foreground_match_tensorflow(rvm_onnx: bytes) -> None:
    session = ort.InferenceSession(rvm_onnx, providers=["CPUExecutionProvider"])
    ref = np.load(REFERENCE)
    for k in range(3):
        src = ref[f"lowres{k}_src_u8"].astype(np.float32) / 255.0
        for step, (fgr, pha, _) in enumerate(_run_steps(session, src)):
            want_pha = ref[f"lowres{k}_step{step}_pha"]
            want_fgr = ref[f"lowres{k}_step{step}_fgr_f16"].astype(np.float32)
            assert np.abs(pha.transpose(0, 2, 3, 1) - want_pha).max() <= ALPHA_TOLERANCE
            assert np.abs(fgr.transpose(0, 2, 3, 1) - want_fgr).max() <= FGR_TOLERANCE


def test_conversion_is_deterministic_and_transpose_free(rvm_onnx: bytes) -> None:
    import onnx

    from livematte.models.tfjs import CONVERTER_VERSION, convert_rvm

    assert hashlib.sha256(convert_rvm(RVM_JSON)).digest() == hashlib.sha256(rvm_onnx).digest()
    assert hashlib.sha256(rvm_onnx).hexdigest() == RVM_ONNX_SHA256.get(CONVERTER_VERSION), (
        "the converter's bytes changed: bump CONVERTER_VERSION and record the new sha256 here"
    )
    ops = [n.op_type for n in onnx.load_from_string(rvm_onnx).graph.node]
    assert ops.count("Transpose") == 0  # NCHW at the boundary, NCHW inside


def test_full_branch_with_refiner_matches_tensorflow() -> None:
    """Binding downsample_ratio to 0.25 keeps RVM's other tf.cond branch: the internal resize
    and its fast guided filter refiner (box-filter depthwise convs, RealDiv, Square)."""
    from livematte.models.tfjs import convert_graph_model

    full = MODELS / "reference" / "rvm_full_tf_reference.npz"
    ref = np.load(full)
    model = convert_graph_model(RVM_JSON, bind={"downsample_ratio": float(ref["full_ratio"])},
                                input_shapes={f"r{i}i": (None,) * 4 for i in range(1, 5)})
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    src = ref["full_src_u8"].astype(np.float32) / 255.0
    fgr, pha, _ = next(_run_steps(session, src, 1))
    assert np.abs(pha.transpose(0, 2, 3, 1) - ref["full_pha"]).max() <= ALPHA_TOLERANCE
    want_fgr = ref["full_fgr_f16"].astype(np.float32)
    assert np.abs(fgr.transpose(0, 2, 3, 1) - want_fgr).max() <= FGR_TOLERANCE


def test_peephole_rewrites_change_the_graph_not_the_values(rvm_onnx: bytes) -> None:
    """Hard-swish / hard-sigmoid / spatial means / resizes / channel splits rewritten for ONNX
    Runtime's fused kernels (livematte.models.tfjs.peephole): the plain graph computes the same."""
    import onnx

    from livematte.models.tfjs import convert_rvm

    plain = convert_rvm(RVM_JSON, optimize=False)
    ops = [n.op_type for n in onnx.load_from_string(rvm_onnx).graph.node]
    plain_ops = [n.op_type for n in onnx.load_from_string(plain).graph.node]
    assert "Clip" in plain_ops and "ReduceMean" in plain_ops and plain_ops.count("Split") == 9
    assert "Clip" not in ops and "ReduceMean" not in ops and ops.count("Split") == 5
    assert ops.count("HardSwish") == 20 and ops.count("GlobalAveragePool") == 9
    assert len(ops) < 0.8 * len(plain_ops)
    ref = np.load(REFERENCE)
    src = ref["lowres1_src_u8"].astype(np.float32) / 255.0
    new_run = _run_steps(ort.InferenceSession(rvm_onnx, providers=["CPUExecutionProvider"]), src)
    old_run = _run_steps(ort.InferenceSession(plain, providers=["CPUExecutionProvider"]), src)
    for (fgr, pha, state), (fgr0, pha0, state0) in zip(new_run, old_run, strict=True):
        assert np.abs(pha - pha0).max() <= 1e-5 and np.abs(fgr - fgr0).max() <= 1e-5
        assert all(np.abs(a - b).max() <= 1e-4 for a, b in zip(state, state0, strict=True))
