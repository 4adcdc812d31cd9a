"""Configuration: frozen dataclasses loaded from TOML presets plus dotted overrides.

One ``Config`` drives the whole pipeline.  Fronts (CLI, server) never pass their own argument
objects downstream: they turn flags into ``{"dotted.key": value}`` overrides and call
``load_config``.  Unknown keys and bad values raise ``ConfigError`` naming the key path, never a
silent reset to a default.

Example::

    cfg = load_config("live", {"matting.refine": "guided", "runtime.threads": 1})
"""

from __future__ import annotations

import dataclasses
import enum
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livematte.errors import ConfigError
from livematte.frame import Mode

PRESET_DIR = Path(__file__).parent / "configs"


def _choice(default: str, *choices: str) -> Any:
    return field(default=default, metadata={"choices": choices})


def _ranged(default: float, low: float | None = None, high: float | None = None) -> Any:
    return field(default=default, metadata={"min": low, "max": high})


@dataclass(frozen=True)
class RuntimeConfig:
    """How models run and how frames are scheduled."""

    mode: Mode = Mode.IMAGE
    #: Execution providers tried in this order; "cpu" must be named to allow CPU at all.
    providers: tuple[str, ...] = ("cpu",)
    #: ONNX Runtime intra-op threads per session; 0 lets ONNX Runtime decide.
    threads: int = _ranged(0, 0, 256)


@dataclass(frozen=True)
class MattingConfig:
    """Segmentation model, refinement to full resolution and foreground estimation."""

    #: "auto": the best installed model for the mode - rvm_mobilenetv3 once pulled, for
    #: photos and video (and live only when a GPU execution provider is active: ~58 ms per
    #: 720p frame on one CPU core) - else the embedded segmenter.  "embedded": the square or
    #: landscape embedded segmenter by aspect ratio (offline, nothing to pull).  Or a
    #: registered name (selfie_segmentation[_landscape], rvm_mobilenetv3, modnet_photographic)
    #: or a path to an .onnx file with a supported signature (MediaPipe-, RVM- or MODNet-style).
    model: str = "auto"
    #: How the model input is fitted: "letterbox" keeps the aspect ratio, "stretch" does not.
    #: Stretch measured better with the MediaPipe models (p3m SAD 59 vs 80, golden IoU higher).
    fit: str = _choice("stretch", "letterbox", "stretch")
    #: IMAGE mode with model "auto": the median of three views (square model stretched and
    #: letterboxed, landscape model stretched) instead of one model at ``fit``.  Each view
    #: bleeds on its own photos; the median rarely does (p3m: see ``MultiViewAdapter``).
    #: Three model runs and resizes (1920x1080 on one core: 43 ms vs 8 ms min), so photos only.
    multi_view: bool = False
    #: none: bilinear upsample; guided: fast guided filter; closed_form: trimap + matting solver.
    refine: str = _choice("guided", "none", "guided", "closed_form")
    guided_radius: int = _ranged(8, 1, 256)
    guided_eps: float = _ranged(1e-4, 0.0, 1.0)
    #: Width of the uncertain band (pixels at full resolution) for closed-form refinement.
    band_width: int = _ranged(12, 1, 512)
    #: Scale at which the closed-form solver runs (1.0 = full resolution).
    solve_scale: float = _ranged(0.5, 0.05, 1.0)
    #: The coarse probability is mapped linearly from low..high onto 0..1, snapping the model's
    #: under-confident tails (p3m: SAD 0.92x raw at 0.15/0.85 vs 0.97x at 0.02/0.98, gradient
    #: 0.70x vs 0.66x) and shrinking the band the foreground estimator has to solve.
    clip_low: float = _ranged(0.15, 0.0, 1.0)
    clip_high: float = _ranged(0.85, 0.0, 1.0)
    #: Estimate a decontaminated foreground (needed for clean composites).
    foreground: bool = True
    #: Guide of the guided filter: "gray" (fast, live) or "color" (separates similar greys).
    guide: str = _choice("gray", "gray", "color")
    #: Foreground estimator: fast (blur fusion at <= 640 px, for live), blur_fusion (full
    #: resolution), ml (multi-level, in the band; best on hair), auto = ml for closed_form
    #: refinement, else fast.
    foreground_method: str = _choice("auto", "auto", "fast", "blur_fusion", "ml")
    #: Recurrent matting models (RVM): internal downsample ratio; 0 = auto (long side 512 px).
    downsample_ratio: float = _ranged(0.0, 0.0, 1.0)
    #: Fuse the pose-landmark model's per-person mask (its 256x256 crop around each tracked
    #: person) with the whole-frame mask; runs the keypoint stage.  Photos: p3m SAD 0.85-0.87x,
    #: gradient 0.96-0.98x, COCO/OCHuman IoU +0.03, so the photo presets turn it on.  Off by
    #: default: video is mixed (real-clip flicker 0.68x, synthetic still-frame flicker 2x) and
    #: live pays the keypoint stage (~18 ms per 720p frame on one core, matting ~40 ms).
    person_roi: bool = False
    #: A closer look: the square embedded model on a square crop around each person found
    #: (``frame.people`` boxes, whatever found them), replacing the whole-frame mask there
    #: before the person-mask fusion.  Small people vanish at 256 px for the whole frame.
    person_crops: bool = False
    #: Person gating of the embedded segmenter's coarse mask (``person_gate.core_gate``): keep
    #: it only near its confident core and the people found, so a statue or a tarp the model
    #: half takes for a person is not matted (p3m photo preset: worst SAD 132.2 -> 54.8,
    #: mean 22.9 -> 16.9; COCO/OCHuman IoU 0.556 -> 0.554).  RVM has its own gate.
    person_gate: bool = False


