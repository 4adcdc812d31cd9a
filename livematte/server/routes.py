"""The routes: the three matting routes, ``/health``, ``/api/v1/info`` and the web page.

Every handler takes the app's ``ServerState`` as a FastAPI dependency (``State``), never a
variable closed over, so the router is one module-level ``APIRouter`` that ``create_app``
includes.  A matting request goes: who may call (``Access.authenticate``), the body
(``uploads.read_uploads``), the key's calls held (``KeyStore.reserve``), the work on the
engine's pool, the charge settled for the successes only, then the answer: the file itself,
the JSON envelope, or a zip when several files came.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from livematte.server import errors as E
from livematte.server.engine import Outcome
from livematte.server.errors import ApiError, envelope
from livematte.server.form import openapi_extra
from livematte.server.images import MEDIA_TYPES, make_zip
from livematte.server.keys import ApiKey, BalanceError, KeyStoreError
from livematte.server.state import ServerState, server_state
from livematte.server.uploads import Upload, Uploads, read_uploads

#: The web page's folder (``index.html`` at ``/``, the rest under ``/static``).
STATIC = Path(__file__).parent / "static"
#: Image formats the routes read (``/api/v1/info``).
FORMATS = ["png", "jpeg", "bmp", "gif", "webp"]

#: What a matting route answers: the file itself, the JSON envelope, or it plus bodyAnalysis.
Kind = Literal["png", "json", "analysis"]
State = Annotated[ServerState, Depends(server_state)]

router = APIRouter()


async def handle(request: Request, state: ServerState, kind: Kind) -> Response:
    """One matting request, from its key to its answer."""
    key = state.access.authenticate(request)
    uploads = await read_uploads(request, state.settings)
    held = len(uploads.files)
    left = _reserve(state, key, held)
    done = 0
    try:
        outcomes = await state.engine.run(
            [u.data for u in uploads.files],
            uploads.options,
            analysis=kind == "analysis",
            bg_image=uploads.bg_image,
        )
        done = sum(1 for o in outcomes if not isinstance(o, ApiError))
    finally:
        if key is not None:  # charge the successes only; failed files' calls come back
            state.store().settle(key.id, held, done)
    headers = {"X-Livematte-Model": state.engine.matting_model()}
    if left is not None:  # this request's own balance, whatever runs beside it
        headers["X-Calls-Remaining"] = str(left + held - done)
    if len(uploads.files) == 1:
        return single_response(uploads, outcomes[0], kind, headers)
    return batch_response(uploads.files, outcomes, kind == "analysis", headers)


def _reserve(state: ServerState, key: ApiKey | None, calls: int) -> int | None:
    """Hold ``calls`` of the key's balance before any work (a short balance is refused before
    decoding); the balance left, or None without a key or for an unlimited one."""
    if key is None:
        return None
    try:
        return state.store().reserve(key.id, calls)
    except BalanceError as exc:
        raise ApiError(E.BALANCE_EXHAUSTED, f"{E.BALANCE_EXHAUSTED.msg}: {exc}") from None
    except KeyStoreError:
        raise ApiError(E.INVALID_KEY) from None


def single_response(
    uploads: Uploads, outcome: Outcome, kind: Kind, headers: dict[str, str]
) -> Response:
    """One file's answer: the file itself (``png``) or the JSON envelope; its error raised."""
    if isinstance(outcome, ApiError):
        raise outcome
    data, ext, body = outcome
    if kind == "png":
        name = f"{uploads.files[0].name}.{ext}"
        headers["Content-Disposition"] = f'inline; filename="{name}"'
        return Response(data, media_type=MEDIA_TYPES[ext], headers=headers)
    payload: dict[str, object] = {"imageBase64": base64.b64encode(data).decode("ascii")}
    if kind == "analysis":
        payload = {"bodyAnalysis": body, **payload}
    return JSONResponse(envelope(0, payload), headers=headers)


def batch_response(
    uploads: list[Upload], outcomes: list[Outcome], analysis: bool, headers: dict[str, str]
) -> Response:
    """Several files' answer: a zip of ``<name>.<ext>`` (and ``<name>.json`` analyses), with
    ``errors.json`` for the files that failed; the first error when every file failed."""
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


_PNG_OK = {"description": "the cut-out", "content": {"image/png": {}}}
_JSON_OK = {"description": "envelope with data.imageBase64", "content": {"application/json": {}}}


@router.post(
    "/api/v1/matting",
    summary="Cut the person out: the body is the RGBA PNG",
    openapi_extra=openapi_extra("Returns the PNG itself (a zip for several files).", _PNG_OK),
)
async def matting(request: Request, state: State) -> Response:
    return await handle(request, state, "png")


@router.post(
    "/api/v1/matting2",
    summary="Cut the person out: the PNG as base64 in a JSON envelope",
    openapi_extra=openapi_extra("Returns {code: 0, data: {imageBase64}, msg, time}.", _JSON_OK),
)
async def matting2(request: Request, state: State) -> Response:
    return await handle(request, state, "json")


@router.post(
    "/api/v1/mattingAndAnalysis",
    summary="Cut the person out and locate 21 body parts per person",
    openapi_extra=openapi_extra("Returns data.imageBase64 and data.bodyAnalysis.", _JSON_OK),
)
async def matting_and_analysis(request: Request, state: State) -> Response:
    return await handle(request, state, "analysis")


@router.get("/health", summary="Liveness and load")
async def health(state: State) -> dict[str, object]:
    from livematte import __version__

    return {"status": "ok", "version": __version__, **state.engine.load()}


@router.get("/api/v1/info", summary="Limits and whether this client needs a key")
async def info(request: Request, state: State) -> dict[str, object]:
    settings = state.settings
    return {
        "keyless": state.access.is_keyless(request),
        "max_batch": settings.max_batch,
        "max_file_bytes": settings.max_file_bytes,
        "max_request_bytes": settings.max_request_bytes,
        "max_pixels": settings.max_pixels,
        "formats": FORMATS,
        "error_codes": {e.code: [e.status, e.msg] for e in E.ALL_CODES},
    }


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html")
