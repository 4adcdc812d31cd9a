"""Stickers anchored to body keypoints (hats, glasses, crowns, ears, halos, wings...).

A *pack* is a TOML file (``livematte/configs/stickers/NAME.toml`` or any path) listing stickers;
each sticker is an RGBA image plus a placement rule::

    name = "party"
    [[sticker]]
    image = "party_hat.png"      # next to the TOML file, else in livematte/stickers/
    anchor = "top_head"          # a keypoint or derived point (geometry.DERIVED); a list = mean
    unit = "face"                # eye_distance | face | shoulder_width | head_height
    width = 2.2                  # sticker width, in units
    offset = [0.0, 0.5]          # in units, along / across the rotation line (+y = down)
    pivot = [0.5, 0.95]          # point of the image (fractions of w, h) put on the anchor
    rotate = "eyes"              # eyes | shoulders | hips | ears | mouth | none | [from, to]
    angle = -12.0                # extra rotation in degrees (clockwise on screen)
    z = "front"                  # front, or behind: the person's matte occludes it

A sticker is hidden when any keypoint it uses (anchor, unit, rotation) has a visibility below
``stickers.min_score``; its placement is smoothed per ``track_id`` (``stickers.smoothing``) so it
does not jitter, and every person gets their own unless ``stickers.first_person_only``.
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from livematte.config import Config, RuntimeConfig, StickersConfig
from livematte.errors import ConfigError, SourceError
from livematte.frame import LANDMARK_NAMES, Frame, Mode, largest_person
from livematte.ops.compose import paste_sprite, premultiply
from livematte.ops.geometry import DERIVED, UNITS, Point, anchor_points, fold_angle

PACK_DIR = Path(__file__).resolve().parent.parent / "configs" / "stickers"
ART_DIR = Path(__file__).resolve().parent.parent / "stickers"

ANCHORS = LANDMARK_NAMES + DERIVED
ROTATIONS = {
    "eyes": ("right_eye", "left_eye"),
    "shoulders": ("right_shoulder", "left_shoulder"),
    "hips": ("right_hip", "left_hip"),
    "ears": ("right_ear", "left_ear"),
    "mouth": ("mouth_right", "mouth_left"),
}


@dataclass
class Sticker:
    """One sticker of a pack: its art (premultiplied mip levels) and its placement rule."""

    image: Path
    anchor: tuple[str, ...]
    width: float
    unit: str = "eye_distance"
    offset: tuple[float, float] = (0.0, 0.0)
    pivot: tuple[float, float] = (0.5, 0.5)
    rotate: tuple[str, str] | None = ("right_eye", "left_eye")
    angle: float = 0.0
    behind: bool = False
    levels: list[np.ndarray] = field(default_factory=list, repr=False)

    def load(self) -> None:
        """Read the art and build its mip pyramid (sharp when shrunk a lot, no aliasing)."""
        data = np.fromfile(str(self.image), np.uint8) if self.image.is_file() else None
        img = None if data is None else cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise SourceError(f"sticker image missing or unreadable: {self.image}")
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
        elif img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
        if img.dtype != np.uint8:
            img = (img.astype(np.uint16) >> 8).astype(np.uint8)
        level = premultiply(img)
        self.levels = [level]
        while min(level.shape[:2]) > 16:
            level = cv2.pyrDown(level)
            self.levels.append(level)


@dataclass(frozen=True)
class Placement:
    """Where a sticker goes: pivot position (px), width (px), rotation (radians)."""

    x: float
    y: float
    width: float
    angle: float


def place(
    sticker: Sticker,
    points: dict[str, Point],
    min_score: float,
    scale: float = 1.0,
) -> Placement | None:
    """Placement of ``sticker`` for one person's ``anchor_points``; None when unreliable."""
    names = list(sticker.anchor) + [f"unit:{sticker.unit}"]
    if sticker.rotate is not None:
        names += list(sticker.rotate)
    if min(points[n][1] for n in names) < min_score:
        return None
    unit = float(points[f"unit:{sticker.unit}"][0][0])
    anchor = np.mean([points[n][0] for n in sticker.anchor], axis=0)
    if not unit > 1e-3 or not math.isfinite(unit) or not np.isfinite(anchor).all():
        return None
    theta = 0.0
    if sticker.rotate is not None:
        d = points[sticker.rotate[1]][0] - points[sticker.rotate[0]][0]
        theta = fold_angle(math.atan2(d[1], d[0]))
    theta += math.radians(sticker.angle)
    c, s = math.cos(theta), math.sin(theta)
    ox, oy = sticker.offset[0] * unit, sticker.offset[1] * unit
    return Placement(
        anchor[0] + c * ox - s * oy,
        anchor[1] + s * ox + c * oy,
        sticker.width * unit * scale,
        theta,
    )


