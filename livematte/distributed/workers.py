"""The Ray actor: one per worker slot, models loaded once, livematte's own code per task.

Nothing here imports Ray: :func:`actor_class` wraps :class:`MattingWorker` when the driver
asks, so this module also loads (and is tested) without the extra.

Each actor builds the pipeline from the driver's ``Config`` (the very object the local command
would use) and runs a task through :func:`livematte.video.transcode` for a video, or through
the ``image`` command's own per-photo function for a chunk of photos.  Outputs go through the
same atomic sinks, so a task that fails or is cancelled leaves nothing under the final name.

Two concurrency groups: tasks run one at a time in the default group; ``progress`` and
``cancel`` run in the ``control`` group, so the driver can poll and stop a busy actor.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livematte.config import Config
from livematte.errors import LivematteError
from livematte.video import FileResult

#: Concurrency group for calls that must not wait for the running task.
CONTROL = "control"


@dataclass
class TaskResult:
    """What one task sends back: livematte's own per-file results, the notices it would have
    printed, the error (kept whole so the driver can re-raise it with its exit code), and
    whether the driver's cancel stopped it (the part done is then ``result.partial``)."""

    results: list[FileResult] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    error: BaseException | None = None
    interrupted: bool = False


class _Cancelled(KeyboardInterrupt):
    """Raised inside the pipeline when the driver cancels: livematte's Ctrl-C path then
    finalizes the part done exactly as it does locally."""


class _Counted:
    """The pipeline as ``transcode`` sees it: ``process`` counts frames and honours cancel;
    ``reset`` passes through (a new file is a new shot)."""

    def __init__(self, pipeline: Any, cancel: threading.Event):
        self.pipeline, self.cancel = pipeline, cancel
        self.frames = 0

    def process(self, frame: Any) -> Any:
        if self.cancel.is_set():
            raise _Cancelled
        frame = self.pipeline.process(frame)
        self.frames += 1
        return frame

    def reset(self) -> None:
        self.pipeline.reset()


def _frame_count(spec: str, options: dict[str, Any]) -> int | None:
    """The frames ``spec`` should give (for the batch progress line); None when unknown or
    unreadable (``transcode`` then reports the real error)."""
    from livematte.io.sources import open_source

    try:
        with open_source(spec, start=options.get("start"), end=options.get("end"),
                         fps=options.get("fps", 25.0), passthrough=False) as source:  # fmt: skip
            return source.frame_count
    except (LivematteError, OSError):
        return None


class MattingWorker:
    """One worker: the pipeline for ``config``, built once, reused for every task it runs."""

    def __init__(self, config: Config):
        self._cancel = threading.Event()
        self._current: _Counted | None = None
        self._total: int | None = None
        self._startup_error: BaseException | None = None
        try:
            from livematte.api import build_pipeline

            self._pipeline = build_pipeline(config)
        except (LivematteError, OSError) as exc:
            # Kept, not raised: Ray would turn it into an opaque "actor died"; ``ready``
            # hands it to the driver whole (a missing model is one clear line there).
            self._startup_error = exc

    def ready(self) -> BaseException | None:
        """None once the models are loaded, else the error that stopped them."""
        return self._startup_error

    def progress(self) -> tuple[int, int | None]:
        """(frames processed, frames expected) of the running task (control group)."""
        current = self._current
        return (current.frames if current else 0), self._total

    def cancel(self) -> None:
        """Stop the running task at the next frame; its part done is finalized (control
        group)."""
        self._cancel.set()

    def video(self, spec: str, target: str, options: dict[str, Any],
              count: bool = True) -> TaskResult:  # fmt: skip
        """Run one input through ``transcode`` into ``target`` (a file, or a folder for
        png-seq), as the local batch does for that input; ``count``: read its frame count
        first (for the driver's progress line)."""
        from livematte.video import transcode

        task = TaskResult()
        self._total = _frame_count(spec, options) if count else None
        self._current = _Counted(self._pipeline, self._cancel)
        try:
            summary = transcode(spec, Path(target), self._current, progress=False,
                                notice=task.notices.append, **options)  # fmt: skip
            task.results, task.interrupted = summary.results, summary.interrupted
        except KeyboardInterrupt:  # a cancel outside the frames (opening the input)
            task.interrupted = True
            task.results = [FileResult(spec, interrupted=True)]
        except (LivematteError, OSError) as exc:
            task.error = exc
            task.results = [FileResult(spec, error=" ".join(str(exc).split()))]
        finally:
            self._current, self._total = None, None
        return task

    def photos(self, pairs: list[tuple[str, str]], options: dict[str, Any]) -> TaskResult:
        """Run a chunk of photos through the ``image`` command's own ``read_photo`` and
        ``write_photo`` (livematte.photos), each into its target; a photo that fails is
        recorded and the chunk goes on.  ``options``: ``write_photo``'s, plus ``max_pixels``."""
        from livematte.photos import read_photo, write_photo

        options = dict(options)
        max_pixels = options.pop("max_pixels")
        task = TaskResult()
        self._total = len(pairs)
        self._current = counter = _Counted(self._pipeline, self._cancel)
        try:
            for source, target in pairs:
                if self._cancel.is_set():
                    task.interrupted = True
                    break
                try:
                    image = read_photo(Path(source), max_pixels)
                    write_photo(self._pipeline, image, Path(source), Path(target), **options)
                    task.results.append(FileResult(source, output=target, frames=1))
                except LivematteError as exc:
                    task.error = exc
                    task.results.append(FileResult(source, error=str(exc)))
                counter.frames += 1
        finally:
            self._current, self._total = None, None
        return task

    def close(self) -> None:
        if self._startup_error is None:
            self._pipeline.close()


def actor_class(ray: Any, *, cpus: float, gpus: float) -> Any:
    """``MattingWorker`` as a Ray actor class reserving ``cpus`` and ``gpus`` per actor."""
    remote = ray.remote(concurrency_groups={CONTROL: 1})(MattingWorker)
    return remote.options(num_cpus=cpus, num_gpus=gpus, max_restarts=0)
