"""ASGI middleware of the server: the request body limit and the security headers."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livematte.server import errors as E
from livematte.server.errors import ApiError, envelope


def error_response(exc: ApiError) -> JSONResponse:
    """The JSON error envelope with the error's HTTP status and headers."""
    return JSONResponse(
        envelope(exc.code, None, exc.msg), status_code=exc.status, headers=exc.headers
    )


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes (code 1105) without
    buffering them: at once when Content-Length says so, else as soon as the stream passes."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            too_big = ApiError(E.TOO_LARGE, f"request body over {self.limit // 2**20} MB")
            await error_response(too_big)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                # Raised inside request.form(); the ApiError handler answers 413.
                raise ApiError(E.TOO_LARGE, f"request body over {self.limit // 2**20} MB")
            return message

        await self.app(scope, limited, send)


#: The web page: its own scripts and styles only (no inline code, nothing from elsewhere);
#: cut-outs are shown and downloaded as blob: URLs; it talks to this server only.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
#: Swagger UI and ReDoc (FastAPI's pages, served offline): they start from an inline script
#: and inline styles, ReDoc runs a blob: worker; still nothing from another origin.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; "
    "font-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
#: Everything else (JSON, PNG, zip, scripts, styles): nothing to run, never in a frame.
API_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
DOCS_PATHS = ("/docs", "/redoc")


def csp_for(path: str) -> str:
    """The Content-Security-Policy for a response to ``path``."""
    if path == "/":
        return PAGE_CSP
    if path.startswith(DOCS_PATHS):
        return DOCS_CSP
    return API_CSP


class SecurityHeaders:
    """ASGI middleware: every response says what it is (``nosniff``), may not be framed
    (``X-Frame-Options`` and CSP ``frame-ancestors``), leaks no URL on navigation
    (``Referrer-Policy``) and carries a CSP for what it is (``csp_for``)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy", csp_for(scope.get("path", "")).encode("ascii")),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
