"""Live sinks: flattening, virtual camera through a registered pyvirtualcam backend (with
re-send on stall), loopback UDP stream read back with PyAV, window logic without a display."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
import pyvirtualcam
from pyvirtualcam.util import encode_fourcc

from livematte.errors import SinkError
from livematte.frame import Frame
from livematte.io import window as window_mod
from livematte.io.live_sinks import (
    StreamSink,
    VirtualCameraSink,
    flatten,
    no_vcam_message,
    stream_format,
)
from livematte.io.sinks import GREEN, NullSink, output_image
from livematte.io.window import WindowSink, checkerboard, fit_text, hotkey_help

BLUE = (200, 50, 10)


def solid(size=(64, 48), colour=BLUE) -> Frame:
    frame = Frame(image=np.zeros((size[1], size[0], 3), np.uint8))
    frame.output = np.empty_like(frame.image)
    frame.output[:] = colour
    return frame


def transparent(size=(64, 48)) -> Frame:
    frame = Frame(image=np.zeros((size[1], size[0], 3), np.uint8))
    frame.output = np.zeros((size[1], size[0], 4), np.uint8)  # fully transparent
    return frame


# --- pictures -----------------------------------------------------------------------------------


def test_flatten_bgra_over_a_colour_and_a_picture():
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[0, 0] = (255, 255, 255, 255)
    bgra[0, 1] = (255, 255, 255, 0)
    out = flatten(bgra, GREEN)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[0, 1]) == GREEN
    board = checkerboard((2, 2))
    assert np.array_equal(flatten(bgra, board)[1], board[1])
    bgr = np.ones((2, 2, 3), np.uint8)
    assert flatten(bgr, GREEN) is bgr


@pytest.mark.parametrize(
    ("output", "error"),
    [
        (np.zeros((4, 4, 3), np.uint8), None),
        (np.zeros((4, 4, 4), np.uint8), None),
        (np.zeros((4, 4, 3), np.float32), "uint8 BGR"),
        (np.zeros((4, 4, 2), np.uint8), "uint8 BGR"),
    ],
)
def test_output_image_checks_dtype_and_shape(output, error):
    frame = Frame(image=np.zeros((4, 4, 3), np.uint8))
    frame.output = output
    if error:
        with pytest.raises(SinkError, match=error):
            NullSink().send(frame)
    else:
        assert output_image(frame) is output


def test_matte_view_is_grey_from_alpha():
    frame = solid((4, 4))
    frame.alpha = np.full((4, 4), 0.5, np.float32)
    matte = output_image(frame, "matte")
    assert matte.shape == (4, 4, 3) and int(matte[0, 0, 0]) == 128


# --- virtual camera -----------------------------------------------------------------------------


class RecordingBackend:
    """A pyvirtualcam backend that keeps what it is sent (no v4l2loopback on this machine)."""

    instances: list[RecordingBackend] = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.closed = False
        RecordingBackend.instances.append(self)

    def send(self, frame):
        self.frames.append(frame.copy())
        self.times.append(time.monotonic())

    def close(self):
        self.closed = True

    def device(self):
        return "Livematte Test Camera"

    def native_fourcc(self):
        return None


class BrokenBackend:
    def __init__(self, **kw):
        raise RuntimeError("device is gone")


@pytest.fixture
def test_backend():
    pyvirtualcam.camera.register_backend("livematte-test", RecordingBackend)
    RecordingBackend.instances.clear()
    yield "livematte-test"
    pyvirtualcam.camera.BACKENDS.pop("livematte-test", None)


def wait_for(predicate, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


def test_vcam_sends_bgr_at_the_source_size_and_fps(test_backend):
    with VirtualCameraSink((64, 48), 30, backend=test_backend, stall_after=10.0) as vcam:
        vcam.send(solid(), time.monotonic())
        assert wait_for(lambda: vcam.frames == 1)
        vcam.send(transparent(), time.monotonic())  # flattened over chroma green
        assert wait_for(lambda: vcam.frames == 2)
        vcam.send(solid((128, 96)), time.monotonic())  # another size: fitted to the device
        assert wait_for(lambda: vcam.frames == 3)
    backend = RecordingBackend.instances[-1]
    assert (backend.width, backend.height, backend.fps) == (64, 48, 30)
    assert backend.fourcc == encode_fourcc(pyvirtualcam.PixelFormat.BGR.value)
    first, second, third = (f.reshape(48, 64, 3) for f in backend.frames[:3])
    assert tuple(first[0, 0]) == BLUE and tuple(second[0, 0]) == GREEN
    assert tuple(third[10, 10]) == BLUE
    assert backend.closed and "Livematte Test Camera" in vcam.name
    assert len(vcam.latencies) == 3 and all(ms >= 0 for _, ms in vcam.latencies)


def test_vcam_keeps_resending_the_last_frame_when_the_pipeline_stalls(test_backend):
    with VirtualCameraSink((32, 24), 50, backend=test_backend, stall_after=0.05) as vcam:
        vcam.send(solid((32, 24)), time.monotonic())
        time.sleep(0.4)  # the pipeline stalls: nothing new for 0.4 s
        repeats_while_stalled = vcam.repeated
        vcam.send(solid((32, 24), (1, 2, 3)), time.monotonic())
        assert wait_for(lambda: vcam.frames == 2)
    backend = RecordingBackend.instances[-1]
    # 0.05 s until the first re-send, then every 1/50 s: ~17; allow a busy machine.
    assert repeats_while_stalled >= 5
    assert all(tuple(f[:3]) == BLUE for f in backend.frames[1 : 1 + repeats_while_stalled])
    gaps = np.diff(backend.times[1:repeats_while_stalled])
    assert gaps.max() < 0.2  # the receiving app never sees a freeze


def test_vcam_tries_backends_in_order(test_backend, monkeypatch):
    monkeypatch.setattr(
        pyvirtualcam.camera, "BACKENDS", {"broken": BrokenBackend, test_backend: RecordingBackend}
    )
    with VirtualCameraSink((32, 24), 30) as vcam:
        assert "livematte-test" in vcam.name


def test_vcam_without_a_usable_backend_says_what_to_install(monkeypatch):
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", {"broken": BrokenBackend})
    with pytest.raises(SinkError) as info:
        VirtualCameraSink((32, 24), 30).open()
    text = str(info.value)
    assert "\n" not in text and "'broken' backend: device is gone" in text
    assert "--no-vcam" in text


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("linux", "sudo modprobe v4l2loopback devices=1 exclusive_caps=1"),
        ("win32", "OBS Studio"),
        ("darwin", "OBS Studio"),
        ("sunos5", "no virtual-camera backend"),
    ],
)
def test_no_vcam_message_per_platform(platform, expected):
    text = no_vcam_message("x\ny", platform)
    assert expected in text and "\n" not in text and "(tried: x; y)" in text


# --- network stream -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fmt", "error"),
    [
        ("udp://127.0.0.1:5000", "mpegts", None),
        ("srt://host:9000?mode=caller", "mpegts", None),
        ("rtmp://live.example/app/key", "flv", None),
        ("rtsp://server/path", "rtsp", None),
        ("out.ts", "mpegts", None),
        ("gopher://x", None, "unsupported stream URL"),
    ],
)
def test_stream_format(url, fmt, error):
    if error:
        with pytest.raises(SinkError, match=error):
            stream_format(url)
    else:
        assert stream_format(url) == fmt


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_udp_stream_on_loopback_is_read_back():
    import av

    port = free_udp_port()
    received: list[np.ndarray] = []
    errors: list[BaseException] = []

    def receive() -> None:
        try:
            with av.open(
                f"udp://127.0.0.1:{port}?overrun_nonfatal=1",
                format="mpegts",
                timeout=5.0,
                options={"probesize": "65536", "analyzeduration": "200000"},
            ) as container:
                for picture in container.decode(video=0):
                    received.append(picture.to_ndarray(format="bgr24"))
                    if len(received) >= 5:
                        break
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    time.sleep(0.2)  # UDP: the listener must be bound before the first datagram
    with StreamSink(f"udp://127.0.0.1:{port}", (160, 120), 30) as sink:
        for _ in range(60):
            sink.send(solid((160, 120)), time.monotonic())
            time.sleep(0.015)
            if len(received) >= 5:
                break
    receiver.join(6.0)
    assert not errors, errors
    assert len(received) >= 5
    assert received[-1].shape == (120, 160, 3)
    assert np.abs(received[-1].mean(axis=(0, 1)) - BLUE).max() < 12  # H.264 is lossy
    assert sink.frames >= 5 and sink.latencies


def test_stream_to_file_keeps_alive_on_stall_and_flushes(tmp_path):
    import av

    target = tmp_path / "out.ts"
    with StreamSink(str(target), (64, 48), 25, stall_after=0.1) as sink:
        sink.send(transparent(), time.monotonic())
        time.sleep(0.4)
    assert sink.repeated >= 3
    with av.open(str(target)) as container:
        pictures = [p.to_ndarray(format="bgr24") for p in container.decode(video=0)]
    assert len(pictures) == 1 + sink.repeated  # every frame flushed out of the encoder
    assert np.abs(pictures[0].mean(axis=(0, 1)) - GREEN).max() < 12  # BGRA over green


def test_stream_rejects_odd_sizes_and_bad_urls(tmp_path):
    with pytest.raises(SinkError, match="even"):
        StreamSink(str(tmp_path / "a.ts"), (65, 48), 30).open()
    with pytest.raises(SinkError, match="cannot open stream"):
        StreamSink(str(tmp_path / "missing" / "a.ts"), (64, 48), 30).open()


# --- window (no display needed: highgui calls are recorded) -------------------------------


class FakeHighgui:
    def __init__(self, keys=()):
        self.keys = list(keys)
        self.shown: list[np.ndarray] = []
        self.visible = 1.0

    def install(self, monkeypatch):
        cv2 = window_mod.cv2
        monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
        monkeypatch.setattr(cv2, "imshow", lambda _, image: self.shown.append(image.copy()))
        monkeypatch.setattr(cv2, "waitKey", lambda _: self.keys.pop(0) if self.keys else -1)
        monkeypatch.setattr(cv2, "pollKey", lambda: self.keys.pop(0) if self.keys else -1)
        monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: self.visible)
        monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
        monkeypatch.setenv("DISPLAY", ":fake")
        return self


def test_window_hotkeys_become_actions(monkeypatch):
    gui = FakeHighgui([ord("b"), ord("s"), ord(" "), ord("m"), ord("x"), 27]).install(monkeypatch)
    frame = solid()
    frame.alpha = np.ones((48, 64), np.float32)
    with WindowSink() as window:
        for _ in range(6):
            window.send(frame, time.monotonic())
        actions = window.poll()
        assert actions == ["next_background", "toggle_stickers", "pause", "quit"]
        assert window.view == "matte"  # m is the window's own toggle
        assert window.poll() == []
    assert len(gui.shown) == 6


def test_window_closed_with_the_mouse_means_quit(monkeypatch):
    gui = FakeHighgui().install(monkeypatch)
    with WindowSink() as window:
        window.send(solid(), None)
        gui.visible = 0.0
        window.idle("")
        assert window.poll() == ["quit"]


def test_window_shows_transparency_over_a_checkerboard_and_leaves_output_alone(monkeypatch):
    gui = FakeHighgui().install(monkeypatch)
    frame = transparent((320, 240))  # the overlay (wrapped to the width) stays at the top
    with WindowSink(overlay=True) as window:
        window.show_help = False
        window.send(frame, time.monotonic())
        window.idle("camera lost - reconnecting (2 s)")
    shown = gui.shown[0]
    assert shown.shape == (240, 320, 3)
    assert set(np.unique(shown[100:, :])) <= {140, 200}  # board (overlay is at the top)
    assert not frame.output.any()  # drawing happened on a copy
    assert len(gui.shown) == 2  # idle redraws with the status


def test_window_without_display_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(window_mod.sys, "platform", "linux")
    with pytest.raises(SinkError, match="no display.*--no-window"):
        WindowSink().open()


def test_hotkey_help_lists_every_key():
    text = hotkey_help()
    for key in ("b", "s", "m", "space", "o", "h", "q, Esc"):
        assert f"  {key} " in text


#: Stage timings as ``livematte cam --stickers party`` reports them (the runner adds "wait").
CAM_TIMINGS = {"decode": 17.8, "segment": 8.5, "refine": 1.2, "temporal": 23.9,
               "foreground": 12.3, "keypoints": 31.6, "stickers": 4.4, "effects": 1.5,
               "wait": 3.2, "total": 104.2}  # fmt: skip


def _overlay_ink(monkeypatch, width: int, status: str = "") -> tuple[int, int]:
    """Render the overlay (and a status line) over black at ``width`` x 360; return the
    number of text pixels and the rightmost column that has any."""
    gui = FakeHighgui().install(monkeypatch)
    frame = solid((width, 360), (0, 0, 0))
    frame.timings = dict(CAM_TIMINGS)
    with WindowSink(overlay=True) as window:
        window.show_help = False
        window.send(frame, time.monotonic())
        if status:
            window.idle(status)
    text = gui.shown[-1].max(axis=2) > 128
    columns = np.flatnonzero(text.any(axis=0))
    return int(text.sum()), int(columns.max())


@pytest.mark.parametrize("width", [320, 480, 640, 1280])
def test_overlay_fits_any_width_from_320(monkeypatch, width):
    # The reference: the same text on a canvas wide enough for every line as it is.
    ink, right = _overlay_ink(monkeypatch, width)
    wide_ink, _ = _overlay_ink(monkeypatch, 3000)
    assert right < width - 4  # nothing runs into the edge: no text is cut off
    assert ink >= 0.9 * wide_ink  # every glyph is there (wrapped, or drawn a little smaller)
    ink, right = _overlay_ink(monkeypatch, width, "camera lost - reconnecting (12 s)")
    assert right < width - 4


def test_fit_text_wraps_between_items_and_shrinks_only_a_word_too_wide():
    lines, scale = fit_text(["ms:  decode 17.8  segment 8.5  refine 1.2  temporal 23.9"], 300)
    assert scale == 0.5 and lines == ["ms:  decode 17.8  segment 8.5  refine 1.2", "temporal 23.9"]
    lines, scale = fit_text(["pneumonoultramicroscopic"], 120)
    assert lines == ["pneumonoultramicroscopic"] and 0.3 <= scale < 0.5
