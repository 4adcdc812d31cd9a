"""``livematte cam`` end to end in a child process: outputs, --stats, one-line errors with
their exit codes, the window under Xvfb quitting on q."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_cam(*args: str, env: dict | None = None, timeout: float = 60):
    """Run ``livematte cam`` in a child process with the test vcam backend registered."""
    code = (
        "import sys, pyvirtualcam, livematte.cli.cam\n"
        f"sys.path.insert(0, {str(Path(__file__).parents[1])!r})\n"
        "from media import RecordingBackend\n"
        "pyvirtualcam.camera.register_backend('livematte-test', RecordingBackend)\n"
        "from livematte.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "cam", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env or os.environ.copy(),
    )


def test_cam_command_end_to_end(clip, tmp_path):
    stats_path = tmp_path / "stats.json"
    done = run_cam(
        "--source",
        clip,
        "--no-window",
        "--vcam",
        "--vcam-backend",
        "livematte-test",
        "--stream",
        str(tmp_path / "out.ts"),
        "--bg",
        "#0000ff",
        "--bg",
        "blur",
        "--duration",
        "1.5",
        "--fps",
        "30",
        "--threads",
        "1",
        "--stats",
        str(stats_path),
    )
    assert done.returncode == 0, done.stderr
    assert "frames in" in done.stderr and "(duration)" in done.stderr
    summary = json.loads(stats_path.read_text())
    assert summary["processed"] >= 10
    assert any(name.startswith("virtual camera") for name in summary["sinks"])


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--no-window"], 2, "no output: use --window"),
        (["--camera", "/dev/video99", "--no-window", "--vcam"], 3, "does not exist"),
        (
            ["--source", "x.mp4", "--no-window", "--stream", "out.ts", "--size", "12"],
            2,
            "--size expects",
        ),
        (
            ["--source", "CLIP", "--no-window", "--vcam", "--vcam-backend", "nope"],
            4,
            "unknown virtual-camera backend",
        ),
    ],
)
def test_cam_errors_are_one_line(args, status, message, clip):
    args = [clip if a == "CLIP" else a for a in args]
    done = run_cam(*args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == status, done.stderr
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("livematte: error:")


# --- window under Xvfb ---------------------------------------------------------------------


@pytest.mark.display
def test_window_under_xvfb_quits_on_q(clip, x_display):
    env = {**os.environ, "DISPLAY": x_display}
    xdotool = shutil.which("xdotool")
    args = [
        "--source",
        clip,
        "--window",
        "--overlay",
        "--bg",
        "#00ff00",
        "--threads",
        "1",
        "--duration",
        "8" if xdotool else "1.5",
    ]
    if xdotool is None:
        done = run_cam(*args, env=env)
        assert done.returncode == 0, done.stderr
        return
    code = (
        "import sys, livematte.cli.cam\nfrom livematte.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "cam", *args],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:  # wait for the window, then press q in it
        found = subprocess.run(
            [xdotool, "search", "--name", "livematte"], env=env, capture_output=True, text=True
        ).stdout.split()
        if found:
            time.sleep(0.5)
            subprocess.run([xdotool, "key", "--window", found[0], "q"], env=env)
            break
        time.sleep(0.1)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "(quit)" in stderr
