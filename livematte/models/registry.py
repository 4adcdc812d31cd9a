"""Model registry: what each ONNX model is, where its file lives, and how to feed it.

Embedded models ship inside the package (``livematte/models/data``, converted from MediaPipe by
``scripts/convert_mediapipe.py``); their sha256 comes from ``MANIFEST.json`` written by that
converter.  External models are downloaded only on request (``livematte models pull NAME``) into
the user cache and are always checked against a pinned sha256.

Users can register more external models in a TOML file (``user_models_file()``)::

    [models.my_matting]
    url = "https://example.org/my_matting.onnx"
    sha256 = "<64 hex digits>"
    task = "matting"
    layout = "nchw"
    scale = 0.00392156862745098
    inputs = ["src"]
    outputs = ["pha"]

Example::

    spec = get_spec("selfie_segmentation")
    path = model_path(spec)
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from livematte.errors import ModelError

DATA_DIR = Path(__file__).parent / "data"
MANIFEST_PATH = DATA_DIR / "MANIFEST.json"

TASKS = ("segmentation", "matting", "pose_detection", "pose_landmark", "multipose")
LAYOUTS = ("nhwc", "nchw")
COLOR_ORDERS = ("rgb", "bgr")
#: ONNX Runtime graph optimisation levels a spec may ask for (``ModelSpec.graph_optimization``).
GRAPH_OPTIMIZATIONS = ("all", "extended")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to find, check and feed one ONNX model.

    Attributes:
        name: registry key (lowercase, ``[a-z0-9_.-]``).
        task: one of ``TASKS``.
        file: file name inside ``livematte/models/data`` (embedded models), or None.
        url: download address (external models), or None.  Exactly one of file/url is set.
        sha256: lowercase hex digest; required for URL models, read from the manifest for
            embedded ones (None only while the manifest is missing).
        input_size: (width, height) the model expects, or None when any size works.
        size_multiple: for dynamic-size models, width and height must be multiples of this.
        layout: "nhwc" or "nchw" of the main image input.
        scale, offset: pixel normalisation ``x * scale + offset`` applied to 0..255 values.
        color: "rgb" or "bgr" channel order of the main image input.
        inputs: input names, the main image input first.
        outputs: output names.
        recurrent: the model carries state between frames (see ``state``).
        state: (input name, output name) pairs fed back from one run to the next.
        license: SPDX identifier of the weights' license.
        description: one line for ``livematte models list``.
        homepage: where the model comes from.
        spin: ONNX Runtime's intra-op threads spin while they wait for work (its default:
            the fastest for small models on an idle machine).  Off for heavy networks: RVM at
            320x176 on 2 threads, sharing the machine, cost 134.6 ms CPU per frame spinning
            against 55.8 ms not (median wall 327 against 72 ms; scripts/bench_rvm.py).
        graph_optimization: ONNX Runtime's graph optimisation level, "all" (with its blocked
            NCHWc layout for convolutions: the fastest for most networks) or "extended" (without
            it: cheaper for networks of few channels at high resolution, where reordering costs
            more than it saves; BlazePose's mask decoder 7.6 -> 6.0 ms min on one core).
    """

    name: str
    task: str
    file: str | None = None
    url: str | None = None
    sha256: str | None = None
    input_size: tuple[int, int] | None = None
    size_multiple: int = 1
    layout: str = "nhwc"
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    color: str = "rgb"
    inputs: tuple[str, ...] = ("image",)
    outputs: tuple[str, ...] = ()
    recurrent: bool = False
    state: tuple[tuple[str, str], ...] = ()
    license: str = "unknown"
    description: str = ""
    homepage: str = ""
    spin: bool = True
    graph_optimization: str = "all"

    def __post_init__(self) -> None:
        problems = []
        if not _NAME.match(self.name):
            problems.append("name must be lowercase letters, digits, '_', '.', '-'")
        if (self.file is None) == (self.url is None):
            problems.append("exactly one of 'file' and 'url' must be set")
        if self.url is not None and self.sha256 is None:
            # A download we cannot check is a download we cannot trust.
            problems.append("a URL model needs a sha256")
        if self.url is not None and not self.url.startswith(("https://", "http://", "file:")):
            problems.append("url must be http(s):// or file:")
        if self.sha256 is not None and not _SHA256.match(self.sha256):
            problems.append("sha256 must be 64 lowercase hex digits")
        if self.task not in TASKS:
            problems.append(f"task must be one of {', '.join(TASKS)}")
        if self.layout not in LAYOUTS:
            problems.append(f"layout must be one of {', '.join(LAYOUTS)}")
        if self.color not in COLOR_ORDERS:
            problems.append(f"color must be one of {', '.join(COLOR_ORDERS)}")
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < 1):
            problems.append("input_size must be (width, height) with positive values")
        if self.size_multiple < 1:
            problems.append("size_multiple must be >= 1")
        if not self.inputs:
            problems.append("inputs must name at least the image input")
        if self.graph_optimization not in GRAPH_OPTIMIZATIONS:
            problems.append(f"graph_optimization must be one of {', '.join(GRAPH_OPTIMIZATIONS)}")
        if self.recurrent != bool(self.state):
            problems.append("recurrent models need 'state' pairs (and only they have them)")
        if problems:
            raise ModelError(f"invalid model spec {self.name!r}: {'; '.join(problems)}")

    @property
    def embedded(self) -> bool:
        """True when the file ships inside the package."""
        return self.file is not None

    @property
    def filename(self) -> str:
        """File name on disk (embedded name, or ``<name>.onnx`` in the cache)."""
        return self.file if self.file is not None else f"{self.name}.onnx"


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Add ``spec`` to the registry and return it.

    Raises:
        ModelError: the name is taken and ``replace`` is False.
    """
    if spec.name in _REGISTRY and not replace:
        raise ModelError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def model(func: Callable[[], ModelSpec]) -> Callable[[], ModelSpec]:
    """Decorator: register the spec returned by ``func`` (built once, at import).

    Example::

        @model
        def my_model() -> ModelSpec:
            return ModelSpec(name="my_model", task="matting", url=..., sha256=...)
    """
    register(func())
    return func


def get_spec(name: str | ModelSpec) -> ModelSpec:
    """Return the spec registered as ``name`` (a spec passes through unchanged).

    Raises:
        ModelError: unknown name; the message lists the known ones.
    """
    if isinstance(name, ModelSpec):
        return name
    _load_user_models_once()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise ModelError(f"unknown model {name!r}; known models: {known}") from None


def list_specs() -> list[ModelSpec]:
    """All registered specs, embedded first, then by name."""
    _load_user_models_once()
    return sorted(_REGISTRY.values(), key=lambda s: (not s.embedded, s.name))


def cache_dir() -> Path:
    """Directory for downloaded models.

    ``$LIVEMATTE_CACHE/models`` when set, else ``$XDG_CACHE_HOME/livematte/models``, else
    ``~/.cache/livematte/models``.  Not created here.
    """
    root = os.environ.get("LIVEMATTE_CACHE")
    if root:
        return Path(root).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "livematte" / "models"


def model_path(spec: ModelSpec | str) -> Path:
    """Where the model file is (embedded) or would be after ``livematte models pull``."""
    spec = get_spec(spec)
    if spec.file is not None:
        return DATA_DIR / spec.file
    return cache_dir() / spec.filename


def converted_path(spec: ModelSpec | str) -> Path:
    """Where a model converted locally from another format (``models.sources``) is kept."""
    return cache_dir() / f"{get_spec(spec).name}.tfjs.onnx"


def provenance_path(spec: ModelSpec | str) -> Path:
    """The record of where a converted model came from; written last, so it marks completion."""
    return cache_dir() / f"{get_spec(spec).name}.tfjs.json"


def installed_path(spec: ModelSpec | str) -> Path | None:
    """The model file in place: embedded or official first, else a complete converted one."""
    spec = get_spec(spec)
    official = model_path(spec)
    if official.is_file():
        return official
    if not spec.embedded and converted_path(spec).is_file() and provenance_path(spec).is_file():
        return converted_path(spec)
    return None


@lru_cache(maxsize=1)
def load_manifest() -> Mapping[str, Any]:
    """The converter's ``MANIFEST.json`` as a dict, or ``{}`` when it is not there yet."""
    try:
        return json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {MANIFEST_PATH}: {exc}") from exc


