"""livematte: cut people out of camera feeds, videos and photos with ONNX Runtime models.

The public API is re-exported here; see ``livematte.config.load_config`` for configuration and
``livematte.models`` for the model registry and sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livematte.api import build_pipeline, process_image
    from livematte.config import Config, list_presets, load_config
    from livematte.errors import (
        ConfigError,
        DownloadError,
        LivematteError,
        ModelError,
        ProviderError,
        SinkError,
        SourceError,
    )
    from livematte.frame import LANDMARK_NAMES, Frame, Mode, Person

#: Where each public name lives.  They are imported on first access, so that ``import
#: livematte`` loads nothing heavy: numpy, which the config and the frame import, must not
#: be loaded before the command line has set its BLAS thread policy
#: (``livematte.cli.blas_threads``: 0.05-0.09 s less CPU per ``livematte video`` process).
_EXPORTS = {
    "Config": "livematte.config",
    "list_presets": "livematte.config",
    "load_config": "livematte.config",
    "LANDMARK_NAMES": "livematte.frame",
    "Frame": "livematte.frame",
    "Mode": "livematte.frame",
    "Person": "livematte.frame",
    "build_pipeline": "livematte.api",
    "process_image": "livematte.api",
    **dict.fromkeys(
        (
            "ConfigError",
            "DownloadError",
            "LivematteError",
            "ModelError",
            "ProviderError",
            "SinkError",
            "SourceError",
        ),
        "livematte.errors",
    ),
}

__all__ = [
    "LANDMARK_NAMES",
    "build_pipeline",
    "process_image",
    "Config",
    "ConfigError",
    "DownloadError",
    "Frame",
    "LivematteError",
    "Mode",
    "ModelError",
    "Person",
    "ProviderError",
    "SinkError",
    "SourceError",
    "__version__",
    "list_presets",
    "load_config",
]


def __getattr__(name: str) -> object:
    # Every public name is imported when first asked for (``_EXPORTS``): the pipeline pulls
    # in OpenCV and ONNX Runtime, the config numpy.  The version too: reading it
    # imports importlib.metadata (~40 ms of every command's start-up, 80 on a busy machine).
    if name == "__version__":
        from importlib import metadata

        try:
            version = metadata.version("livematte")
        except metadata.PackageNotFoundError:  # a source tree that was not installed
            version = "0.0.0+unknown"
        globals()["__version__"] = version
        return version
    module = _EXPORTS.get(name)
    if module is not None:
        from importlib import import_module

        value = getattr(import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'livematte' has no attribute {name!r}")
