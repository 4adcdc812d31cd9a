"""The runners' memory policy: glibc keeps freed frame buffers for the next frame."""

from __future__ import annotations

import platform
import sys

import pytest
from media import invert

from livematte.io.capture import StreamSource
from livematte.io.sinks import NullSink
from livematte.runner import LiveRunner, memory


def test_keep_freed_memory_is_set_once_and_says_so() -> None:
    first = memory.keep_freed_memory()
    assert memory.keep_freed_memory() is first
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert first is glibc


def test_no_glibc_means_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_done", None)
    monkeypatch.setattr(memory.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert memory.keep_freed_memory() is False  # monkeypatch puts the real state back


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_mallopt_accepts_the_thresholds() -> None:
    mallopt = memory._mallopt()
    assert mallopt is not None
    assert mallopt(memory._M_MMAP_THRESHOLD, memory.MMAP_BYTES) == 1  # type: ignore[operator]
    assert mallopt(memory._M_TRIM_THRESHOLD, memory.TRIM_BYTES) == 1  # type: ignore[operator]


def test_the_live_runner_applies_the_policy(clip, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    real = memory._mallopt()

    def recording() -> object:
        def mallopt(param: int, value: int) -> int:
            calls.append((param, value))
            return 1 if real is None else real(param, value)  # type: ignore[operator]

        return mallopt

    monkeypatch.setattr(memory, "_done", None)  # as in a fresh process
    monkeypatch.setattr(memory, "_mallopt", recording)
    stats = LiveRunner(StreamSource(clip, fps=60), invert, [NullSink()], duration=0.3).run()
    assert stats.error is None and stats.processed >= 1
    assert calls == [
        (memory._M_MMAP_THRESHOLD, memory.MMAP_BYTES),
        (memory._M_TRIM_THRESHOLD, memory.TRIM_BYTES),
    ]
    assert memory._done is True