def _manifest_sha256(name: str) -> str | None:
    entry = load_manifest().get("models", {}).get(name, {})
    digest = entry.get("onnx_sha256")
    return digest.lower() if isinstance(digest, str) else None


def user_models_file() -> Path:
    """TOML file with the user's own external models (``[models.NAME]`` tables).

    ``$LIVEMATTE_MODELS`` when set, else ``$XDG_CONFIG_HOME/livematte/models.toml`` (default
    ``~/.config/livematte/models.toml``).
    """
    explicit = os.environ.get("LIVEMATTE_MODELS")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "livematte" / "models.toml"


_USER_LOADED: set[Path] = set()
_TUPLE_FIELDS = {"input_size", "inputs", "outputs"}


def load_user_models(path: Path | None = None) -> list[ModelSpec]:
    """Register the models defined in a user TOML file (see module docstring).

    User entries may replace external specs but never embedded ones.

    Raises:
        ModelError: unreadable TOML or an invalid entry (the message names the entry).
    """
    path = path or user_models_file()
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"cannot read user models file {path}: {exc}") from exc
    known = {f.name for f in fields(ModelSpec)}
    added = []
    for name, entry in data.get("models", {}).items():
        where = f"{path}: models.{name}"
        if not isinstance(entry, dict):
            raise ModelError(f"{where}: expected a table")
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ModelError(f"{where}: unknown keys {', '.join(unknown)}")
        if "file" in entry:
            raise ModelError(f"{where}: user models are downloaded: give 'url', not 'file'")
        kwargs = {k: tuple(v) if k in _TUPLE_FIELDS else v for k, v in entry.items()}
        if "state" in kwargs:
            kwargs["state"] = tuple(tuple(pair) for pair in kwargs["state"])
        kwargs.setdefault("description", "user model")
        existing = _REGISTRY.get(name)
        if existing is not None and existing.embedded:
            raise ModelError(f"{where}: cannot replace the embedded model {name!r}")
        try:
            spec = ModelSpec(name=name, **kwargs)
        except TypeError as exc:
            raise ModelError(f"{where}: {exc}") from exc
        added.append(register(spec, replace=True))
    return added


