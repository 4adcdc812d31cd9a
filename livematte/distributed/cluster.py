"""Connecting to a Ray cluster and sizing the pool of workers.

Example::

    owned = connect(Engine("ray"))          # starts a local cluster; owned=True: shut it down
    ray = import_ray()
    size = pool_size(tasks=6, cpus=1.0, gpus=0.0, workers=None)
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from types import ModuleType

from livematte.distributed import INSTALL_HINT, Engine
from livematte.errors import ConfigError


def require_ray() -> None:
    """Check that Ray is installed without importing it (it reads its settings from the
    environment once, at import; :func:`connect` sets some first).

    Raises:
        ConfigError: Ray is not installed (one line saying how to install it).
    """
    try:
        spec = importlib.util.find_spec("ray")
    except (ImportError, ValueError):  # ValueError: sys.modules["ray"] is None
        spec = None
    # A namespace package is not Ray: run from /tmp, Ray's own /tmp/ray session folder is
    # importable as one when Ray is not installed.
    found = spec is not None and spec.origin is not None
    if not found:
        raise ConfigError(f"--engine ray needs Ray: {INSTALL_HINT}")


def import_ray() -> ModuleType:
    """Ray itself, or one clear line telling how to install it.

    Raises:
        ConfigError: Ray is not installed.
    """
    require_ray()
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--engine ray needs Ray: {INSTALL_HINT}") from None
    return ray


def connect(engine: Engine) -> bool:
    """Join the cluster ``engine`` names, or start a local one; True when this call started
    the connection (the caller then disconnects with ``ray.shutdown()``).

    A process that is already connected (a test fixture, a notebook) keeps its connection.

    Raises:
        ConfigError: Ray is missing, or the cluster at ``engine.address`` cannot be reached.
    """
    _token_auth_for_address(engine.address)  # before Ray is imported: it reads env once
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, object] = dict(
        # Workers send their notices back with each result; their raw stdout would only
        # repeat them with a "(MattingWorker pid=...)" prefix.
        log_to_driver=False,
        logging_level=logging.ERROR,  # not its notes on tokens and dashboards
        configure_logging=True,
    )
    if engine.address is None and not os.environ.get("RAY_ADDRESS"):
        # A cluster only for this batch: no dashboard (it starts a web server and a few
        # processes for nothing on a one-off run).
        options["include_dashboard"] = False
    try:
        ray.init(address=engine.address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = engine.address or os.environ.get("RAY_ADDRESS") or "a local cluster"
        message = " ".join(str(exc).split())
        raise ConfigError(f"cannot connect to Ray at {where}: {message}") from None
    return True


def _token_auth_for_address(address: str | None) -> None:
    """Send this machine's Ray token when joining a cluster by HOST:PORT.

    ``ray start --head`` turns token authentication on by default (Ray 2.5x), and ``ray.init``
    finds it for ``auto`` and local clusters, but with an explicit address and RAY_AUTH_MODE
    unset Ray 2.60 connects without the token and the head refuses it ("InvalidAuthToken",
    then "Failed to connect").  When a token is at hand we say so; an explicit RAY_AUTH_MODE
    is left alone.
    """
    if not address or address == "auto" or "RAY_AUTH_MODE" in os.environ:
        return
    token_file = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or os.path.isfile(token_file):
        os.environ["RAY_AUTH_MODE"] = "token"


def pool_size(tasks: int, cpus: float, gpus: float, workers: int | None) -> int:
    """How many workers to start: ``workers`` if given, else as many as the cluster's free
    CPUs (and GPUs, when asked for) fit; never more than there are tasks, never fewer than one.

    Raises:
        ConfigError: ``workers`` < 1, or the cluster has no resources for even one worker.
    """
    import ray

    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    # Free resources first (another job may hold some); the whole cluster when none are free
    # (the workers then queue until room appears, and the driver says so).
    free, total = ray.available_resources(), ray.cluster_resources()
    fits = []
    for name, need in (("CPU", cpus), ("GPU", gpus)):
        if need > 0:
            have = float(total.get(name, 0.0))
            if have < need:
                raise ConfigError(
                    f"the Ray cluster has {have:g} {name}(s); a worker needs {need:g} "
                    f"(--{name.lower()}s-per-task)"
                )
            fits.append(max(1, math.floor(float(free.get(name, 0.0)) / need + 1e-9)))
    size = workers if workers is not None else min(fits, default=1)
    return max(1, min(size, tasks))
