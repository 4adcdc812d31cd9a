"""``livematte doctor``: versions, execution providers, codecs, virtual cameras and models."""

from __future__ import annotations

import argparse
import platform
import sys

from livematte.cli.base import Handler, command

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
    from livematte import __version__
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
    from livematte.stages.model_choice import EMBEDDED, gpu_active, resolve_model

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

