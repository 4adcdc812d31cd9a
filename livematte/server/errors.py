"""Error codes of the HTTP API and the JSON envelope they travel in.

Every failure answers ``{"code": <non-zero>, "data": null, "msg": "<reason>", "time": <epoch ms>}``
with the HTTP status in the table below, on every route, the PNG route included (a client that
asked for a PNG and got JSON can tell from ``Content-Type``; ``curl -f`` exits non-zero on it).
Code 1001 (balance exhausted) is the one the hosted service documents; the others are ours and
keep the same shape.

====  ======  ==============================================================================
code  HTTP    meaning
====  ======  ==============================================================================
0     200     success
1001  402     the key's call balance is exhausted (top up with ``livematte keys topup``)
1002  401     no ``APIKEY`` header and this server requires keys
1003  401     the ``APIKEY`` is unknown or revoked
1004  429     rate limit exceeded, per key or, keyless, per client address (``Retry-After``)
1005  403     keyless mode refuses a request sent by another site's page (``Origin`` or
              ``Sec-Fetch-Site``): send an ``APIKEY``, or use this server's own page
1101  400     no ``file`` part (wrong field name, not multipart/form-data, or not a file)
1102  400     the uploaded file is empty
1103  415     not an image format we read (PNG, JPEG, BMP, GIF, WebP)
1104  422     the image is corrupt or truncated
1105  413     the file (or the whole request) is larger than the limit (15 MB per file)
1106  413     the image has more pixels than the limit (decompression-bomb guard)
1107  400     an optional field has a bad value (bg_color, size, format, ...)
1108  413     more files in one request than the batch limit
1109  408     the request's headers did not arrive in time (``livematte serve --header-timeout``)
1201  503     every worker is busy and the queue is full: retry later (``Retry-After``)
1202  500     processing failed on the server (a bug or a model problem; see the log)
1404  404     no such endpoint
1405  405     method not allowed on this endpoint
====  ======  ==============================================================================
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from livematte.errors import LivematteError


@dataclass(frozen=True)
class ErrorCode:
    """One row of the table: the API code, its HTTP status and a default message."""

    code: int
    status: int
    msg: str


BALANCE_EXHAUSTED = ErrorCode(1001, 402, "余额不足 (call balance exhausted)")
MISSING_KEY = ErrorCode(1002, 401, "missing APIKEY header")
INVALID_KEY = ErrorCode(1003, 401, "invalid or revoked API key")
RATE_LIMITED = ErrorCode(1004, 429, "rate limit exceeded")
CROSS_SITE = ErrorCode(
    1005, 403, "cross-site request refused: without an APIKEY only this server's own page may post"
)
MISSING_FILE = ErrorCode(1101, 400, "expected multipart/form-data with a 'file' part")
EMPTY_FILE = ErrorCode(1102, 400, "the uploaded file is empty")
UNSUPPORTED_IMAGE = ErrorCode(1103, 415, "unsupported image format (use PNG, JPEG, BMP, GIF, WebP)")
CORRUPT_IMAGE = ErrorCode(1104, 422, "the image is corrupt or truncated")
TOO_LARGE = ErrorCode(1105, 413, "file too large")
TOO_MANY_PIXELS = ErrorCode(1106, 413, "image has too many pixels")
BAD_OPTION = ErrorCode(1107, 400, "bad option value")
TOO_MANY_FILES = ErrorCode(1108, 413, "too many files in one request")
REQUEST_TIMEOUT = ErrorCode(1109, 408, "request not received in time")
UNSUITABLE_IMAGE = ErrorCode(1110, 422, "the image cannot be processed as asked")
BUSY = ErrorCode(1201, 503, "server busy, retry later")
INTERNAL = ErrorCode(1202, 500, "processing failed on the server")
NOT_FOUND = ErrorCode(1404, 404, "no such endpoint")
METHOD_NOT_ALLOWED = ErrorCode(1405, 405, "method not allowed")

#: Every code, for the docs page and the tests.
ALL_CODES: tuple[ErrorCode, ...] = (
    BALANCE_EXHAUSTED, MISSING_KEY, INVALID_KEY, RATE_LIMITED, CROSS_SITE, MISSING_FILE,
    EMPTY_FILE, UNSUPPORTED_IMAGE, CORRUPT_IMAGE, TOO_LARGE, TOO_MANY_PIXELS, BAD_OPTION,
    TOO_MANY_FILES, REQUEST_TIMEOUT, UNSUITABLE_IMAGE, BUSY, INTERNAL, NOT_FOUND,
    METHOD_NOT_ALLOWED,
)  # fmt: skip


class ApiError(LivematteError, ValueError):
    """A request that fails with one of the documented codes.

    Args:
        error: the table row.
        msg: a specific reason; defaults to the row's message.
        headers: extra response headers (``Retry-After``).

    Example::

        raise ApiError(TOO_LARGE, "file is 20.1 MB; the limit is 15 MB")
    """

    def __init__(
        self, error: ErrorCode, msg: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(msg or error.msg)
        self.error = error
        self.msg = msg or error.msg
        self.headers = headers or {}

    @property
    def code(self) -> int:
        return self.error.code

    @property
    def status(self) -> int:
        return self.error.status


def now_ms() -> int:
    """The envelope's ``time``: milliseconds since the epoch, as the service sends it."""
    return int(time.time() * 1000)


def envelope(code: int = 0, data: object = None, msg: str | None = None) -> dict[str, object]:
    """The JSON body every JSON answer has (success: code 0 and data; failure: msg)."""
    return {"code": code, "data": data, "msg": msg, "time": now_ms()}
