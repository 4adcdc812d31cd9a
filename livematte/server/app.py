"""The HTTP API (compatible with the hosted portrait-matting service) and the web page.

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
under plain uvicorn use its ``--limit-concurrency`` and a proxy in front.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from livematte.server import errors as E
from livematte.server.access import Access
from livematte.server.engine import Engine, MattingResult, Outcome, ServerSettings
from livematte.server.errors import ApiError, envelope
from livematte.server.form import openapi_extra, parse_options
from livematte.server.images import MEDIA_TYPES, RenderOptions, make_zip
from livematte.server.keys import BalanceError, KeyStore, KeyStoreError, RateLimiter
from livematte.server.middleware import BodyLimit, SecurityHeaders, error_response

if TYPE_CHECKING:
    from livematte.config import Config

log = logging.getLogger("livematte.server")
STATIC = Path(__file__).parent / "static"
ProcessFn = Callable[[np.ndarray, bool], MattingResult]


@dataclass(frozen=True)
class _Upload:
    name: str
    data: bytes


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _stem(filename: str | None, index: int) -> str:
    """A safe zip entry stem from an upload's filename (no paths, no odd characters)."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem = _SAFE.sub("_", base.rsplit(".", 1)[0] if "." in base else base).strip("._")
    return stem[:80] or f"image{index + 1}"


