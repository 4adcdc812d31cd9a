"""API keys: hashed storage, persistence, atomic balance, rate limits, and the `keys` CLI."""

from __future__ import annotations

import hashlib
import os
import stat
import threading

import pytest

from livematte import cli
from livematte.cli import serve as commands
from livematte.server.keys import (
    DEFAULT_RATE,
    BalanceError,
    KeyStore,
    KeyStoreError,
    RateLimiter,
    default_path,
    hash_token,
)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "sub" / "keys.sqlite3"


@pytest.fixture
def store(db):
    with KeyStore(db) as s:
        yield s


def test_create_and_verify(store):
    key, token = store.create(name="ci", calls=5, rate=2.0)
    assert token.startswith("lm_") and len(token) >= 40
    assert store.verify(token) == key
    assert (key.name, key.calls, key.rate, key.used, key.active) == ("ci", 5, 2.0, 0, True)
    assert key.prefix == token[:10]


@pytest.mark.parametrize(
    "token", ["", "lm_", "nope", "lm_" + "x" * 43, "x" * 10_000, "lm_\udcff", None]
)
def test_bad_tokens_are_refused(store, token):
    _, good = store.create()
    if token == "lm_" + "x" * 43:
        token = good[:-1] + ("x" if good[-1] != "x" else "y")  # same prefix, one char off
    assert store.verify(token or "") is None


def test_only_the_hash_is_stored(db, store):
    _, token = store.create(name="secret-test")
    store.close()
    raw = b"".join(p.read_bytes() for p in db.parent.iterdir())
    assert token.encode() not in raw
    assert token[10:].encode() not in raw
    assert hashlib.sha256(token.encode()).hexdigest() == hash_token(token)
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(db.parent).st_mode) == 0o700


def test_keys_survive_a_restart(db):
    with KeyStore(db) as first:
        key, token = first.create(calls=3)
        assert first.reserve(key.id) == 2
        first.settle(key.id, held=1, used=1)
    with KeyStore(db) as second:
        again = second.verify(token)
        assert again is not None and again.id == key.id and again.calls == 2 and again.used == 1


def test_revoke(store):
    key, token = store.create()
    revoked = store.revoke(key.id)
    assert not revoked.active and store.verify(token) is None
    assert store.revoke(key.id).revoked == revoked.revoked  # idempotent
    with pytest.raises(KeyStoreError, match="revoked"):
        store.reserve(key.id)
    with pytest.raises(KeyStoreError):
        store.revoke(999)


def test_topup(store):
    key, _ = store.create(calls=1)
    assert store.topup(key.id, 4).calls == 5
    unlimited, _ = store.create()
    for key_id, calls in ((unlimited.id, 1), (key.id, 0), (999, 1)):
        with pytest.raises(KeyStoreError):
            store.topup(key_id, calls)
    store.revoke(key.id)
    with pytest.raises(KeyStoreError, match="revoked"):
        store.topup(key.id, 1)


def test_create_validates(store):
    with pytest.raises(KeyStoreError):
        store.create(calls=-1)
    with pytest.raises(KeyStoreError):
        store.create(rate=0)
    assert isinstance(KeyStoreError("x"), LookupError)


def test_reserve_never_overspends_and_each_sees_its_own_balance(store):
    key, _ = store.create(calls=50)
    balances = []

    def spend():
        for _ in range(20):
            try:
                balances.append(store.reserve(key.id))
            except BalanceError:
                continue
            store.settle(key.id, held=1, used=1)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 50 holds won, and each saw the balance right after its own: 49, 48, ..., 0, once each.
    assert sorted(balances) == list(range(50))
    after = store.get(key.id)
    assert after.calls == 0 and after.used == 50 and after.last_used is not None


def test_reserve_many_settle_refunds_failures_and_unlimited(store):
    key, _ = store.create(calls=3)
    with pytest.raises(BalanceError, match="3 calls left for 4 files"):
        store.reserve(key.id, 4)
    assert store.get(key.id).calls == 3  # a refused hold takes nothing
    assert store.reserve(key.id, 3) == 0
    store.settle(key.id, held=3, used=1)  # two files failed: their calls come back
    after = store.get(key.id)
    assert (after.calls, after.used) == (2, 1)
    assert store.reserve(key.id, 2) == 0
    store.settle(key.id, held=2, used=0)  # every file failed: nothing spent, nothing "used"
    assert store.get(key.id) == after
    with pytest.raises(ValueError):
        store.settle(key.id, held=1, used=2)
    free, _ = store.create()
    for _ in range(5):
        assert store.reserve(free.id) is None
        store.settle(free.id, held=1, used=1)
    assert store.get(free.id).calls is None and store.get(free.id).used == 5


