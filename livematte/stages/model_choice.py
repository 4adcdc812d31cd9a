"""Which matting model a pipeline runs: what ``matting.model`` ("auto", "embedded", a name or
a path) resolves to for a mode, a frame shape and the execution providers at hand.

Names only (no sessions): the matting stage, the server's engine and ``doctor`` all ask here,
so each front reports the same model for the same settings.
"""

from __future__ import annotations

import math

from livematte.errors import ModelError

SQUARE = "selfie_segmentation"
LANDSCAPE = "selfie_segmentation_landscape"
#: Aspect ratio (w/h) above which "auto" picks the 256x144 model: the geometric mean of 1:1 and
#: 16:9, i.e. where both models waste the same share of their input on padding.
LANDSCAPE_ASPECT = math.sqrt(16 / 9)
#: ``matting.model`` values that are not model names.
AUTO = "auto"
EMBEDDED = "embedded"
#: Models "auto" prefers, best first, when installed: RVM beat the embedded segmenter on
#: every p3m figure (BENCHMARKS.md, "RVM").
AUTO_MODELS = ("rvm_mobilenetv3",)


def choose_model(name: str, width: int, height: int) -> str:
    """Resolve "embedded" to the square or landscape embedded model for a frame size."""
    if name not in (EMBEDDED, AUTO):
        return name
    return LANDSCAPE if width / max(height, 1) > LANDSCAPE_ASPECT else SQUARE


def resolve_model(name: str, mode: str, providers: tuple[str, ...] | list[str]) -> str:
    """What ``matting.model`` means for a pipeline: "auto" becomes the best installed model.

    "auto": the first of ``AUTO_MODELS`` that is installed (pulled), for photos and video;
    live frames stay on the embedded model unless a GPU execution provider is active (one of
    ``providers`` is a GPU provider this ONNX Runtime offers), because RVM costs ~58 ms per
    720p frame on one CPU core against ~5 ms for the embedded segmenter.  Otherwise, and for
    "embedded", the embedded segmenter ("embedded"); any other name or path passes through.
    """
    if name != AUTO:
        return name
    if mode == "live" and not gpu_active(providers):
        return EMBEDDED
    from livematte.models.registry import installed_path

    for candidate in AUTO_MODELS:
        if installed_path(candidate) is not None:
            return candidate
    return EMBEDDED


def gpu_active(providers: tuple[str, ...] | list[str]) -> bool:
    """True when a requested GPU execution provider is in this ONNX Runtime build."""
    from livematte.models.session import GPU_PROVIDERS, available_providers

    try:
        available = set(available_providers())
    except ModelError:
        return False
    return any(
        p.strip().lower() in GPU_PROVIDERS and p.strip().lower() in available for p in providers
    )
