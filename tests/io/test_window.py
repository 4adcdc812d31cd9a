"""The live window under a real X server (Xvfb): keys typed through XTest, as a user types them,
must each reach the LIVE runner, however long a frame takes to process."""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from media import write_h264

ROOT = Path(__file__).resolve().parents[2]

#: Runs in a child process (Qt binds to one display per process): a frame that takes 300 ms,
#: during which the user presses two keys 100 ms apart (a quick double press); prints the
#: actions the controls received.
_QUICK_KEYS = textwrap.dedent(
    """
    import ctypes, json, sys, time
    from livematte.runner import LiveRunner
    from livematte.io.capture import StreamSource
    from livematte.io.window import WindowSink

    x11, xtst = ctypes.CDLL("libX11.so.6"), ctypes.CDLL(sys.argv[2])
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
    xtst.XTestFakeMotionEvent.argtypes = [ctypes.c_void_p] + [ctypes.c_int] * 3 + [ctypes.c_ulong]
    display = x11.XOpenDisplay(None)

    def type_key(char):
        code = x11.XKeysymToKeycode(display, ord(char))
        for down in (1, 0):
            xtst.XTestFakeKeyEvent(display, code, down, 0)
        x11.XSync(display, 0)

    class Controls:
        def __init__(self):
            self.actions = []

        def next_background(self):
            self.actions.append("next_background")

        def toggle_stickers(self):
            self.actions.append("toggle_stickers")

    count = 0

    def process(frame):
        global count
        count += 1
        if count == 5:  # no window manager: keys go to the window under the pointer
            xtst.XTestFakeMotionEvent(display, -1, 40, 40, 0)
            x11.XSync(display, 0)
        if count == 15:
            type_key("b")
            time.sleep(0.1)
            type_key(sys.argv[3])
            time.sleep(0.2)
        time.sleep(0.05)
        frame.output = 255 - frame.image
        return frame

    controls = Controls()
    runner = LiveRunner(StreamSource(sys.argv[1], fps=30), process, [WindowSink("quick keys")],
                        duration=3.0, controls=controls, log=lambda m: None)
    stats = runner.run()
    print(json.dumps({"actions": controls.actions, "processed": stats.processed,
                      "threads_left": stats.threads_left}))
    """
)


@pytest.mark.display
@pytest.mark.parametrize("second", ["s", "b"])
def test_a_second_quick_key_press_is_not_lost(tmp_path, x_display, second):
    xtst = ctypes.util.find_library("Xtst")
    if xtst is None:
        pytest.skip("typing keys needs libXtst (apt install libxtst6)")
    images = (np.full((120, 160, 3), 40 + 10 * i, np.uint8) for i in range(12))
    clip = write_h264(tmp_path / "clip.mp4", images, 30)
    done = subprocess.run(
        [sys.executable, "-c", _QUICK_KEYS, clip, xtst, second],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "DISPLAY": x_display},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["processed"] >= 16 and not result["threads_left"]
    expected = {"s": "toggle_stickers", "b": "next_background"}[second]
    assert result["actions"] == ["next_background", expected]
