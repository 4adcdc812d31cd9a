"""What every route needs, in one typed place: ``ServerState`` on ``app.state.server``.

The routes (``livematte.server.routes``) take it as a FastAPI dependency (``server_state``)
instead of closing over variables.  It holds the settings, the pipeline config, who may call
(``Access``), the key store and the inference ``Engine``.

The config is resolved when the app is built (cheap: a bad preset fails then, one line); the
engine and its worker pool are made at start-up (the app's lifespan, ``start``) or on first
use when nothing ran the lifespan (``livematte serve`` warms it before uvicorn starts), never
when a module is imported.  ``stop`` closes it; a later start makes a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request

from livematte.server.access import Access
from livematte.server.engine import Engine, ProcessFn, ServerSettings, server_config
from livematte.server.keys import KeyStore, RateLimiter

if TYPE_CHECKING:
    from pathlib import Path

    from livematte.config import Config


@dataclass
class ServerState:
    """The app's state: built by ``create_app``, read by every route.

    Attributes:
        settings: limits, worker pool and keyless mode.
        config: the pipeline config the workers run (``engine.server_config``).
        process: ``(bgr, analysis) -> MattingResult`` standing in for the models, or None.
        key_store: the key store given, else None until ``store()`` opens the default one.
        limiter: a shared rate limiter (the Ray Serve app's), else None: access makes one.
        access: who may call (keys, keyless mode, cross-site, rate limits).
    """

    settings: ServerSettings
    config: Config
    process: ProcessFn | None = None
    key_store: KeyStore | None = None
    limiter: RateLimiter | None = None
    access: Access = field(init=False)
    _engine: Engine | None = field(default=None, init=False, repr=False)
    _starts: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.access = Access(self.settings, self.store, self.limiter)

    @classmethod
    def build(
        cls,
        config: Config | str | Path | None,
        settings: ServerSettings,
        *,
        key_store: KeyStore | None = None,
        process: ProcessFn | None = None,
        limiter: RateLimiter | None = None,
    ) -> ServerState:
        """Resolve the config (a bad preset fails here) and set up access; no engine yet."""
        return cls(settings, server_config(config, settings.workers), process, key_store, limiter)

    def store(self) -> KeyStore:
        """The key store, opened on first need (a keyless server never touches it)."""
        if self.key_store is None:
            self.key_store = KeyStore()
        return self.key_store

    @property
    def running(self) -> bool:
        """An engine exists (started, or made on first use) and has not been stopped."""
        return self._engine is not None

    @property
    def engine(self) -> Engine:
        """The inference engine, made on first use when ``start`` has not run."""
        if self._engine is None:
            self._engine = Engine(self.config, self.settings, process=self.process)
        return self._engine

    async def start(self) -> None:
        """Start-up: make the engine and, when the settings say so, warm every worker.

        Each ``start`` is ended by one ``stop``; the engine stops with the last of them (one
        app served twice at once, as two test clients do, keeps it until both are done).
        """
        self._starts += 1
        engine = self.engine
        if self.settings.warmup:
            await engine.warmup()

    def stop(self) -> None:
        """Shutdown: stop the worker pool and close its pipelines, after the last ``start``
        (or at once when none ran: an engine made on first use); a later use makes a new one.
        """
        self._starts = max(0, self._starts - 1)
        if self._starts > 0:
            return
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()


def app_state(app: Starlette) -> ServerState:
    """The ``ServerState`` of an app made by ``create_app``."""
    state = getattr(app.state, "server", None)
    if not isinstance(state, ServerState):
        raise TypeError("app.state.server is not a ServerState: build the app with create_app")
    return state


def server_state(request: Request) -> ServerState:
    """The FastAPI dependency every route takes: the app's ``ServerState``."""
    return app_state(request.app)
