"""Background effects: replace, blur, colour, video, transparency, dim/desaturate, light wrap.

The effects stage takes the matting stage's ``frame.alpha`` and decontaminated
``frame.foreground`` and writes ``frame.output``: BGR ``uint8``, or straight BGRA ``uint8`` when the
background is transparent.  The stage chooses, reads and caches the background; the picture
operations (``grade``, ``LensBlur``, ``light_wrap``) are in ``livematte.ops.background``.

``--bg`` / ``effects.background`` grammar (see ``parse_background``)::

    transparent          BGRA output, alpha = the matte
    original             the real background, unchanged (useful with dim / desaturate)
    blur | blur:N        lens (disc, bokeh-like) blur of the real background, radius N px (default
                         15, 1..200); effects.blur_kind = "gaussian" for a softer look
    #rrggbb | #rgb       a solid colour
    white black gray grey blue red green
                         named colours; blue and red are the usual ID-photo shades
    PATH.jpg|png|...     an image, cover-fitted (scaled to fill, centre-cropped, never stretched)
    PATH.mp4|mov|...     a video, looped; the background frame is chosen by the frame's time
                         (or index), so the two frame rates are independent

Example::

    stage = EffectsStage(load_config(None, {"effects.background": "blur:25"}).effects)
    frame = stage.process(frame)   # frame.output is the composite
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livematte.config import EffectsConfig, RuntimeConfig
from livematte.errors import ConfigError, SourceError
from livematte.frame import Frame
from livematte.ops.background import LensBlur, grade, light_wrap
from livematte.ops.compose import Compositor, cover_fit
from livematte.outputs import read_image

#: Named colours, BGR.  Blue and red are the common ID-photo backgrounds.
NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "blue": (219, 142, 67),  # #438edb
    "red": (0, 0, 255),  # #ff0000
    "green": (0, 255, 0),  # chroma-key green
}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif", ".mpg", ".mpeg"}
DEFAULT_BLUR = 15
_GRAMMAR = "transparent, original, blur[:N], #rrggbb, a colour name, or an image/video file"


@dataclass(frozen=True)
class BackgroundSpec:
    """A parsed ``effects.background``: kind is transparent|original|color|blur|image|video."""

    kind: str
    color: tuple[int, int, int] = (0, 0, 0)  # BGR
    radius: int = 0
    path: Path | None = None


def parse_background(spec: str, *, files: bool = True) -> BackgroundSpec:
    """Parse a ``--bg`` value (grammar in the module docstring).

    Args:
        files: whether the spec may name an image or video file; False for specs from a
            remote client (the server), which must not reach the server's files: anything
            that is not a keyword, a colour or a blur is then an error, and the file system
            is never looked at.

    Raises:
        ConfigError: malformed colour or blur, or text that is neither a keyword nor a path
            (nor a keyword, colour or blur, when ``files`` is False).
        SourceError: the spec names a file that does not exist.
    """
    text = spec.strip()
    low = text.lower()
    if low == "transparent":
        return BackgroundSpec("transparent")
    if low == "original":
        return BackgroundSpec("original")
    if low in NAMED_COLOURS:
        return BackgroundSpec("color", color=NAMED_COLOURS[low])
    if low == "blur" or low.startswith("blur:"):
        value = low[5:] if low != "blur" else str(DEFAULT_BLUR)
        try:
            radius = float(value)
        except ValueError:
            radius = -1.0
        if not (1 <= radius <= 200) or not radius.is_integer():
            raise ConfigError(f"effects.background: {spec!r}: blur radius must be 1..200 px")
        return BackgroundSpec("blur", radius=int(radius))
    if text.startswith("#"):
        match = re.fullmatch(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})", text)
        if not match:
            raise ConfigError(f"effects.background: {spec!r} is not a #rrggbb colour")
        hx = match.group(1)
        if len(hx) == 3:
            hx = "".join(c * 2 for c in hx)
        r, g, b = (int(hx[i : i + 2], 16) for i in (0, 2, 4))
        return BackgroundSpec("color", color=(b, g, r))
    if not files:
        grammar = _GRAMMAR.removesuffix(", or an image/video file")
        raise ConfigError(f"effects.background: {spec!r} is not one of: {grammar}")
    path = Path(text).expanduser()
    looks_like_path = path.suffix != "" or "/" in text or "\\" in text
    if path.is_file():
        suffix = path.suffix.lower()
        return BackgroundSpec("video" if suffix in VIDEO_SUFFIXES else "image", path=path)
    if looks_like_path:
        raise SourceError(f"background file not found: {text}")
    raise ConfigError(f"effects.background: {spec!r} is not one of: {_GRAMMAR}")


def _loop_time(t: float, length: float) -> float:
    """``t`` s folded into a loop of ``length`` s; within 1e-6 of its end is the next loop's
    start (``1.2 % 0.4`` is 0.3999999999999999: kept as is, it restarted the clip for ever)."""
    t %= length
    return 0.0 if t >= length - 1e-6 else t


class VideoBackground:
    """A video file played in a loop; ``frame_at(t)`` gives the frame shown at time ``t``.

    Decodes forward only and restarts at the end, so memory stays at one frame whatever the
    clip's length.  The clip's own timestamps decide which frame is shown, so a 24 fps
    background under a 30 fps camera plays at its real speed.
    """

    def __init__(self, path: Path) -> None:
        import av  # deferred: only video backgrounds pay for PyAV

        self.path = path
        try:
            self._container = av.open(str(path))
            self._stream = self._container.streams.video[0]
        except (av.error.FFmpegError, IndexError) as exc:
            raise SourceError(f"cannot read background video {path}: {exc}") from exc
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate or 30
        self.fps = float(rate)
        self._frame_dur = 1.0 / self.fps
        #: Learned at the first end of the clip (container metadata is often approximate).
        self.duration: float | None = None
        self._t0: float | None = None
        self._converted: np.ndarray | None = None
        self._converted_for: tuple[float, object] | None = None
        self._restart(seek=False)

    def _restart(self, seek: bool = True) -> None:
        if seek:
            self._container.seek(0)
        self._iter = self._container.decode(self._stream)
        self._count = 0
        self._cur: tuple[float, object] | None = None
        self._next: tuple[float, object] | None = None

    def _pull(self) -> tuple[float, object] | None:
        try:
            vf = next(self._iter)
        except StopIteration:
            return None
        t = float(vf.time) if vf.time is not None else self._count * self._frame_dur
        self._count += 1
        if self._t0 is None:
            self._t0 = t
        return t - self._t0, vf

    def frame_at(self, t: float) -> tuple[float, np.ndarray]:
        """(the frame's own time in the clip, BGR picture) shown at time ``t`` s (looped)."""
        if self.duration:
            t = _loop_time(t, self.duration)
        if self._cur is not None and t < self._cur[0] - 1e-6:
            self._restart()
        for _ in range(1_000_000):
            if self._next is None:
                self._next = self._pull()
            if self._next is None:  # end of the clip
                if self._cur is None:
                    raise SourceError(f"background video {self.path} has no frames")
                end = self._cur[0] + self._frame_dur
                self.duration = end
                if t < end - 1e-6:
                    break
                t = _loop_time(t, end)
                self._restart()
                continue
            if self._cur is None or self._next[0] <= t + 1e-6:
                self._cur, self._next = self._next, None
                continue
            break
        assert self._cur is not None
        if self._cur is not self._converted_for:
            # Converting is the costly part; a slower clip shows each frame several times.
            self._converted = self._cur[1].to_ndarray(format="bgr24")  # type: ignore[attr-defined]
            self._converted_for = self._cur
        return self._cur[0], self._converted

    def close(self) -> None:
        self._container.close()


class EffectsStage:
    """Pipeline stage: composite ``frame.foreground`` over the configured background.

    Args:
        config: ``EffectsConfig`` (background spec, light wrap, dim, desaturate, blur kind).
        runtime: unused today; accepted so every stage has the same constructor shape.

    Raises:
        ConfigError / SourceError: from ``parse_background``; SourceError for unreadable media.
    """

    def __init__(
        self,
        config: EffectsConfig,
        runtime: RuntimeConfig | None = None,
        *,
        image: np.ndarray | None = None,
    ) -> None:
        self.config = config
        # ``image``: a background picture already in memory (an upload), instead of the spec.
        self.spec = (
            BackgroundSpec("image") if image is not None else parse_background(config.background)
        )
        self._comp = Compositor()
        self._image: np.ndarray | None = image
        self._video: VideoBackground | None = None
        self._blur: LensBlur | None = None
        if self.spec.kind == "image" and self._image is None:
            assert self.spec.path is not None
            self._image = read_image(self.spec.path)
        elif self.spec.kind == "video":
            assert self.spec.path is not None
            self._video = VideoBackground(self.spec.path)
        elif self.spec.kind == "blur":
            self._blur = LensBlur(self.spec.radius, config.blur_kind)
        self._static: np.ndarray | None = None  # fitted + graded colour/image background
        self._video_key: tuple[float, tuple[int, int]] | None = None
        self._video_bg: np.ndarray | None = None

    @property
    def transparent(self) -> bool:
        """True when the output is BGRA."""
        return self.spec.kind == "transparent"

    def background(self, frame: Frame, alpha: np.ndarray | None = None) -> np.ndarray:
        """The background layer for ``frame`` (BGR uint8, frame size, graded)."""
        size = frame.size
        kind, cfg = self.spec.kind, self.config
        if kind in ("color", "image"):
            if self._static is None or self._static.shape[1::-1] != size:
                if kind == "color":
                    base = np.empty((size[1], size[0], 3), np.uint8)
                    base[:] = self.spec.color
                else:
                    assert self._image is not None
                    base = cover_fit(self._image, size)
                self._static = grade(base, cfg.dim, cfg.desaturate)
            return self._static
        if kind == "video":
            assert self._video is not None
            t = frame.time
            if t is None:  # no timestamps: one background frame per frame
                t = frame.index / self._video.fps
            number, picture = self._video.frame_at(max(t, 0.0))
            if self._video_key != (number, size) or self._video_bg is None:
                self._video_bg = grade(cover_fit(picture, size), cfg.dim, cfg.desaturate)
                self._video_key = (number, size)
            return self._video_bg
        if kind == "blur":
            assert self._blur is not None
            return grade(self._blur.apply(frame.image, alpha), cfg.dim, cfg.desaturate)
        return grade(frame.image, cfg.dim, cfg.desaturate)  # original (transparent: unused)

    def process(self, frame: Frame) -> Frame:
        """Fill ``frame.output`` (a new array each frame: sinks may hold the previous one)."""
        start = time.perf_counter()
        fg = frame.foreground if frame.foreground is not None else frame.image
        alpha = frame.alpha
        h, w = frame.image.shape[:2]
        if alpha is not None:
            if alpha.dtype != np.float32:
                alpha = alpha.astype(np.float32) / (255.0 if alpha.dtype == np.uint8 else 1.0)
            if alpha.shape != (h, w):
                alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
            if frame.source_alpha is not None:
                # The input's own transparency stays transparent, whatever the matte says.
                alpha = alpha * (frame.source_alpha.astype(np.float32) * np.float32(1 / 255))
                frame.alpha = alpha
        band = frame.band if frame.band is not None and frame.band.source is alpha else None
        if self.transparent:
            ones = np.ones((h, w), np.float32) if alpha is None else alpha
            frame.output = self._comp.bgra(fg, ones)
        elif alpha is None:  # nothing was matted: the whole picture is foreground
            frame.output = fg.copy()
        else:
            bg = self.background(frame, alpha)
            if self.config.light_wrap > 0:
                fg = light_wrap(fg, bg, alpha, self.config.light_wrap)
            plain = self.spec.kind == "color" and bg is self._static  # one colour, graded
            frame.output = self._comp.blend(fg, bg, alpha, band=band, plain=plain)
        frame.timings["effects"] = (time.perf_counter() - start) * 1000.0
        return frame

    def reset(self) -> None:
        """Forget size-dependent caches (a new shot may have another resolution)."""
        self._static = None
        self._video_key = None
        self._video_bg = None

    def close(self) -> None:
        """Close the background video, if any."""
        if self._video is not None:
            self._video.close()
            self._video = None
