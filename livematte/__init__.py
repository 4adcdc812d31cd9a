"""livematte: cut people out of camera feeds, videos and photos with ONNX Runtime models.

The public API is re-exported here; see ``livematte.config.load_config`` for configuration and
``livematte.models`` for the model registry and sessions.
"""

from __future__ import annotations

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
    # The pipeline pulls in OpenCV and ONNX Runtime; import it only when asked for, so
    # `import livematte` (and `livematte --help`) stays fast.  The version too: reading it
    # imports importlib.metadata (~40 ms of every command's start-up, 80 on a busy machine).
    if name == "__version__":
        from importlib import metadata

        try:
            version = metadata.version("livematte")
        except metadata.PackageNotFoundError:  # a source tree that was not installed
            version = "0.0.0+unknown"
        globals()["__version__"] = version
        return version
    if name in ("build_pipeline", "process_image"):
        from livematte import api

        return getattr(api, name)
    raise AttributeError(f"module 'livematte' has no attribute {name!r}")
