"""CLI: doctor and models commands, one-line errors with exit codes, the command registry."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from livematte import cli
from livematte.cli import base
from livematte.errors import ConfigError, SourceError

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # -m livematte from the checkout works whether or not the package is installed.
    return subprocess.run(
        [sys.executable, "-m", "livematte", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_doctor_runs_in_a_subprocess(tmp_path):
    result = _run("doctor", env={"LIVEMATTE_CACHE": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for needle in ("livematte ", "python ", "numpy ", "opencv ", "onnxruntime", "PyAV "):
        assert needle in out
    assert "h264:" in out and "virtual camera" in out and "selfie_segmentation:" in out
    assert "problems:" in out


def test_error_prints_one_line_without_traceback():
    result = _run("models", "pull", "no_such_model")
    assert result.returncode == 5
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("livematte: error: unknown model 'no_such_model'")
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback():
    result = _run("--debug", "models", "pull", "no_such_model")
    assert result.returncode == 5
    assert "Traceback" in result.stderr and "livematte: error:" in result.stderr


def test_models_list(capsys):
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("selfie_segmentation", "pose_landmark_full", "rvm_mobilenetv3"):
        assert name in out


def test_models_verify_exit_status(capsys):
    from livematte.models import download

    expected = 1 if any(download.is_failure(s) for _, s in download.verify()) else 0
    assert cli.main(["models", "verify"]) == expected
    assert "selfie_segmentation" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["no-such-command"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("raised", "code", "message"),
    [
        (ConfigError("matting.refine: 'x' is not one of none, guided"), 2, "matting.refine"),
        (SourceError("cannot open camera 0"), 3, "cannot open camera 0"),
        (FileNotFoundError(2, "No such file or directory", "in.mp4"), 1, "No such file"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_registered_command_errors(monkeypatch, capsys, raised, code, message):
    monkeypatch.setattr(base, "COMMANDS", dict(base.COMMANDS))

    @base.command("explode", help="raise for the test")
    def _explode(parser: argparse.ArgumentParser) -> base.Handler:
        def run(args: argparse.Namespace) -> int:
            raise raised

        return run

    assert cli.main(["explode"]) == code
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_duplicate_command_is_refused(monkeypatch):
    monkeypatch.setattr(base, "COMMANDS", dict(base.COMMANDS))
    with pytest.raises(ValueError, match="twice"):
        base.command("doctor", help="again")(lambda parser: lambda args: 0)


def test_config_flags_become_overrides():
    parser = argparse.ArgumentParser()
    base.add_config_args(parser, preset="live")
    args = parser.parse_args(
        ["--set", "matting.refine=none", "--providers", "cuda,cpu", "--threads", "2"]
    )
    config = base.config_from_args(args, {"temporal.enabled": False})
    assert config.runtime.mode == "live"
    assert config.matting.refine == "none"
    assert config.runtime.providers == ("cuda", "cpu")
    assert config.runtime.threads == 2
    assert config.temporal.enabled is False


@pytest.mark.parametrize("item", ["novalue", "=3"])
def test_bad_set_items(item):
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        base.parse_overrides([item])


def test_version_is_read_only_when_asked_for():
    """Building the parser (every command's start-up) reads no package metadata and loads no
    HTTP client: ``--version`` and the downloader import them when they run."""
    code = (
        "import sys; from livematte import cli; cli.build_parser(); "
        "print('importlib.metadata' in sys.modules, 'urllib.request' in sys.modules)"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["False", "False"]
    result = _run("--version")
    assert result.returncode == 0
    import livematte

    assert result.stdout.strip() == f"livematte {livematte.__version__}"


def test_main_sets_one_blas_thread_before_the_command_runs():
    """``cli.main`` itself calls ``blas_threads`` (not only the function in isolation)."""
    code = (
        "import os\nfrom livematte import cli\n"
        "try:\n    cli.main(['image', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(os.environ.get('OPENBLAS_NUM_THREADS'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    probe = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == "1"


def test_video_cam_image_and_serve_load_one_blas_thread():
    """``video``, ``cam``, ``image`` and ``serve`` set OpenBLAS to one thread before numpy loads
    (nothing the CLI imports first loads numpy); other commands and a value the user set are
    left alone."""
    code = (
        "import os, sys; from livematte import cli; loaded = 'numpy' in sys.modules; "
        "cli.blas_threads(sys.argv[1:]); import numpy; "
        "print(loaded, os.environ.get('OPENBLAS_NUM_THREADS'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    cases = [
        (["--debug", "video", "in.mp4", "out.mp4"], env, "False 1"),
        (["cam"], env, "False 1"),
        (["image", "a.jpg", "--preset", "photo"], env, "False 1"),
        (["serve", "--port", "8001"], env, "False 1"),
        (["doctor"], env, "False None"),
        (["keys", "list"], env, "False None"),
        (["video", "in.mp4", "out.mp4"], {**env, "OPENBLAS_NUM_THREADS": "2"}, "False 2"),
        (["image", "a.jpg"], {**env, "OPENBLAS_NUM_THREADS": "3"}, "False 3"),
    ]
    for args, environ, expected in cases:
        probe = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.strip() == expected, args
