"""API keys: created, listed, revoked and topped up from the CLI; checked by the server.

Keys live in SQLite (stdlib ``sqlite3``) at ``$LIVEMATTE_KEYS_DB``, else
``$XDG_DATA_HOME/livematte/keys.sqlite3`` (``~/.local/share/livematte/keys.sqlite3``), so they
survive restarts, and the CLI can top up or revoke a key while the server runs (WAL mode; every
request reads the row afresh, so a revocation takes effect on the next request).

Only a SHA-256 of each token is stored.  A fast hash is the right tool here, unlike for
passwords: a token is 32 random bytes (256 bits) from ``secrets``, so there is nothing to
guess and no dictionary to try; a slow KDF (bcrypt, argon2) would only add ~100 ms to every
request.  A stolen database therefore yields no usable key.  The first 10 characters of the
token are kept in clear as a public *prefix* (shown by ``keys list``, used to find the row); the
hash is then compared with ``hmac.compare_digest`` so the comparison takes the same time
whatever the input.

A key's ``calls`` is its balance (None = unlimited).  The server *holds* a request's calls
before any work (``reserve``: one conditional ``UPDATE ... WHERE calls >= n RETURNING calls``,
so two concurrent requests can never hold the same last call, and each learns the balance
right after its own hold) and *settles* them after it (``settle``: the calls of the files that
failed go back, ``used`` counts the ones that succeeded).  So a key with no calls left is
refused before its image is decoded, and only successes are paid for.  A server killed
between the two keeps the held calls spent.

Example::

    store = KeyStore()                       # default path
    key, token = store.create(name="ci", calls=100)
    assert store.verify(token) == key        # ApiKey, or None for a bad/revoked token
    left = store.reserve(key.id, 2)          # 98 (None: unlimited); BalanceError if short
    store.settle(key.id, held=2, used=1)     # one file failed: its call comes back -> 99
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

from livematte.errors import LivematteError

#: Default per-key rate, requests per second: the hosted service's "QPS限制为 1次/秒".
DEFAULT_RATE = 1.0
TOKEN_PREFIX = "lm_"
_PREFIX_LEN = 10
_TOKEN_RE = re.compile(r"lm_[A-Za-z0-9_-]{16,128}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT NOT NULL DEFAULT '',
    prefix    TEXT NOT NULL,
    hash      TEXT NOT NULL UNIQUE,
    calls     INTEGER,            -- remaining balance; NULL = unlimited
    rate      REAL,               -- requests per second; NULL = the server's default
    used      INTEGER NOT NULL DEFAULT 0,
    created   REAL NOT NULL,
    last_used REAL,
    revoked   REAL
);
CREATE INDEX IF NOT EXISTS keys_prefix ON keys(prefix);
"""


#: Columns in ApiKey field order (the hash is read only by ``verify``).
_COLS = "id, name, prefix, calls, rate, used, created, last_used, revoked"


class KeyStoreError(LivematteError, LookupError):
    """A key id that does not exist, or an operation that makes no sense for that key."""

    exit_code = 2


class BalanceError(KeyStoreError):
    """The key's balance does not cover the calls asked for (``reserve``)."""


@dataclass(frozen=True)
class ApiKey:
    """One stored key (never the token itself)."""

    id: int
    name: str
    prefix: str
    calls: int | None
    rate: float | None
    used: int
    created: float
    last_used: float | None
    revoked: float | None

    @property
    def active(self) -> bool:
        return self.revoked is None


