"""The HTTP API (compatible with the hosted portrait-matting service) and the web page.

Routes (multipart/form-data, field ``file``, header ``APIKEY``):

* ``POST /api/v1/matting``            -> the cut-out as an RGBA PNG (the body is the PNG)
* ``POST /api/v1/matting2``           -> ``{"code": 0, "data": {"imageBase64": ...}, ...}``
* ``POST /api/v1/mattingAndAnalysis`` -> the same plus ``data.bodyAnalysis``
* several ``file`` parts in one request -> a zip (``<name>.png`` each, ``errors.json`` for the
  files that failed, ``<name>.json`` analyses on the analysis route)
* optional fields: ``bg_color`` (hex) or ``bg_image`` (file), ``crop`` + ``crop_margin``
  ("30px", "10%"), ``size`` (preview|full), ``format`` (png|jpg|zip), ``channels`` (rgba|alpha)
* ``GET /`` the web page, ``GET /health``, ``GET /api/v1/info``, ``GET /docs`` (OpenAPI)

Errors: see ``livematte.server.errors``.  Inference runs in a bounded worker pool; when every
worker is busy and the queue is full the answer is 1201/503 at once, never an endless wait.

Run it with ``livematte serve`` or ``uvicorn livematte.server.app:app`` (the module-level app
reads ``LIVEMATTE_PRESET`` and ``LIVEMATTE_KEYLESS`` = auto|on|off from the environment).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from livematte.server import errors as E
from livematte.server.engine import Engine, MattingResult, ServerSettings
from livematte.server.errors import ApiError, envelope
from livematte.server.images import MEDIA_TYPES, RenderOptions, make_zip
from livematte.server.keys import ApiKey, KeyStore, RateLimiter

log = logging.getLogger("livematte.server")
STATIC = Path(__file__).parent / "static"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
ProcessFn = Callable[[Any, bool], MattingResult]

_UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "the photo (PNG, JPEG, BMP, GIF, WebP; <= 15 MB); several -> zip",
        },
        "bg_color": {"type": "string", "description": "background colour, e.g. #00ff00"},
        "bg_image": {"type": "string", "format": "binary", "description": "background image"},
        "crop": {"type": "boolean", "description": "crop to the person(s)"},
        "crop_margin": {"type": "string", "description": "margin around the crop: 30px or 10%"},
        "size": {"type": "string", "enum": ["full", "preview"], "description": "preview: 0.25 MP"},
        "format": {"type": "string", "enum": ["png", "jpg", "zip"]},
        "channels": {"type": "string", "enum": ["rgba", "alpha"]},
    },
}


def _openapi(description: str, ok: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI for a hand-parsed multipart route (parsed by hand to check the key first)."""
    codes = ", ".join(f"{e.code} ({e.status})" for e in E.ALL_CODES)
    return {
        "description": description + f"\n\nError codes: {codes}; see livematte.server.errors.",
        "parameters": [
            {
                "name": "APIKEY",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "your key (`livematte keys create`); not needed in keyless mode",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": _UPLOAD_SCHEMA}},
        },
        "responses": {"200": ok, "4XX": {"description": "error envelope (JSON)"}},
    }


def _error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(
        envelope(exc.code, None, exc.msg), status_code=exc.status, headers=exc.headers
    )


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes (code 1105) without
    buffering them: at once when Content-Length says so, else as soon as the stream passes."""

    def __init__(self, app: Any, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            too_big = ApiError(E.TOO_LARGE, f"request body over {self.limit // 2**20} MB")
            await _error_response(too_big)(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                # Raised inside request.form(); the ApiError handler answers 413.
                raise ApiError(E.TOO_LARGE, f"request body over {self.limit // 2**20} MB")
            return message

        await self.app(scope, limited, send)


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


def _truthy(value: str, field: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ApiError(E.BAD_OPTION, f"{field}: expected true or false, got {value!r}")


def _choice(value: str, field: str, choices: dict[str, str]) -> str:
    key = value.strip().lower()
    if key not in choices:
        raise ApiError(E.BAD_OPTION, f"{field}: {value!r} is not one of {', '.join(choices)}")
    return choices[key]


def parse_color(value: str) -> tuple[int, int, int]:
    """'#rgb' or '#rrggbb' (the '#' optional) -> BGR tuple.

    Raises:
        ApiError: 1107 for anything else.
    """
    text = value.strip().lstrip("#")
    if re.fullmatch(r"[0-9a-fA-F]{3}", text):
        text = "".join(c * 2 for c in text)
    if not re.fullmatch(r"[0-9a-fA-F]{6}", text):
        raise ApiError(E.BAD_OPTION, f"bg_color: expected a hex colour like #00ff00, got {value!r}")
    r, g, b = (int(text[i : i + 2], 16) for i in (0, 2, 4))
    return (b, g, r)


def parse_margin(value: str) -> tuple[float, str]:
    """'30px', '30' or '10%' -> (value, unit); at most 4096 px or 100 %."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(px|%)?\s*", value or "0")
    if not match:
        raise ApiError(E.BAD_OPTION, f"crop_margin: expected e.g. 30px or 10%, got {value!r}")
    amount, unit = float(match.group(1)), match.group(2) or "px"
    if amount > (100 if unit == "%" else 4096):
        raise ApiError(E.BAD_OPTION, f"crop_margin: {value!r} is too large")
    return amount, unit


