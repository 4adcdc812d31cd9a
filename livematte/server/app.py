"""The HTTP API (compatible with the hosted portrait-matting service) and the web page:
``create_app`` puts the parts together.

The parts: ``routes`` (the handlers, one ``APIRouter``), ``state`` (``ServerState``: settings,
config, access, key store, engine; the routes' one dependency), ``uploads`` (the multipart
body), ``form`` (its options), ``access`` (who may call), ``engine`` (the worker pool),
``images`` (decoding, rendering), ``middleware`` and the error handlers below.

Routes (multipart/form-data, field ``file``, header ``APIKEY``):

* ``POST /api/v1/matting``            -> the cut-out as an RGBA PNG (the body is the PNG)
* ``POST /api/v1/matting2``           -> ``{"code": 0, "data": {"imageBase64": ...}, ...}``
* ``POST /api/v1/mattingAndAnalysis`` -> the same plus ``data.bodyAnalysis``
* several ``file`` parts in one request -> a zip (``<name>.png`` each, ``errors.json`` for the
  files that failed, ``<name>.json`` analyses on the analysis route)
* optional fields: ``bg`` (the CLI's ``--bg`` grammar, files excepted; ``bg_color`` is an
  alias) or ``bg_image`` (a file), ``stickers``, ``id_photo``, ``dim``, ``desaturate``,
  ``light_wrap``, ``blur_kind`` (as the CLI's flags: the same pipeline runs), ``crop`` +
  ``crop_margin`` ("30px", "10%"), ``size`` (preview|full), ``format`` (png|jpg|zip),
  ``channels`` (rgba|alpha)
* ``GET /`` the web page, ``GET /health``, ``GET /api/v1/info``, ``GET /docs`` (OpenAPI)

Errors: see ``livematte.server.errors``; who may call: ``livematte.server.access``; every
answer carries the security headers of ``livematte.server.middleware``.  Inference runs in a
bounded worker pool; when every worker is busy and the queue is full the answer is 1201/503
at once, never an endless wait.

Run it with ``livematte serve`` or ``uvicorn livematte.server.app:app`` (the module-level app
reads ``LIVEMATTE_PRESET`` and ``LIVEMATTE_KEYLESS`` = auto|on|off from the environment).  Only
``livematte serve`` bounds header/body read time and connections (``livematte.server.net``);
under plain uvicorn use its ``--limit-concurrency`` and a proxy in front, and set
``OPENBLAS_NUM_THREADS=1`` (``livematte serve`` does: ``livematte.cli.blas_threads``; with two
threads a wide-band photo took 4.1 s instead of 0.7 s on a loaded 2-core machine).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from livematte.server import errors as E
from livematte.server.engine import ProcessFn, ServerSettings
from livematte.server.errors import ApiError
from livematte.server.keys import KeyStore, RateLimiter
from livematte.server.middleware import BodyLimit, SecurityHeaders, error_response
from livematte.server.routes import STATIC, router
from livematte.server.state import ServerState, app_state, server_state

if TYPE_CHECKING:
    from livematte.config import Config

log = logging.getLogger("livematte.server")

__all__ = ["STATIC", "ServerState", "app_state", "create_app", "server_state"]


def create_app(
    config: Config | str | Path | None = None,
    *,
    settings: ServerSettings | None = None,
    key_store: KeyStore | None = None,
    process: ProcessFn | None = None,
    limiter: RateLimiter | None = None,
) -> FastAPI:
    """Build the ASGI app: its ``ServerState``, the routes, the error handlers, the web page
    and the middleware.  The engine starts with the app (its lifespan), not here.

    Args:
        config: the pipeline ``Config`` (default: the "photo" preset); a preset name or path
            is loaded now, so a bad one fails here.
        settings: limits, worker pool and keyless mode (default: ``ServerSettings()``).
        key_store: where keys live (default: ``KeyStore()`` at the user data dir, opened on the
            first keyed request so a keyless server never touches it).
        process: ``(bgr, analysis) -> MattingResult`` instead of the real pipeline (tests;
            the Ray Serve app's matting replicas).
        limiter: the per-key rate limiter (default: one in this process; the Ray Serve app
            shares one across replicas).

    Example::

        app = create_app(load_config("photo"), settings=ServerSettings(keyless="on"))
    """
    from livematte import __version__

    settings = settings or ServerSettings()
    state = ServerState.build(
        config, settings, key_store=key_store, process=process, limiter=limiter
    )
    # FastAPIOffline serves Swagger UI / ReDoc from files in its own wheel: FastAPI's default
    # /docs loads them from a CDN and stays blank on an offline machine.
    app = FastAPIOffline(
        title="livematte",
        version=__version__,
        description="Portrait matting on your own machine; compatible with the hosted "
        "service's /api/v1/matting, /matting2 and /mattingAndAnalysis.",
        lifespan=_lifespan,
    )
    app.state.server = state
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _gone)
    app.add_exception_handler(Exception, _crash)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    # Added last, so it wraps BodyLimit too: its 413s get the headers as well.
    app.add_middleware(SecurityHeaders)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start-up makes the engine (and warms it); shutdown stops its pool."""
    state = app_state(app)
    try:
        await state.start()  # a warm-up that fails stops the pool it started, too
        yield
    finally:
        state.stop()


# --- errors: every failure is the JSON envelope (livematte.server.errors) -----------------


async def _api_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ApiError):
        return await _crash(request, exc)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no route, wrong method, a malformed request) as envelopes."""
    if not isinstance(exc, StarletteHTTPException):
        return await _crash(request, exc)
    known = {404: E.NOT_FOUND, 405: E.METHOD_NOT_ALLOWED}
    error = known.get(exc.status_code, E.MISSING_FILE)
    msg = error.msg if exc.status_code in known else f"malformed request: {exc.detail}"
    return error_response(ApiError(error, msg))


async def _gone(request: Request, _: Exception) -> Response:
    # One line, not two tracebacks: nobody is left to answer, and nothing was processed.
    client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
    log.warning(
        "livematte: %s %s from %s: the upload ended early (client gone or too slow); "
        "nothing processed",
        request.method,
        request.url.path,
        client,
    )
    return Response(status_code=400)


async def _crash(_: Request, exc: Exception) -> JSONResponse:
    log.exception("request failed")
    return error_response(ApiError(E.INTERNAL, f"{E.INTERNAL.msg}: {type(exc).__name__}"))


def _app_from_env() -> FastAPI:
    """The module-level app for ``uvicorn livematte.server.app:app``, configured by env."""
    keyless = os.environ.get("LIVEMATTE_KEYLESS", "auto").strip().lower()
    keyless = {"1": "on", "true": "on", "0": "off", "false": "off"}.get(keyless, keyless)
    if keyless not in ("auto", "on", "off"):
        keyless = "auto"
    preset = os.environ.get("LIVEMATTE_PRESET") or None
    return create_app(preset, settings=replace(ServerSettings(), keyless=keyless))


def __getattr__(name: str) -> FastAPI:
    """``app`` is built on first access (``uvicorn livematte.server.app:app``), not at import:
    importing this module for ``create_app`` must not build an engine and its thread pool."""
    if name == "app":
        built = _app_from_env()
        globals()["app"] = built
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
