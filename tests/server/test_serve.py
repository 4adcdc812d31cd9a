"""``livematte serve`` as a user runs it, a real process on loopback: slow clients are cut off,
the connection count is capped, a dropped upload is one log line, a busy port is one error.

Each test starts its own server (``--no-warmup``: no model is loaded, none is needed to read
requests) on a free port with an empty key database of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from media import free_port

pytest.importorskip("uvicorn", reason="the server extra (uvicorn) is not installed")

ROOT = Path(__file__).resolve().parents[2]
SLOW_HEAD = b"POST /api/v1/matting HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n" * 4


@contextmanager
def serve(tmp_path: Path, *flags: str) -> Iterator[tuple[int, Path]]:
    """``livematte serve`` on a free port; yields (port, its stderr log) once /health answers."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "livematte", "serve", "--port", str(port), "--no-warmup",
            "--keys-db", str(tmp_path / "keys.sqlite3"), *flags]  # fmt: skip
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=err, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start: {log.read_text()}") from None
                time.sleep(0.1)
        yield port, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def trickle(socks: list[socket.socket], data: bytes, every: float, limit: float) -> dict:
    """Send ``data`` a byte at a time, ``every`` seconds, on each socket until the server
    closes it or ``limit`` seconds pass; returns {socket: (seconds open, bytes received)}."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    start = time.monotonic()
    closed: dict[socket.socket, tuple[float, bytes]] = {}
    received = {s: b"" for s in socks}
    sent = 0
    next_send = start
    while len(closed) < len(socks) and time.monotonic() - start < limit:
        if time.monotonic() >= next_send and sent < len(data):
            for s in socks:
                if s not in closed:
                    with contextlib.suppress(OSError):  # reset: the read below sees it closed
                        s.send(data[sent : sent + 1])
            sent += 1
            next_send += every
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                received[s] += chunk
            else:
                closed[s] = (time.monotonic() - start, received[s])
                sel.unregister(s)
    for s in socks:
        s.close()
    return closed


def test_slow_headers_are_cut_off_and_connections_capped(tmp_path):
    # The case: 40 connections trickling headers a byte at a time (before: all
    # still open after 40 s).  Defaults: 10 s for the headers.
    with serve(tmp_path) as (port, _):
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        closed = trickle(socks, SLOW_HEAD, every=0.5, limit=25)
        assert len(closed) == 40, f"{40 - len(closed)} slow connections still open after 25 s"
        times = sorted(t for t, _ in closed.values())
        assert times[0] > 8 and times[-1] < 16, times
        for _, answer in closed.values():
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["code"] == 1109
        # The server still serves.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            assert json.load(r)["status"] == "ok"

    with serve(tmp_path, "--max-connections", "5") as (port, _):
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        time.sleep(0.5)
        extra = socket.create_connection(("127.0.0.1", port))
        extra.settimeout(5)
        t0 = time.monotonic()
        answer = extra.recv(65536)
        assert time.monotonic() - t0 < 2 and answer.startswith(b"HTTP/1.1 503 "), answer[:80]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["code"] == 1201
        for s in (*idle, extra):
            s.close()


HEAD = (
    b"POST /api/v1/matting HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n"
    b"--x\r\nContent-Disposition: form-data; name=file; filename=a.png\r\n\r\n"
)


def wait_for_lines(log: Path, text: str, count: int, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while log.read_text().count(text) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return log.read_text()


def test_a_dropped_upload_is_one_log_line(tmp_path):
    # Before: two ERROR tracebacks (the app's handler and uvicorn's) per dropped upload.
    with serve(tmp_path) as (port, log):
        gone = socket.create_connection(("127.0.0.1", port))
        gone.sendall(HEAD + b"\0" * 5000)
        time.sleep(0.5)
        gone.close()
        text = wait_for_lines(log, "ended early", 1)
        time.sleep(0.5)
        text = log.read_text()
    assert "Traceback" not in text and "ERROR" not in text, text
    [line] = [t for t in text.splitlines() if "ended early" in t]
    assert "POST /api/v1/matting from 127.0.0.1:" in line and "nothing processed" in line


def test_a_slow_body_is_cut_off(tmp_path):
    with serve(tmp_path, "--body-timeout", "3") as (port, log):
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(HEAD)
        closed = trickle([slow], b"\0" * 1000, every=0.2, limit=15)
        assert len(closed) == 1 and 2.5 < next(iter(closed.values()))[0] < 7
        text = wait_for_lines(log, "ended early", 1)
    assert text.count("ended early") == 1 and "Traceback" not in text, text


def test_busy_port_is_one_error_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "livematte", "serve", "--port", str(port), "--no-warmup",
             "--keys-db", str(tmp_path / "keys.sqlite3")],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"livematte: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ], result.stderr


def test_a_model_that_fails_to_load_is_one_error_line(tmp_path):
    # Warm-up runs before uvicorn starts: its error is ours (exit 5), not uvicorn's traceback.
    result = subprocess.run(
        [sys.executable, "-m", "livematte", "serve", "--port", str(free_port()),
         "--keys-db", str(tmp_path / "keys.sqlite3"), "--set", "matting.model=/nowhere/m.onnx"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 5
    assert result.stderr.splitlines() == [
        "livematte: error: model file not found: /nowhere/m.onnx"
    ], result.stderr


NO_KEYS_HINT = "livematte: no API keys yet; create one with `livematte keys create`"


@pytest.mark.parametrize(
    ("flags", "hint"),
    [
        (("--keyless", "off"), NO_KEYS_HINT),
        (("--keyless", "on"), None),
    ],
    ids=["off", "on"],
)
def test_the_key_hint_follows_keyless(tmp_path, flags, hint):
    # --keyless off with an empty key database: one line saying how to make a key; keyless on
    # (no key store at all) on loopback: no hint, no warning.
    with serve(tmp_path, *flags) as (_, log):
        text = wait_for_lines(log, "serving on", 1)
    lines = text.splitlines()
    assert "Traceback" not in text, text
    if hint is None:
        assert not any("no API keys yet" in t or "warning" in t for t in lines), text
    else:
        assert hint in lines, text