@dataclass(frozen=True)
class TemporalConfig:
    """Alpha stabilisation across frames (VIDEO and LIVE modes)."""

    enabled: bool = True
    #: 0 = no smoothing, 1 = strongest smoothing of static regions.
    strength: float = _ranged(0.7, 0.0, 1.0)
    #: Mean absolute frame difference (0..255) above which a scene cut resets the state.
    scene_cut_threshold: float = _ranged(40.0, 0.0, 255.0)
    #: Final full-resolution alpha: local grey-level change (0..255, at mask resolution) at
    #: which a pixel counts as moving and follows the new frame unsmoothed.  This step is not
    #: motion-compensated, so higher values leave ghosts of fast limbs (pose_squats.mp4 at
    #: 5 fps): 6 it is.
    motion_threshold: float = _ranged(6.0, 0.1, 255.0)
    #: Smooth the model's coarse mask along optical flow first, so a moving body is averaged
    #: like a still one (synthetic moving composites: flicker 0.68x -> 0.46x raw, alpha error
    #: 0.84x -> 0.81x; real clips 0.39x -> 0.27x; +1.2 ms per frame).
    motion_compensation: bool = True
    #: Grey-level residual (0..255) after warping the previous frame at which the warped
    #: history is no longer trusted there (occlusion, a limb faster than the flow).  20 gave
    #: 0.45x flicker but twice the mask left behind fast limbs on pose_squats.mp4.
    warp_threshold: float = _ranged(12.0, 0.1, 255.0)
    #: Change of the model's mask (0..1) held two frames running that is adopted at once; a
    #: one-frame flip is averaged away.  Lower adopts smaller changes sooner.
    change_threshold: float = _ranged(1.0, 0.01, 1.0)


