"""``livematte video``: footage to a composite, an alpha file or a matte, audio kept."""

from __future__ import annotations

import argparse
import sys

from livematte.cli import Handler, add_config_args, command, config_from_args
from livematte.commands.effect_flags import add_effect_args, effect_overrides
from livematte.errors import SourceError

_FORMATS = ("auto", "composite", "prores4444", "webm-alpha", "png-seq", "matte", "foreground",
            "greenscreen")  # fmt: skip


def _seconds(text: str) -> float:
    """'90', '1:30' or '0:01:30.5' -> seconds."""
    try:
        value = 0.0
        for part in text.split(":"):
            value = value * 60 + float(part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use seconds or [h:]m:s)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"time must not be negative: {text!r}")
    return value


@command("video", help="process video files: composite, ProRes 4444, VP9 alpha, PNG, mattes")
def _video(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video(s), image folder(s) or quoted glob(s), then the OUTPUT "
        "file (or folder for many inputs / png-seq)",
    )
    parser.add_argument(
        "--format",
        dest="fmt",
        choices=_FORMATS,
        default="auto",
        help="output kind (auto: by extension; .mov/.webm still need "
        "prores4444/webm-alpha for alpha)",
    )
    parser.add_argument(
        "--quality", default="high", help="low | medium | high | max, or an x264/x265 CRF number"
    )
    parser.add_argument("--codec", choices=("h264", "h265"), help="codec for opaque outputs")
    parser.add_argument(
        "--encoder-preset",
        default="veryfast",
        metavar="NAME",
        help="x264/x265 speed preset (default veryfast)",
    )
    parser.add_argument("--start", type=_seconds, metavar="TIME", help="start at this time")
    parser.add_argument("--end", type=_seconds, metavar="TIME", help="stop at this time")
    parser.add_argument(
        "--fps", type=float, default=25.0, help="frame rate of image-sequence inputs (default 25)"
    )
    parser.add_argument(
        "--bg",
        metavar="SPEC",
        help="background for composites: '#rrggbb', green, blur:N, an image or "
        "a video (default: the preset's)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_effect_args(parser)
    add_config_args(parser, preset="video")

    def run(args: argparse.Namespace) -> int:
        if len(args.inputs) < 2:
            raise SourceError("give at least one INPUT and an OUTPUT")
        if args.start is not None and args.end is not None and args.end <= args.start:
            raise SourceError("--end must be after --start")
        from livematte.api import build_pipeline
        from livematte.video import transcode

        extra: dict[str, object] = {"runtime.mode": "video"}
        if args.bg:
            extra["effects.background"] = args.bg
        extra.update(effect_overrides(args))
        config = config_from_args(args, extra)
        inputs = args.inputs[:-1]
        with build_pipeline(config) as pipeline:
            summary = transcode(
                inputs if len(inputs) > 1 else inputs[0],
                args.inputs[-1],
                pipeline,
                fmt=args.fmt,
                quality=args.quality,
                codec=args.codec,
                preset=args.encoder_preset,
                start=args.start,
                end=args.end,
                fps=args.fps,
                progress=not args.no_progress,
            )
            model = pipeline.matting_model()
        print(summary.line(), file=sys.stderr)
        print(f"livematte: matting model {model}", file=sys.stderr)
        return summary.exit_code

    return run
