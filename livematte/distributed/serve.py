"""``livematte serve --engine ray``: the HTTP API as a Ray Serve application.

Three parts, all running livematte's own server code:

- ``KeyService``: ONE Ray actor that owns the SQLite key file and the rate limiter.  Every
  replica authenticates, rate-limits and charges through it, so a key's rate and balance hold
  across replicas (the actor runs one call at a time: no double charge, no lost request).
- ``Ingress``: a Serve deployment serving ``livematte.server.app.create_app`` itself (routes,
  envelopes, limits, web page, docs) with the key store and limiter pointed at the actor and
  the model work pointed at the matting replicas; it decodes uploads and encodes results.
- ``MattingReplica``: a Serve deployment per ``--replicas``, each with the server's own
  pipeline (``Engine``), loaded once; it receives decoded pixels and returns the matte.

Example::

    livematte serve --engine ray --replicas 2 --port 8000
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Hashable
from types import ModuleType
from typing import TYPE_CHECKING, Protocol, cast

from livematte.distributed import Engine as EngineSpec
from livematte.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from fastapi import FastAPI
    from ray.actor import ActorHandle
    from ray.serve import Application

    from livematte.config import Config
    from livematte.distributed.workers import RemoteMethod
    from livematte.server.engine import MattingResult, ServerSettings
    from livematte.server.keys import ApiKey, KeyStore, RateLimiter

#: The key actor's name in the cluster (one per Serve application).
KEYS_ACTOR = "livematte-keys"
#: Requests a matting replica may hold at once: one running, one waiting, so it never idles
#: between two.
_PER_REPLICA = 2


class KeyService:
    """The one owner of the key database and of every rate-limit bucket: the server's own
    ``KeyStore`` and ``RateLimiter``, one call at a time."""

    def __init__(self, path: str | None):
        from livematte.server.keys import KeyStore, RateLimiter

        self._store = KeyStore(path)
        self._limiter = RateLimiter()

    def verify(self, token: str) -> ApiKey | None:
        return self._store.verify(token)

    def has_keys(self) -> bool:
        return self._store.has_keys()

    def reserve(self, key_id: int, n: int = 1) -> int | None:
        return self._store.reserve(key_id, n)

    def settle(self, key_id: int, held: int, used: int) -> None:
        self._store.settle(key_id, held, used)

    def acquire(self, bucket: Hashable, rate: float) -> float:
        return self._limiter.acquire(bucket, rate)


class _RemoteKeys:
    """``create_app``'s key store and rate limiter, answered by the ``KeyService`` actor."""

    def __init__(self, actor: ActorHandle[KeyService]):
        import ray

        self._ray: ModuleType = ray
        self._actor = actor

    def _call(self, method: str, *args: object) -> object:
        remote: RemoteMethod = getattr(self._actor, method)
        return self._ray.get(remote.remote(*args))

    def verify(self, token: str) -> ApiKey | None:
        key = self._call("verify", token)
        return None if key is None else cast("ApiKey", key)

    def has_keys(self) -> bool:
        return bool(self._call("has_keys"))

    def reserve(self, key_id: int, n: int = 1) -> int | None:
        left = self._call("reserve", key_id, n)
        return None if left is None else int(cast(int, left))

    def settle(self, key_id: int, held: int, used: int) -> None:
        self._call("settle", key_id, held, used)

    def acquire(self, bucket: Hashable, rate: float) -> float:
        return float(cast(float, self._call("acquire", bucket, rate)))


class _Response(Protocol):
    """What a Serve deployment handle's ``.remote()`` returns."""

    def result(self) -> MattingResult: ...


class _ReplicaProcess(Protocol):
    def remote(self, bgr: np.ndarray, analysis: bool) -> _Response: ...


class _ReplicaHandle(Protocol):
    """The ingress's handle on the matting replicas."""

    process: _ReplicaProcess


class MattingReplica:
    """The model work of one request, on the server's own ``Engine`` (its pipeline built once
    per replica): the matte, the decontaminated foreground and the body analysis that the
    ingress's pipeline then composites exactly as plain ``serve`` does."""

    def __init__(self, config: Config, settings: ServerSettings):
        import numpy as np

        from livematte.server.engine import Engine

        self._engine = Engine(config, settings)
        self._lock = threading.Lock()
        self.process(np.full((64, 64, 3), 128, np.uint8), False)  # models load now

    def process(self, bgr: np.ndarray, analysis: bool) -> MattingResult:
        with self._lock:  # one pipeline per replica: one picture at a time
            return self._engine.matte(bgr, analysis)


class Ingress:
    """Serves ``create_app``; built on each ingress replica by Ray Serve."""

    def __init__(self, settings: ServerSettings, matting: _ReplicaHandle):
        import ray

        self._settings, self._matting = settings, matting
        self._keys = _RemoteKeys(ray.get_actor(KEYS_ACTOR))

    def _process(self, bgr: np.ndarray, analysis: bool) -> MattingResult:
        # Runs on the app's worker threads (never its event loop), where a blocking wait on
        # the replica's answer is allowed.
        return self._matting.process.remote(bgr, analysis).result()

    def __serve_build_asgi_app__(self) -> FastAPI:
        from livematte.server.app import create_app

        # The actor-backed store answers every call create_app's Access makes of a KeyStore
        # and a RateLimiter (verify, has_keys, reserve, settle; acquire).
        store, limiter = cast("KeyStore", self._keys), cast("RateLimiter", self._keys)
        return create_app(None, settings=self._settings, key_store=store,
                          process=self._process, limiter=limiter)  # fmt: skip


