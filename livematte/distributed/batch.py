"""The driver of a batch on Ray: plan as locally, hand out tasks, show one progress line.

``livematte video IN... OUTDIR --engine ray`` lands in :func:`video_on_ray`.  The plan (which
input goes to which output, batch mode or not, format checks) is ``livematte.video``'s own
:func:`~livematte.video.plan_outputs`, made before the cluster is touched, so a bad output
fails as fast as locally.  Then a pool of :class:`~livematte.distributed.workers.MattingWorker`
actors (models loaded once each) takes one task per video; a free actor gets the next one.

Failures: a file that fails is reported (``skipping IN: error``) and the others continue; an
actor that dies fails only its current file and is replaced.  Exit status as locally: 0 when
every file was written, 1 otherwise; a single input re-raises its own error (its exit code).

Ctrl-C: unstarted tasks are dropped, running ones are told to stop at the next frame and
finalize their part done as ``NAME.partial.EXT`` (livematte's local Ctrl-C behaviour); a
second Ctrl-C kills the actors (their temporary files never reach a final name).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from livematte.config import Config
from livematte.distributed import Engine
from livematte.distributed.cluster import connect, import_ray, pool_size, require_ray
from livematte.distributed.workers import (
    CONTROL,
    PhotoOptions,
    TaskResult,
    VideoOptions,
    WorkerHandle,
    actor_class,
)
from livematte.errors import ConfigError, LivematteError
from livematte.video import FileResult, Progress, VideoSummary, plan_outputs

T = TypeVar("T")

#: Seconds between progress polls and redraws of the batch line.
_POLL_S = 0.25
#: Seconds between checks for Ctrl-C when no progress line is shown.
_IDLE_WAIT_S = 1.0
#: How long running tasks get to finalize their part done after Ctrl-C.
_CANCEL_GRACE_S = 30.0
#: Seconds the workers may take to start before the driver says it is waiting for room.
_START_NOTICE_S = 30.0
#: Most photos in one task.
_PHOTOS_PER_TASK = 16


@dataclass(frozen=True)
class Resources:
    """What each worker reserves, and how many workers (None: as many as fit)."""

    cpus: float = 1.0
    gpus: float = 0.0
    workers: int | None = None


def resources_from_args(args: argparse.Namespace) -> Resources:
    return Resources(args.cpus_per_task, args.gpus_per_task, args.workers)


def worker_config(config: Config, resources: Resources, threads_given: bool) -> Config:
    """The config each worker builds its pipeline from: the local command's own, except that
    ONNX Runtime's thread count follows the CPUs a worker reserves when the preset leaves it
    to ONNX Runtime (0) and --threads was not given: with 0 every worker would start one
    thread per core of its node, and two workers on this 2-core box would run four busy
    threads (oversubscribed).  Threads change speed, not pixels.

    Raises:
        ConfigError: GPUs are reserved but the providers are CPU only.
    """
    from livematte.config import replace

    if resources.gpus > 0 and all(p == "cpu" for p in config.runtime.providers):
        raise ConfigError(
            "--gpus-per-task reserves GPUs but the providers are cpu only; add --providers cuda,cpu"
        )
    if threads_given or config.runtime.threads != 0 or resources.cpus < 1:
        return config
    return replace(config, {"runtime.threads": int(resources.cpus)})


class _Pool:
    """Actors, the tasks waiting, and the tasks running (object ref -> actor, task index)."""

    def __init__(self, ray: ModuleType, config: Config, resources: Resources, size: int):
        self.ray = ray
        self._make = lambda: actor_class(ray, cpus=resources.cpus, gpus=resources.gpus).remote(
            config
        )
        self.idle: list[WorkerHandle] = [self._make() for _ in range(size)]
        #: Object reference of a running task -> (its actor, its task index).
        self.running: dict[object, tuple[WorkerHandle, int]] = {}
        try:
            self._wait_ready(resources)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, resources: Resources) -> None:
        """Load the models everywhere at once; stop on the first worker that cannot (one
        line); say so when the cluster has no free room for the workers yet."""
        from livematte.errors import stderr_notice

        calls = [actor.ready.remote() for actor in self.idle]
        ready, waiting = self.ray.wait(calls, num_returns=len(calls), timeout=_START_NOTICE_S)
        if waiting:
            stderr_notice(f"waiting for the cluster: {len(waiting)} of {len(calls)} workers "
                          f"not started yet ({resources.cpus:g} CPU, {resources.gpus:g} GPU "
                          "each)")  # fmt: skip
        for error in self.ray.get(calls):
            if error is not None:
                raise error

    def replace(self, actor: WorkerHandle) -> None:
        self.ray.kill(actor)
        self.idle.append(self._make())

    def progress(self) -> dict[int, tuple[int, int | None]]:
        """Task index -> (frames done, frames expected) for every running task."""
        calls = {
            index: actor.progress.options(concurrency_group=CONTROL).remote()
            for actor, index in self.running.values()
        }
        try:
            values = self.ray.get(list(calls.values()), timeout=5.0)
        except Exception:  # noqa: BLE001 - a slow or dying actor only delays the display
            return {}
        return dict(zip(calls, values, strict=True))

    def cancel(self) -> None:
        for actor, _ in self.running.values():
            actor.cancel.options(concurrency_group=CONTROL).remote()

    def kill(self) -> None:
        for actor in self.idle + [actor for actor, _ in self.running.values()]:
            self.ray.kill(actor)
        self.idle, self.running = [], {}


def _task_error(ray: ModuleType, items: list[str], exc: Exception) -> TaskResult:
    """A task that raised outside livematte's own errors (a bug, a dead worker): each of its
    ``items`` failed with that error."""
    cause = getattr(exc, "cause", None) if isinstance(exc, ray.exceptions.RayTaskError) else None
    detail = cause if cause is not None else exc
    text = f"{type(detail).__name__}: {' '.join(str(detail).split())}"[:500]
    return TaskResult(results=[FileResult(item, error=text) for item in items])


def run_tasks(
    ray: ModuleType,
    pool: _Pool,
    calls: list[tuple[str, tuple[object, ...]]],
    labels: list[list[str]],
    *,
    on_result: Callable[[int, TaskResult], None],
    progress: Progress,
) -> None:
    """Run ``calls`` (method name, args) on the pool, one per free actor, until all are done;
    ``on_result(index, result)`` as each finishes.  ``labels[i]``: the inputs of call i.
    Raises KeyboardInterrupt after cancelling."""
    waiting = deque(range(len(calls)))
    done_frames, totals = 0, {}
    started = time.monotonic()
    try:
        while waiting or pool.running:
            while waiting and pool.idle:
                index = waiting.popleft()
                actor = pool.idle.pop()
                method, arguments = calls[index]
                pool.running[getattr(actor, method).remote(*arguments)] = (actor, index)
            # Without a progress line (not a terminal, --no-progress) nothing is polled: on the
            # loaded 2-core box the polls were CPU the batch could use.
            timeout = _POLL_S if progress.enabled else _IDLE_WAIT_S
            ready, _ = ray.wait(list(pool.running), num_returns=1, timeout=timeout)
            for ref in ready:
                actor, index = pool.running.pop(ref)
                try:
                    result = ray.get(ref)
                    pool.idle.append(actor)
                except ray.exceptions.RayActorError as exc:
                    result = _task_error(ray, labels[index], exc)
                    pool.replace(actor)
                except ray.exceptions.RayError as exc:
                    result = _task_error(ray, labels[index], exc)
                    pool.idle.append(actor)
                done_frames += sum(r.frames for r in result.results)
                totals[index] = sum(r.frames for r in result.results)
                progress.finish()
                on_result(index, result)
            if not progress.enabled:
                continue
            running = pool.progress()
            for index, (_, total) in running.items():
                if total is not None:
                    totals.setdefault(index, total)
            known = list(totals.values())
            if known:  # files not started yet count as the mean of those known (for the ETA)
                progress.total = round(sum(known) * len(calls) / len(known))
            finished = len(calls) - len(waiting) - len(pool.running)
            progress.label = f"ray [{finished}/{len(calls)} tasks]"
            frames = done_frames + sum(done for done, _ in running.values())
            progress(frames, time.monotonic() - started)
    except KeyboardInterrupt:
        progress.finish()
        waiting.clear()
        _cancel(ray, pool, labels, on_result)
        raise
    progress.finish()


def _cancel(
    ray: ModuleType,
    pool: _Pool,
    labels: list[list[str]],
    on_result: Callable[[int, TaskResult], None],
) -> None:
    """Stop running tasks; collect what they finalized; kill actors still busy after the grace
    time or on a second Ctrl-C."""
    pool.cancel()
    deadline = time.monotonic() + _CANCEL_GRACE_S
    try:
        while pool.running and time.monotonic() < deadline:
            ready, _ = ray.wait(list(pool.running), num_returns=1, timeout=_POLL_S)
            for ref in ready:
                actor, index = pool.running.pop(ref)
                pool.idle.append(actor)
                try:
                    on_result(index, ray.get(ref))
                except ray.exceptions.RayError as exc:
                    on_result(index, _task_error(ray, labels[index], exc))
    except KeyboardInterrupt:
        pass
    pool.kill()


@contextlib.contextmanager
def _cluster_pool(
    engine: Engine, config: Config, resources: Resources, tasks: int
) -> Iterator[tuple[ModuleType, _Pool, int]]:
    """Join (or start) the cluster and make the actor pool for ``tasks`` tasks; on the way out
    kill the pool, and shut down a cluster this call started."""
    owned = connect(engine)
    ray = import_ray()
    try:
        size = pool_size(tasks, resources.cpus, resources.gpus, resources.workers)
        pool = _Pool(ray, config, resources, size)
        try:
            yield ray, pool, size
        finally:
            pool.kill()
    finally:
        if owned:
            ray.shutdown()


def video_on_ray(args: argparse.Namespace, config: Config) -> int:
    """``livematte video ... --engine ray``: the local command's batch, run on Ray; prints the
    same summary line and returns the same exit status."""
    from livematte.errors import stderr_notice

    engine: Engine = args.engine
    resources = resources_from_args(args)
    config = worker_config(config, resources, args.threads is not None)
    require_ray()  # a missing extra is reported before any planning output
    inputs = args.inputs[:-1]
    plan = plan_outputs(inputs if len(inputs) > 1 else inputs[0], args.inputs[-1], args.fmt)
    specs, targets, batch = plan.inputs, plan.targets, plan.batch
    options = VideoOptions(fmt=plan.fmt, quality=args.quality, codec=args.codec,
                           preset=args.encoder_preset, start=args.start, end=args.end,
                           fps=args.fps)  # fmt: skip
    summary = VideoSummary()
    results: dict[int, FileResult] = {}
    interrupted: list[FileResult] = []

    def on_result(index: int, task: TaskResult) -> None:
        for notice in task.notices:
            stderr_notice(notice)
        result = task.results[0] if task.results else FileResult(specs[index])
        results[index] = result
        if task.interrupted:
            interrupted.append(result)
        elif result.error:
            if not batch:
                raise task.error or LivematteError(result.error)
            stderr_notice(f"skipping {specs[index]}: {result.error}")

    started = time.perf_counter()
    with _cluster_pool(engine, config, resources, len(specs)) as (ray, pool, size):
        bar = Progress("ray", None, enabled=not args.no_progress)
        calls: list[tuple[str, tuple[object, ...]]] = [
            ("video", (spec, str(target), options, bar.enabled))
            for spec, target in zip(specs, targets, strict=True)
        ]
        try:
            labels = [[spec] for spec in specs]
            run_tasks(ray, pool, calls, labels, on_result=on_result, progress=bar)
        except KeyboardInterrupt:
            left = len(specs) - len(results)
            stderr_notice(f"interrupted: {len(results) - len(interrupted)} file(s) finished, "
                          f"{len(interrupted)} stopped, {left} not started")  # fmt: skip
            raise
    summary.results = [results[i] for i in sorted(results)]
    print(summary.line(), file=sys.stderr)
    # The line above adds up each file's own time, as locally; files ran side by side here.
    wall = time.perf_counter() - started
    stderr_notice(f"on Ray: {size} worker(s), {wall:.1f} s wall with connecting and loading "
                  f"({summary.frames / wall:.1f} fps)")  # fmt: skip
    return summary.exit_code


def _chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def images_on_ray(args: argparse.Namespace, config: Config, inputs: list[Path],
                  outputs: list[Path], max_pixels: int) -> int:  # fmt: skip
    """``livematte image ... --engine ray``: the local command's photos, in chunks on Ray;
    the same per-photo lines, last lines and exit status as locally."""
    from livematte.photos import batch_status

    resources = resources_from_args(args)
    config = worker_config(config, resources, args.threads is not None)
    require_ray()
    pairs = [(str(source), str(target)) for source, target in zip(inputs, outputs, strict=True)]
    options = PhotoOptions(matte=args.matte, analysis=args.json, many=len(pairs) > 1,
                           max_pixels=max_pixels)  # fmt: skip
    failures: list[str] = []
    written = 0

    def on_result(index: int, task: TaskResult) -> None:
        nonlocal written
        for result in task.results:
            if result.error is None:
                written += 1
                continue
            if len(pairs) == 1:
                raise task.error or LivematteError(result.error)
            failures.append(result.input)
            print(f"livematte: skipped {result.input}: {result.error}", file=sys.stderr)

    start = time.perf_counter()
    with _cluster_pool(args.engine, config, resources, len(pairs)) as (ray, pool, size):
        # Chunks amortize the per-task round trip (a few ms) over several photos, yet stay
        # small enough that every worker gets some and a slow photo delays few others.
        chunks = _chunks(pairs, max(1, min(_PHOTOS_PER_TASK, -(-len(pairs) // size))))
        try:
            run_tasks(ray, pool, [("photos", (chunk, options)) for chunk in chunks],
                      [[source for source, _ in chunk] for chunk in chunks],
                      on_result=on_result, progress=Progress("ray", len(pairs)))  # fmt: skip
        except KeyboardInterrupt:
            print(f"livematte: interrupted: {written}/{len(pairs)} images written",
                  file=sys.stderr)  # fmt: skip
            raise
    return batch_status(len(pairs), len(failures), time.perf_counter() - start)
