"""Model registry: specs, lookups, paths, user TOML models and the embedded manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from livematte.errors import ModelError
from livematte.models import registry
from livematte.models.registry import ModelSpec, get_spec, list_specs, model_path

EMBEDDED = (
    "selfie_segmentation",
    "selfie_segmentation_landscape",
    "pose_detection",
    "pose_landmark_full",
    "pose_landmark_full_mask",
)
SHA = "0" * 64


@pytest.fixture(autouse=True)
def _isolated_registry(monkeypatch, tmp_path):
    # Tests register specs and point the user files elsewhere; keep the global registry intact.
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_USER_LOADED", set())
    monkeypatch.setenv("LIVEMATTE_MODELS", str(tmp_path / "no-user-models.toml"))


def test_embedded_specs_are_registered():
    names = {s.name for s in list_specs()}
    assert set(EMBEDDED) <= names
    for name in EMBEDDED:
        spec = get_spec(name)
        assert spec.embedded and spec.license == "Apache-2.0"
        assert model_path(spec) == registry.DATA_DIR / f"{name}.onnx"


def test_external_specs_have_checksums_and_urls():
    external = [s for s in list_specs() if not s.embedded]
    assert external, "at least one documented external model"
    for spec in external:
        assert spec.url and spec.url.startswith("https://")
        assert spec.sha256 and len(spec.sha256) == 64


def test_rvm_is_recurrent_with_state_pairs():
    spec = get_spec("rvm_mobilenetv3")
    assert spec.recurrent and len(spec.state) == 4 and spec.layout == "nchw"


def test_unknown_name_lists_known_ones():
    with pytest.raises(ModelError, match="unknown model 'nope'.*selfie_segmentation"):
        get_spec("nope")


def test_get_spec_passes_specs_through():
    spec = get_spec("pose_detection")
    assert get_spec(spec) is spec


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "ok", "task": "matting", "url": "https://x/y.onnx", "sha256": SHA}, None),
        ({"name": "ok", "task": "matting", "file": "x.onnx"}, None),
        ({"name": "Bad Name", "task": "matting", "file": "x.onnx"}, "name must be"),
        ({"name": "x", "task": "matting"}, "exactly one"),
        (
            {"name": "x", "task": "matting", "file": "a", "url": "https://a", "sha256": SHA},
            "exactly one",
        ),
        ({"name": "x", "task": "matting", "url": "https://x/y.onnx"}, "needs a sha256"),
        ({"name": "x", "task": "matting", "url": "ftp://x", "sha256": SHA}, "http"),
        ({"name": "x", "task": "matting", "file": "a", "sha256": "ABC"}, "64 lowercase"),
        ({"name": "x", "task": "dancing", "file": "a"}, "task must be"),
        ({"name": "x", "task": "matting", "file": "a", "layout": "chw"}, "layout"),
        ({"name": "x", "task": "matting", "file": "a", "color": "yuv"}, "color"),
        ({"name": "x", "task": "matting", "file": "a", "input_size": (0, 3)}, "input_size"),
        ({"name": "x", "task": "matting", "file": "a", "recurrent": True}, "state"),
    ],
)
def test_spec_validation(kwargs, error):
    if error is None:
        assert ModelSpec(**kwargs).name == kwargs["name"]
        return
    with pytest.raises(ModelError, match=error):
        ModelSpec(**kwargs)


def test_register_refuses_duplicates_unless_replace():
    spec = ModelSpec(name="dup", task="matting", url="https://x/y.onnx", sha256=SHA)
    registry.register(spec)
    with pytest.raises(ModelError, match="already registered"):
        registry.register(spec)
    assert registry.register(spec, replace=True) is spec


def test_decorator_registers():
    @registry.model
    def extra() -> ModelSpec:
        return ModelSpec(name="extra", task="segmentation", url="https://x/e.onnx", sha256=SHA)

    assert get_spec("extra").url == "https://x/e.onnx"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LIVEMATTE_CACHE": "/c"}, Path("/c/models")),
        ({"XDG_CACHE_HOME": "/x"}, Path("/x/livematte/models")),
        ({}, Path.home() / ".cache" / "livematte" / "models"),
    ],
)
def test_cache_dir(monkeypatch, env, expected):
    for key in ("LIVEMATTE_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert registry.cache_dir() == expected
    spec = get_spec("rvm_mobilenetv3")
    assert model_path(spec) == expected / "rvm_mobilenetv3.onnx"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '[models.mine]\nurl = "https://h/m.onnx"\nsha256 = "' + SHA + '"\ntask = "matting"\n'
            'input_size = [512, 288]\nlayout = "nchw"\n',
            None,
        ),
        ("[models.mine\n", "cannot read"),
        ('[models.mine]\nurl = "https://h/m.onnx"\ntask = "matting"\n', "needs a sha256"),
        ('[models.mine]\nfile = "m.onnx"\ntask = "matting"\n', "give 'url'"),
        (
            '[models.mine]\nurl = "https://h"\nsha256 = "' + SHA + '"\ntask = "matting"\nx = 1\n',
            "unknown keys x",
        ),
        (
            '[models.pose_detection]\nurl = "https://h"\nsha256 = "'
            + SHA
            + '"\ntask = "matting"\n',
            "embedded",
        ),
    ],
)
def test_user_models_toml(tmp_path, monkeypatch, text, error):
    path = tmp_path / "models.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("LIVEMATTE_MODELS", str(path))
    if error is not None:
        with pytest.raises(ModelError, match=error):
            get_spec("mine")
        return
    spec = get_spec("mine")
    assert spec.input_size == (512, 288) and spec.layout == "nchw" and not spec.embedded


def test_manifest_checksums_feed_embedded_specs():
    manifest = registry.load_manifest()
    if not manifest:
        pytest.skip("livematte/models/data/MANIFEST.json not generated yet")
    assert manifest["license"] == "Apache-2.0"
    for name in EMBEDDED:
        assert get_spec(name).sha256 == manifest["models"][name]["onnx_sha256"]
