"""The runners: a Source, a pipeline and Sinks, under one of two schedulers.

* :func:`run_video` (``ordered``): every frame in order, nothing dropped; decode, process and
  encode overlap through bounded queues (VIDEO).
* :class:`LiveRunner` (``latest``): a capture thread keeps only the newest frame, so latency
  stays bounded when processing is slower than the camera (LIVE).

Both return a typed result (``results``: :class:`VideoRun`, :class:`LiveRun`) that says how
the run ended (completed, interrupted by Ctrl-C, or the error that stopped it); neither
attaches figures to an exception.
"""

from livematte.runner.latest import Capture, Captured, LiveRunner
from livematte.runner.ordered import ProcessFn, Processor, ProgressFn, as_process_fn, run_video
from livematte.runner.results import LiveRun, RunResult, SinkFigures, VideoRun

__all__ = [
    "Capture",
    "Captured",
    "LiveRun",
    "LiveRunner",
    "ProcessFn",
    "Processor",
    "ProgressFn",
    "RunResult",
    "SinkFigures",
    "VideoRun",
    "as_process_fn",
    "run_video",
]
