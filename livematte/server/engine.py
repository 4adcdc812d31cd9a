"""The server's inference side: settings, a bounded worker pool and one pipeline per worker.

Decoding, inference and encoding all run in the pool's threads (never on the event loop, which
only moves bytes).  Admission is counted, not queued without end: at most ``workers + queue``
requests are in flight; the next one is told "busy" (1201/503) at once, so a burst costs the
client one round trip instead of a hung connection, and the server's memory stays bounded.

Each worker thread keeps its own ``Pipeline`` (sessions are never shared between threads): the
same pipeline ``livematte image`` builds, from the server's preset plus the request's look
(``RenderOptions.look``: background, stickers, ID photo, ... as the CLI's flags set them).
``Pipeline.rebuild`` keeps every stage whose config did not change, so the models load once per
worker; IMAGE mode is stateless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeAlias, TypeVar

import cv2
import numpy as np

from livematte.errors import SourceError
from livematte.frame import Frame, Mode
from livematte.ops.compose import fit_pixels
from livematte.outputs import MAX_PIXELS
from livematte.server import errors as E
from livematte.server.errors import ApiError
from livematte.server.images import (
    MAX_FILE_BYTES,
    PREVIEW_PIXELS,
    DecodedImage,
    RenderOptions,
    decode_image,
    render,
)
from livematte.server.keys import DEFAULT_RATE

if TYPE_CHECKING:
    from livematte.api import Pipeline, Stage
    from livematte.config import Config
    from livematte.ops.body_parts import AnalysisJSON

T = TypeVar("T")
P = ParamSpec("P")

log = logging.getLogger("livematte.server")

#: One processed upload: (bytes, extension, bodyAnalysis or None), or the error it met.
Outcome: TypeAlias = "tuple[bytes, str, AnalysisJSON | None] | ApiError"


@dataclass(frozen=True)
class ServerSettings:
    """Everything about serving that is not the pipeline's config.

    Attributes:
        keyless: "auto" (no key needed from a loopback client addressing a loopback host,
            until a key is created), "on" (nobody needs a key), "off" (everybody does); a
            key that is sent is checked in every mode (``livematte.server.access``).
        workers: inference threads, each with its own pipeline.
        queue: requests allowed to wait for a worker; beyond that: 1201 busy.
        rate: default requests per second per key (a key's own ``rate`` wins).
        max_file_bytes / max_pixels: per uploaded image.
        max_batch: files per request.
        max_request_bytes: the whole multipart body.
        warmup: build every worker's pipeline at startup (fail fast on a missing model).
        header_timeout / body_timeout: seconds a client has to send a request's headers /
            its whole body before its connection is closed (``livematte serve`` only: they
            are enforced by its connection guard, ``livematte.server.net``).
        max_connections: open connections at once; more are answered 503 and closed.
    """

    keyless: str = "auto"
    workers: int = 1
    queue: int = 8
    rate: float = DEFAULT_RATE
    max_file_bytes: int = MAX_FILE_BYTES
    max_pixels: int = MAX_PIXELS
    max_batch: int = 16
    max_request_bytes: int = 100 * 1024 * 1024
    warmup: bool = True
    # 10 s: a browser or curl sends its headers in one packet, even on a slow link; a client
    # that trickles them is holding a connection slot, not making a request.
    header_timeout: float = 10.0
    # 120 s: two 15 MB photos over a 2 Mbit/s uplink; a bound on a slow body, not a rate.
    body_timeout: float = 120.0
    # Browsers open at most 6 connections per host; 100 leaves room for many clients while
    # a flood of idle sockets (slowloris) cannot grow without end.
    max_connections: int = 100

    def __post_init__(self) -> None:
        if self.keyless not in ("auto", "on", "off"):
            raise ValueError(f"keyless must be auto, on or off, got {self.keyless!r}")
        if self.workers < 1 or self.queue < 0 or self.max_batch < 1 or not self.rate > 0:
            raise ValueError("workers and max_batch must be >= 1, queue >= 0, rate > 0")
        if not (self.header_timeout > 0 and self.body_timeout > 0 and self.max_connections >= 1):
            raise ValueError("header and body timeouts must be > 0, max_connections >= 1")


@dataclass
class MattingResult:
    """What an injected ``process`` (tests) returns in place of the keypoint + matting stages."""

    alpha: np.ndarray  # HxW float32 0..1
    foreground: np.ndarray | None  # HxWx3 uint8 BGR, decontaminated; None: use the input
    analysis: AnalysisJSON | None = None  # the bodyAnalysis to answer, when asked for


#: ``(bgr, analysis) -> MattingResult``: stands in for the keypoint and matting stages (the
#: tests' fake matte; the Ray Serve app's matting replicas).
ProcessFn: TypeAlias = Callable[[np.ndarray, bool], MattingResult]


class _InjectedFront:
    """A stage standing in for keypoints + matting: ``process(bgr, analysis)`` fills the matte."""

    def __init__(self, process: ProcessFn, analysis: bool):
        self._process, self._analysis = process, analysis
        self.analysis: AnalysisJSON | None = None

    def process(self, frame: Frame) -> Frame:
        result = self._process(frame.image, self._analysis)
        frame.alpha, frame.foreground = result.alpha, result.foreground
        self.analysis = result.analysis
        return frame

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def server_config(config: Config | str | Path | None, workers: int) -> Config:
    """The pipeline config the server runs: the preset (default "photo") in IMAGE mode.

    ``config`` is a ``Config``, a preset name/path, or None for the "photo" preset.  With
    several workers and ``runtime.threads = 0`` each session gets its share of the cores, so
    workers do not fight over them (oversubscription costs more than it gains).
    """
    from livematte.config import Config, load_config

    if not isinstance(config, Config):
        config = load_config(config or "photo")
    runtime = replace(config.runtime, mode=Mode.IMAGE)
    if runtime.threads == 0 and workers > 1:
        runtime = replace(runtime, threads=max(1, (os.cpu_count() or 1) // workers))
    return replace(config, runtime=runtime)


class Engine:
    """Bounded pool of workers that decode, cut out and encode uploads.

    Args:
        config: see ``server_config``; models load lazily, per worker (or in ``warmup``).
        settings: ServerSettings.
        process: ``(bgr, analysis) -> MattingResult`` standing in for the keypoint and
            matting stages (tests); the rest of the pipeline runs as usual.
    """

    def __init__(
        self,
        config: Config | str | Path | None,
        settings: ServerSettings,
        process: ProcessFn | None = None,
    ):
        self.settings = settings
        # Loaded now (cheap) so a bad preset fails at startup, not on the first request.
        self._config = server_config(config, settings.workers)
        self._inject = process
        self._executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="livematte")
        self._capacity = settings.workers + settings.queue
        self._in_flight = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pipelines: dict[int, Pipeline] = {}  # thread id -> its current pipeline

    def matting_model(self) -> str:
        """The matting model and provider the workers use (``X-Livematte-Model``)."""
        if self._inject is not None:
            return "custom"  # a test's process function stands in for the models
        with self._lock:
            pipelines = list(self._pipelines.values())
        if pipelines:
            return str(pipelines[0].matting_model())
        from livematte.stages.model_choice import resolve_model

        runtime = self._config.runtime
        return resolve_model(self._config.matting.model, runtime.mode, runtime.providers)

    # --- admission -------------------------------------------------------------------------

    def load(self) -> dict[str, int]:
        """Workers, queue size and requests in flight (for /health)."""
        return {
            "workers": self.settings.workers,
            "queue": self.settings.queue,
            "in_flight": self._in_flight,
        }

    def _release(self, _: object = None) -> None:
        with self._lock:
            self._in_flight -= 1

    async def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on a worker; ApiError 1201 at once when the pool is
        full."""
        with self._lock:
            if self._in_flight >= self._capacity:
                raise ApiError(E.BUSY, headers={"Retry-After": "1"})
            self._in_flight += 1
        try:
            future = self._executor.submit(fn, *args, **kwargs)
        except RuntimeError:  # shut down
            self._release()
            raise ApiError(E.BUSY, "server is shutting down") from None
        # Released when the work really ends, not when the client goes away: a cancelled
        # request whose job already runs still occupies its worker.
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    async def run(
        self,
        uploads: list[bytes],
        options: RenderOptions,
        *,
        analysis: bool = False,
        bg_image: bytes | None = None,
    ) -> list[Outcome]:
        """Process a request's files in order on one worker; per-file errors are returned."""
        return await self.submit(self._job, uploads, options, analysis, bg_image)

    async def warmup(self) -> None:
        """Build each worker's pipeline now and run it once on a small picture.

        A barrier holds every task until all have started, so each lands on its own thread.
        """
        if self._inject is not None:  # no models to load
            return
        barrier = threading.Barrier(self.settings.workers, timeout=600)

        def warm() -> None:
            try:
                self._frame(np.full((64, 64, 3), 128, np.uint8), None, RenderOptions(), False)
            except BaseException:
                barrier.abort()  # release the others at once; this error ends the startup
                raise
            barrier.wait()

        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._executor, warm) for _ in range(self.settings.workers))
        )

    def close(self) -> None:
        """Stop the pool and close every pipeline."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        for pipeline in self._pipelines.values():
            try:
                pipeline.close()
            except Exception:  # closing must never hide the shutdown
                log.exception("closing a pipeline failed")
        self._pipelines.clear()

    # --- work, on a worker thread ----------------------------------------------------------

    def _decode(self, data: bytes) -> DecodedImage:
        """Decode one uploaded image within the per-file limits."""
        return decode_image(
            data, max_bytes=self.settings.max_file_bytes, max_pixels=self.settings.max_pixels
        )

    def _job(
        self, uploads: list[bytes], options: RenderOptions, analysis: bool, bg: bytes | None
    ) -> list[Outcome]:
        background = None
        if bg is not None:
            try:
                background = self._decode(bg).bgr
            except ApiError as exc:
                raise ApiError(exc.error, f"bg_image: {exc.msg}") from None
        outcomes: list[Outcome] = []
        for data in uploads:
            try:
                outcomes.append(self._one(data, options, analysis, background))
            except ApiError as exc:
                outcomes.append(exc)
            except SourceError as exc:  # the pipeline's word on this picture, e.g. no face
                outcomes.append(ApiError(E.UNSUITABLE_IMAGE, str(exc)))
            except MemoryError:
                outcomes.append(ApiError(E.TOO_MANY_PIXELS, "out of memory for this image"))
            except Exception as exc:
                log.exception("processing an upload failed")
                outcomes.append(ApiError(E.INTERNAL, f"{E.INTERNAL.msg}: {type(exc).__name__}"))
        return outcomes

    def _one(
        self, data: bytes, options: RenderOptions, analysis: bool, background: np.ndarray | None
    ) -> tuple[bytes, str, AnalysisJSON | None]:
        decoded = self._decode(data)
        bgr, input_alpha = decoded.bgr, decoded.alpha
        if options.preview:
            # Shrink before inference, not after: a preview is meant to be fast too.
            bgr = fit_pixels(bgr, PREVIEW_PIXELS)
            if input_alpha is not None and input_alpha.shape[:2] != bgr.shape[:2]:
                size = (bgr.shape[1], bgr.shape[0])
                input_alpha = cv2.resize(input_alpha, size, interpolation=cv2.INTER_AREA)
        frame, body = self._frame(bgr, input_alpha, options, analysis, background)
        encoded, ext = render(frame, options)
        return encoded, ext, body

    def matte(self, bgr: np.ndarray, analysis: bool = False) -> MattingResult:
        """One picture's matte, foreground colours and body analysis, on this thread's
        pipeline with the server's preset and no look: the model work a Ray Serve matting
        replica does for its ingress (``distributed/serve.py``), whose own pipeline composites.

        Raises:
            RuntimeError: the pipeline made no matte.
        """
        frame, body = self._frame(bgr, None, RenderOptions(), analysis)
        if frame.alpha is None:
            raise RuntimeError("the matting replica's pipeline made no matte")
        return MattingResult(frame.alpha, frame.foreground, body)

    def _frame(
        self,
        bgr: np.ndarray,
        input_alpha: np.ndarray | None,
        options: RenderOptions,
        analysis: bool,
        background: np.ndarray | None = None,
    ) -> tuple[Frame, AnalysisJSON | None]:
        """Run this thread's pipeline, set up for this request, on one picture."""
        from livematte.config import replace as with_overrides

        overrides = options.overrides
        if analysis:
            overrides["keypoints.enabled"] = True
        config = with_overrides(self._config, overrides)
        pipeline = self._pipeline(config, analysis)
        if background is not None:
            pipeline.set_background(background)
        frame = pipeline.process(Frame(image=bgr, source_alpha=input_alpha))
        body = None
        if isinstance(pipeline.stages[0], _InjectedFront):
            body = pipeline.stages[0].analysis
        elif analysis:
            from livematte.ops.body_parts import analysis_json

            body = analysis_json(frame.people, frame.size)
        return frame, body

    def _pipeline(self, config: Config, analysis: bool) -> Pipeline:
        """This thread's pipeline for ``config``: its stages whose config is unchanged are kept
        (models load once per thread), the others are made anew."""
        from livematte.api import build_pipeline

        current = getattr(self._local, "pipeline", None)
        if current is None:
            front: list[Stage] | None = None
            if self._inject is not None:
                front = [_InjectedFront(self._inject, analysis)]
            current = build_pipeline(config, front=front)
        elif self._inject is not None:
            current.close()
            current = build_pipeline(config, front=[_InjectedFront(self._inject, analysis)])
        else:
            current = current.rebuild(config)
        self._local.pipeline = current
        with self._lock:
            self._pipelines[threading.get_ident()] = current
        return current
