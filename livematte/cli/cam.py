"""``livematte cam``: a camera (or a stand-in video) live to a window, virtual camera, stream.

Flags become config overrides (background, stickers) plus capture/output options; the core
(``build_pipeline``) and the LIVE runner (``livematte.live``) do the work.

Examples::

    livematte cam --bg beach.jpg                         # camera 0 -> window
    livematte cam --bg beach.jpg --bg blur --vcam        # also a virtual camera; b cycles
    livematte cam --source clip.mp4 --stream udp://127.0.0.1:5000 --duration 30
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from pathlib import Path

from livematte.cli.base import Handler, add_config_args, command, config_from_args
from livematte.cli.effect_flags import add_effect_args, effect_overrides
from livematte.errors import ConfigError
from livematte.frame import Mode

_SIZE = re.compile(r"^(\d+)\s*[xX*]\s*(\d+)$")


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` -> (1280, 720).

    Raises:
        ConfigError: not WxH with positive numbers.
    """
    match = _SIZE.match(text.strip())
    if not match or int(match.group(1)) <= 0 or int(match.group(2)) <= 0:
        raise ConfigError(f"--size expects WIDTHxHEIGHT, e.g. 1280x720, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _epilog() -> str:
    from livematte.io.window import hotkey_help

    return (
        hotkey_help()
        + "\n\nA transparent background is shown over a checkerboard in the window and over "
        "chroma green\n(0,177,64) in the virtual camera and the stream (key it out in OBS)."
        "\nCtrl-C, q or closing the window stops cleanly (exit 0)."
    )


@command("cam", help="live camera (or a stand-in video) to a window, virtual camera or stream")
def _cam(parser: argparse.ArgumentParser) -> Handler:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _epilog()
    src = parser.add_argument_group("source")
    pick = src.add_mutually_exclusive_group()
    pick.add_argument(
        "--camera", metavar="INDEX|PATH", help="camera index or device path (default: 0)"
    )
    pick.add_argument(
        "--source",
        metavar="FILE|URL",
        help="any video file or URL PyAV reads, used as a camera "
        "(files are paced at --fps and looped)",
    )
    src.add_argument("--size", metavar="WxH", help="capture size, e.g. 1280x720")
    src.add_argument("--fps", type=float, metavar="N", help="capture frame rate")
    look = parser.add_argument_group("look")
    look.add_argument(
        "--bg",
        action="append",
        default=[],
        metavar="SPEC",
        help="background: an image, a video, blur, blur:N, '#rrggbb', a colour "
        "name or transparent; repeat to cycle with the b key",
    )
    look.add_argument(
        "--overlay", action="store_true", help="show FPS, latency and stage timings in the window"
    )
    out = parser.add_argument_group("outputs (at least one)")
    out.add_argument(
        "--window",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="preview window (default: on when a display exists)",
    )
    out.add_argument(
        "--vcam",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="send to a virtual camera (v4l2loopback / OBS Virtual Camera)",
    )
    out.add_argument(
        "--vcam-device",
        metavar="NAME",
        help="virtual camera device, e.g. /dev/video10 (default: the first free one)",
    )
    out.add_argument(
        "--vcam-backend", metavar="NAME", help="pyvirtualcam backend (default: try each)"
    )
    out.add_argument(
        "--stream",
        metavar="URL",
        help="H.264 network stream: udp://HOST:PORT (MPEG-TS), rtmp:// (FLV); "
        "srt:// where PyAV's FFmpeg has it",
    )
    out.add_argument("--stream-bitrate", default="4M", metavar="RATE", help="(default: 4M)")
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this many seconds"
    )
    parser.add_argument(
        "--stats",
        type=Path,
        metavar="PATH",
        help="write the run's figures (fps, latency, drops, CPU) as JSON",
    )
    add_effect_args(parser)
    add_config_args(parser, preset="live")

    def run(args: argparse.Namespace) -> int:
        from livematte.io.window import display_available, require_display

        window = display_available() if args.window is None else args.window
        if not (window or args.vcam or args.stream):
            raise ConfigError(
                "no output: use --window (needs a display), --vcam or --stream URL"
                + ("" if display_available() else " (no display found for a window)")
            )
        if window:
            require_display()
        if args.duration is not None and args.duration <= 0:
            raise ConfigError(f"--duration must be positive, got {args.duration}")
        size = parse_size(args.size) if args.size else None
        if args.fps is not None and args.fps <= 0:
            raise ConfigError(f"--fps must be positive, got {args.fps}")
        extra: dict[str, object] = {"runtime.mode": Mode.LIVE}
        if args.bg:
            extra["effects.background"] = args.bg[0]
        extra.update(effect_overrides(args))
        config = config_from_args(args, extra)
        stats = _run(args, config, size=size, window=window)
        summary = stats.summary()
        lat = summary["latency_ms"]
        print(
            f"livematte: {stats.processed} frames in {stats.seconds:.1f} s "
            f"({summary['fps']} fps), latency p50 {lat['p50']} ms p95 {lat['p95']} ms, "
            f"dropped {stats.dropped}, CPU {summary['cpu_percent']}%"
            f" ({summary['stop_reason'] or 'stopped'})",
            file=sys.stderr,
        )
        if args.stats:
            args.stats.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return 0

    return run


def _run(args: argparse.Namespace, config, *, size, window: bool):
    from livematte.api import build_pipeline
    from livematte.io.base import SinkBase
    from livematte.io.capture import open_live_source
    from livematte.io.table import make_sink
    from livematte.live import LiveControls
    from livematte.runner import LiveRunner

    camera = args.camera if args.camera is not None or args.source else "0"
    source = open_live_source(camera=camera, source=args.source, size=size, fps=args.fps)

    def sinks(frame_size: tuple[int, int], fps: float) -> list[SinkBase]:
        # Made once the first frame says what size the camera really delivers.
        made: list[SinkBase] = []
        if args.vcam:
            made.append(make_sink("vcam", frame_size, fps, device=args.vcam_device,
                                  backend=args.vcam_backend))  # fmt: skip
        if args.stream:
            made.append(make_sink("stream", args.stream, frame_size, fps,
                                  bitrate=args.stream_bitrate))  # fmt: skip
        if window:
            made.append(make_sink("window", "livematte", overlay=args.overlay))
        return made

    pipeline = build_pipeline(config)
    controls = LiveControls(pipeline, args.bg[1:])
    runner = LiveRunner(source, controls.process, sinks, duration=args.duration, controls=controls)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: runner.stop("terminated"))
    try:
        run = runner.run()
        if run.error is not None:
            raise run.error  # the one-line error and exit code of the CLI
        print(f"livematte: matting model {pipeline.matting_model()}", file=sys.stderr)
        return run
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        controls.close()
