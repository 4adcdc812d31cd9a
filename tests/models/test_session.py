"""Sessions: tiny ONNX graphs built here, provider selection and honest provider reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from livematte.errors import ModelError, ProviderError
from livematte.models import registry, session
from livematte.models.registry import ModelSpec
from livematte.models.session import create_session

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.17
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def double_model(tmp_path) -> Path:
    """y = 2 * x on [1, 4] float32."""
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"])],
        "double",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializer=[two],
    )
    return _save(graph, tmp_path / "double.onnx")


@pytest.fixture
def counter_model(tmp_path) -> Path:
    """A recurrent toy: state_out = state_in + x; y = state_out (state shape broadcasts)."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "s_in"], ["s_out"]),
            helper.make_node("Identity", ["s_out"], ["y"]),
        ],
        "counter",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, 1]),
            helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [1, 1, 1, 1]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1, 1]),
            helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [1, 1, 1, 1]),
        ],
    )
    return _save(graph, tmp_path / "counter.onnx")


def test_run_by_output_name_on_cpu(double_model):
    sess = create_session(double_model, providers=("cpu",), threads=1)
    assert sess.provider == "cpu"
    assert "CPUExecutionProvider" in sess.ort_providers
    assert sess.input_names == ["x"] and sess.output_names == ["y"]
    out = sess.run({"x": np.arange(4, dtype=np.float32)[None]})
    np.testing.assert_array_equal(out["y"], [[0, 2, 4, 6]])


def test_cuda_only_is_an_error_not_a_cpu_fallback(double_model):
    if "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers():
        pytest.skip("this machine has CUDA; the error path needs a build without it")
    with pytest.raises(ProviderError, match=r"cuda: not in this onnxruntime build.*cpu"):
        create_session(double_model, providers=("cuda",))


def test_gpu_then_cpu_falls_back_and_says_so(double_model):
    sess = create_session(double_model, providers="tensorrt, cuda, cpu")
    assert sess.provider in ("tensorrt", "cuda", "cpu")
    if sess.provider == "cpu":
        assert set(sess.skipped) == {"tensorrt", "cuda"}


@pytest.mark.parametrize(
    ("providers", "error"),
    [(("quantum",), "unknown execution provider 'quantum'"), ((), "no execution provider")],
)
def test_bad_provider_lists(double_model, providers, error):
    with pytest.raises(ProviderError, match=error):
        create_session(double_model, providers=providers)


def test_full_ort_names_are_accepted(double_model):
    assert create_session(double_model, providers=["CPUExecutionProvider"]).provider == "cpu"


def test_bad_input_is_a_model_error(double_model):
    sess = create_session(double_model)
    with pytest.raises(ModelError, match="failed to run"):
        sess.run({"x": np.zeros((3, 3), np.float32)})


def test_broken_file_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="cannot load model bad.onnx"):
        create_session(bad)
    with pytest.raises(ModelError, match="not found"):
        create_session(tmp_path / "absent.onnx")


def test_recurrent_state_is_carried_and_reset(counter_model, monkeypatch):
    spec = ModelSpec(
        name="counter",
        task="matting",
        file=counter_model.name,
        inputs=("x", "s_in"),
        outputs=("y", "s_out"),
        recurrent=True,
        state=(("s_in", "s_out"),),
    )
    monkeypatch.setattr(registry, "DATA_DIR", counter_model.parent)
    sess = create_session(spec)
    one = {"x": np.ones((1, 1, 1, 1), np.float32)}
    assert [float(sess.run(one)["y"].item()) for _ in range(3)] == [1.0, 2.0, 3.0]
    sess.reset()
    assert float(sess.run(one)["y"].item()) == 1.0


def test_unpulled_external_model_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVEMATTE_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match="livematte models pull rvm_mobilenetv3"):
        create_session("rvm_mobilenetv3")


def test_missing_runtime_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("no onnxruntime")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ModelError, match=r"livematte\[cpu\].*livematte\[gpu\]"):
        session.import_onnxruntime()