def _load_user_models_once() -> None:
    path = user_models_file()
    if path not in _USER_LOADED:
        # Mark first so a broken file raises once per process, not at every lookup.
        _USER_LOADED.add(path)
        load_user_models(path)


# --- embedded models (MediaPipe, Apache-2.0, converted to ONNX) -------------------------------

_MEDIAPIPE_HOME = "https://github.com/google-ai-edge/mediapipe"


def _mediapipe(name: str, **kw: Any) -> ModelSpec:
    """Spec of an embedded MediaPipe model: ``<name>.onnx``, manifest checksum, Apache-2.0."""
    return ModelSpec(
        name=name,
        file=f"{name}.onnx",
        sha256=_manifest_sha256(name),
        license="Apache-2.0",
        homepage=_MEDIAPIPE_HOME,
        **kw,
    )


@model
def selfie_segmentation() -> ModelSpec:
    """MediaPipe selfie segmentation, square 256x256 input."""
    return _mediapipe(
        "selfie_segmentation",
        task="segmentation",
        input_size=(256, 256),
        outputs=("segmentation",),
        description="MediaPipe selfie segmentation 256x256 (person probability)",
    )


@model
def selfie_segmentation_landscape() -> ModelSpec:
    """MediaPipe selfie segmentation, landscape 256x144 input (faster)."""
    return _mediapipe(
        "selfie_segmentation_landscape",
        task="segmentation",
        input_size=(256, 144),
        outputs=("segmentation",),
        description="MediaPipe selfie segmentation 256x144 landscape (person probability)",
    )


@model
def pose_detection() -> ModelSpec:
    """BlazePose person detector: 2254 anchors, raw boxes + score logits."""
    return _mediapipe(
        "pose_detection",
        task="pose_detection",
        input_size=(224, 224),
        scale=2.0 / 255.0,
        offset=-1.0,
        outputs=("boxes", "scores"),
        description="MediaPipe BlazePose detector 224x224 (2254 anchors)",
    )


