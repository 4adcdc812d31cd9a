"""The runners' thread policy: how many threads OpenCV may use, and which threads yield.

* OpenCV's own thread pool (one worker per core by default) follows ``runtime.threads``, the
  number of threads a pipeline's model may use: its workers spin while they wait for work, and
  with the decoder, the encoder or a camera busy on the other core they buy no speed.  Measured
  on the 2-core reference machine, 720p ``livematte video`` whole process: 49.2 -> 42.5 ms CPU
  per frame and 0.50x -> 0.57x the bare transcode's fps; 1080p level (BENCHMARKS.md, "the I/O
  edge and threads"); live preset with a core free 23.6 -> 17.7 ms ("video and live").
* In VIDEO mode the processing thread is the critical path (busy ~97% of the run, the decoder
  blocked on a full queue); the decode and encode threads, and the codec threads FFmpeg starts
  from them, run one nice level step lower so that, when the cores are contended, the
  processing thread is scheduled first; they still take any core it leaves idle.  Linux only
  (elsewhere nice is per process, not per thread).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

#: Nice levels the decode and encode threads add to their own (the kernel's weight for nice 4
#: is 40% of nice 0's: the processing thread wins a contended core, I/O still runs).
IO_NICE_STEP = 4


def pipeline_threads(process: object) -> int:
    """``runtime.threads`` of the pipeline behind ``process`` (a Pipeline, its bound
    ``process`` method, or an object holding one as ``pipeline``); 0 when there is none."""
    for candidate in (process, getattr(process, "__self__", None)):
        for owner in (candidate, getattr(candidate, "pipeline", None)):
            runtime = getattr(getattr(owner, "config", None), "runtime", None)
            threads = getattr(runtime, "threads", None)
            if isinstance(threads, int):
                return threads
    return 0


@contextlib.contextmanager
def opencv_threads(count: int) -> Iterator[None]:
    """OpenCV's thread pool limited to ``count`` threads for the block (0: left as it is),
    restored afterwards (the setting is process-wide)."""
    if count <= 0:
        yield
        return
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def yield_to_processing(step: int = IO_NICE_STEP) -> bool:
    """Lower the calling thread's priority by ``step`` nice levels (threads it starts later
    inherit it); True when done.  Only raising the nice value is asked, which needs no
    privilege; anything refused leaves the thread as it was."""
    if not sys.platform.startswith("linux") or step <= 0:
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + step))
    except OSError:
        return False
    return True
