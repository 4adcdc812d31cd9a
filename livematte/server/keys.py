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

A key's ``calls`` is its balance (None = unlimited).  ``charge`` decrements it in one
conditional ``UPDATE`` (``... WHERE calls >= n``), so two concurrent requests can never spend
the same last call, and the server calls it only after a request succeeded.

Example::

    store = KeyStore()                       # default path
    key, token = store.create(name="ci", calls=100)
    assert store.verify(token) == key        # ApiKey, or None for a bad/revoked token
    store.charge(key.id)                     # True while the balance lasts
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
        return self.get(int(cur.lastrowid)), token

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

    def charge(self, key_id: int, n: int = 1) -> bool:
        """Spend ``n`` calls after a success; False when the balance no longer covers them.

        One conditional UPDATE, so concurrent requests cannot overspend.
        """
        with self._lock:
            cur = self._db.execute(
                "UPDATE keys SET calls = calls - ?, used = used + ?, last_used = ? "
                "WHERE id = ? AND revoked IS NULL AND (calls IS NULL OR calls >= ?)",
                (n, n, time.time(), key_id, n),
            )
        return cur.rowcount == 1


class RateLimiter:
    """Per-key token buckets: ``rate`` requests per second with a burst of ``max(1, rate)``.

    In memory, per server process (the server runs one process with a worker pool, so this
    is the whole truth).  The bucket count is bounded by the number of keys.
    """

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, last time)

    def acquire(self, key_id: int, rate: float) -> float:
        """Take one token: 0.0 when allowed, else seconds until a token is available."""
        burst = max(1.0, rate)
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / rate
