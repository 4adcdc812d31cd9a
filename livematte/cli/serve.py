"""``livematte serve`` and ``livematte keys ...``: argparse builders and their handlers.

Nothing heavy is imported until a handler runs, so ``livematte --help`` stays fast and
FastAPI/uvicorn are needed only to serve.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import time
from dataclasses import replace

from livematte.cli.base import (
    Handler,
    add_config_args,
    add_pixel_limit_arg,
    command,
    config_from_args,
    positive_float,
)
from livematte.errors import ConfigError, LivematteError
from livematte.frame import Mode

SERVE_HELP = "serve the portrait-matting HTTP API and web page"
KEYS_HELP = "create, list, revoke and top up API keys for `livematte serve`"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost" (what keyless mode is meant for)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- serve ---------------------------------------------------------------------------------------


@command("serve", help=SERVE_HELP)
def serve_builder(parser: argparse.ArgumentParser) -> Handler:
    """Add ``serve``'s flags to ``parser``; return its handler."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    add_config_args(parser, preset="photo")
    pool = parser.add_argument_group("capacity")
    pool.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="inference workers, each with its own models (default: %(default)s)",
    )
    pool.add_argument(
        "--queue",
        type=int,
        default=8,
        metavar="N",
        help="requests that may wait for a worker; more get 503 busy (default: %(default)s)",
    )
    pool.add_argument(
        "--max-batch",
        type=int,
        default=16,
        metavar="N",
        help="files per request (default: %(default)s)",
    )
    pool.add_argument(
        "--max-file-mb",
        type=positive_float,
        default=15.0,
        metavar="MB",
        help="upload limit per file (default: %(default)s)",
    )
    add_pixel_limit_arg(pool)
    pool.add_argument(
        "--max-connections",
        type=int,
        default=100,
        metavar="N",
        help="open connections at once; more are answered 503 (default: %(default)s)",
    )
    pool.add_argument(
        "--header-timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="seconds a client has to send a request's headers (default: %(default)s)",
    )
    pool.add_argument(
        "--body-timeout",
        type=positive_float,
        default=120.0,
        metavar="S",
        help="seconds a client has to send a request's body (default: %(default)s)",
    )
    access = parser.add_argument_group("access")
    mode = access.add_mutually_exclusive_group()
    mode.add_argument(
        "--keyless",
        dest="keyless",
        nargs="?",
        const="on",
        choices=["auto", "on", "off"],
        help="who needs no API key: auto (default on a loopback address): clients on this "
        "computer until the first key is created; on (the bare flag): everybody; off: nobody. "
        "A request that sends an APIKEY is always checked. Behind a reverse proxy on this "
        "computer use off: the proxy's requests come from 127.0.0.1",
    )
    mode.add_argument(
        "--require-key",
        dest="keyless",
        action="store_const",
        const="off",
        help="same as --keyless off",
    )
    access.add_argument(
        "--rate",
        type=positive_float,
        default=1.0,
        metavar="R",
        help="default requests per second per key (default: %(default)s)",
    )
    access.add_argument(
        "--keys-db",
        metavar="PATH",
        help="API key database (default: $LIVEMATTE_KEYS_DB or the user data dir)",
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="load models on the first request instead of at startup",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    from livematte.distributed.serve import add_serve_engine_args

    add_serve_engine_args(parser)
    return _serve


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    try:
        import uvicorn

        from livematte.server.app import app_state, create_app
        from livematte.server.engine import ServerSettings
        from livematte.server.keys import KeyStore
        from livematte.server.net import guarded_protocol, listen
    except ImportError as exc:
        raise LivematteError(
            f"livematte serve needs {exc.name}: pip install 'livematte[server]'"
        ) from None
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port must be 1..65535, got {args.port}")
    keyless = args.keyless or ("auto" if is_loopback(args.host) else "off")
    try:
        settings = ServerSettings(
            keyless=keyless,
            workers=args.workers,
            queue=args.queue,
            rate=args.rate,
            max_file_bytes=int(args.max_file_mb * 1024 * 1024),
            max_pixels=int(args.max_megapixels * 1_000_000),
            max_batch=args.max_batch,
            max_request_bytes=max(int(args.max_file_mb * 1024 * 1024) * 2, 100 * 1024 * 1024),
            warmup=not args.no_warmup,
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            max_connections=args.max_connections,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    config = config_from_args(args, {"runtime.mode": Mode.IMAGE})
    if args.engine.distributed:  # a missing Ray extra is one line before anything starts
        from livematte.distributed.cluster import require_ray

        require_ray()
    store: KeyStore | None = None  # none when keyless "on": no key is ever asked for
    access = {
        "on": "no key needed",
        "auto": "no key needed from this computer until a key is created",
        "off": "API key required",
    }[keyless]
    if keyless != "on":
        store = KeyStore(args.keys_db)  # opened now: an unwritable path fails here, not later
        if keyless == "auto" and store.has_keys():
            access = "API key required: keys exist; --keyless on to serve without"
    if args.engine.distributed:  # the same app as a Ray Serve app (its proxy binds the port)
        from livematte.distributed.serve import serve_on_ray

        return serve_on_ray(args, config, settings, access)
    # Bound before anything is printed or loaded: a busy port is one error line and exit 1.
    sock = listen(args.host, args.port)
    try:
        if keyless == "off" and store is not None and not store.list(include_revoked=False):
            print(
                "livematte: no API keys yet; create one with `livematte keys create`",
                file=sys.stderr,
            )
        elif keyless == "on" and not is_loopback(args.host):
            print(
                f"livematte: warning: --keyless on {args.host}: anyone who can reach this "
                "port can use it without a key",
                file=sys.stderr,
            )
        # Warmed up here, not in uvicorn's lifespan: a model or provider that fails to load is
        # then our one-line error and exit status, not uvicorn's traceback.
        app = create_app(config, settings=replace(settings, warmup=False), key_store=store)
        if settings.warmup:
            asyncio.run(app_state(app).engine.warmup())
        shown = f"[{args.host}]" if ":" in args.host else args.host
        print(f"livematte: serving on http://{shown}:{args.port}/ ({access})", file=sys.stderr)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                http=guarded_protocol(settings),
                log_level=args.log_level,
                server_header=False,
                timeout_keep_alive=5,
            )
        )
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


