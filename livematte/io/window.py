"""Preview window (OpenCV highgui) with hotkeys and an optional FPS/latency overlay.

The window is a live sink (see ``livematte.io.live_sinks``) that must be driven from
the main thread (Qt and Cocoa insist); the LIVE runner calls ``send`` per frame and ``idle``
while it waits, both of which pump the GUI events, and reads the user's actions with
``poll()``.  Transparent output (BGRA) is shown over a grey checkerboard.

Hotkeys are listed by ``livematte cam --help`` (``hotkey_help()``) and on screen for the first
seconds (``h`` brings the list back).  Closing the window counts as "quit".

Example::

    with WindowSink("livematte", overlay=True) as window:
        window.send(frame, captured_at)
        if "quit" in window.poll(): ...
"""

from __future__ import annotations

import os
import sys
import time

import cv2
import numpy as np

from livematte.errors import SinkError
from livematte.frame import Frame
from livematte.io.base import SinkBase
from livematte.io.sinks import output_image
from livematte.ops.compose import flatten, resize_image

#: (keys, action, what it does).  Actions other than the window's own (matte, overlay, help)
#: are handled by the LIVE runner.
HOTKEYS: tuple[tuple[str, str, str], ...] = (
    ("b", "next_background", "next background (cycles the --bg list)"),
    ("s", "toggle_stickers", "stickers on/off"),
    ("m", "matte", "show the matte instead of the output"),
    ("space", "pause", "pause/resume (outputs keep the frozen picture)"),
    ("o", "overlay", "FPS/latency overlay on/off"),
    ("h", "help", "show/hide this list"),
    ("q, Esc", "quit", "quit (closing the window works too)"),
)
_KEYS = {
    ord("b"): "next_background",
    ord("s"): "toggle_stickers",
    ord("m"): "matte",
    ord(" "): "pause",
    ord("p"): "pause",
    ord("o"): "overlay",
    ord("h"): "help",
    ord("q"): "quit",
    27: "quit",
}
_HELP_SECONDS = 8.0
_MAX_KEYS_PER_PUMP = 16  # a bound, so a stuck key cannot hold the loop
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def hotkey_help() -> str:
    """The hotkey list as text (for ``--help``)."""
    return "window hotkeys:\n" + "\n".join(f"  {k:8} {text}" for k, _, text in HOTKEYS)


def display_available() -> bool:
    """True when a window can be shown: DISPLAY/WAYLAND_DISPLAY on Linux, always elsewhere."""
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def require_display() -> None:
    """Raise ``SinkError`` when no window can be shown (see ``display_available``)."""
    if not display_available():
        raise SinkError(
            "cannot open a window: no display (DISPLAY/WAYLAND_DISPLAY unset); use --no-window"
        )