def sprite_matrix(sticker: Sticker, p: Placement) -> tuple[np.ndarray, np.ndarray]:
    """(mip level, 2x3 affine from that level's pixels to picture pixels) for a placement."""
    full_w = sticker.levels[0].shape[1]
    level_index = 0
    if p.width < full_w:  # keep the remaining shrink >= 0.5 so bilinear sampling is enough
        level_index = min(int(math.log2(full_w / p.width)), len(sticker.levels) - 1)
    level = sticker.levels[level_index]
    h, w = level.shape[:2]
    k = p.width / w
    c, s = math.cos(p.angle) * k, math.sin(p.angle) * k
    # Pixel centres sit at integer coordinates, so the image spans -0.5 .. w - 0.5.
    px, py = sticker.pivot[0] * w - 0.5, sticker.pivot[1] * h - 0.5
    matrix = np.array([[c, -s, p.x - (c * px - s * py)], [s, c, p.y - (s * px + c * py)]])
    return level, matrix


_STICKER_KEYS = {"image", "anchor", "width", "unit", "offset", "pivot", "rotate", "angle", "z"}


def _number(value: object, where: str) -> float:
    """A TOML number (or numeric text) as float."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _pair(value: object, where: str) -> tuple[float, float]:
    """A TOML pair of numbers ``[a, b]``."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ConfigError(f"{where}: expected two numbers [a, b], got {value!r}")
    return _number(value[0], where), _number(value[1], where)


def _parse_sticker(raw: object, where: str, base: Path) -> Sticker:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a [[sticker]] table, got {raw!r}")
    unknown = set(raw) - _STICKER_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        anchor = raw["anchor"]
        if not isinstance(anchor, str | list):
            raise ConfigError(f"{where}.anchor: expected a point name or a list of them")
        anchors = (anchor,) if isinstance(anchor, str) else tuple(str(a) for a in anchor)
        if not anchors:
            raise ConfigError(f"{where}.anchor: name at least one point")
        width = _number(raw["width"], f"{where}.width")
        if not width > 0:
            raise ConfigError(f"{where}.width: must be above 0")
        for name in anchors:
            if name not in ANCHORS:
                raise ConfigError(
                    f"{where}.anchor: unknown point {name!r}; known: {', '.join(ANCHORS)}"
                )
        unit = str(raw.get("unit", "eye_distance"))
        if unit not in UNITS:
            raise ConfigError(f"{where}.unit: {unit!r} is not one of {', '.join(UNITS)}")
        rot = raw.get("rotate", "eyes")
        rotate: tuple[str, str] | None
        if rot == "none":
            rotate = None
        elif isinstance(rot, str):
            if rot not in ROTATIONS:
                raise ConfigError(
                    f"{where}.rotate: {rot!r} is not none, a point pair or one "
                    f"of {', '.join(ROTATIONS)}"
                )
            rotate = ROTATIONS[rot]
        else:
            if not isinstance(rot, list) or len(rot) != 2:
                raise ConfigError(f"{where}.rotate: expected two point names, got {rot!r}")
            rotate = (str(rot[0]), str(rot[1]))
            if not set(rotate) <= set(ANCHORS):
                raise ConfigError(f"{where}.rotate: expected two point names, got {rot!r}")
        z = raw.get("z", "front")
        if z not in ("front", "behind"):
            raise ConfigError(f"{where}.z: {z!r} is not front or behind")
        image = Path(str(raw["image"]))
        if not image.is_absolute():
            image = base / image if (base / image).is_file() else ART_DIR / image
        return Sticker(
            image=image,
            anchor=anchors,
            width=width,
            unit=unit,
            offset=_pair(raw.get("offset", [0.0, 0.0]), f"{where}.offset"),
            pivot=_pair(raw.get("pivot", [0.5, 0.5]), f"{where}.pivot"),
            rotate=rotate,
            angle=_number(raw.get("angle", 0.0), f"{where}.angle"),
            behind=z == "behind",
        )
    except KeyError as exc:
        raise ConfigError(f"{where}: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: bad value ({exc})") from None


