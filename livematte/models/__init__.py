"""ONNX model registry, explicit downloads and inference sessions.

``registry``: ``ModelSpec`` and ``get_spec``; ``download``: ``pull`` and ``verify``;
``session``: ``create_session`` returning a ``ModelSession`` that reports its provider.
ONNX Runtime is imported only when a session is created, so listing models works without it.
"""

from livematte.models.download import pull, sha256_file, verify
from livematte.models.registry import (
    ModelSpec,
    cache_dir,
    get_spec,
    list_specs,
    model_path,
    register,
)
from livematte.models.session import ModelSession, available_providers, create_session

__all__ = [
    "ModelSession",
    "ModelSpec",
    "available_providers",
    "cache_dir",
    "create_session",
    "get_spec",
    "list_specs",
    "model_path",
    "pull",
    "register",
    "sha256_file",
    "verify",
]
