"""``livematte video``: turn footage into a composite, an alpha file or a matte, every frame kept.

One function for the CLI to call, :func:`transcode`; it opens the source(s), runs the
pipeline through :func:`~livematte.runner.run_video` into the sink, shows a progress
bar on stderr (only on a terminal) and returns a :class:`VideoSummary`.

Example::

    from livematte import build_pipeline, load_config
    from livematte.video import transcode

    with build_pipeline(load_config("video")) as pipeline:
        summary = transcode("in.mp4", "out.mov", pipeline, fmt="prores4444")
    print(summary.line())
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from livematte.errors import LivematteError, SinkError, stderr_notice
from livematte.io.sinks import (
    CONTAINERS,
    FORMATS,
    default_extension,
    resolve_format,
)
from livematte.io.sources import expand_inputs, open_source
from livematte.io.table import open_sink
from livematte.outputs import IMAGE_FORMATS, refuse_overwriting_input
from livematte.runner import ProcessFn, Processor, VideoRun, run_video


@dataclass
class FileResult:
    """The outcome for one input: written, interrupted (``interrupted``, partial kept) or
    failed (``error``).  ``ended_early`` says what a truncated or damaged input lacked (it is
    still written)."""

    input: str
    output: str | None = None
    frames: int = 0
    skipped: int = 0
    seconds: float = 0.0
    partial: str | None = None
    error: str | None = None
    ended_early: str | None = None
    interrupted: bool = False
    stats: VideoRun | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class VideoSummary:
    """All inputs of one ``transcode`` call; ``line()`` is the summary the CLI prints.
    ``interrupted``: Ctrl-C (or a cancel) stopped the batch; the last result says where the
    part done is, and the inputs after it were not started."""

    results: list[FileResult] = field(default_factory=list)
    interrupted: bool = False

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.results)

    @property
    def skipped(self) -> int:
        return sum(r.skipped for r in self.results)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.error]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        """0 when every input was written, else the CLI's generic failure status 1.

        An input that ended early (truncated) still counts as written: its output is complete
        and playable for what the file holds, as with corrupt frames ("N skipped"); the
        summary line and a notice say what is missing.  Non-zero means an output is missing.
        """
        return 1 if self.failed else 0

    def line(self) -> str:
        """``done: 250 frames in 10.0 s (25.0 fps), 0 skipped -> out.mp4`` (+ inputs that
        ended early, + failures)."""
        written = [r.output for r in self.results if r.output and not r.error]
        target = written[0] if len(written) == 1 else f"{len(written)} files"
        text = (
            f"done: {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} fps), "
            f"{self.skipped} skipped -> {target}"
        )
        for r in self.results:
            if r.ended_early:
                text += f"; {Path(r.input).name} ended early: {r.ended_early}"
        if self.failed:
            text += f"; {len(self.failed)} failed: " + "; ".join(
                f"{r.input}: {r.error}" for r in self.failed
            )
        return text


class Progress:
    """A one-line progress bar with fps and ETA on a terminal; silent elsewhere.  An
    ``estimated`` total (from a duration, not a frame count) is shown as ``~N``."""

    def __init__(self, label: str, total: int | None, stream: TextIO | None = None,
                 enabled: bool = True, estimated: bool = False):  # fmt: skip
        self.stream = stream or sys.stderr
        self.enabled = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.label, self.total, self.estimated = label, total, estimated
        self._last = 0.0

    def __call__(self, done: int, elapsed: float) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.25:
            return  # redrawing more than 4x a second costs more than it shows
        self._last = now
        fps = done / elapsed if elapsed > 0 else 0.0
        if self.total:
            total = max(self.total, done)  # an estimate can be short; never show 103/100
            share = done / total
            bar = "#" * int(share * 24)
            eta = (total - done) / fps if fps > 0 else 0.0
            mark = "~" if self.estimated else ""
            text = (f"{self.label} [{bar:<24}] {share:4.0%} {done}/{mark}{total} "
                    f"{fps:5.1f} fps ETA {int(eta) // 60}:{int(eta) % 60:02d}")  # fmt: skip
        else:
            text = f"{self.label} {done} frames {fps:5.1f} fps"
        self.stream.write("\r" + text[:120] + "\033[K")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self._last:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _output_for(source: str, output: Path, fmt: str, batch: bool) -> Path:
    if not batch:
        return output
    stem = Path(source.rstrip("/\\")).stem or "output"
    stem = stem.replace("*", "").replace("?", "") or "sequence"
    return output / (stem + default_extension("composite" if fmt == "auto" else fmt))


@dataclass(frozen=True)
class OutputPlan:
    """What :func:`plan_outputs` found: the inputs, one output per input, the format written
    (never "auto") and whether this is batch mode (``output`` is a folder)."""

    inputs: list[str]
    targets: list[Path]
    fmt: str
    batch: bool


def plan_outputs(
    inputs: str | Path | Sequence[str | Path],
    output: str | Path,
    fmt: str = "auto",
    *,
    create: bool = True,
) -> OutputPlan:
    """Check inputs against the output before anything is decoded or any model loads, and
    (``create``) create the output folder of batch mode, as ``livematte image`` does.

    Raises:
        SourceError: a pattern matches nothing.
        SinkError: unknown format, an extension the format cannot be written to, several
            inputs into one video file, two inputs with the same output name, or an output
            that would overwrite its input.
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise SinkError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")
    specs = expand_inputs(inputs)
    output = Path(output)
    batch = len(specs) > 1 or (output.is_dir() and fmt != "png-seq" and not output.suffix)
    if batch:
        if not output.is_dir() and output.suffix.lower() in {*CONTAINERS, *IMAGE_FORMATS}:
            raise SinkError(f"several inputs need an output folder, not the file {output}")
        written = resolve_format(output / ("x" + default_extension(fmt)), fmt)
        targets = [_output_for(spec, output, fmt, True) for spec in specs]
        if len(set(targets)) != len(targets):
            raise SinkError("several inputs share a file name; process them in separate folders")
    else:
        written, targets = resolve_format(output, fmt), [output]
    for spec, target in zip(specs, targets, strict=True):
        refuse_overwriting_input(spec, target)
    if batch and create:
        output.mkdir(parents=True, exist_ok=True)
    return OutputPlan(specs, targets, written, batch)


