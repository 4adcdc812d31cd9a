"""The runners' memory policy: freed frame buffers stay with the process for the next frame.

Every VIDEO frame allocates a few full-resolution arrays (the decoded picture, the alpha and
its temporaries, the foreground, the composite: about 20 MB at 720p) and frees them a few
frames later, from another thread.  glibc's allocator hands such blocks back to the kernel
(``mmap``/``munmap`` above its mmap threshold, heap trimming above its trim threshold), so the
next frame's arrays start as fresh pages that the kernel must fault in and zero: ~600 page
faults and 2.6-3.3 ms of system CPU per 720p frame of ``livematte video``.  With the
thresholds raised, the blocks are reused from the heap: ~140 faults and ~1 ms (BENCHMARKS.md,
"video, third session").  The live runner applies it too: a LIVE frame allocates and frees
the same arrays (BENCHMARKS.md, "live runner memory").

glibc only (``mallopt``); elsewhere nothing is done.  The setting is process-wide and, as
glibc has no way back to its adaptive defaults, stays for the life of the process: a process
that runs one video keeps up to ``TRIM_BYTES`` of freed memory for its next allocations.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys
import threading

#: mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks below this come from the heap, not from mmap: glibc's ceiling on 64-bit (a 1080p
#: float32 alpha is 8.3 MB; a 4K one, 33 MB, is still mapped on its own).
MMAP_BYTES = 32 * 1024 * 1024
#: Free memory at the top of a heap kept rather than returned to the kernel.
TRIM_BYTES = 512 * 1024 * 1024

_lock = threading.Lock()
_done: bool | None = None


def _mallopt() -> object | None:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (once per process); True when they are set."""
    global _done
    with _lock:
        if _done is None:
            mallopt = _mallopt()
            _done = bool(
                mallopt is not None
                and mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES)  # type: ignore[operator]
                and mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES)  # type: ignore[operator]
            )
        return _done
