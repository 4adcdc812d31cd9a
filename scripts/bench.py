#!/usr/bin/env python3
"""Benchmarks: print tables and write JSON (never timed unit tests).

Sections are functions registered with ``@section(name)``; each returns a list of row dicts and
the columns to print: ``models`` (per-model latency) and ``effects`` (per-effect cost at 720p).
Whole pipelines against their physical limits are measured by ``scripts/bench_video.py``
(bare PyAV transcode vs ``livematte video``, same process run) and ``scripts/bench_live.py``
(a video as a 30 fps camera: latency percentiles, fps, drops, CPU).

    python scripts/bench.py                       # every section
    python scripts/bench.py --only models --runs 500 --json bench-results/models.json
    python scripts/bench.py --only models --threads 1 --providers cuda,cpu
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Run from a checkout without installing: make `import livematte` find the source tree.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import summarise, timings_ms  # noqa: E402

from livematte import __version__  # noqa: E402
from livematte.models import create_session, list_specs, model_path  # noqa: E402

Row = dict[str, Any]
Section = Callable[[argparse.Namespace], tuple[list[Row], list[str]]]
SECTIONS: dict[str, Section] = {}


def section(name: str) -> Callable[[Section], Section]:
    """Register a benchmark section under ``name`` (selectable with ``--only``)."""

    def decorate(func: Section) -> Section:
        SECTIONS[name] = func
        return func

    return decorate


def _random_input(shape: list[Any], spec_offset: float, rng: np.random.Generator) -> np.ndarray:
    # Symbolic dims (batch) become 1; values span the model's normalised range.
    dims = [d if isinstance(d, int) and d > 0 else 1 for d in shape]
    low = -1.0 if spec_offset < 0 else 0.0
    return rng.uniform(low, 1.0, size=dims).astype(np.float32)


@section("models")
def bench_models(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """Latency of each embedded model present, per thread count."""
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    for spec in list_specs():
        if not spec.embedded or not model_path(spec).is_file():
            continue
        if args.models and spec.name not in args.models:
            continue
        for threads in args.threads:
            session = create_session(spec, providers=args.providers, threads=threads)
            feed = {
                name: _random_input(shape, spec.offset, rng)
                for name, shape in session.input_shapes.items()
            }
            samples = timings_ms(lambda s=session, f=feed: s.run(f), args.warmup, args.runs)
            rows.append(
                {
                    "model": spec.name,
                    "threads": threads,
                    **summarise(samples),
                    "runs": args.runs,
                    "provider": session.provider,
                }
            )
            session.close()
            print(rows[-1], file=sys.stderr, flush=True)  # progress while the table builds
    return rows, MODEL_COLUMNS


MODEL_COLUMNS = ["model", "threads", "median_ms", "p95_ms", "provider"]


@section("effects")
def bench_effects_section(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """Cost per background effect and sticker pack at 720p (scripts/bench_effects.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_effects import bench_effects

    return bench_effects(runs=max(10, args.runs // 4), warmup=min(args.warmup, 5))


def print_table(title: str, rows: list[Row], columns: list[str]) -> None:
    """Print ``rows`` as a table under ``title``: text columns left, numbers right-aligned."""
    widths = {c: max([len(c)] + [len(str(row.get(c, ""))) for row in rows]) for c in columns}
    text = {c for c in columns if any(isinstance(row.get(c), str) for row in rows)}

    def cell(value: object, column: str) -> str:
        return f"{value!s:{'<' if column in text else '>'}{widths[column]}}"

    print(f"\n## {title}")
    print("  ".join(cell(c, c) for c in columns))
    for row in rows:
        print("  ".join(cell(row.get(c, ""), c) for c in columns))


def environment() -> dict[str, Any]:
    """Facts that make figures comparable: versions, CPU count, machine."""
    import onnxruntime

    return {
        "livematte": __version__,
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the selected sections, print tables, write JSON; return an exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="sections to run")
    parser.add_argument("--models", nargs="+", help="only these model names")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--providers", default="cpu", help="e.g. cuda,cpu (default: cpu)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", type=Path, default=Path("bench-results/models.json"))
    args = parser.parse_args(argv)
    args.providers = [p for p in args.providers.split(",") if p.strip()]

    results: dict[str, Any] = {"environment": environment(), "sections": {}}
    for name in args.only or sorted(SECTIONS):
        rows, columns = SECTIONS[name](args)
        results["sections"][name] = rows
        print_table(name, rows, columns)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(args.json.suffix + ".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.json)
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
