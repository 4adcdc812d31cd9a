"""Fixtures for the server tests: app clients on the fake or the real pipeline, a live server
(the plain helpers they use are in ``server_helpers.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from media import free_port
from server_helpers import NO_LIMIT, TestClient, fake_process

from livematte.server.app import create_app
from livematte.server.engine import ServerSettings
from livematte.server.keys import KeyStore


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """``make_client(settings=..., process=..., key_store=..., config=...)`` -> TestClient."""
    clients: list[TestClient] = []

    def make(*, settings: ServerSettings | None = None, process=fake_process, **kwargs):
        settings = settings or ServerSettings(keyless="on", warmup=False, rate=NO_LIMIT)
        client = TestClient(create_app(settings=settings, process=process, **kwargs))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    """Keyless app on the fake pipeline."""
    return make_client()


@pytest.fixture(scope="session")
def real_client() -> Iterator[TestClient]:
    """Keyless app on the real pipeline ("default" preset: guided refinement, fast)."""
    settings = ServerSettings(keyless="on", warmup=False, rate=NO_LIMIT)
    app = create_app("default", settings=settings)
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[str]:
    """uvicorn on a free 127.0.0.1 port in a thread, real pipeline, keyless for local clients
    (an empty key database of its own: never the user's)."""
    uvicorn = pytest.importorskip("uvicorn")
    port = free_port()
    store = KeyStore(tmp_path_factory.mktemp("live-keys") / "keys.sqlite3")
    settings = ServerSettings(keyless="auto", rate=NO_LIMIT)
    app = create_app("default", settings=settings, key_store=store)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