@model
def pose_landmark_full() -> ModelSpec:
    """BlazePose full landmark model: 39 landmarks x 5, presence, heatmap; its person-mask
    decoder is split off (``pose_landmark_full_mask``, fed the ``mask_input_*`` outputs)."""
    return _mediapipe(
        "pose_landmark_full",
        task="pose_landmark",
        input_size=(256, 256),
        outputs=("landmarks", "presence", "heatmap", "world_landmarks", "mask_input_0",
                 "mask_input_1"),
        description="MediaPipe BlazePose full landmarks 256x256 (mask inputs for its decoder)",
    )


@model
def pose_landmark_full_mask() -> ModelSpec:
    """BlazePose full's person-mask decoder: 256x256 segmentation logits from the landmark
    model's ``mask_input_0`` (1x16x128x128) and ``mask_input_1`` (1x48x64x64)."""
    return _mediapipe(
        "pose_landmark_full_mask",
        task="pose_landmark",
        input_size=(256, 256),
        inputs=("mask_input_0", "mask_input_1"),
        outputs=("segmentation",),
        # 16 and 8 channels at 256x256: the NCHWc layout costs more than it saves (7.6 -> 6.0 ms
        # min, one core; mask probabilities within 2.3e-4 of level "all"'s).
        graph_optimization="extended",
        description="MediaPipe BlazePose full person mask 256x256 (from pose_landmark_full)",
    )


# --- embedded MoveNet MultiPose (Apache-2.0, converted from TF.js by scripts/convert_movenet.py)


@model
def movenet_multipose() -> ModelSpec:
    """MoveNet MultiPose Lightning: up to 6 people, 17 COCO keypoints + box, post-processing
    inside the graph.  Input int32 [1,H,W,3] RGB 0..255, H and W multiples of 32 (long side 256
    recommended); output [1,6,56] = 17 x (y, x, score) normalised, then ymin, xmin, ymax, xmax,
    score."""
    return ModelSpec(
        name="movenet_multipose",
        task="multipose",
        file="movenet_multipose.onnx",
        sha256=_manifest_sha256("movenet_multipose"),
        size_multiple=32,
        scale=1.0,
        inputs=("input",),
        outputs=("output_0",),
        license="Apache-2.0",
        description="MoveNet MultiPose Lightning (6 people x 17 keypoints + box; any size x32)",
        homepage="https://tfhub.dev/google/tfjs-model/movenet/multipose/lightning/1",
    )


# --- external models (explicit `livematte models pull NAME` only) -----------------------------
# Checksums: RVM's is the file in the v1.0.0 GitHub release (14,975,696 bytes); MODNet's is the
# Hugging Face LFS object at a pinned revision (25,888,640 bytes).  Both are published in many
# independent projects that pin these exact files.


@model
def rvm_mobilenetv3() -> ModelSpec:
    """Robust Video Matting, MobileNetV3 fp32: recurrent video matting (GPL-3.0 weights)."""
    return ModelSpec(
        name="rvm_mobilenetv3",
        task="matting",
        url=(
            "https://github.com/PeterL1n/RobustVideoMatting/releases/download/v1.0.0/"
            "rvm_mobilenetv3_fp32.onnx"
        ),
        sha256="88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828",
        layout="nchw",
        inputs=("src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio"),
        outputs=("fgr", "pha", "r1o", "r2o", "r3o", "r4o"),
        recurrent=True,
        state=(("r1i", "r1o"), ("r2i", "r2o"), ("r3i", "r3o"), ("r4i", "r4o")),
        license="GPL-3.0",
        description="Robust Video Matting MobileNetV3 fp32 (recurrent; any size; 15 MB)",
        homepage="https://github.com/PeterL1n/RobustVideoMatting",
        spin=False,
    )


@model
def modnet_photographic() -> ModelSpec:
    """MODNet photographic portrait matting (ONNX conversion by Xenova), Apache-2.0."""
    return ModelSpec(
        name="modnet_photographic",
        task="matting",
        url=(
            "https://huggingface.co/Xenova/modnet/resolve/"
            "fa2fa546052fba4c08921230a26cc69a333fca12/onnx/model.onnx"
        ),
        sha256="07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9",
        size_multiple=32,
        layout="nchw",
        scale=2.0 / 255.0,
        offset=-1.0,
        inputs=("input",),
        outputs=("output",),
        license="Apache-2.0",
        description="MODNet photographic portrait matting (short side 512, x32; 26 MB)",
        homepage="https://github.com/ZHKKKe/MODNet",
    )
