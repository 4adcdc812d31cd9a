"""The app's state: the engine is made at start-up (or first use), never by ``create_app``
or an import, and every lifespan gets a working one."""

from __future__ import annotations

import pytest
from server_helpers import NO_LIMIT, TestClient, fake_process, image_bytes

from livematte.config import load_config
from livematte.errors import ConfigError, ModelError
from livematte.server.app import app_state, create_app
from livematte.server.engine import ServerSettings
from livematte.server.state import ServerState

SETTINGS = ServerSettings(keyless="on", warmup=False, rate=NO_LIMIT)


def post(client: TestClient) -> int:
    files = {"file": ("a.png", image_bytes(), "image/png")}
    return client.post("/api/v1/matting", files=files).status_code


def test_create_app_makes_no_engine_the_lifespan_does():
    app = create_app(settings=SETTINGS, process=fake_process)
    state = app_state(app)
    assert isinstance(state, ServerState) and not state.running
    with TestClient(app) as client:
        assert state.running
        assert post(client) == 200
    assert not state.running  # shutdown stopped the pool


def test_the_app_runs_again_after_a_shutdown():
    app = create_app(settings=SETTINGS, process=fake_process)
    for _ in range(2):
        with TestClient(app) as client:
            assert post(client) == 200
            assert client.get("/health").json()["in_flight"] == 0


def test_one_app_served_twice_at_once_keeps_its_engine_until_both_end():
    app = create_app(settings=SETTINGS, process=fake_process)
    state = app_state(app)
    with TestClient(app) as one:
        with TestClient(app) as two:
            assert post(two) == 200
        assert state.running and post(one) == 200
    assert not state.running


def test_a_warmup_that_fails_stops_the_engine_it_started():
    settings = ServerSettings(keyless="on", warmup=True, rate=NO_LIMIT)
    app = create_app(load_config("default", {"matting.model": "/no/m.onnx"}), settings=settings)
    state = app_state(app)
    with pytest.raises(ModelError), TestClient(app):
        pass
    assert not state.running


def test_without_a_lifespan_the_engine_is_made_on_first_use():
    app = create_app(settings=SETTINGS, process=fake_process)
    client = TestClient(app)  # never entered: no start-up ran
    assert post(client) == 200 and app_state(app).running
    app_state(app).stop()
    assert not app_state(app).running


def test_a_bad_preset_fails_when_the_app_is_built():
    with pytest.raises(ConfigError):
        create_app("no-such-preset", settings=SETTINGS)


def test_app_state_refuses_an_app_not_built_by_create_app():
    from fastapi import FastAPI

    with pytest.raises(TypeError, match="create_app"):
        app_state(FastAPI())
