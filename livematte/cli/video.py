"""``livematte video``: footage to a composite, an alpha file or a matte, audio kept."""

from __future__ import annotations

import argparse
import sys

from livematte.cli.base import Handler, add_config_args, command, config_from_args
from livematte.cli.effect_flags import add_effect_args, effect_overrides
from livematte.distributed import add_engine_args
from livematte.errors import ConfigError, SourceError
from livematte.frame import Mode

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


def _quality(text: str) -> str | int:
    """low | medium | high | max, or a CRF number 0..63 (as an int)."""
    from livematte.io.sinks import QUALITIES

    if text in QUALITIES:
        return text
    try:
        crf = int(text)
    except ValueError:
        crf = -1
    if not 0 <= crf <= 63:
        raise argparse.ArgumentTypeError(
            f"not a quality: {text!r} (use low, medium, high, max or a CRF number 0..63)"
        )
    return crf


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"not a frame rate: {text!r} (use 0 < fps <= 1000)")
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
        "--quality",
        type=_quality,
        default="high",
        help="low | medium | high | max, or an x264/x265/VP9 CRF number (0..63)",
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
        "--fps", type=_fps, default=25.0, help="frame rate of image-sequence inputs (default 25)"
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
    add_engine_args(parser)

    def run(args: argparse.Namespace) -> int:
        if len(args.inputs) < 2:
            raise SourceError("give at least one INPUT and an OUTPUT")
        if args.start is not None and args.end is not None and args.end <= args.start:
            raise SourceError("--end must be after --start")
        from livematte.api import build_pipeline
        from livematte.video import plan_outputs, transcode

        extra: dict[str, object] = {"runtime.mode": Mode.VIDEO}
        if args.bg:
            extra["effects.background"] = args.bg
        extra.update(effect_overrides(args))
        config = config_from_args(args, extra)
        inputs = args.inputs[:-1]
        # Every conflict between inputs, output and flags fails here, before a model loads.
        plan = plan_outputs(
            inputs if len(inputs) > 1 else inputs[0], args.inputs[-1], args.fmt, create=False
        )
        if args.bg and plan.fmt != "composite":
            raise ConfigError(
                f"--bg only applies to composites; --format {plan.fmt} writes no background"
            )
        vp9 = plan.fmt == "webm-alpha" or any(t.suffix.lower() == ".webm" for t in plan.targets)
        if isinstance(args.quality, int) and args.quality > 51 and not vp9:
            raise ConfigError(f"--quality {args.quality}: x264/x265 CRF goes up to 51 (VP9: 63)")
        if args.codec and (vp9 or plan.fmt in ("prores4444", "png-seq")):
            raise ConfigError(
                f"--codec {args.codec} does not apply: --format {plan.fmt} / "
                f"{plan.targets[0].suffix or 'a folder'} fixes its own codec"
            )
        if args.engine.distributed:  # the same batch on a Ray cluster (livematte.distributed)
            from livematte.distributed.batch import video_on_ray

            return video_on_ray(args, config)
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
            if summary.interrupted:  # the part done is kept and was named: exit as Ctrl-C does
                raise KeyboardInterrupt
            model = pipeline.matting_model()
        print(f"livematte: matting model {model}", file=sys.stderr)
        print(summary.line(), file=sys.stderr)
        return summary.exit_code

    return run
