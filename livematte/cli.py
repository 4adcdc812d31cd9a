"""Command-line interface: ``livematte <command> ...``: the one parser and the one ``main``.

Fronts stay thin: flags become config overrides (``config_from_args``), then the core runs.
Subcommands live in ``livematte.commands`` (image, video, cam, serve, keys) and here (doctor,
models); their registry and shared flags are ``livematte.commands.base``.

Adding a subcommand is one function: decorate a builder that adds its flags to the given
parser and returns the handler (``Namespace -> exit status``).  Import heavy modules inside the
handler so ``livematte --help`` stays fast::

    @command("image", help="cut people out of photos")
    def _image(parser: argparse.ArgumentParser) -> Handler:
        parser.add_argument("inputs", nargs="+")
        add_config_args(parser)

        def run(args: argparse.Namespace) -> int:
            from livematte.api import process_image
            config = config_from_args(args, {"runtime.mode": "image"})
            ...
            return 0

        return run

Errors: any ``LivematteError`` or ``OSError`` prints one line ``livematte: error: ...`` and exits
with the error's ``exit_code`` (1 for plain OSError); ``--debug`` adds the traceback; Ctrl-C
exits 130.
"""

from __future__ import annotations

import argparse
import platform
import sys
import traceback
from collections.abc import Callable, Sequence

from livematte import __version__
from livematte.commands import base
from livematte.commands.base import Handler, command
from livematte.errors import LivematteError

# --- doctor --------------------------------------------------------------------------------------

#: Encoders the video sink may use: (label, candidate codec names in order of preference).
_ENCODERS = (
    ("h264", ("libx264", "h264")),
    ("hevc", ("libx265", "hevc")),
    ("prores", ("prores_ks",)),
    ("vp9", ("libvpx-vp9",)),
    ("png", ("png",)),
    ("aac", ("aac",)),
    ("opus", ("libopus", "opus")),
)


def _version(module: str, attr: str = "__version__") -> str:
    try:
        mod = __import__(module)
    except Exception as exc:  # doctor reports every failure instead of stopping
        return f"not available ({type(exc).__name__}: {exc})"
    return str(getattr(mod, attr, "unknown"))


def _codecs() -> list[str]:
    try:
        import av
    except Exception as exc:
        return [f"PyAV not available ({exc})"]
    lines = []
    for label, names in _ENCODERS:
        found = None
        for name in names:
            try:
                found = av.codec.Codec(name, "w").name
                break
            except Exception:  # PyAV raises UnknownCodecError/ValueError depending on version
                continue
        lines.append(f"{label}: {'encoder ' + found if found else 'no encoder'}")
    return lines


def _virtual_cameras() -> list[str]:
    try:
        from pyvirtualcam import camera
    except Exception as exc:
        return [f"pyvirtualcam not available ({type(exc).__name__}: {exc})"]
    backends = sorted(getattr(camera, "BACKENDS", {}))
    if not backends:
        return ["no backend for this platform"]
    lines = [f"backends: {', '.join(backends)}"]
    if "v4l2loopback" in backends:
        # Listing devices tells the user whether the kernel module is loaded, without opening
        # (and so without claiming) a device.
        from pathlib import Path

        root = Path("/sys/devices/virtual/video4linux")
        devices = sorted(
            f"/dev/{d.name} ({(d / 'name').read_text().strip()})"
            for d in (root.iterdir() if root.is_dir() else [])
            if (d / "name").is_file()
        )
        lines.append(
            "v4l2loopback devices: "
            + (", ".join(devices) if devices else "none (sudo modprobe v4l2loopback)")
        )
    return lines


def _doctor_report() -> tuple[list[str], list[str]]:
    """Return (report lines, problems)."""
    from livematte.models import download, registry

    problems: list[str] = []
    lines = [
        f"livematte {__version__}",
        f"python {platform.python_version()} ({sys.executable})",
        f"platform {platform.platform()}",
        f"numpy {_version('numpy')}",
        f"opencv {_version('cv2')}",
        f"PyAV {_version('av')}",
    ]
    try:
        import onnxruntime as ort

        lines.append(f"onnxruntime {ort.__version__} ({ort.get_device()})")
        lines.append(f"execution providers: {', '.join(ort.get_available_providers())}")
    except ImportError:
        lines.append("onnxruntime: not installed")
        problems.append("pip install 'livematte[cpu]' (or 'livematte[gpu]') to get ONNX Runtime")
    lines.append("video codecs (PyAV):")
    lines.extend(f"  {line}" for line in _codecs())
    lines.append("virtual camera (pyvirtualcam):")
    lines.extend(f"  {line}" for line in _virtual_cameras())
    lines.append(f"models (cache: {registry.cache_dir()}):")
    for name, status in download.verify():
        lines.append(f"  {name}: {status}")
        if download.is_failure(status):
            problems.append(f"model {name}: {status}")
    lines.append("matting model (--model auto), per preset:")
    lines.extend(f"  {line}" for line in _auto_models())
    return lines, problems


def _auto_models() -> list[str]:
    """What ``matting.model = auto`` resolves to for each mode with the default providers."""
    from livematte.config import load_config
    from livematte.pipeline.matting_adapters import EMBEDDED, gpu_active, resolve_model

    lines = []
    for preset in ("photo", "video", "live"):
        runtime = load_config(preset).runtime
        name = resolve_model("auto", runtime.mode, runtime.providers)
        providers = ",".join(runtime.providers)
        why = ""
        if name == EMBEDDED:
            name = "embedded (selfie_segmentation)"
            if runtime.mode == "live" and not gpu_active(runtime.providers):
                why = "; no GPU execution provider active, RVM is for GPUs live"
            else:
                why = "; pull rvm_mobilenetv3 for hair-level mattes"
        lines.append(f"{preset}: {name} on {providers}{why}")
    return lines


@command("doctor", help="report versions, providers, codecs, virtual cameras and models")
def _doctor(parser: argparse.ArgumentParser) -> Handler:
    def run(args: argparse.Namespace) -> int:
        lines, problems = _doctor_report()
        print("\n".join(lines))
        print("problems: " + ("none" if not problems else ""))
        for problem in problems:
            print(f"  {problem}")
        # Informational: it exits 0 whenever it could report; `models verify` is the gate.
        return 0

    return run


# --- models --------------------------------------------------------------------------------------


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


# --- entry point ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every registered subcommand; handlers are stored as ``_handler``."""
    import livematte.commands  # noqa: F401  (registers image, video, cam, serve, keys)

    parser = argparse.ArgumentParser(
        prog="livematte",
        description="Cut people out of camera feeds, videos and photos (ONNX Runtime, offline).",
    )
    parser.add_argument("--version", action="version", version=f"livematte {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in base.COMMANDS.values():
        child = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        child.set_defaults(_handler=cmd.builder(child))
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, LivematteError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename}" if exc.filename else "")
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit status (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args._handler(args)
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print("livematte: interrupted", file=sys.stderr)
        return 130
    except (LivematteError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"livematte: error: {_one_line(exc)}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
