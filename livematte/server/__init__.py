"""``livematte serve``: the portrait-matting HTTP API and web page.

``create_app`` builds the ASGI app (``livematte.server.app``); ``KeyStore`` manages API keys
(``livematte.server.keys``); who may call is decided in ``livematte.server.access``; the
sockets of ``livematte serve`` (timeouts, connection cap) are guarded by
``livematte.server.net``; error codes are in ``livematte.server.errors``.  Nothing is
imported eagerly: the CLI imports ``livematte.cli.serve`` on every run, and FastAPI,
OpenCV and Pillow must load only when a server command actually runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the lazy names are, for type checkers; nothing imported at run time
    from livematte.server.app import create_app
    from livematte.server.engine import MattingResult, ServerSettings
    from livematte.server.keys import KeyStore

__all__ = ["KeyStore", "MattingResult", "ServerSettings", "create_app"]

_WHERE = {
    "create_app": "livematte.server.app",
    "KeyStore": "livematte.server.keys",
    "MattingResult": "livematte.server.engine",
    "ServerSettings": "livematte.server.engine",
}


def __getattr__(name: str) -> object:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'livematte.server' has no attribute {name!r}")
