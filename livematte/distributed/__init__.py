"""Running livematte on a Ray cluster: ``--engine ray[=ADDRESS]`` for ``video`` and ``image``.

This package is the only place that imports Ray, and it does so lazily: the flags below cost
nothing, and users without the ``ray`` extra see no change until they ask for ``--engine ray``
(then one line: ``pip install 'livematte[ray]'``).

Layout:

- :mod:`~livematte.distributed.cluster`: connect to (or start) a cluster, size the actor pool.
- :mod:`~livematte.distributed.workers`: the actor each node runs; it builds the pipeline once
  from the driver's ``Config`` and runs livematte's own ``transcode`` / photo code per task.
- :mod:`~livematte.distributed.batch`: the driver: one task per video (photos in chunks), one
  progress line for the batch, failures reported per file, Ctrl-C cancels cooperatively.

Inputs and outputs travel as *paths*, never as pixels: every node must see them at the same
path (a shared file system), so no whole video goes through Ray's object store.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from livematte.errors import ConfigError

INSTALL_HINT = "pip install 'livematte[ray]'"


@dataclass(frozen=True)
class Engine:
    """Where a batch runs: ``local`` (this process) or ``ray`` (``address`` None: start a local
    cluster, or join the one ``RAY_ADDRESS`` names; ``auto`` or ``host:port``: join that one)."""

    kind: str = "local"
    address: str | None = None

    @property
    def distributed(self) -> bool:
        return self.kind == "ray"


def parse_engine(text: str) -> Engine:
    """``local``, ``ray``, ``ray=auto`` or ``ray=HOST:PORT`` (also ``ray://HOST:PORT``).

    Raises:
        ConfigError: anything else.
    """
    kind, sep, address = text.strip().partition("=")
    if kind == "local" and not sep:
        return Engine()
    if kind == "ray" and not (sep and not address.strip()):
        return Engine("ray", address.strip() or None)
    raise ConfigError(f"--engine must be local, ray or ray=ADDRESS, got {text!r}")


def _engine_arg(text: str) -> Engine:
    try:
        return parse_engine(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def add_engine_args(parser: argparse.ArgumentParser) -> None:
    """Add --engine, --workers, --cpus-per-task and --gpus-per-task."""
    group = parser.add_argument_group("cluster (needs the ray extra)")
    group.add_argument(
        "--engine",
        type=_engine_arg,
        default=Engine(),
        metavar="local|ray[=ADDRESS]",
        help="run the batch here (local, default) or on Ray: 'ray' starts a local cluster, "
        "'ray=auto' or 'ray=HOST:PORT' joins one; inputs and outputs on a shared path",
    )
    group.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="Ray actors, each loading the models once (default: as many as the cluster's "
        "free CPUs/GPUs fit, at most one per task)",
    )
    group.add_argument(
        "--cpus-per-task",
        type=_fraction,
        default=1.0,
        metavar="N",
        help="CPUs each Ray worker reserves (default 1; also its ONNX Runtime threads "
        "unless --threads is given)",
    )
    group.add_argument(
        "--gpus-per-task",
        type=_fraction,
        default=0.0,
        metavar="N",
        help="GPUs each Ray worker reserves, fractions allowed (0.5: two workers share a GPU)",
    )