def create_app(
    config: Config | str | Path | None = None,
    *,
    settings: ServerSettings | None = None,
    key_store: KeyStore | None = None,
    process: ProcessFn | None = None,
    limiter: RateLimiter | None = None,
) -> FastAPI:
    """Build the ASGI app.

    Args:
        config: the pipeline ``Config`` (default: the "photo" preset, loaded lazily).
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
    settings = settings or ServerSettings()
    engine = Engine(config, settings, process=process)
    stores: list[KeyStore] = [key_store] if key_store is not None else []

    def store() -> KeyStore:
        if not stores:
            stores.append(KeyStore())
        return stores[0]

    access = Access(settings, store)
    if limiter is not None:  # shared by every replica of the Ray Serve app
        access.limiter = limiter

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.warmup:
            await engine.warmup()
        yield
        engine.close()

    from livematte import __version__

    # FastAPIOffline serves Swagger UI / ReDoc from files in its own wheel: FastAPI's default
    # /docs loads them from a CDN and stays blank on an offline machine.
    app = FastAPIOffline(
        title="livematte",
        version=__version__,
        description="Portrait matting on your own machine; compatible with the hosted "
        "service's /api/v1/matting, /matting2 and /mattingAndAnalysis.",
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        known = {404: E.NOT_FOUND, 405: E.METHOD_NOT_ALLOWED}
        error = known.get(exc.status_code, E.MISSING_FILE)
        msg = error.msg if exc.status_code in known else f"malformed request: {exc.detail}"
        return error_response(ApiError(error, msg))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> Response:
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

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return error_response(ApiError(E.INTERNAL, f"{E.INTERNAL.msg}: {type(exc).__name__}"))

    async def read_uploads(request: Request) -> tuple[list[_Upload], RenderOptions, bytes | None]:
        try:
            form = await request.form(max_files=settings.max_batch + 1, max_fields=64)
        except StarletteHTTPException as exc:
            if "files" in str(exc.detail).lower():
                raise ApiError(
                    E.TOO_MANY_FILES, f"at most {settings.max_batch} files per request"
                ) from None
            raise ApiError(E.MISSING_FILE, f"malformed multipart body: {exc.detail}") from None
        parts = form.getlist("file")
        if not parts:
            names = sorted(set(form.keys()))
            got = f" (got fields: {', '.join(names)})" if names else ""
            raise ApiError(E.MISSING_FILE, f"{E.MISSING_FILE.msg}{got}")
        if len(parts) > settings.max_batch:
            raise ApiError(E.TOO_MANY_FILES, f"at most {settings.max_batch} files per request")
        options = parse_options(form)
        uploads = []
        for i, part in enumerate(parts):
            if not isinstance(part, UploadFile):
                if not part:  # a form sent without choosing a file
                    raise ApiError(E.EMPTY_FILE)
                raise ApiError(E.MISSING_FILE, "'file' must be a file upload, not a text field")
            uploads.append(_Upload(_stem(part.filename, i), await _read(part)))
        bg_part = form.get("bg_image")
        bg_image = None
        if isinstance(bg_part, UploadFile):
            if "effects.background" in dict(options.look):
                raise ApiError(E.BAD_OPTION, "give bg (or bg_color) or bg_image, not both")
            bg_image = await _read(bg_part)
        await form.close()
        return uploads, options, bg_image

    async def _read(part: UploadFile) -> bytes:
        if part.size is not None and part.size > settings.max_file_bytes:
            raise ApiError(
                E.TOO_LARGE,
                f"{part.filename or 'file'} is {part.size / 2**20:.1f} MB; "
                f"the limit is {settings.max_file_bytes / 2**20:.0f} MB",
            )
        return await part.read()

    async def handle(request: Request, kind: str) -> Response:
        key = access.authenticate(request)
        uploads, options, bg_image = await read_uploads(request)
        held, left = len(uploads), None
        if key is not None:
            # Hold the calls before any work: a short balance is refused before decoding.
            try:
                left = store().reserve(key.id, held)
            except BalanceError as exc:
                raise ApiError(E.BALANCE_EXHAUSTED, f"{E.BALANCE_EXHAUSTED.msg}: {exc}") from None
            except KeyStoreError:
                raise ApiError(E.INVALID_KEY) from None
        analysis = kind == "analysis"
        done = 0
        try:
            outcomes = await engine.run(
                [u.data for u in uploads], options, analysis=analysis, bg_image=bg_image
            )
            done = sum(1 for o in outcomes if not isinstance(o, ApiError))
        finally:
            if key is not None:  # charge the successes only; failed files' calls come back
                store().settle(key.id, held, done)
        headers = {"X-Livematte-Model": engine.matting_model()}
        if left is not None:  # this request's own balance, whatever runs beside it
            headers["X-Calls-Remaining"] = str(left + held - done)
        if len(uploads) == 1:
            outcome = outcomes[0]
            if isinstance(outcome, ApiError):
                raise outcome
            data, ext, body = outcome
            name = f"{uploads[0].name}.{ext}"
            if kind == "png":
                headers["Content-Disposition"] = f'inline; filename="{name}"'
                return Response(data, media_type=MEDIA_TYPES[ext], headers=headers)
            payload: dict[str, object] = {"imageBase64": base64.b64encode(data).decode("ascii")}
            if analysis:
                payload = {"bodyAnalysis": body, **payload}
            return JSONResponse(envelope(0, payload), headers=headers)
        return _batch_response(uploads, outcomes, analysis, headers)

    def _batch_response(
        uploads: list[_Upload], outcomes: list[Outcome], analysis: bool, headers: dict[str, str]
    ) -> Response:
        failures = [o for o in outcomes if isinstance(o, ApiError)]
        if len(failures) == len(outcomes):
            raise failures[0]
        files: dict[str, bytes] = {}
        errors = []
        taken: set[str] = set()
        for upload, outcome in zip(uploads, outcomes, strict=True):
            stem, n = upload.name, 1
            while stem in taken:  # two uploads called photo.jpg -> photo, photo-2
                n += 1
                stem = f"{upload.name}-{n}"
            taken.add(stem)
            if isinstance(outcome, ApiError):
                errors.append({"file": stem, "code": outcome.code, "msg": outcome.msg})
                continue
            data, ext, body = outcome
            files[f"{stem}.{ext}"] = data
            if analysis:
                files[f"{stem}.json"] = json.dumps(body).encode()
        if errors:
            files["errors.json"] = json.dumps(errors, ensure_ascii=False, indent=1).encode()
        headers["Content-Disposition"] = 'attachment; filename="livematte.zip"'
        headers["X-Files-Failed"] = str(len(errors))
        return Response(make_zip(files), media_type="application/zip", headers=headers)

    png_ok = {"description": "the cut-out", "content": {"image/png": {}}}
    json_ok = {"description": "envelope with data.imageBase64", "content": {"application/json": {}}}

    @app.post(
        "/api/v1/matting",
        summary="Cut the person out: the body is the RGBA PNG",
        openapi_extra=openapi_extra("Returns the PNG itself (a zip for several files).", png_ok),
    )
    async def matting(request: Request) -> Response:
        return await handle(request, "png")

    @app.post(
        "/api/v1/matting2",
        summary="Cut the person out: the PNG as base64 in a JSON envelope",
        openapi_extra=openapi_extra("Returns {code: 0, data: {imageBase64}, msg, time}.", json_ok),
    )
    async def matting2(request: Request) -> Response:
        return await handle(request, "json")

    @app.post(
        "/api/v1/mattingAndAnalysis",
        summary="Cut the person out and locate 21 body parts per person",
        openapi_extra=openapi_extra("Returns data.imageBase64 and data.bodyAnalysis.", json_ok),
    )
    async def matting_and_analysis(request: Request) -> Response:
        return await handle(request, "analysis")

    @app.get("/health", summary="Liveness and load")
    async def health() -> dict[str, object]:
        return {"status": "ok", "version": __version__, **engine.load()}

    @app.get("/api/v1/info", summary="Limits and whether this client needs a key")
    async def info(request: Request) -> dict[str, object]:
        return {
            "keyless": access.is_keyless(request),
            "max_batch": settings.max_batch,
            "max_file_bytes": settings.max_file_bytes,
            "max_request_bytes": settings.max_request_bytes,
            "max_pixels": settings.max_pixels,
            "formats": ["png", "jpeg", "bmp", "gif", "webp"],
            "error_codes": {e.code: [e.status, e.msg] for e in E.ALL_CODES},
        }

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    # Added last, so it wraps BodyLimit too: its 413s get the headers as well.
    app.add_middleware(SecurityHeaders)
    return app


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
