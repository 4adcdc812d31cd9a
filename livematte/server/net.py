"""The socket side of ``livematte serve``: the listening socket and a guard on each connection.

uvicorn reads a request's headers and body for as long as the client cares to send them
(its keep-alive timeout only runs *between* requests) and accepts any number of connections,
so 40 clients sending their headers a byte a second held 40 sockets for as long as they
liked (measured: all still open after 40 s).  ``guarded_protocol`` subclasses uvicorn's h11
protocol and, per connection:

* closes it when a request's headers are not complete ``header_timeout`` seconds after the
  connection opened or the request's first byte arrived (answering 408 first: nothing was
  sent on it yet, so a well-formed answer is still possible);
* closes it when the body is not complete ``body_timeout`` seconds after the headers (the
  app then sees a disconnect and drops the upload);
* answers 503 and closes at once when more than ``max_connections`` are open.

The watch reads h11's public connection state (``their_state``: IDLE while headers arrive,
SEND_BODY while the body does), so it holds whatever uvicorn does with the bytes.
``listen`` binds the socket before uvicorn starts, so a busy port is one error line
(``LivematteError``), not uvicorn's log and its own exit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket

from livematte.errors import LivematteError
from livematte.server import errors as E
from livematte.server.engine import ServerSettings
from livematte.server.errors import envelope

log = logging.getLogger("livematte.server")


class ListenError(LivematteError, OSError):
    """The address cannot be bound (port in use, not ours to bind, unknown host)."""

    exit_code = 1


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (IPv6 when ``host`` has a colon), ready for uvicorn.

    Raises:
        ListenError: with the reason in one line ("address already in use", ...).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Lets a restarted server reuse a port whose old connections linger in TIME_WAIT;
        # on Linux it never lets two servers listen on the same port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if isinstance(exc, socket.gaierror):
            reason = f"unknown host ({reason})"
        shown = f"[{host}]" if ":" in host else host
        raise ListenError(f"cannot listen on {shown}:{port}: {reason}") from None
    return sock


def raw_response(status: int, reason: str, error: E.ErrorCode, msg: str) -> bytes:
    """A complete HTTP/1.1 answer carrying the API's JSON error envelope, then close."""
    body = json.dumps(envelope(error.code, None, msg)).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        "X-Content-Type-Options: nosniff\r\n"
    )
    if status == 503:
        head += "Retry-After: 1\r\n"
    return head.encode("ascii") + b"\r\n" + body


def _refusals(settings: ServerSettings) -> tuple[bytes, bytes]:
    """The raw answers to a connection over the cap (503) and to headers too slow (408)."""
    too_many = raw_response(
        503, "Service Unavailable", E.BUSY, f"more than {settings.max_connections} connections"
    )
    too_slow = raw_response(
        408,
        "Request Timeout",
        E.REQUEST_TIMEOUT,
        f"request headers not received within {settings.header_timeout:g} s",
    )
    return too_many, too_slow


def guarded_protocol(settings: ServerSettings) -> type:
    """uvicorn's h11 protocol with ``settings``' header/body timeouts and connection cap;
    pass it as ``uvicorn.Config(http=...)``."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    too_many, too_slow = _refusals(settings)

    class GuardedH11Protocol(H11Protocol):
        _guard: asyncio.TimerHandle | None = None
        _phase: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > settings.max_connections:
                log.info("refused %s: %d connections open", self.client, len(self.connections))
                transport.write(too_many)
                transport.close()
                return
            self._watch()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch()  # a pipelined request may be part-read now

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _disarm(self) -> None:
            if self._guard is not None:
                self._guard.cancel()
                self._guard = None

        def _watch(self) -> None:
            """(Re)arm the timer when the request moves between headers, body and done."""
            state = self.conn.their_state
            phase = {h11.IDLE: "headers", h11.SEND_BODY: "body"}.get(state)
            if phase == self._phase:
                return
            self._disarm()
            self._phase = phase
            if phase is not None and not self.transport.is_closing():
                limit = settings.header_timeout if phase == "headers" else settings.body_timeout
                self._guard = self.loop.call_later(limit, self._expire, phase, limit)

        def _expire(self, phase: str, limit: float) -> None:
            self._guard = None
            if self.transport.is_closing():
                return
            log.info("closed %s: request %s not received within %g s", self.client, phase, limit)
            if phase == "headers" and self.conn.our_state is h11.IDLE:
                self.transport.write(too_slow)
            self.transport.close()

    return GuardedH11Protocol