@dataclass(frozen=True)
class KeypointsConfig:
    """Person detection, landmarks, tracking and smoothing."""

    enabled: bool = False
    max_people: int = _ranged(4, 1, 64)
    #: Who finds people: "movenet" (MoveNet MultiPose; recall at OKS >= 0.5 of the shared COCO
    #: and OCHuman people 0.36 -> 0.65, BENCHMARKS.md "People finding") or "blazepose"
    #: (MediaPipe's face-based detector, the pipeline before MoveNet).  Landmarks are BlazePose's
    #: either way.
    detector: str = _choice("movenet", "movenet", "blazepose")
    #: MoveNet: a person needs at least this score (the issue's measurements used 0.2).
    min_person_score: float = _ranged(0.2, 0.0, 1.0)
    #: MoveNet input's longer side (pixels, rounded up to a multiple of 32) in VIDEO/LIVE mode:
    #: ~20 ms per 256x160 input on one core.
    detect_size: int = _ranged(256, 32, 4096)
    #: The same in IMAGE mode, where small people in photos matter more than speed.
    image_detect_size: int = _ranged(384, 32, 4096)
    #: IMAGE mode: when a photo is at least twice ``image_detect_size``, fewer than ``max_people``
    #: were found and the smallest of them is under half the photo's height (or nobody was
    #: found), also search N x N overlapping tiles at that size (0 = never).
    image_tiles: int = _ranged(2, 0, 4)
    #: IMAGE mode, photos too small for the tiles: under the same conditions (fewer than
    #: ``max_people`` found, nobody or someone under half the photo's height), a second
    #: whole-photo pass with this longer side, its people merged in (0 = never).  MoveNet finds
    #: small people at a finer input and misses some big ones it found at 384 px, so both run.
    image_fine_size: int = _ranged(0, 0, 4096)
    #: With MoveNet: also run BlazePose's face-based detector when MoveNet found fewer than
    #: ``max_people`` (it finds close-up, upper-body people MoveNet misses).
    face_detector: bool = True
    #: BlazePose detector: minimum detection probability.
    min_detection_score: float = _ranged(0.5, 0.0, 1.0)
    min_tracking_score: float = _ranged(0.5, 0.0, 1.0)
    #: VIDEO/LIVE: run the detector every N frames to pick up newcomers (0 = only when lost).
    detect_interval: int = _ranged(15, 0, 100000)
    smoothing: bool = True
    #: One Euro filter (MediaPipe's pose values): minimum cutoff (Hz) for a still landmark,
    #: speed coefficient (speed in person sizes per second), cutoff (Hz) of the speed estimate.
    min_cutoff: float = _ranged(0.05, 0.0001, 100.0)
    beta: float = _ranged(80.0, 0.0, 10000.0)
    derivative_cutoff: float = _ranged(1.0, 0.0001, 100.0)
    #: Two poses whose median landmark distance is below this fraction of the person's size
    #: are one person: the later detection (or the younger of two tracks) is dropped.
    duplicate_distance: float = _ranged(0.1, 0.0, 1.0)
    #: Refine landmark positions with the landmark model's heatmap, as MediaPipe does.
    refine_heatmap: bool = True
    #: LIVE only: run the landmark model on every Nth frame and show the last people in
    #: between (1 = every frame).  Halves the keypoint cost of stickers at 2.
    landmark_interval: int = _ranged(1, 1, 30)


@dataclass(frozen=True)
class EffectsConfig:
    """What replaces the background."""

    #: "transparent", "#rrggbb", a colour name (white, black, gray, blue, red, green), "blur",
    #: "blur:N" (lens blur radius N px), an image path or a video path (looped).
    background: str = "transparent"
    #: How much of the background's colour spills onto the person's edges (0 = off; not used
    #: with a transparent background).
    light_wrap: float = _ranged(0.0, 0.0, 1.0)
    #: Darken the background by this fraction (0 = unchanged, 1 = black).
    dim: float = _ranged(0.0, 0.0, 1.0)
    #: Remove this fraction of the background's colour (1 = greyscale).
    desaturate: float = _ranged(0.0, 0.0, 1.0)
    #: "lens": disc (bokeh-like) kernel; "gaussian": softer and slightly cheaper.
    blur_kind: str = _choice("lens", "lens", "gaussian")
    #: ID photo size name (see livematte/stages/id_photo.py, e.g. "passport", "us"); "" = off.
    id_photo: str = ""
    #: ID photo: rotate so the eye line is level.
    id_photo_level: bool = True


@dataclass(frozen=True)
class StickersConfig:
    """Overlays anchored to body keypoints."""

    #: Sticker pack name (livematte/configs/stickers/NAME.toml) or path; "" = none.
    pack: str = ""
    #: Keypoint score below which a sticker anchored to that keypoint is hidden.
    min_score: float = _ranged(0.5, 0.0, 1.0)
    #: Only the first (largest) person gets stickers.
    first_person_only: bool = False
    #: Exponential smoothing of sticker placement per person, as the weight kept per 1/30 s
    #: (0 = none, 0.9 = very sluggish); frame-rate independent.
    smoothing: float = _ranged(0.5, 0.0, 0.95)
    #: Size multiplier applied to every sticker of the pack.
    scale: float = _ranged(1.0, 0.1, 10.0)