def test_has_keys_counts_revoked_ones(store):
    assert not store.has_keys()
    key, _ = store.create()
    assert store.has_keys()
    store.revoke(key.id)
    assert store.has_keys()  # revoking every key must not reopen keyless mode


def test_rate_limiter_token_bucket():
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert limiter.acquire(1, DEFAULT_RATE) == 0.0
    wait = limiter.acquire(1, DEFAULT_RATE)
    assert 0.9 < wait <= 1.0
    assert limiter.acquire(2, DEFAULT_RATE) == 0.0  # keys are independent
    now[0] += 1.0
    assert limiter.acquire(1, DEFAULT_RATE) == 0.0
    # rate 5: a burst of 5, then ~0.2 s apart
    assert all(limiter.acquire(3, 5.0) == 0.0 for _ in range(5))
    assert 0.1 < limiter.acquire(3, 5.0) <= 0.2


def test_default_path(monkeypatch, tmp_path):
    monkeypatch.delenv("LIVEMATTE_KEYS_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_path() == tmp_path / "livematte" / "keys.sqlite3"
    monkeypatch.setenv("LIVEMATTE_KEYS_DB", str(tmp_path / "x.db"))
    assert default_path() == tmp_path / "x.db"


# --- the CLI ------------------------------------------------------------------------------------


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_cli_round_trip(capsys, db):
    code, out, err = run_cli(
        capsys, "keys", "--db", str(db), "create", "--calls", "2", "--name", "ci"
    )
    token = out.strip()
    assert code == 0 and token.startswith("lm_") and "cannot be shown again" in err
    code, out, _ = run_cli(capsys, "keys", "--db", str(db), "list")
    assert code == 0 and "ci" in out and token[:10] in out and token not in out
    assert run_cli(capsys, "keys", "--db", str(db), "topup", "1", "--calls", "3")[0] == 0
    with KeyStore(db) as s:
        assert s.verify(token).calls == 5
    assert run_cli(capsys, "keys", "--db", str(db), "revoke", "1")[0] == 0
    code, out, _ = run_cli(capsys, "keys", "--db", str(db), "list")
    assert "revoked" in out
    code, _, err = run_cli(capsys, "keys", "--db", str(db), "revoke", "42")
    assert code == 2 and "no API key with id 42" in err


def test_topup_takes_calls_like_create(capsys, db):
    keys = ("keys", "--db", str(db))
    assert run_cli(capsys, *keys, "create", "--calls", "1")[0] == 0
    code, _, err = run_cli(capsys, *keys, "topup", "1", "--calls", "4")
    assert code == 0 and err.strip() == "livematte: key 1 '': 5 calls"
    # The old positional form still works, with a note saying what to write instead.
    code, _, err = run_cli(capsys, *keys, "topup", "1", "2")
    assert code == 0 and "deprecated; write `keys topup 1 --calls 2`" in err
    assert err.splitlines()[-1] == "livematte: key 1 '': 7 calls"
    code, _, err = run_cli(capsys, *keys, "topup", "1")
    assert (
        code == 2
        and err.strip() == "livematte: error: keys topup: say how many calls to add: --calls N"
    )
    code, _, err = run_cli(capsys, *keys, "topup", "1", "2", "--calls", "3")
    assert code == 2 and "give the calls once" in err
    with KeyStore(db) as s:
        assert s.get(1).calls == 7


def test_env_var_picks_the_database(capsys, monkeypatch, db):
    monkeypatch.setenv("LIVEMATTE_KEYS_DB", str(db))
    assert run_cli(capsys, "keys", "create")[0] == 0
    assert db.exists()


def test_serve_and_keys_are_cli_commands():
    import argparse

    from livematte.cli.base import COMMANDS

    assert {"serve", "keys"} <= set(COMMANDS)
    parser = argparse.ArgumentParser()
    handler = COMMANDS["serve"].builder(parser)
    args = parser.parse_args([])
    assert callable(handler) and (args.host, args.port, args.keyless) == ("127.0.0.1", 8000, None)
    assert parser.parse_args(["--require-key"]).keyless == "off"
    assert parser.parse_args(["--keyless"]).keyless == "on"  # the bare flag, as before
    for mode in ("auto", "on", "off"):
        assert parser.parse_args(["--keyless", mode]).keyless == mode
    limits = parser.parse_args(["--header-timeout", "3", "--body-timeout", "4"])
    assert (limits.header_timeout, limits.body_timeout, limits.max_connections) == (3, 4, 100)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
     ("0.0.0.0", False), ("192.168.1.5", False), ("example.com", False), ("::", False)],
)  # fmt: skip
def test_is_loopback(host, loopback):
    assert commands.is_loopback(host) is loopback