def list_packs() -> list[str]:
    """Names of the sticker packs shipped in ``livematte/configs/stickers``."""
    return sorted(p.stem for p in PACK_DIR.glob("*.toml"))


def load_pack(name_or_path: str) -> list[Sticker]:
    """Read a pack by name or TOML path and load its art.

    Raises:
        ConfigError: unknown pack (the message lists the shipped ones) or a bad entry.
        SourceError: a sticker image is missing or unreadable.
    """
    path = Path(name_or_path).expanduser()
    if path.suffix != ".toml":
        path = PACK_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ConfigError(
            f"stickers.pack: unknown pack {name_or_path!r}; shipped packs: "
            f"{', '.join(list_packs())}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sticker pack {path} is not valid TOML: {exc}") from exc
    entries = data.get("sticker", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"sticker pack {path.name}: needs at least one [[sticker]] table")
    stickers = [
        _parse_sticker(raw, f"{path.name} sticker[{i}]", path.parent)
        for i, raw in enumerate(entries)
    ]
    for sticker in stickers:
        sticker.load()
    return stickers


def stickers_enabled(config: Config) -> bool:
    """True when the configuration asks for a sticker pack."""
    pack = config.stickers.pack.strip()
    return bool(pack) and pack.lower() != "none"


class StickerStage:
    """Pipeline stage: draw the pack's stickers on ``frame.output`` for each person.

    Args:
        config: ``StickersConfig`` (pack, min_score, first_person_only, smoothing, scale).
        runtime: its ``mode`` decides whether placements are smoothed (not in IMAGE mode).
    """

    def __init__(self, config: StickersConfig, runtime: RuntimeConfig | None = None) -> None:
        self.config = config
        self.stickers = load_pack(config.pack.strip())
        # Behind-stickers first so front ones of the same person cover them.
        self._order = sorted(range(len(self.stickers)), key=lambda i: not self.stickers[i].behind)
        self._state: dict[tuple[int, int], tuple[np.ndarray, float]] = {}

    def _smooth(self, key: tuple[int, int], p: Placement, mode: Mode, t: float) -> Placement:
        vec = np.array([p.x, p.y, p.width, math.cos(p.angle), math.sin(p.angle)])
        prev = self._state.get(key)
        if mode is not Mode.IMAGE and prev is not None and self.config.smoothing > 0:
            # The factor is defined per 1/30 s: a 5 fps clip moves 6x further between frames,
            # so it gets 6 steps' worth of decay instead of a hat trailing behind the head.
            dt = min(max(t - prev[1], 0.0), 1.0)
            k = self.config.smoothing ** (dt * 30.0)
            vec = k * prev[0] + (1.0 - k) * vec
        self._state[key] = (vec, t)
        return Placement(vec[0], vec[1], vec[2], math.atan2(vec[4], vec[3]))

    def process(self, frame: Frame) -> Frame:
        """Composite stickers onto ``frame.output`` (a copy of the image when it is unset)."""
        start = time.perf_counter()
        if frame.output is None:
            frame.output = frame.image.copy()
        people = frame.people
        if self.config.first_person_only:
            largest = largest_person(people)
            people = [] if largest is None else [largest]
        behind = None
        if frame.alpha is not None:
            colour = frame.foreground if frame.foreground is not None else frame.image
            behind = (colour, frame.alpha)
        seen: set[tuple[int, int]] = set()
        t = frame.time if frame.time is not None else frame.index / 30.0
        for person in people:
            points = anchor_points(person.landmarks)
            for i in self._order:
                sticker = self.stickers[i]
                placement = place(sticker, points, self.config.min_score, self.config.scale)
                key = (person.track_id, i)
                if placement is None:
                    continue
                seen.add(key)
                placement = self._smooth(key, placement, frame.mode, t)
                level, matrix = sprite_matrix(sticker, placement)
                paste_sprite(frame.output, level, matrix, behind if sticker.behind else None)
        # Forget hidden stickers and people who left, so they snap back instead of gliding in.
        self._state = {k: v for k, v in self._state.items() if k in seen}
        frame.timings["stickers"] = (time.perf_counter() - start) * 1000.0
        return frame

    def reset(self) -> None:
        """Drop smoothing state (new shot)."""
        self._state.clear()

    def close(self) -> None:
        """Nothing to release."""