@dataclass(frozen=True)
class Config:
    """The whole configuration of one pipeline."""

    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    matting: MattingConfig = field(default_factory=MattingConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    keypoints: KeypointsConfig = field(default_factory=KeypointsConfig)
    effects: EffectsConfig = field(default_factory=EffectsConfig)
    stickers: StickersConfig = field(default_factory=StickersConfig)


def list_presets() -> list[str]:
    """Names of the presets shipped in ``livematte/configs``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def _read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a preset, following ``extends = "name"`` chains (child keys win)."""
    if path in seen:
        raise ConfigError(f"preset {path.name}: 'extends' forms a cycle")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"config {path.name}: 'extends' must be a preset name or path")
    base = _read_toml(_resolve(parent), seen + (path,))
    return _deep_merge(base, data)


def _resolve(preset_or_path: str | Path) -> Path:
    candidate = Path(preset_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise ConfigError(f"config file not found: {candidate}")
        return candidate
    named = PRESET_DIR / f"{preset_or_path}.toml"
    if not named.is_file():
        raise ConfigError(
            f"unknown preset {str(preset_or_path)!r}; known presets: {', '.join(list_presets())}"
        )
    return named


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _coerce(value: Any, hint: Any, key: str, meta: Mapping[str, Any]) -> Any:
    """Check ``value`` against a field's type hint and metadata; return the typed value."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        if value is None:
            return None
        return _coerce(value, options[0], key, meta)
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item_hint = typing.get_args(hint)[0]
        return tuple(_coerce(v, item_hint, key, {}) for v in value)
    if hint is bool:
        if isinstance(value, str) and value.lower() in (
            "true",
            "false",
            "1",
            "0",
            "yes",
            "no",
            "on",
            "off",
        ):
            return value.lower() in ("true", "1", "yes", "on")
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if isinstance(value, str):
            try:
                value = hint(value)
            except ValueError:
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if hint is int and isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(f"{key}: expected a whole number, got {value!r}")
            value = int(value)
        if not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = hint(value)
        low, high = meta.get("min"), meta.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"{key}: {value!r} is outside {low}..{high}")
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            known = ", ".join(str(m.value) for m in hint)
            raise ConfigError(f"{key}: {value!r} is not one of {known}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}")
        return value
    raise ConfigError(f"{key}: unsupported field type {hint!r}")  # pragma: no cover


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(
                f"unknown config key {prefix + key!r}; known keys: {', '.join(sorted(known))}"
            )
    kwargs: dict[str, Any] = {}
    for name, fld in known.items():
        if name not in data:
            continue
        hint = hints[name]
        path = f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, data[name], path + ".")
        else:
            kwargs[name] = _coerce(data[name], hint, path, fld.metadata)
    return cls(**kwargs)


def _nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = nested
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {dotted!r} conflicts with another override")
            node = child
        node[parts[-1]] = value
    return nested


def load_config(
    preset_or_path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Build a ``Config`` from a preset name or TOML path, then dotted-key overrides.

    Args:
        preset_or_path: a shipped preset name (see ``list_presets()``), a path to a TOML file,
            or None for the built-in defaults.
        overrides: ``{"section.key": value}``; strings are parsed for numbers, booleans and
            comma-separated lists, so CLI flags can pass text straight through.

    Raises:
        ConfigError: unknown preset, unreadable TOML, unknown key or a bad value; the message
            names the key path.
    """
    data: dict[str, Any] = {}
    if preset_or_path is not None:
        data = _read_toml(_resolve(preset_or_path))
    if overrides:
        data = _deep_merge(data, _nest(overrides))
    return _config_from(data)


def replace(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Return a copy of ``config`` with dotted-key overrides applied (validated as above)."""
    return _config_from(_deep_merge(dataclasses.asdict(config), _nest(overrides)))


def _config_from(data: Mapping[str, Any]) -> Config:
    # Every way to a Config passes here, so the cross-field rules hold for all of them.
    config = _build(Config, data, "")
    if config.matting.clip_low >= config.matting.clip_high:
        raise ConfigError("matting.clip_low must be below matting.clip_high")
    return config
