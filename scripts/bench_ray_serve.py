#!/usr/bin/env python3
"""Benchmark ``livematte serve --engine ray`` against plain ``livematte serve``.

Each server runs alone (one after the other, same flags, ``--require-key``, the ``photo``
preset's server config), on loopback, and gets:

  latency   N sequential POST /api/v1/matting of a 256x256 and a 1920x1080 photo (after 3
            warm-up requests): p50, p95, min, and the server's CPU time per request
  charging  C requests at once (16 client threads) with a key holding fewer calls than C:
            every request must be answered, exactly ``calls`` of them with a PNG, the rest
            402, and the database must show calls == 0 and used == the PNGs

    python scripts/bench_ray_serve.py                    # 30 x 2 sizes, 200 concurrent
    python scripts/bench_ray_serve.py --requests 20 --concurrent 200 --replicas 2 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_ray import CpuMeter, _processes  # noqa: E402

SAMPLE = ROOT / "livematte" / "samples" / "astronaut.jpg"


def photos(folder: Path) -> dict[str, bytes]:
    import cv2

    image = cv2.imread(str(SAMPLE))
    sizes = {"256x256": (256, 256), "1080p": (1920, 1080)}
    return {name: cv2.imencode(".jpg", cv2.resize(image, size), [cv2.IMWRITE_JPEG_QUALITY, 92])[1]
            .tobytes() for name, size in sizes.items()}  # fmt: skip


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_server(extra: list[str], db: Path, port: int) -> subprocess.Popen:
    # The same pipeline both ways: one ONNX Runtime thread (what a 1-CPU Ray replica uses),
    # and a queue long enough that the charging run measures charging, not 1201 busy.
    command = [sys.executable, "-m", "livematte", "serve", "--port", str(port), "--require-key",
               "--keys-db", str(db), "--log-level", "warning", "--threads", "1",
               "--queue", "256", *extra]  # fmt: skip
    # SIGINT back to its default in the child (a background shell ignores it), so Ctrl-C
    # below reaches the server's own shutdown.
    proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=_default_sigint)  # fmt: skip
    import requests

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {' '.join(extra)}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not come up in 300 s")


def post(port: int, token: str, data: bytes) -> tuple[int, float]:
    import requests

    started = time.perf_counter()
    answer = requests.post(f"http://127.0.0.1:{port}/api/v1/matting", headers={"APIKEY": token},
                           files={"file": ("p.jpg", data, "image/jpeg")}, timeout=300)  # fmt: skip
    return answer.status_code, (time.perf_counter() - started) * 1000


def measure(name: str, extra: list[str], images: dict[str, bytes], args: argparse.Namespace,
            marker: str) -> list[dict[str, Any]]:  # fmt: skip
    from livematte.server.keys import KeyStore

    rows = []
    with tempfile.TemporaryDirectory(prefix="lmserve-") as folder:
        db = Path(folder) / "keys.db"
        with KeyStore(db) as store:
            _, fast = store.create("latency", rate=10000.0)
            _, counted = store.create("charging", calls=args.concurrent * 3 // 4, rate=10000.0)
        port = _port()
        proc = start_server(extra, db, port)
        try:
            for size, data in images.items():
                for _ in range(3):
                    post(port, fast, data)
                meter = CpuMeter(marker)
                meter.start(proc.pid)
                times = [post(port, fast, data) for _ in range(args.requests)]
                cpu = sum(meter.stop(_cpu_of(proc.pid)).values())
                ms = sorted(t for code, t in times if code == 200)
                rows.append({"server": name, "photo": size, "ok": len(ms),
                             "p50_ms": round(statistics.median(ms), 1),
                             "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
                             "min_ms": round(ms[0], 1),
                             "cpu_ms_per_request": round(cpu * 1e3 / len(times), 1)})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
            small = images["256x256"]
            with ThreadPoolExecutor(16) as pool:
                codes = list(pool.map(lambda _: post(port, counted, small)[0],
                                      range(args.concurrent)))  # fmt: skip
            with KeyStore(db) as store:
                key = next(k for k in store.list() if k.name == "charging")
            rows.append({"server": name, "photo": "256x256", "concurrent": args.concurrent,
                         "answered": len(codes), "png": codes.count(200),
                         "refused_402": codes.count(402),
                         "other": len(codes) - codes.count(200) - codes.count(402),
                         "calls_left": key.calls, "used": key.used,
                         "granted": args.concurrent * 3 // 4})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
        finally:
            tree = CpuMeter()
            tree.roots = {proc.pid}
            family = list(tree._tree(_processes()))
            proc.send_signal(signal.SIGINT)  # Ctrl-C: the Ray server takes its app down
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            time.sleep(2)
            for pid in family:  # anything of its own it left behind
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
    return rows


def _cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30, help="sequential, per photo size")
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    images = photos(Path(tempfile.gettempdir()))
    rows = measure("plain", [], images, args, marker="")
    ray_flags = ["--engine", "ray", "--replicas", str(args.replicas), "--cpus-per-replica", "1"]
    # The Ray server's cluster is the command's own children; markers are not needed.
    rows += measure(f"ray ({args.replicas} replica(s))", ray_flags, images, args, marker="")
    print()
    print("| server | photo | p50 ms | p95 ms | min ms | server CPU ms/request |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        if "p50_ms" in row:
            print(f"| {row['server']} | {row['photo']} | {row['p50_ms']} | {row['p95_ms']} | "
                  f"{row['min_ms']} | {row['cpu_ms_per_request']} |")  # fmt: skip
    print()
    print("| server | concurrent | answered | PNG | 402 | other | granted | used | calls left |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "concurrent" in row:
            print(f"| {row['server']} | {row['concurrent']} | {row['answered']} | {row['png']} | "
                  f"{row['refused_402']} | {row['other']} | {row['granted']} | {row['used']} | "
                  f"{row['calls_left']} |")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