def default_path() -> Path:
    """Where keys live: ``$LIVEMATTE_KEYS_DB`` or the XDG user data directory."""
    override = os.environ.get("LIVEMATTE_KEYS_DB")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "livematte" / "keys.sqlite3"


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (see the module docstring for why SHA-256 suffices)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class KeyStore:
    """API keys in one SQLite file; safe to share between threads of one process.

    Args:
        path: the database file; created (parent directory 0700, file 0600) when missing.
            ``":memory:"`` keeps keys in memory (tests).
    """

    def __init__(self, path: str | Path | None = None):
        self.path = str(path) if path is not None else str(default_path())
        if self.path != ":memory:":
            parent = Path(self.path).parent
            parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # One connection guarded by a lock: each statement takes microseconds, and SQLite
        # serialises writers anyway.  check_same_thread=False because the server's event loop
        # and worker threads both use it.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=5.0, check_same_thread=False, isolation_level=None
        )
        if self.path != ":memory:":
            os.chmod(self.path, 0o600)  # hashes only, but nobody else needs to read them
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- management (the CLI) --------------------------------------------------------------

    def create(
        self, name: str = "", calls: int | None = None, rate: float | None = None
    ) -> tuple[ApiKey, str]:
        """Create a key; return it and its token (only the hash is stored: show the token once).

        Raises:
            KeyStoreError: negative ``calls`` or non-positive ``rate``.
        """
        if calls is not None and calls < 0:
            raise KeyStoreError(f"--calls must be 0 or more, got {calls}")
        if rate is not None and not rate > 0:
            raise KeyStoreError(f"--rate must be more than 0, got {rate}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO keys (name, prefix, hash, calls, rate, created) VALUES (?,?,?,?,?,?)",
                (name, token[:_PREFIX_LEN], hash_token(token), calls, rate, time.time()),
            )
        if cur.lastrowid is None:  # sqlite3 sets it after every successful INSERT
            raise KeyStoreError("the new key was not stored")
        return self.get(cur.lastrowid), token

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        """Every key, oldest first."""
        sql = f"SELECT {_COLS} FROM keys" + ("" if include_revoked else " WHERE revoked IS NULL")
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id").fetchall()
        return [ApiKey(*row) for row in rows]

    def get(self, key_id: int) -> ApiKey:
        """The key with this id.

        Raises:
            KeyStoreError: no such key.
        """
        with self._lock:
            row = self._db.execute(f"SELECT {_COLS} FROM keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise KeyStoreError(f"no API key with id {key_id} (see `livematte keys list`)")
        return ApiKey(*row)

    def revoke(self, key_id: int) -> ApiKey:
        """Revoke a key for good (idempotent).

        Raises:
            KeyStoreError: no such key.
        """
        self.get(key_id)
        with self._lock:
            self._db.execute(
                "UPDATE keys SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (time.time(), key_id),
            )
        return self.get(key_id)

    def topup(self, key_id: int, calls: int) -> ApiKey:
        """Add ``calls`` to a key's balance.

        Raises:
            KeyStoreError: no such key, ``calls`` < 1, a revoked key, or an unlimited key.
        """
        if calls < 1:
            raise KeyStoreError(f"top-up must be 1 or more calls, got {calls}")
        key = self.get(key_id)
        if not key.active:
            raise KeyStoreError(f"API key {key_id} is revoked; create a new one")
        if key.calls is None:
            raise KeyStoreError(f"API key {key_id} already has unlimited calls")
        with self._lock:
            self._db.execute("UPDATE keys SET calls = calls + ? WHERE id = ?", (calls, key_id))
        return self.get(key_id)

    # --- the server ------------------------------------------------------------------------

    def verify(self, token: str) -> ApiKey | None:
        """The active key this token belongs to, or None (unknown, malformed or revoked)."""
        # Tokens are "lm_" + URL-safe base64; anything else cannot match, so stop before hashing.
        if not _TOKEN_RE.fullmatch(token or ""):
            return None
        digest = hash_token(token)
        with self._lock:
            rows = self._db.execute(
                f"SELECT hash, {_COLS} FROM keys WHERE prefix = ?", (token[:_PREFIX_LEN],)
            ).fetchall()
        found = None
        for row in rows:
            # Compare every candidate, in constant time, rather than stopping at the first.
            if hmac.compare_digest(row[0], digest):
                found = ApiKey(*row[1:])
        return found if found is not None and found.active else None

    def has_keys(self) -> bool:
        """True once any key was ever created (revoked ones count: revoking every key must
        not quietly reopen a keyless server)."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM keys LIMIT 1").fetchone() is not None

    def reserve(self, key_id: int, n: int = 1) -> int | None:
        """Hold ``n`` calls before the work; return the balance left after this hold
        (None: unlimited).  One conditional UPDATE, so concurrent requests cannot overspend
        and each sees its own balance.  Settle every hold with ``settle``.

        Raises:
            BalanceError: fewer than ``n`` calls left (the message says how many).
            KeyStoreError: the key was revoked or deleted meanwhile.
        """
        with self._lock:
            row = self._db.execute(
                "UPDATE keys SET calls = calls - ? "
                "WHERE id = ? AND revoked IS NULL AND (calls IS NULL OR calls >= ?) "
                "RETURNING calls",
                (n, key_id, n),
            ).fetchone()
        if row is not None:
            return None if row[0] is None else int(row[0])
        key = self.get(key_id)
        if not key.active:
            raise KeyStoreError(f"API key {key_id} is revoked")
        raise BalanceError(f"{key.calls} calls left for {n} files")

    def settle(self, key_id: int, held: int, used: int) -> None:
        """End a ``reserve(key_id, held)``: ``used`` calls are spent, the rest come back."""
        if not 0 <= used <= held:
            raise ValueError(f"used must be 0..{held}, got {used}")
        with self._lock:
            self._db.execute(
                "UPDATE keys SET calls = calls + ?, used = used + ?, "
                "last_used = CASE WHEN ? > 0 THEN ? ELSE last_used END WHERE id = ?",
                (held - used, used, used, time.time(), key_id),
            )


class RateLimiter:
    """Token buckets: ``rate`` requests per second with a burst of ``max(1, rate)``, one per
    key id (keyed requests) or per client address (keyless ones).

    In memory, per server process (the server runs one process with a worker pool, so this
    is the whole truth).  Buckets idle long enough to be full again are dropped once there
    are more than ``max_buckets``, so a keyless server seen by many addresses stays small.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_buckets: int = 4096):
        self._clock = clock
        self._lock = threading.Lock()
        self._max = max_buckets
        # bucket -> (tokens, last time, seconds to refill completely)
        self._buckets: dict[Hashable, tuple[float, float, float]] = {}

    def acquire(self, bucket: Hashable, rate: float) -> float:
        """Take one token: 0.0 when allowed, else seconds until a token is available."""
        burst = max(1.0, rate)
        now = self._clock()
        with self._lock:
            if len(self._buckets) > self._max:
                self._buckets = {b: v for b, v in self._buckets.items() if now - v[1] < v[2]}
            tokens, last, _ = self._buckets.get(bucket, (burst, now, 0.0))
            tokens = min(burst, tokens + (now - last) * rate)
            refill = burst / rate
            if tokens >= 1.0:
                self._buckets[bucket] = (tokens - 1.0, now, refill)
                return 0.0
            self._buckets[bucket] = (tokens, now, refill)
            return (1.0 - tokens) / rate