@dataclass(frozen=True)
class _Options:
    """How each input of a ``transcode`` call is read and written (its keyword arguments)."""

    start: float | None
    end: float | None
    fps: float
    quality: str | int
    codec: str | None
    preset: str
    notice: Callable[[str], None]


def _one(
    spec: str,
    target: Path,
    process: ProcessFn | Processor,
    fmt: str,
    options: _Options,
    progress: bool,
    label: str,
) -> FileResult:
    """One input into ``target``: its result (written, or interrupted with the part done
    kept).

    Raises:
        SourceError, SinkError, the pipeline's errors: the input failed (its output removed).
    """
    result = FileResult(input=spec, output=str(target))
    with open_source(
        spec, start=options.start, end=options.end, fps=options.fps
    ) as source:
        reset = getattr(process, "reset", None)
        if callable(reset):
            reset()  # a new file is a new shot: no temporal state carried over
        bar = Progress(label, source.frame_count, enabled=progress,
                       estimated=source.frame_count_estimated)  # fmt: skip
        sink = open_sink(
            target, fmt, quality=options.quality, codec=options.codec,
            preset=options.preset, passthrough=source.passthrough_streams,
            rate=source.rate, notice=options.notice,
        )  # fmt: skip
        try:
            run = run_video(source, process, sink, on_progress=bar)
        except BaseException as exc:  # noqa: BLE001 - re-raised once the sink let go
            bar.finish()
            sink.abort(keep_partial=isinstance(exc, KeyboardInterrupt))
            raise
        bar.finish()
        if not run.completed:
            sink.abort(keep_partial=run.interrupted)
        else:
            if source.ended_early:
                result.ended_early = source.ended_early
                options.notice(
                    f"warning: {Path(spec).name} ended early: {source.ended_early}; "
                    "truncated or damaged, the output stops there"
                )
                sink.end_with_video = True  # its other streams are cut or padded to match
            sink.close()
    if run.error is not None:
        raise run.error
    result.frames, result.seconds, result.stats = run.frames, run.seconds, run
    result.skipped = source.skipped
    result.interrupted = run.interrupted
    result.partial = str(sink.partial_path) if sink.partial_path else None
    return result


def transcode(
    inputs: str | Path | Sequence[str | Path],
    output: str | Path,
    process: ProcessFn | Processor,
    *,
    fmt: str = "auto",
    quality: str | int = "high",
    codec: str | None = None,
    preset: str = "veryfast",
    start: float | None = None,
    end: float | None = None,
    fps: float = 25.0,
    progress: bool = True,
    on_error: str = "skip",
    notice: Callable[[str], None] | None = None,
) -> VideoSummary:
    """Process one video (or image sequence) into ``output``, or many into a folder.

    Args:
        inputs: a path, folder of images, glob, or a list of them.  More than one video (or an
            existing folder as ``output``) means batch mode: each input becomes
            ``output/<stem>.<ext>`` (the folder is created when missing).
        output: file (or folder for png-seq / batch).
        process: ``Frame -> Frame`` callable or a Pipeline (``.process``; ``.reset()`` is
            called before each file).
        fmt: auto | composite | prores4444 | webm-alpha | png-seq | matte | foreground |
            greenscreen (auto: png-seq for a folder, else composite).
        quality: low | medium | high | max (or a CRF number).
        codec: h264 (default) or h265 for the non-alpha formats.
        preset: x264/x265 speed preset.
        start, end: trim range in seconds; output timestamps start at ``start``.
        fps: frame rate for image-sequence inputs.
        progress: show a progress bar (only when stderr is a terminal).
        on_error: batch mode: "skip" continues past a bad input and reports it, "raise" stops.
        notice: receives one-line notices (default: printed to stderr).

    Returns:
        VideoSummary (``.line()``, ``.exit_code``, per-file ``results``).

    Raises:
        SourceError, SinkError: single-input mode (or on_error="raise"), one clear line.

    Ctrl-C is not raised: the partial file is finalized, a notice says where it is, and the
    summary returned says ``interrupted`` (the inputs after it are not started).
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    say = notice or stderr_notice
    output = Path(output)
    plan = plan_outputs(inputs, output, fmt)
    specs, batch = plan.inputs, plan.batch
    options = _Options(start, end, fps, quality, codec, preset, say)
    summary = VideoSummary()
    for number, spec in enumerate(specs, 1):
        target = plan.targets[number - 1]
        label = f"[{number}/{len(specs)}] {Path(spec).name}" if batch else Path(spec).name
        try:
            result = _one(spec, target, process, fmt, options, progress, label)
        except KeyboardInterrupt:  # before or after the run (opening, finishing)
            result = FileResult(spec, interrupted=True)
        except (LivematteError, OSError) as exc:
            if not batch or on_error == "raise":
                raise
            message = " ".join(str(exc).split())
            say(f"skipping {spec}: {message}")
            summary.results.append(FileResult(spec, error=message))
            continue
        summary.results.append(result)
        if result.interrupted:
            where = f"; the part done is in {result.partial}" if result.partial else ""
            say(f"interrupted after {result.frames} frames{where}")
            summary.interrupted = True
            break
    return summary
