"""Who may call the API (livematte.server.access): keys always checked, keyless mode, the
cross-site refusal, per-address rate limits; and what a keyed request is charged."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from server_helpers import NO_LIMIT, TestClient, assert_error, fake_process, post

from livematte.server.app import create_app
from livematte.server.engine import MattingResult, ServerSettings
from livematte.server.keys import KeyStore

LOCAL = {"base_url": "http://127.0.0.1:8000", "client": ("127.0.0.1", 50000)}
PLACEHOLDER = {"APIKEY": "INSERT_YOUR_API_KEY_HERE"}


@pytest.fixture
def store(tmp_path):
    with KeyStore(tmp_path / "keys.sqlite3") as s:
        yield s


@pytest.fixture
def local(store):
    """``make(keyless=..., rate=..., client=...)``: a TestClient as a local browser or script."""
    clients = []

    def make(keyless="auto", rate=NO_LIMIT, process=fake_process, client=LOCAL["client"], **kw):
        settings = ServerSettings(keyless=keyless, warmup=False, rate=rate, **kw)
        app = create_app(settings=settings, process=process, key_store=store)
        client = TestClient(app, base_url=LOCAL["base_url"], client=client)
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_a_wrong_key_is_refused_even_when_keyless(local, store):
    c = local("auto")
    assert post(c, headers=PLACEHOLDER).status_code == 200  # the docs' example, as written
    assert post(c).status_code == 200
    assert_error(post(c, headers={"APIKEY": "lm_wrongwrongwrongwrongwrong"}), 1003, 401)
    assert_error(post(c, headers={"APIKEY": "anything"}), 1003, 401)
    on = local("on")
    assert_error(post(on, headers={"X-Api-Key": "lm_wrongwrongwrongwrongwrong"}), 1003, 401)


def test_the_first_key_switches_auto_keyless_off(local, store):
    c = local("auto")
    assert c.get("/api/v1/info").json()["keyless"] is True
    key, token = store.create(calls=3)  # while the server runs
    assert c.get("/api/v1/info").json()["keyless"] is False
    assert_error(post(c), 1002, 401)
    missing = post(c)
    assert "livematte keys create" in missing.json()["msg"]
    placeholder = post(c, headers=PLACEHOLDER)
    assert_error(placeholder, 1003, 401)
    assert "placeholder" in placeholder.json()["msg"]
    assert_error(post(c, headers={"APIKEY": token[:-2] + "xx"}), 1003, 401)
    ok = post(c, headers={"APIKEY": token})
    assert ok.status_code == 200 and ok.headers["x-calls-remaining"] == "2"
    store.revoke(key.id)
    assert_error(post(c), 1002, 401)  # revoking every key does not reopen keyless mode
    # --keyless on: no key needed, but a key that is sent is still checked.
    on = local("on")
    assert post(on).status_code == 200
    assert_error(post(on, headers={"APIKEY": token}), 1003, 401)


def test_keyless_clients_are_rate_limited_per_address(local, store):
    auto = local("auto", rate=1.0)
    assert post(auto).status_code == 200
    limited = post(auto)
    assert_error(limited, 1004, 429)
    assert int(limited.headers["retry-after"]) >= 1
    app = create_app(
        settings=ServerSettings(keyless="on", warmup=False, rate=1.0), process=fake_process
    )
    with (
        TestClient(app, client=("192.0.2.1", 5000)) as one,
        TestClient(app, client=("192.0.2.2", 5000)) as two,
    ):
        assert post(one).status_code == 200
        assert_error(post(one), 1004, 429)
        assert post(two).status_code == 200  # another address has its own bucket


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a file:// page
        {"Origin": "http://127.0.0.1:9999"},  # another local server's page
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # e.g. http://localhost:3000
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1:8000"},
    ],
)
def test_keyless_refuses_other_sites_pages(local, headers):
    for mode in ("auto", "on"):
        r = post(local(mode), headers=headers)
        assert_error(r, 1005, 403)
        assert r.headers["content-type"] == "application/json"


def test_keyless_admits_its_own_page_and_non_browser_clients(local, store):
    c = local("auto")
    own = {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}
    assert post(c, headers=own).status_code == 200
    assert post(c, headers={"Sec-Fetch-Site": "none"}).status_code == 200  # typed in
    assert post(c).status_code == 200  # curl, requests: neither header
    # A keyed request is not keyless: another site's page may use it with its key.
    _, token = store.create()
    assert post(c, headers={"APIKEY": token, "Origin": "http://evil.example"}).status_code == 200


@pytest.mark.parametrize(
    "header", ["X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host"]
)
def test_a_proxied_request_is_not_local(local, header):
    c = local("auto")
    assert_error(post(c, headers={header: "203.0.113.9"}), 1002, 401)
    assert c.get("/api/v1/info", headers={header: "203.0.113.9"}).json()["keyless"] is False


# --- what a keyed request is charged --------------------------------------------------------------


def blocking(release: threading.Event, calls: list):
    def process(bgr, analysis):
        calls.append(1)
        release.wait(10)
        return MattingResult(np.ones(bgr.shape[:2], np.float32), bgr, None)

    return process


def test_an_exhausted_key_is_refused_before_the_work(local, store):
    release, calls = threading.Event(), []
    c = local("off", process=blocking(release, calls), workers=2)
    _, token = store.create(calls=1)
    first = {}
    key = {"APIKEY": token}
    thread = threading.Thread(target=lambda: first.setdefault("r", post(c, headers=key)))
    thread.start()
    try:
        while not calls:
            threading.Event().wait(0.01)
        # The one call is held by the first request: the second is refused at once.
        assert_error(post(c, headers=key), 1001, 402)
        assert len(calls) == 1
    finally:
        release.set()
        thread.join(10)
    assert first["r"].status_code == 200 and first["r"].headers["x-calls-remaining"] == "0"


def test_parallel_successes_report_their_own_balance(local, store):
    barrier = threading.Barrier(5, timeout=10)

    def together(bgr, analysis):
        barrier.wait()  # all five are in the work at once
        return MattingResult(np.ones(bgr.shape[:2], np.float32), bgr, None)

    c = local("off", process=together, workers=5)
    key, token = store.create(calls=5)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(post(c, headers={"APIKEY": token})))
        for _ in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert [r.status_code for r in results] == [200] * 5
    assert sorted(r.headers["x-calls-remaining"] for r in results) == ["0", "1", "2", "3", "4"]
    assert (store.get(key.id).calls, store.get(key.id).used) == (0, 5)
