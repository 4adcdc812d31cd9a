#!/usr/bin/env python3
"""Benchmark a batch over Ray against the local batch: the same CLI command, the same clips.

Variants, interleaved within each repeat so they share the machine's load, each a fresh
``livematte video CLIP... OUTDIR --preset video --bg blue`` process:

  local      the local batch (one pipeline, one file after another)
  ray-1      ``--engine ray=ADDRESS --workers 1`` on a running 2-CPU cluster
  ray-2      ``--engine ray=ADDRESS --workers 2`` on the same cluster
  ray-cold   ``--engine ray --workers 2``: the command starts (and stops) its own cluster
             (only with --cold; the cluster start is a fixed cost, not a throughput)

The cluster is started once by this script (``ray start --head --num-cpus 2``) in its own
temp dir and stopped at the end.  Wall time is the whole command (connect, actors loading
their models, the tasks, shutdown).  CPU time counts every process of the command and of the
cluster (the driver, Ray's daemons and its workers, read from /proc every 0.1 s, the driver's
exactly from rusage); a worker that exits between two reads loses at most 0.1 s.

    python scripts/bench_ray.py                         # 6 clips of 100 frames at 720p, 3 repeats
    python scripts/bench_ray.py --clips 6 --frames 75 --repeats 3 --json bench-results/ray.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_video import DEFAULT_SOURCE, SHARED_VIDEO, make_clip  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
COMMAND = ["--preset", "video", "--bg", "#2050c0", "--no-progress"]


def _processes() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds so far, command line) for every readable process."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK,
                                  cmdline)  # fmt: skip
    return table


class CpuMeter:
    """CPU seconds used by the descendants of ``roots`` and of processes naming a marker."""

    def __init__(self, *markers: str):
        self.markers = [m for m in markers if m]
        self.roots: set[int] = set()
        self.seen: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.base = self._tree(_processes())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _tree(self, table: dict[int, tuple[int, float, str]]) -> dict[int, float]:
        mine = {os.getpid()}  # this script and its ancestors may name the marker too
        pid = os.getpid()
        while pid in table and table[pid][0] not in mine and table[pid][0] > 1:
            pid = table[pid][0]
            mine.add(pid)
        members = set(self.roots) | {
            pid
            for pid, (_, _, cmd) in table.items()
            if any(m in cmd for m in self.markers) and pid not in mine
        }
        changed = True
        while changed:
            extra = {pid for pid, (ppid, _, _) in table.items() if ppid in members} - members
            members |= extra
            changed = bool(extra)
        for pid in members & table.keys():
            if table[pid][2].strip():  # the latest: workers retitle themselves "ray::..."
                self.names[pid] = table[pid][2]
        return {pid: table[pid][1] for pid in members if pid in table}

    def _poll(self) -> None:
        while not self._stop.is_set():
            for pid, cpu in self._tree(_processes()).items():
                self.seen[pid] = max(cpu, self.seen.get(pid, 0.0))
            self._stop.wait(0.1)

    def kind(self, pid: int) -> str:
        """driver (the command), workers (Ray worker processes: actors and idle ones) or
        daemons (GCS, raylet, agents, monitors)."""
        name = self.names.get(pid, "")
        if pid in self.roots:
            return "driver"
        if "default_worker.py" in name or (name.startswith("ray::") and "Agent" not in name):
            return "workers"
        return "daemons" if any(m in name for m in self.markers) or "ray" in name else "driver"

    def start(self, root: int) -> None:
        """Count from now: the CPU every member has used so far is the baseline."""
        self.roots = {root}
        self.base = self._tree(_processes())
        self._thread.start()

    def stop(self, exact_root_cpu: float) -> dict[str, float]:
        """CPU seconds by kind (see ``kind``) since ``start``."""
        self._stop.set()
        self._thread.join()
        for pid, cpu in self._tree(_processes()).items():
            self.seen[pid] = max(cpu, self.seen.get(pid, 0.0))
        for root in self.roots:
            self.seen[root] = exact_root_cpu
        used = {"driver": 0.0, "workers": 0.0, "daemons": 0.0}
        for pid, cpu in self.seen.items():
            used[self.kind(pid)] += cpu - self.base.get(pid, 0.0)
        return used


def run_variant(args: list[str], markers: tuple[str, ...]) -> dict[str, Any]:
    meter = CpuMeter(*markers)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "livematte", "video", *args],
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    meter.start(proc.pid)
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    used = meter.stop(own)
    if proc.returncode != 0:
        return {"error": (err.strip().splitlines() or ["(no output)"])[-1]}
    line = [text for text in err.splitlines() if text.startswith("done: ")][-1]
    frames = int(line.split()[1])
    cpu = sum(used.values())
    return {"frames": frames, "wall_s": round(wall, 3), "fps": round(frames / wall, 2),
            "cpu_s": round(cpu, 2), "cpu_ms_per_frame": round(cpu * 1000 / frames, 2),
            **{f"cpu_{kind}_s": round(value, 2) for kind, value in used.items()}}  # fmt: skip


def start_cluster(temp_dir: str, cpus: int) -> str:
    """``ray start --head`` in ``temp_dir``; returns the address to join."""
    with socket.socket() as probe:  # a free port for the head (GCS)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray = Path(sys.executable).with_name("ray")
    proc = subprocess.run([str(ray), "start", "--head", f"--num-cpus={cpus}", "--num-gpus=0",
                           "--include-dashboard=false", f"--temp-dir={temp_dir}",
                           f"--port={port}"], check=True, capture_output=True,
                          text=True)  # fmt: skip
    found = re.search(r"--address='([^']+)'", proc.stdout + proc.stderr)
    return found.group(1) if found else f"127.0.0.1:{port}"


def stop_cluster(temp_dir: str, address: str) -> None:
    """Stop only this script's cluster: the processes naming ``temp_dir`` or ``address`` and
    their children (``ray stop`` would stop every cluster on the machine)."""
    meter = CpuMeter(temp_dir, f"--address={address}")
    for attempt in (signal.SIGTERM, signal.SIGKILL):
        pids = list(meter._tree(_processes()))
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, attempt)
        deadline = time.monotonic() + 10
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
            time.sleep(0.2)
    shutil.rmtree(temp_dir, ignore_errors=True)


def _summary(rows: list[dict[str, Any]], variant: str) -> dict[str, Any]:
    mine = [r for r in rows if r["variant"] == variant and "fps" in r]
    if not mine:
        return {"variant": variant, "runs": 0}
    fps = [r["fps"] for r in mine]
    cpu = [r["cpu_ms_per_frame"] for r in mine]
    wall = [r["wall_s"] for r in mine]
    return {"variant": variant, "runs": len(mine), "frames": mine[0]["frames"],
            "wall_min_s": min(wall), "wall_median_s": statistics.median(wall),
            "fps_max": max(fps), "fps_median": statistics.median(fps),
            "cpu_ms_per_frame_min": min(cpu),
            "cpu_ms_per_frame_median": statistics.median(cpu),
            **{f"cpu_{kind}_ms_per_frame_median": round(statistics.median(
                r[f"cpu_{kind}_s"] * 1000 / r["frames"] for r in mine), 1)
               for kind in ("driver", "workers", "daemons")}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=100, help="frames per clip")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the benchmark cluster")
    parser.add_argument("--cold", action="store_true", help="also time a self-started cluster")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/livematte-bench-ray"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    source = SHARED_VIDEO / DEFAULT_SOURCE if (SHARED_VIDEO / DEFAULT_SOURCE).exists() else None
    args.workdir.mkdir(parents=True, exist_ok=True)
    clips = []
    for n in range(args.clips):
        clip = args.workdir / f"clip{n}_{height}p_{args.frames}.mp4"
        if not clip.exists():
            make_clip(clip, (width, height), args.frames + n, source)  # lengths differ a little
        clips.append(str(clip))

    temp_dir = tempfile.mkdtemp(prefix="lmray-")  # short: Ray's socket paths have a limit
    rows: list[dict[str, Any]] = []
    variants = ["local", "ray-1", "ray-2"] + (["ray-cold"] if args.cold else [])
    address = ""
    try:
        address = start_cluster(temp_dir, args.cpus)
        print(
            f"cluster at {address} ({args.cpus} CPUs); {len(clips)} clips of "
            f"{args.frames}+ frames at {args.size} from {source.name if source else 'synthetic'}"
        )
        flags = {"local": [], "ray-1": ["--engine", f"ray={address}", "--workers", "1"],
                 "ray-2": ["--engine", f"ray={address}", "--workers", "2"],
                 "ray-cold": ["--engine", "ray", "--workers", "2"]}  # fmt: skip
        for repeat in range(args.repeats):
            for variant in variants:
                out = args.workdir / f"out-{variant}"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                cluster = variant in ("ray-1", "ray-2")
                markers = (temp_dir, f"--address={address}") if cluster else ()
                row = {"variant": variant, "repeat": repeat,
                       **run_variant([*clips, str(out), *COMMAND, *flags[variant]],
                                     markers)}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        stop_cluster(temp_dir, address)

    table = [_summary(rows, variant) for variant in variants]
    local = table[0].get("fps_median")
    print()
    print(
        "| variant | runs | frames | wall min / median s | fps best / median | "
        "CPU ms/frame min / median | of which driver / workers / Ray daemons (median) | "
        "throughput vs local (median) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in table:
        if not row["runs"]:
            print(f"| {row['variant']} | 0 | failed | | | | | |")
            continue
        ratio = row["fps_median"] / local if local else float("nan")
        row["ratio_vs_local"] = round(ratio, 3)
        print(
            f"| {row['variant']} | {row['runs']} | {row['frames']} | "
            f"{row['wall_min_s']:.2f} / {row['wall_median_s']:.2f} | "
            f"{row['fps_max']:.1f} / {row['fps_median']:.1f} | "
            f"{row['cpu_ms_per_frame_min']:.1f} / {row['cpu_ms_per_frame_median']:.1f} | "
            f"{row['cpu_driver_ms_per_frame_median']:.1f} / "
            f"{row['cpu_workers_ms_per_frame_median']:.1f} / "
            f"{row['cpu_daemons_ms_per_frame_median']:.1f} | {ratio:.2f}x |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"machine": platform.platform(), "python": platform.python_version(),
                "cpus": os.cpu_count(), "clips": len(clips), "frames": args.frames,
                "size": args.size, "command": COMMAND, "cluster_cpus": args.cpus}  # fmt: skip
        args.json.write_text(json.dumps({"meta": meta, "runs": rows, "summary": table},
                                        indent=2) + "\n")  # fmt: skip
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