# Accepted spellings -> canonical value ("auto" as remove.bg has it means full here).
_SIZES = {"full": "full", "auto": "full", "preview": "preview"}
_FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "zip": "zip"}
_CHANNELS = {"rgba": "rgba", "alpha": "alpha"}


def parse_options(form: Any) -> RenderOptions:
    """The optional fields -> RenderOptions (unknown fields are ignored, as other APIs do)."""

    def text(name: str) -> str | None:
        value = form.get(name)
        if value is None or isinstance(value, UploadFile):
            return None
        return str(value)

    bg = text("bg_color")
    margin = text("crop_margin")
    return RenderOptions(
        background=parse_color(bg) if bg else None,
        crop=_truthy(text("crop") or "", "crop"),
        margin=parse_margin(margin) if margin else (0.0, "px"),
        preview=_choice(text("size") or "full", "size", _SIZES) == "preview",
        format=_choice(text("format") or "png", "format", _FORMATS),
        channels=_choice(text("channels") or "rgba", "channels", _CHANNELS),
    )


def create_app(
    config: Any = None,
    *,
    settings: ServerSettings | None = None,
    key_store: KeyStore | None = None,
    process: ProcessFn | None = None,
) -> FastAPI:
    """Build the ASGI app.

    Args:
        config: the pipeline ``Config`` (default: the "photo" preset, loaded lazily).
        settings: limits, worker pool and keyless mode (default: ``ServerSettings()``).
        key_store: where keys live (default: ``KeyStore()`` at the user data dir, opened on the
            first keyed request so a keyless server never touches it).
        process: ``(bgr, analysis) -> MattingResult`` instead of the real pipeline (tests).

    Example::

        app = create_app(load_config("photo"), settings=ServerSettings(keyless="on"))
    """
    settings = settings or ServerSettings()
    engine = Engine(config, settings, process=process)
    limiter = RateLimiter()
    stores: list[KeyStore] = [key_store] if key_store is not None else []

    def store() -> KeyStore:
        if not stores:
            stores.append(KeyStore())
        return stores[0]

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: FastAPI):
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
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        known = {404: E.NOT_FOUND, 405: E.METHOD_NOT_ALLOWED}
        error = known.get(exc.status_code, E.MISSING_FILE)
        msg = error.msg if exc.status_code in known else f"malformed request: {exc.detail}"
        return _error_response(ApiError(error, msg))

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return _error_response(ApiError(E.INTERNAL, f"{E.INTERNAL.msg}: {type(exc).__name__}"))

    def is_keyless(request: Request) -> bool:
        if settings.keyless in ("on", "off"):
            return settings.keyless == "on"
        # auto: only a loopback client that addressed us by a loopback name.  Checking the
        # Host header too defeats DNS rebinding (a web page in the user's browser whose
        # domain is re-pointed at 127.0.0.1 sends its own Host).
        client = request.client.host if request.client else ""
        host = request.headers.get("host", "").rsplit(":", 1)[0].strip("[]")
        return client in LOOPBACK_HOSTS and host in LOOPBACK_HOSTS

    def authenticate(request: Request) -> ApiKey | None:
        if is_keyless(request):
            return None  # keyless: the APIKEY header is ignored, so the docs' examples run
        token = request.headers.get("apikey") or request.headers.get("x-api-key")
        if not token:
            hint = ""
            if settings.keyless == "auto":
                hint = " (no key is needed only from this computer, via localhost or 127.0.0.1)"
            raise ApiError(E.MISSING_KEY, E.MISSING_KEY.msg + hint)
        key = store().verify(token.strip())
        if key is None:
            raise ApiError(E.INVALID_KEY)
        wait = limiter.acquire(key.id, key.rate or settings.rate)
        if wait > 0:
            raise ApiError(
                E.RATE_LIMITED,
                f"rate limit of {key.rate or settings.rate:g} requests/s exceeded",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )
        if key.calls is not None and key.calls < 1:
            raise ApiError(E.BALANCE_EXHAUSTED)
        return key

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
            if options.background is not None:
                raise ApiError(E.BAD_OPTION, "give bg_color or bg_image, not both")
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
        key = authenticate(request)
        uploads, options, bg_image = await read_uploads(request)
        if key is not None and key.calls is not None and key.calls < len(uploads):
            raise ApiError(
                E.BALANCE_EXHAUSTED,
                f"{E.BALANCE_EXHAUSTED.msg}: {key.calls} calls left for {len(uploads)} files",
            )
        analysis = kind == "analysis"
        outcomes = await engine.run(
            [u.data for u in uploads], options, analysis=analysis, bg_image=bg_image
        )
        done = sum(1 for o in outcomes if not isinstance(o, ApiError))
        if done and key is not None and not store().charge(key.id, done):
            raise ApiError(E.BALANCE_EXHAUSTED)  # spent by a concurrent request meanwhile
        headers = {"X-Livematte-Model": engine.matting_model()}
        if key is not None and key.calls is not None:
            headers["X-Calls-Remaining"] = str(max(0, key.calls - done))
        if len(uploads) == 1:
            outcome = outcomes[0]
            if isinstance(outcome, ApiError):
                raise outcome
            data, ext, body = outcome
            name = f"{uploads[0].name}.{ext}"
            if kind == "png":
                headers["Content-Disposition"] = f'inline; filename="{name}"'
                return Response(data, media_type=MEDIA_TYPES[ext], headers=headers)
            payload: dict[str, Any] = {"imageBase64": base64.b64encode(data).decode("ascii")}
            if analysis:
                payload = {"bodyAnalysis": body, **payload}
            return JSONResponse(envelope(0, payload), headers=headers)
        return _batch_response(uploads, outcomes, analysis, headers)

    def _batch_response(
        uploads: list[_Upload], outcomes: list[Any], analysis: bool, headers: dict[str, str]
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
        openapi_extra=_openapi("Returns the PNG itself (a zip for several files).", png_ok),
    )
    async def matting(request: Request) -> Response:
        return await handle(request, "png")

    @app.post(
        "/api/v1/matting2",
        summary="Cut the person out: the PNG as base64 in a JSON envelope",
        openapi_extra=_openapi("Returns {code: 0, data: {imageBase64}, msg, time}.", json_ok),
    )
    async def matting2(request: Request) -> Response:
        return await handle(request, "json")

    @app.post(
        "/api/v1/mattingAndAnalysis",
        summary="Cut the person out and locate 21 body parts per person",
        openapi_extra=_openapi("Returns data.imageBase64 and data.bodyAnalysis.", json_ok),
    )
    async def matting_and_analysis(request: Request) -> Response:
        return await handle(request, "analysis")

    @app.get("/health", summary="Liveness and load")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, **engine.load()}

    @app.get("/api/v1/info", summary="Limits and whether this client needs a key")
    async def info(request: Request) -> dict[str, Any]:
        return {
            "keyless": is_keyless(request),
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
    return app


def _app_from_env() -> FastAPI:
    """The module-level app for ``uvicorn livematte.server.app:app``, configured by env."""
    keyless = os.environ.get("LIVEMATTE_KEYLESS", "auto").strip().lower()
    keyless = {"1": "on", "true": "on", "0": "off", "false": "off"}.get(keyless, keyless)
    if keyless not in ("auto", "on", "off"):
        keyless = "auto"
    preset = os.environ.get("LIVEMATTE_PRESET") or None
    return create_app(preset, settings=replace(ServerSettings(), keyless=keyless))


app = _app_from_env()