EMBEDDED_SHAPES = {
    "selfie_segmentation": {"segmentation": (1, 256, 256, 1)},
    "selfie_segmentation_landscape": {"segmentation": (1, 144, 256, 1)},
    "pose_detection": {"boxes": (1, 2254, 12), "scores": (1, 2254, 1)},
    "pose_landmark_full": {
        "landmarks": (1, 195),
        "presence": (1, 1),
        "heatmap": (1, 64, 64, 39),
        "world_landmarks": (1, 117),
        "mask_input_0": (1, 16, 128, 128),
        "mask_input_1": (1, 48, 64, 64),
    },
}


@pytest.mark.parametrize("name", sorted(EMBEDDED_SHAPES))
def test_embedded_models_load_and_match_their_spec(name):
    spec = registry.get_spec(name)
    if not registry.model_path(spec).is_file():
        pytest.skip(f"{spec.filename} not generated yet (scripts/convert_mediapipe.py)")
    sess = create_session(spec, threads=1)
    assert sess.provider == "cpu"
    assert sess.input_names[0] == spec.inputs[0]
    assert tuple(sess.output_names) == spec.outputs
    width, height = spec.input_size
    pixels = np.random.default_rng(0).integers(0, 256, (1, height, width, 3))
    image = (pixels * spec.scale + spec.offset).astype(np.float32)
    out = sess.run({spec.inputs[0]: image})
    assert {k: v.shape for k, v in out.items()} == EMBEDDED_SHAPES[name]
    assert all(np.isfinite(v).all() for v in out.values())


def _spinning(sess) -> str:
    options = sess._session.get_session_options()
    return options.get_session_config_entry("session.intra_op.allow_spinning")


def test_heavy_models_do_not_spin_and_config_entries_pass_through(double_model, monkeypatch):
    monkeypatch.setattr(registry, "DATA_DIR", double_model.parent)
    light = ModelSpec(name="light", task="matting", file=double_model.name, inputs=("x",))
    heavy = ModelSpec(name="heavy", task="matting", file=double_model.name, inputs=("x",),
                      spin=False)
    assert registry.get_spec("rvm_mobilenetv3").spin is False
    with pytest.raises(RuntimeError):  # ONNX Runtime: the entry is absent unless set
        _spinning(create_session(light, threads=2))
    assert _spinning(create_session(heavy, threads=2)) == "0"
    again = create_session(light, threads=2, config={"session.intra_op.allow_spinning": "0"})
    assert _spinning(again) == "0"
    x = {"x": np.arange(4, dtype=np.float32).reshape(1, 4)}
    assert create_session(heavy, threads=2).run(x)["y"].tolist() == [[0.0, 2.0, 4.0, 6.0]]


def test_specs_choose_the_graph_optimisation_level(double_model, monkeypatch):
    monkeypatch.setattr(registry, "DATA_DIR", double_model.parent)
    ort = pytest.importorskip("onnxruntime")
    level = ort.GraphOptimizationLevel
    plain = ModelSpec(name="plain", task="matting", file=double_model.name, inputs=("x",))
    flat = ModelSpec(name="flat", task="matting", file=double_model.name, inputs=("x",),
                     graph_optimization="extended")
    assert registry.get_spec("pose_landmark_full_mask").graph_optimization == "extended"
    for spec, expected in ((plain, level.ORT_ENABLE_ALL), (flat, level.ORT_ENABLE_EXTENDED)):
        sess = create_session(spec, threads=1)
        assert sess._session.get_session_options().graph_optimization_level == expected
        x = {"x": np.arange(4, dtype=np.float32).reshape(1, 4)}
        assert sess.run(x)["y"].tolist() == [[0.0, 2.0, 4.0, 6.0]]
    with pytest.raises(ModelError, match="graph_optimization must be one of all, extended"):
        ModelSpec(name="bad", task="matting", file="x.onnx", graph_optimization="basic")


def test_a_closed_session_refuses_to_run(double_model):
    # A person mask decoded after its keypoint stage closed (PersonMask defers the decoder)
    # meets this error, not ONNX Runtime's AttributeError on None.
    sess = create_session(double_model, threads=1)
    x = {"x": np.ones((1, 4), np.float32)}
    assert sess.run(x)["y"].tolist() == [[2.0, 2.0, 2.0, 2.0]]
    sess.close()
    with pytest.raises(ModelError, match="was closed"):
        sess.run(x)
