"""load_config: presets, extends chains, dotted overrides and the errors bad input gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from livematte.config import Config, list_presets, load_config, replace
from livematte.errors import ConfigError


@pytest.mark.parametrize(
    ("preset", "overrides", "check", "error"),
    [
        # happy paths: (preset, overrides, (dotted key, expected value), None)
        (None, {}, ("runtime.mode", "image"), None),
        ("default", {}, ("matting.refine", "guided"), None),
        ("live", {}, ("runtime.mode", "live"), None),
        ("photo", {}, ("matting.refine", "closed_form"), None),
        ("video", {}, ("temporal.enabled", True), None),
        ("film", {}, ("runtime.mode", "video"), None),
        ("live", {"runtime.threads": "2"}, ("runtime.threads", 2), None),
        ("live", {"temporal.enabled": "off"}, ("temporal.enabled", False), None),
        (None, {"runtime.providers": "cuda, cpu"}, ("runtime.providers", ("cuda", "cpu")), None),
        (None, {"matting.guided_eps": "1e-3"}, ("matting.guided_eps", 1e-3), None),
        (None, {"keypoints.max_people": 2.0}, ("keypoints.max_people", 2), None),
        # errors: the message must name the key path or the bad name
        (None, {"matting.nope": 1}, None, "matting.nope"),
        (None, {"nosection.key": 1}, None, "nosection"),
        (None, {"runtime.threads": "many"}, None, "runtime.threads"),
        (None, {"runtime.threads": 1.5}, None, "whole number"),
        (None, {"temporal.enabled": 3}, None, "temporal.enabled"),
        (None, {"temporal.strength": True}, None, "temporal.strength"),
        (None, {"temporal.strength": 1.5}, None, "outside"),
        (None, {"runtime.threads": -1}, None, "outside"),
        (None, {"matting.refine": "magic"}, None, "not one of"),
        (None, {"runtime.mode": 1}, None, "is not one of image, video, live"),
        (None, {"matting.guide": 1}, None, "expected a string"),
        (None, {"matting.clip_low": 0.9, "matting.clip_high": 0.5}, None, "clip_low"),
        ("no_such_preset", {}, None, "known presets"),
        ("missing.toml", {}, None, "not found"),
    ],
)
def test_load_config_table(preset, overrides, check, error):
    if error is not None:
        with pytest.raises(ConfigError, match=error):
            load_config(preset, overrides)
        return
    config = load_config(preset, overrides)
    key, expected = check
    section, name = key.split(".")
    assert getattr(getattr(config, section), name) == expected


def test_shipped_presets_are_all_valid():
    presets = list_presets()
    assert {"default", "live", "photo", "video"} <= set(presets)
    for name in presets:
        assert isinstance(load_config(name), Config)


def test_default_preset_matches_dataclass_defaults():
    assert load_config("default") == Config()


@pytest.mark.parametrize(
    ("files", "error"),
    [
        (
            {
                "a.toml": 'extends = "b.toml"\n[runtime]\nthreads = 3\n',
                "b.toml": 'extends = "live"\n[matting]\nrefine = "none"\n',
            },
            None,
        ),
        ({"a.toml": 'extends = "b.toml"\n', "b.toml": 'extends = "a.toml"\n'}, "cycle"),
        ({"a.toml": "extends = 3\n"}, "extends"),
        ({"a.toml": "[runtime\n"}, "not valid TOML"),
        ({"a.toml": "[runtime]\nbogus = 1\n"}, "runtime.bogus"),
        ({"a.toml": "runtime = 3\n"}, "expected a table"),
    ],
)
def test_user_toml_files(tmp_path: Path, monkeypatch, files, error):
    # Relative `extends` paths resolve from the working directory.
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    if error is not None:
        with pytest.raises(ConfigError, match=error):
            load_config("a.toml")
        return
    config = load_config("a.toml")
    # Chain a -> b -> live -> default: each level's keys survive unless overridden.
    assert config.runtime.threads == 3
    assert config.matting.refine == "none"
    assert config.runtime.mode == "live"


def test_overrides_beat_preset_and_replace_validates():
    config = load_config("photo", {"matting.refine": "none"})
    assert config.matting.refine == "none"
    assert replace(config, {"runtime.threads": "4"}).runtime.threads == 4
    with pytest.raises(ConfigError, match="runtime.threads"):
        replace(config, {"runtime.threads": "x"})
    with pytest.raises(ConfigError, match="clip_low"):
        replace(config, {"matting.clip_low": 0.9, "matting.clip_high": 0.5})


def test_config_is_frozen():
    config = load_config()
    with pytest.raises(AttributeError):
        config.runtime = None  # type: ignore[misc]