def build_app(
    config: Config, settings: ServerSettings, *, replicas: int, cpus: float, gpus: float
) -> Application:
    """The Serve application graph: an ingress over ``replicas`` matting replicas.

    The ingress keeps the server's admission rule (``workers + queue`` requests in flight,
    then 1201 busy) with one worker thread per request a replica may hold, so every replica
    stays busy; each replica runs one pipeline, with ONNX Runtime threads following its CPUs.
    """
    from dataclasses import replace

    from ray import serve

    from livematte.distributed.batch import Resources, worker_config

    replica_config = worker_config(config, Resources(cpus, gpus), threads_given=False)
    replica_settings = replace(settings, workers=1)
    ingress_settings = replace(settings, workers=max(settings.workers, replicas * _PER_REPLICA))
    matting = serve.deployment(MattingReplica, name="matting", num_replicas=replicas,
                               ray_actor_options={"num_cpus": cpus, "num_gpus": gpus},
                               max_ongoing_requests=_PER_REPLICA)  # fmt: skip
    ingress = serve.deployment(serve.ingress()(Ingress), name="ingress",
                               ray_actor_options={"num_cpus": 0})  # fmt: skip
    # ray's stubs type serve.deployment(cls, ...) as a decorator factory; it is a Deployment.
    replicas_app = matting.bind(replica_config, replica_settings)  # type: ignore[attr-defined]
    return ingress.bind(ingress_settings, replicas_app)  # type: ignore[attr-defined,no-any-return]


def add_serve_engine_args(parser: argparse.ArgumentParser) -> None:
    """--engine, --replicas, --cpus-per-replica, --gpus-per-replica for ``serve``."""
    from livematte.distributed import _engine_arg, _fraction

    group = parser.add_argument_group("cluster (needs the ray extra)")
    group.add_argument("--engine", type=_engine_arg, default=EngineSpec(),
                       metavar="local|ray[=ADDRESS]",
                       help="serve from this process (local) or as a Ray Serve app")  # fmt: skip
    group.add_argument("--replicas", type=int, default=1, metavar="N",
                       help="matting replicas, each with its own models (default 1)")  # fmt: skip
    group.add_argument("--cpus-per-replica", type=_fraction, default=1.0, metavar="N",
                       help="CPUs each matting replica reserves (default 1)")  # fmt: skip
    group.add_argument("--gpus-per-replica", type=_fraction, default=0.0, metavar="N",
                       help="GPUs each matting replica reserves, fractions allowed")  # fmt: skip


def start(
    args: argparse.Namespace, config: Config, settings: ServerSettings
) -> tuple[ActorHandle[KeyService], bool]:
    """Connect, start the key actor and the Serve app on ``args.host:args.port``; returns the
    key actor (the caller keeps it alive while serving) and whether this call started the
    connection (then the caller ends it with ``ray.shutdown()``)."""
    from livematte.distributed.cluster import connect, import_ray

    if args.replicas < 1:
        raise ConfigError(f"--replicas must be at least 1, got {args.replicas}")
    if args.gpus_per_replica > 0 and all(p == "cpu" for p in config.runtime.providers):
        raise ConfigError("--gpus-per-replica reserves GPUs but the providers are cpu only; "
                          "add --providers cuda,cpu")  # fmt: skip
    owned = connect(args.engine)
    ray = import_ray()
    from ray import serve
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # On this node: the SQLite file is this machine's (--keys-db), and one process owns it.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    keys = ray.remote(KeyService).options(name=KEYS_ACTOR, num_cpus=0, get_if_exists=True,
                                          max_concurrency=1, scheduling_strategy=here
                                          ).remote(args.keys_db)  # fmt: skip
    serve.start(http_options={"host": args.host, "port": args.port})
    app = build_app(config, settings, replicas=args.replicas, cpus=args.cpus_per_replica,
                    gpus=args.gpus_per_replica)  # fmt: skip
    serve.run(app, name="livematte", route_prefix="/")
    return keys, owned


def serve_on_ray(
    args: argparse.Namespace, config: Config, settings: ServerSettings, access: str
) -> int:
    """``livematte serve --engine ray``: serve until Ctrl-C, then take the app down;
    ``access``: who needs a key (for the "serving on" line)."""
    import time

    keys, owned = start(args, config, settings)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"livematte: serving on http://{shown}:{args.port}/ ({access}) as a Ray Serve app "
          f"with {args.replicas} matting replica(s); Ctrl-C stops it", file=sys.stderr)  # fmt: skip
    try:
        while True:
            time.sleep(1.0)
    finally:
        import ray
        from ray import serve

        serve.shutdown()
        ray.kill(keys)
        if owned:
            ray.shutdown()
