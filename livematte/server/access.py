"""Who may call the API: API keys, keyless mode, cross-site refusal and rate limits.

The rules, in order:

1. A request that carries an ``APIKEY`` (or ``X-API-Key``) is verified, in every mode: a wrong
   key is 1003, never ignored.  The one exception is the hosted service's documentation
   placeholder ``INSERT_YOUR_API_KEY_HERE`` on a request that keyless mode admits anyway: it
   is no key at all, and its curl/Python examples then run as written.
2. Otherwise keyless mode decides.  ``on``: nobody needs a key.  ``off``: everybody does.
   ``auto`` (``livematte serve`` bound to a loopback address): a client on this computer that
   addressed us by a loopback name (the Host check defeats DNS rebinding), that came through
   no proxy that says so (``Forwarded``, ``X-Forwarded-For``...), while no key has ever been
   created: the first ``livematte keys create`` switches keyless off, until ``--keyless on``.
3. A keyless request sent by another site's page is refused (1005): a browser lets any page
   POST a form to 127.0.0.1 without a preflight, which would spend this machine's CPU.
   ``Sec-Fetch-Site`` (sent by every current browser) must be ``same-origin`` or ``none``,
   and an ``Origin``, when sent, must be this server's own.  Non-browser clients send
   neither and pass.
4. Every admitted request takes a token from a rate limit bucket: its key's, or, keyless,
   its client address's.

A reverse proxy on this machine that rewrites ``Host`` to localhost and sends none of the
proxy headers makes every client look local: run such a setup with ``--keyless off``.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

from livematte.server import errors as E
from livematte.server.engine import ServerSettings
from livematte.server.errors import ApiError
from livematte.server.keys import ApiKey, KeyStore, RateLimiter

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
#: The hosted service's documentation placeholder for the key.
PLACEHOLDER_KEY = "INSERT_YOUR_API_KEY_HERE"
#: Headers a proxy adds: the request did not start on this computer as far as we can know.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


def cross_site(request: Request) -> str | None:
    """Why this request comes from another site's page, or None when it does not."""
    site = request.headers.get("sec-fetch-site", "").strip().lower()
    if site and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site: {site}"
    origin = request.headers.get("origin")
    if origin is not None:
        own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
        if origin.strip().lower().rstrip("/") != own:
            return f"Origin: {origin.strip()[:100]}"
    return None


class Access:
    """Applies the module's rules to requests.

    Args:
        settings: ``keyless`` mode and the default ``rate``.
        store: returns the KeyStore (called only when a key or the auto mode needs it, so a
            ``keyless="on"`` server never opens the database).
        limiter: the rate limiter (default: one of this process's own; the Ray Serve app
            shares one across replicas).
    """

    def __init__(
        self,
        settings: ServerSettings,
        store: Callable[[], KeyStore],
        limiter: RateLimiter | None = None,
    ):
        self.settings = settings
        self.store = store
        self.limiter = limiter if limiter is not None else RateLimiter()

    def keyless_refusal(self, request: Request) -> str | None:
        """None when keyless mode admits this request without a key, else the reason."""
        mode = self.settings.keyless
        if mode in ("on", "off"):
            return None if mode == "on" else "this server requires keys"
        if any(name in request.headers for name in PROXY_HEADERS):
            return "no key is needed only from this computer, not through a proxy"
        client = request.client.host if request.client else ""
        host = request.headers.get("host", "").rsplit(":", 1)[0].strip("[]").lower()
        if client not in LOOPBACK_HOSTS or host not in LOOPBACK_HOSTS:
            return "no key is needed only from this computer, via localhost or 127.0.0.1"
        if self.store().has_keys():  # last: the only check that reads the database
            return "this server has API keys: send yours, from `livematte keys create`"
        return None

    def is_keyless(self, request: Request) -> bool:
        return self.keyless_refusal(request) is None

    def authenticate(self, request: Request) -> ApiKey | None:
        """The caller's key, or None for an admitted keyless request.

        Raises:
            ApiError: 1002/1003 (key), 1004 (rate), 1005 (cross-site), 1001 (balance 0).
        """
        token = (request.headers.get("apikey") or request.headers.get("x-api-key") or "").strip()
        refusal = self.keyless_refusal(request)
        if token == PLACEHOLDER_KEY and refusal is None:
            token = ""
        if token:
            key = self.store().verify(token)
            if key is None:
                hint = ""
                if token == PLACEHOLDER_KEY:
                    hint = f": {PLACEHOLDER_KEY} is the docs' placeholder; send your own key"
                raise ApiError(E.INVALID_KEY, E.INVALID_KEY.msg + hint)
            self._take(key.id, key.rate or self.settings.rate)
            if key.calls is not None and key.calls < 1:
                raise ApiError(E.BALANCE_EXHAUSTED)
            return key
        if refusal is not None:
            raise ApiError(E.MISSING_KEY, f"{E.MISSING_KEY.msg} ({refusal})")
        why = cross_site(request)
        if why is not None:
            raise ApiError(E.CROSS_SITE, f"{E.CROSS_SITE.msg} ({why})")
        self._take(("client", request.client.host if request.client else ""), self.settings.rate)
        return None

    def _take(self, bucket: object, rate: float) -> None:
        wait = self.limiter.acquire(bucket, rate)
        if wait > 0:
            raise ApiError(
                E.RATE_LIMITED,
                f"rate limit of {rate:g} requests/s exceeded",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )
