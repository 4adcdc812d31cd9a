"""Reading a matting request's multipart body: the ``file`` parts, the options, ``bg_image``.

The form is parsed by hand (not by FastAPI's ``File()`` parameters) so the key is checked
before the body is read, and every limit is an ApiError in the JSON envelope: the number of
files (1108), each file's size (1105), a missing or empty ``file`` (1101/1102), a bad option
(1107, ``livematte.server.form``).  Decoding happens later, on a worker thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from livematte.server import errors as E
from livematte.server.engine import ServerSettings
from livematte.server.errors import ApiError
from livematte.server.form import parse_options
from livematte.server.images import RenderOptions

#: Fields a matting form may carry besides its files (the options are about 15).
MAX_FIELDS = 64

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Upload:
    """One uploaded file: a safe stem for names in the answer, and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Uploads:
    """A matting request's body: its files in order, the options and the background picture."""

    files: list[Upload]
    options: RenderOptions
    bg_image: bytes | None = None


def stem(filename: str | None, index: int) -> str:
    """A safe zip entry stem from an upload's filename (no paths, no odd characters)."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _SAFE.sub("_", base.rsplit(".", 1)[0] if "." in base else base).strip("._")
    return name[:80] or f"image{index + 1}"


async def read_uploads(request: Request, settings: ServerSettings) -> Uploads:
    """The request's files, options and ``bg_image``, within ``settings``' limits.

    Raises:
        ApiError: 1101/1102 (no file, empty), 1105 (too large), 1107 (option), 1108 (files).
    """
    too_many = f"at most {settings.max_batch} files per request"
    try:
        form = await request.form(max_files=settings.max_batch + 1, max_fields=MAX_FIELDS)
    except StarletteHTTPException as exc:
        if "files" in str(exc.detail).lower():
            raise ApiError(E.TOO_MANY_FILES, too_many) from None
        raise ApiError(E.MISSING_FILE, f"malformed multipart body: {exc.detail}") from None
    parts = form.getlist("file")
    if not parts:
        names = sorted(set(form.keys()))
        got = f" (got fields: {', '.join(names)})" if names else ""
        raise ApiError(E.MISSING_FILE, f"{E.MISSING_FILE.msg}{got}")
    if len(parts) > settings.max_batch:
        raise ApiError(E.TOO_MANY_FILES, too_many)
    options = parse_options(form)
    files = []
    for i, part in enumerate(parts):
        if not isinstance(part, UploadFile):
            if not part:  # a form sent without choosing a file
                raise ApiError(E.EMPTY_FILE)
            raise ApiError(E.MISSING_FILE, "'file' must be a file upload, not a text field")
        files.append(Upload(stem(part.filename, i), await _read(part, settings.max_file_bytes)))
    bg_part = form.get("bg_image")
    bg_image = None
    if isinstance(bg_part, UploadFile):
        if "effects.background" in dict(options.look):
            raise ApiError(E.BAD_OPTION, "give bg (or bg_color) or bg_image, not both")
        bg_image = await _read(bg_part, settings.max_file_bytes)
    await form.close()
    return Uploads(files, options, bg_image)


async def _read(part: UploadFile, limit: int) -> bytes:
    """One file part's bytes; 1105 when it is over ``limit`` bytes."""
    if part.size is not None and part.size > limit:
        raise ApiError(
            E.TOO_LARGE,
            f"{part.filename or 'file'} is {part.size / 2**20:.1f} MB; "
            f"the limit is {limit / 2**20:.0f} MB",
        )
    return await part.read()