def checkerboard(size: tuple[int, int], cell: int = 16) -> np.ndarray:
    """A grey checkerboard (BGR) of ``size`` (w, h), the usual "transparent" backdrop."""
    w, h = size
    ys, xs = np.indices((h, w))
    board = np.where(((xs // cell) + (ys // cell)) % 2 == 0, 200, 140).astype(np.uint8)
    return np.repeat(board[:, :, None], 3, axis=2)


def _text_width(text: str, scale: float) -> int:
    return cv2.getTextSize(text, _FONT, scale, 1)[0][0]


def _wrap(text: str, width: int, scale: float) -> list[str]:
    """``text`` in lines no wider than ``width`` px, broken between its items ("  ") first,
    then between words; a word wider than ``width`` stays whole (see ``fit_text``)."""
    lines: list[str] = []
    for group in text.split("  "):
        words = [group] if _text_width(group, scale) <= width else group.split(" ")
        for number, word in enumerate(words):
            joined = lines[-1] + (" " if number else "  ") + word if lines else word
            if lines and _text_width(joined, scale) <= width:
                lines[-1] = joined
            else:
                lines.append(word)
    return [line.strip() for line in lines if line.strip()]


def fit_text(lines: list[str], width: int, scale: float = 0.5) -> tuple[list[str], float]:
    """Lay ``lines`` out within ``width`` px: wrapped (items, then words), and at a smaller
    scale only when a single word is still too wide (never below 0.3, about 9 px high).

    Returns:
        The wrapped lines and the scale to draw them at.
    """
    width = max(width, 1)
    words = [w for line in lines for w in line.split()]
    widest = max((_text_width(w, scale) for w in words), default=0)
    if widest > width:
        scale = max(0.3, scale * width / widest)
    return [out for line in lines for out in _wrap(line, width, scale)], scale


def draw_text(
    image: np.ndarray,
    lines: list[str],
    origin: tuple[int, int],
    scale: float = 0.5,
    *,
    from_bottom: bool = False,
) -> None:
    """Draw lines of text on a dark band so they read on any background (in place), wrapped
    to the image's width (see ``fit_text``).  ``origin`` is the first line's baseline, or the
    last one's with ``from_bottom``."""
    if not lines:
        return
    x, y = origin
    x = max(6, min(x, image.shape[1] // 2))
    lines, scale = fit_text(lines, image.shape[1] - x - 8, scale)
    step = int(22 * scale / 0.5)
    if from_bottom:
        y -= step * (len(lines) - 1)
    y = max(y, step - 4)
    width = max(_text_width(t, scale) for t in lines) + 12
    top, bottom = max(0, y - step + 4), min(image.shape[0], y + step * (len(lines) - 1) + 8)
    band = image[top:bottom, max(0, x - 6) : x - 6 + width]
    band[:] = (band.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken, keep a hint behind
    for i, text in enumerate(lines):
        cv2.putText(image, text, (x, y + i * step), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


class WindowSink(SinkBase):
    """An OpenCV window showing the output, with hotkeys and an optional overlay.

    Args:
        title: window title.
        overlay: start with the FPS/latency/stage-timings overlay on.
        size: show at this (w, h) (None = the frame's own size).

    Raises (from ``open``):
        SinkError: no display (set DISPLAY or use --no-window) or highgui unavailable.
    """

    name = "window"
    poll_interval = 0.01  # the GUI needs its events pumped often
    takes_input = True

    def __init__(
        self,
        title: str = "livematte",
        *,
        overlay: bool = False,
        size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.title = title
        self.overlay = overlay
        self.size = size
        self.view = "output"
        self.show_help = True
        self.status = ""
        self._actions: list[str] = []
        self._opened_at = 0.0
        self._board: np.ndarray | None = None
        self._last_image: np.ndarray | None = None
        self._last_frame: Frame | None = None
        self._fps = 0.0
        self._latency = 0.0
        self._last_send = 0.0
        self._last_idle_draw = 0.0
        self._open = False
        self._shown = False

    def open(self) -> None:
        require_display()
        try:
            flags = cv2.WINDOW_AUTOSIZE | getattr(cv2, "WINDOW_GUI_NORMAL", 0)
            cv2.namedWindow(self.title, flags)
        except cv2.error as exc:
            raise SinkError(f"cannot open a window: {' '.join(str(exc).split())}") from None
        self._open = True
        self._opened_at = time.monotonic()

    # -- drawing -------------------------------------------------------------------------------
    def _compose(self, frame: Frame) -> np.ndarray:
        image = output_image(frame, self.view)
        if image.shape[2] == 4:
            size = (image.shape[1], image.shape[0])
            if self._board is None or self._board.shape[1::-1] != size:
                self._board = checkerboard(size)
            image = flatten(image, self._board)
        if self.size is not None:
            image = resize_image(image, self.size)
        return image

    def _decorate(self, image: np.ndarray, frame: Frame | None) -> np.ndarray:
        helping = self.show_help and self._help_visible()
        if not (self.overlay or helping or self.status or self.view == "matte"):
            return image
        image = image.copy()  # other sinks may hold this very array: never draw on it
        if self.overlay and frame is not None:
            # Items two spaces apart: lines wrap between them to fit narrow windows.
            lines = [f"{self._fps:.1f} fps  latency {self._latency:.1f} ms"]
            stages = [f"{k} {v:.1f}" for k, v in frame.timings.items() if k != "total"]
            if stages:
                lines.append("ms:  " + "  ".join(stages))
            draw_text(image, lines, (10, 22))
        if self.view == "matte":
            draw_text(image, ["matte (m: back to output)"], (10, image.shape[0] - 12),
                      from_bottom=True)  # fmt: skip
        if helping:
            lines = [f"{k}: {text}" for k, _, text in HOTKEYS]
            draw_text(image, lines, (10, image.shape[0] - 32), from_bottom=True)
        if self.status:
            draw_text(image, [self.status], (image.shape[1] // 2 - 120, image.shape[0] // 2), 0.8)
        return image

    def _show(self, image: np.ndarray) -> None:
        cv2.imshow(self.title, image)
        self._shown = True
        self._pump()

    def _pump(self) -> None:
        # Every key the GUI holds: Win32 and GTK queue them, one per call.  (Qt keeps only the
        # last key since it was pumped, so the runner pumps every 10 ms while a frame is
        # processed, see Sink.takes_input; two presses 100 ms apart lost the first before.)
        read = getattr(cv2, "pollKey", None) or (lambda: cv2.waitKey(1))
        for _ in range(_MAX_KEYS_PER_PUMP):
            key = read()
            if key == -1:
                break
            self._key(key)
        if not self._shown:
            return  # before the first picture the window is legitimately not visible yet
        # Closing the window with the mouse: highgui reports it as no longer visible.
        try:
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
        except cv2.error:
            visible = -1
        if visible < 1 and "quit" not in self._actions:
            self._actions.append("quit")

    def _key(self, key: int) -> None:
        action = _KEYS.get(key & 0xFF)
        if action == "matte":
            self.view = "matte" if self.view == "output" else "output"
        elif action == "overlay":
            self.overlay = not self.overlay
        elif action == "help":
            self.show_help = not (self.show_help and self._help_visible())
            self._opened_at = time.monotonic()
        elif action is not None:
            self._actions.append(action)

    def _help_visible(self) -> bool:
        return time.monotonic() - self._opened_at < _HELP_SECONDS

    # -- sink ------------------------------------------------------------------------------------
    def send(self, frame: Frame, captured_at: float | None = None) -> None:
        if not self._open:
            raise SinkError("window is not open")
        image = self._compose(frame)
        now = time.monotonic()
        if self._last_send:
            rate = 1.0 / max(now - self._last_send, 1e-6)
            self._fps = rate if not self._fps else 0.9 * self._fps + 0.1 * rate
        self._last_send = now
        if captured_at is not None:
            ms = (now - captured_at) * 1000.0
            self._latency = ms if not self._latency else 0.9 * self._latency + 0.1 * ms
        self.status = ""
        self._last_image, self._last_frame = image, frame
        self._show(self._decorate(image, frame))
        self._record(captured_at)

    def idle(self, status: str = "") -> None:
        """Keep the GUI responsive; redraw the last picture with ``status`` (~10 times/s)."""
        if not self._open:
            return
        now = time.monotonic()
        if self._last_image is not None and (
            status != self.status or now - self._last_idle_draw > 0.1
        ):
            self.status = status
            self._last_idle_draw = now
            self._show(self._decorate(self._last_image, self._last_frame))
        else:
            self._pump()

    def pump(self) -> None:
        if self._open:
            self._pump()

    def poll(self) -> list[str]:
        actions, self._actions = self._actions, []
        return actions

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)  # let the GUI process the destroy event
            except cv2.error:
                pass
