"""``livematte models list | verify | pull NAME``: the model registry from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from livematte.cli.base import Handler, command


@command("models", help="list, verify and download models")
def _models(parser: argparse.ArgumentParser) -> Handler:
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="list known models and whether their files are present")
    sub.add_parser("verify", help="check the sha256 of embedded and downloaded models")
    pull = sub.add_parser("pull", help="download an external model into the cache")
    pull.add_argument("name")
    pull.add_argument("--url", help="download from this mirror (the pinned sha256 still applies)")
    pull.add_argument("--force", action="store_true", help="download even if already cached")

    def run(args: argparse.Namespace) -> int:
        from livematte.models import download, registry

        if args.models_command == "list":
            print("\n".join(_models_table()))
            return 0
        if args.models_command == "verify":
            failed = 0
            for name, status in download.verify():
                print(f"{name:32} {status}")
                failed += download.is_failure(status)
            return 1 if failed else 0
        from livematte.models.sources import pull_model

        spec = registry.get_spec(args.name)
        if not spec.embedded:
            print(
                f"{spec.name}: licence {spec.license} ({spec.homepage}); not bundled with "
                "livematte: you download it for your own use, under its licence",
                file=sys.stderr,
            )
        result = pull_model(
            spec,
            url_override=args.url,
            force=args.force,
            log=lambda text: print(f"{spec.name}: {text}", file=sys.stderr),
            progress=_progress(),
        )
        print(f"{spec.name}: source: {result.source}", file=sys.stderr)
        print(f"{spec.name}: {result.path}", file=sys.stdout)
        return 0

    return run


def _models_table() -> list[str]:
    """``models list``: a header row, then one row per model (where its file comes from)."""
    from livematte.models import registry
    from livematte.models.download import sha256_file

    rows = [("NAME", "TASK", "INPUT", "STATUS", "LICENCE", "SOURCE", "DESCRIPTION")]
    for spec in registry.list_specs():
        path = registry.installed_path(spec)
        if spec.embedded:
            status, source = ("embedded" if path else "MISSING"), "package"
        elif path is None:
            status, source = "pullable", "-"
        elif path == registry.converted_path(spec):
            status, source = "cached", "TF.js, converted"
        else:
            status, source = "cached", "official"
            if sha256_file(path) != spec.sha256:
                status = "MISMATCH"
        size = "x".join(map(str, spec.input_size)) if spec.input_size else "any"
        rows.append((spec.name, spec.task, size, status, spec.license, source, spec.description))
    return [
        f"{r[0]:32} {r[1]:15} {r[2]:8} {r[3]:9} {r[4]:11} {r[5]:16} {r[6]}".rstrip()
        for r in rows
    ]


def _progress() -> Callable[[int, int | None], None] | None:
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int | None) -> None:
        mib = done / (1 << 20)
        text = f"{mib:.1f} MiB" + (f" / {total / (1 << 20):.1f} MiB" if total else "")
        print(f"\r{text}", end="", file=sys.stderr, flush=True)
        if total and done >= total:
            print(file=sys.stderr)

    return report

