#!/usr/bin/env python3
"""Load and abuse test for ``livematte serve`` on 127.0.0.1; prints tables, writes JSON.

Phases (each bounded in requests and in time):

1. load: N concurrent clients post a small photo until ``--requests`` are done or
   ``--duration`` runs out: p50/p95/p99 latency, throughput, answers by code; the server's RSS
   before and after (``/proc/PID/status``, so only for a server this script started or
   ``--pid``).
2. abuse: empty file, truncated JPEG, random bytes named .jpg, a 20000x20000 PNG bomb (made
   compactly, ~50 kB), wrong field name, missing key, wrong key: each must get its documented
   code, and a good request afterwards must still succeed.
3. 1080p: median latency of one 1920x1080 photo through /api/v1/matting, one at a time.

By default it starts its own server (``python -m livematte serve``) on a free
port with ``--require-key`` and a fresh key database holding one high-rate key, so the key
checks run too.  Example::

    python scripts/loadtest.py --clients 4 --requests 1000 --json /tmp/loadtest.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "livematte" / "samples" / "astronaut.jpg"
PHOTO_1080P = ROOT.parent / "shared" / "data" / "matting" / "p3m_pseudo_gt" / "p_09ba26b4.jpg"


# --- inputs ---------------------------------------------------------------------------------------


def small_photo(side: int = 256) -> bytes:
    img = Image.open(SAMPLE).convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def photo_1080p() -> tuple[bytes, str]:
    if PHOTO_1080P.exists():
        return PHOTO_1080P.read_bytes(), PHOTO_1080P.name
    # No shared data: the sample scaled to 1920x1080 (the same pixel count, less detail).
    img = Image.open(SAMPLE).convert("RGB").resize((1920, 1080), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue(), "astronaut-1920x1080.jpg"


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A valid all-black 1-bit PNG: 400 MP, ~50 kB, built row by row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# --- the server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def start_server(args: argparse.Namespace, keys_db: str) -> tuple[subprocess.Popen, str, str]:
    env = dict(os.environ, LIVEMATTE_KEYS_DB=keys_db)
    create = [sys.executable, "-m", "livematte", "keys", "create"]
    token = subprocess.run(
        [*create, "--name", "loadtest", "--rate", "100000"],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    port = free_port()
    cmd = [
        sys.executable, "-m", "livematte", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--preset", args.preset, "--workers", str(args.workers),
        "--queue", str(args.queue), "--require-key", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url, token
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("server did not become healthy in 120 s")


def api_code(response: httpx.Response) -> int:
    if response.status_code == 200:
        return 0
    try:
        return int(response.json()["code"])
    except (ValueError, KeyError, TypeError):
        return -response.status_code


# --- phases ---------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def load_phase(url: str, token: str, args: argparse.Namespace, pid: int | None) -> dict:
    photo = small_photo()
    headers = {"APIKEY": token} if token else {}
    with httpx.Client(timeout=60) as c:  # warm the pool and the allocator first
        for _ in range(min(10, args.requests)):
            c.post(url + "/api/v1/matting", files={"file": ("s.jpg", photo)}, headers=headers)
    rss_before = rss_mb(pid)
    lock = threading.Lock()
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    issued = [0]
    deadline = time.monotonic() + args.duration

    def client() -> None:
        with httpx.Client(timeout=60) as c:
            while time.monotonic() < deadline:
                with lock:
                    if issued[0] >= args.requests:
                        return
                    issued[0] += 1
                t0 = time.perf_counter()
                try:
                    r = c.post(
                        url + "/api/v1/matting", files={"file": ("s.jpg", photo)}, headers=headers
                    )
                    code = api_code(r)
                except httpx.HTTPError:
                    code = -1
                elapsed = time.perf_counter() - t0
                with lock:
                    codes[code] += 1
                    if code == 0:
                        latencies.append(elapsed * 1000)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    rss_after = rss_mb(pid)
    done = sum(codes.values())
    return {
        "clients": args.clients,
        "requests": done,
        "ok": codes.get(0, 0),
        "wall_s": round(wall, 2),
        "throughput_rps": round(codes.get(0, 0) / wall, 2) if wall else 0.0,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "codes": {str(k): v for k, v in sorted(codes.items())},
        "rss_before_mb": None if rss_before is None else round(rss_before, 1),
        "rss_after_mb": None if rss_after is None else round(rss_after, 1),
        "image": "astronaut 256x256 JPEG",
    }


def abuse_phase(url: str, token: str) -> list[dict]:
    good = small_photo(128)
    jpeg = small_photo(512)
    key = {"APIKEY": token}
    cases = [
        ("empty file", {"file": ("e.jpg", b"")}, key, 1102),
        ("truncated JPEG", {"file": ("t.jpg", jpeg[: len(jpeg) // 2])}, key, 1104),
        ("random bytes named .jpg", {"file": ("r.jpg", os.urandom(4096))}, key, 1103),
        ("20000x20000 PNG bomb", {"file": ("bomb.png", png_bomb())}, key, 1106),
        ("wrong field name", {"image": ("g.jpg", good)}, key, 1101),
        ("missing key", {"file": ("g.jpg", good)}, {}, 1002),
        ("wrong key", {"file": ("g.jpg", good)}, {"APIKEY": "lm_" + "x" * 43}, 1003),
    ]
    rows = []
    with httpx.Client(timeout=60) as c:
        for name, files, headers, expected in cases:
            t0 = time.perf_counter()
            r = c.post(url + "/api/v1/matting", files=files, headers=headers)
            ms = (time.perf_counter() - t0) * 1000
            after = c.post(url + "/api/v1/matting", files={"file": ("g.jpg", good)}, headers=key)
            rows.append({
                "case": name, "expected": expected, "code": api_code(r), "http": r.status_code,
                "ms": round(ms, 1), "still_serving": after.status_code == 200,
                "pass": api_code(r) == expected and after.status_code == 200,
            })  # fmt: skip
    return rows


def latency_1080p(url: str, token: str, runs: int) -> dict:
    data, name = photo_1080p()
    times = []
    with httpx.Client(timeout=120) as c:
        c.post(url + "/api/v1/matting", files={"file": (name, data)}, headers={"APIKEY": token})
        for _ in range(runs):
            t0 = time.perf_counter()
            r = c.post(
                url + "/api/v1/matting", files={"file": (name, data)}, headers={"APIKEY": token}
            )
            times.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                return {"image": name, "error": r.text[:200]}
    return {
        "image": name,
        "runs": runs,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
    }


# --- output ---------------------------------------------------------------------------------------


def table(rows: list[dict], columns: list[str]) -> str:
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="test this running server instead of starting one")
    parser.add_argument("--key", default="", help="API key for --url")
    parser.add_argument("--pid", type=int, help="server PID for RSS with --url")
    parser.add_argument("--preset", default="photo", help="preset of the started server")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--duration", type=float, default=300.0, help="time bound of the load phase"
    )
    parser.add_argument("--runs-1080p", type=int, default=7)
    parser.add_argument("--skip", action="append", default=[], choices=["load", "abuse", "1080p"])
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="livematte-loadtest-")
    if args.url:
        url, token, pid = args.url.rstrip("/"), args.key, args.pid
    else:
        proc, url, token = start_server(args, str(Path(tmp.name) / "keys.sqlite3"))
        pid = proc.pid
    results: dict = {
        "url": url,
        "preset": args.preset,
        "workers": args.workers,
        "cpus": os.cpu_count(),
    }
    try:
        if "load" not in args.skip:
            load = results["load"] = load_phase(url, token, args, pid)
            head = f"{load['clients']} clients, {load['requests']} requests, {load['image']}"
            print(f"\n## load: {head}")
            cols = ["requests", "ok", "wall_s", "throughput_rps", "p50_ms", "p95_ms", "p99_ms"]
            print(table([load], [*cols, "rss_before_mb", "rss_after_mb"]))
            print("answers by code:", load["codes"])
        if "abuse" not in args.skip:
            rows = results["abuse"] = abuse_phase(url, token)
            print("\n## abuse")
            print(table(rows, ["case", "expected", "code", "http", "ms", "still_serving", "pass"]))
        if "1080p" not in args.skip:
            lat = results["latency_1080p"] = latency_1080p(url, token, args.runs_1080p)
            print("\n## one 1080p photo through /api/v1/matting, sequential")
            print(table([lat], list(lat)))
        results["rss_final_mb"] = rss_mb(pid)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        tmp.cleanup()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    failed = [r["case"] for r in results.get("abuse", []) if not r["pass"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
