"""Connecting to a Ray cluster and sizing the pool of workers.

Example::

    ray = import_ray()
    owned = connect(Engine("ray"))          # starts a local cluster; owned=True: shut it down
    size = pool_size(tasks=6, cpus=1.0, gpus=0.0, workers=None)
"""

from __future__ import annotations

import logging
import math
import os
from types import ModuleType

from livematte.distributed import INSTALL_HINT, Engine
from livematte.errors import ConfigError


def import_ray() -> ModuleType:
    """Ray itself, or one clear line telling how to install it.

    Raises:
        ConfigError: Ray is not installed.
    """
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


def pool_size(tasks: int, cpus: float, gpus: float, workers: int | None) -> int:
    """How many workers to start: ``workers`` if given, else as many as the cluster's total
    CPUs (and GPUs, when asked for) fit; never more than there are tasks, never fewer than one.

    Raises:
        ConfigError: ``workers`` < 1, or the cluster has no resources for even one worker.
    """
    import ray

    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    total = ray.cluster_resources()
    fits = []
    for name, need in (("CPU", cpus), ("GPU", gpus)):
        if need > 0:
            have = float(total.get(name, 0.0))
            if have < need:
                raise ConfigError(
                    f"the Ray cluster has {have:g} {name}(s); a worker needs {need:g} "
                    f"(--{name.lower()}s-per-task)"
                )
            fits.append(math.floor(have / need + 1e-9))
    size = workers if workers is not None else min(fits, default=1)
    return max(1, min(size, tasks))