# --- keys ----------------------------------------------------------------------------------------


@command("keys", help=KEYS_HELP)
def keys_builder(parser: argparse.ArgumentParser) -> Handler:
    """Add ``keys``'s actions to ``parser``; return its handler."""
    parser.add_argument(
        "--db",
        metavar="PATH",
        help="key database (default: $LIVEMATTE_KEYS_DB or the user data dir)",
    )
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a key and print its token (shown only once)")
    create.add_argument("--calls", type=int, metavar="N", help="call balance (default: unlimited)")
    create.add_argument(
        "--rate",
        type=positive_float,
        metavar="R",
        help="requests per second (default: the server's --rate)",
    )
    create.add_argument("--name", default="", help="a label for `keys list`")
    sub.add_parser("list", help="list keys (never their tokens)")
    revoke = sub.add_parser("revoke", help="revoke a key for good")
    revoke.add_argument("id", type=int, metavar="ID")
    topup = sub.add_parser("topup", help="add calls to a key's balance: topup ID --calls N")
    topup.add_argument("id", type=int, metavar="ID")
    topup.add_argument("--calls", type=int, metavar="N", help="calls to add (as `create --calls`)")
    # The old form `topup ID N`, still read (with a note) so existing scripts keep working.
    topup.add_argument("old_calls", type=int, nargs="?", help=argparse.SUPPRESS)
    return _keys


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def _keys(args: argparse.Namespace) -> int:
    from livematte.server.keys import KeyStore

    with KeyStore(args.db) as store:
        if args.keys_command == "create":
            key, token = store.create(name=args.name, calls=args.calls, rate=args.rate)
            calls = "unlimited" if key.calls is None else f"{key.calls}"
            rate = "server default" if key.rate is None else f"{key.rate:g}/s"
            print(
                f"livematte: created key {key.id} {args.name!r} (calls: {calls}, rate: {rate}); "
                "copy the token now, it cannot be shown again:",
                file=sys.stderr,
            )
            print(token)
        elif args.keys_command == "list":
            rows = [
                ("ID", "NAME", "PREFIX", "CALLS", "RATE", "USED", "CREATED", "LAST USED", "STATUS")
            ]
            for k in store.list():
                rows.append((
                    str(k.id), k.name, k.prefix + "…",
                    "unlimited" if k.calls is None else str(k.calls),
                    "default" if k.rate is None else f"{k.rate:g}/s", str(k.used),
                    _when(k.created), _when(k.last_used), "active" if k.active else "revoked",
                ))  # fmt: skip
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for row in rows:
                print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        elif args.keys_command == "revoke":
            key = store.revoke(args.id)
            print(f"livematte: key {key.id} {key.name!r} revoked", file=sys.stderr)
        elif args.keys_command == "topup":
            calls = args.calls
            if args.old_calls is not None:
                if calls is not None:
                    raise ConfigError("keys topup: give the calls once, as --calls N")
                print(
                    f"livematte: note: `keys topup ID N` is deprecated; "
                    f"write `keys topup {args.id} --calls {args.old_calls}`",
                    file=sys.stderr,
                )
                calls = args.old_calls
            if calls is None:
                raise ConfigError("keys topup: say how many calls to add: --calls N")
            key = store.topup(args.id, calls)
            print(f"livematte: key {key.id} {key.name!r}: {key.calls} calls", file=sys.stderr)
    return 0
