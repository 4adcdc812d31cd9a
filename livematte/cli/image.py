"""``livematte image``: photos and folders to transparent PNGs, composites, mattes, analysis."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from livematte.cli.base import (
    Handler,
    add_config_args,
    add_pixel_limit_arg,
    command,
    config_from_args,
)
from livematte.cli.effect_flags import add_effect_args, effect_overrides
from livematte.distributed import add_engine_args
from livematte.errors import (
    ConfigError,
    LivematteError,
    SinkError,
    SourceError,
)
from livematte.frame import Mode
from livematte.photos import batch_status, read_photo, write_photo


def plan_outputs(
    patterns: list[str], inputs: list[Path], output_arg: str, suffix: str, *, alpha: bool
) -> list[Path]:
    """Where each input's result goes: the output file itself (one input, a file name), or a
    file per input in the output folder, which is created (only once every check passed).

    Args:
        patterns: the INPUT arguments as given (a folder or glob means "several").
        inputs: what they expanded to.
        output_arg: the OUTPUT argument as given (a trailing slash means a folder).
        suffix: the extension of each result in folder mode (``--ext``).
        alpha: whether the results have transparency (a transparent background, no --matte).

    Raises:
        SinkError: several inputs (or a folder or glob) into one image file name, a format that
            cannot be written (or cannot hold the alpha), a missing folder for a single file,
            names that clash, or a result that would overwrite its input.
    """
    from livematte.io.sources import is_pattern
    from livematte.outputs import IMAGE_FORMATS, check_image_format, refuse_overwriting_input

    several = len(inputs) > 1 or len(patterns) > 1
    several = several or any(Path(p).is_dir() or is_pattern(p) for p in patterns)
    output = Path(output_arg)
    as_folder = output.is_dir() or output_arg.endswith(("/", "\\"))
    if several and not as_folder and output.suffix.lower() in IMAGE_FORMATS:
        raise SinkError(
            f"several inputs (or a folder or pattern) need an output folder, "
            f"not the image file {output}"
        )
    if not (several or as_folder):
        check_image_format(output, alpha=alpha)
        folder = output.parent if str(output.parent) else Path(".")
        if not folder.is_dir():
            raise SinkError(f"output folder does not exist: {folder}")
        refuse_overwriting_input(inputs[0], output)
        return [output]
    check_image_format(output / ("result" + suffix), alpha=alpha)
    names = [p.stem + suffix for p in inputs]
    if len(set(names)) != len(names):
        raise SinkError("several inputs share a file name; process them in separate folders")
    targets = [output / name for name in names]
    for source, target in zip(inputs, targets, strict=True):
        refuse_overwriting_input(source, target)
    output.mkdir(parents=True, exist_ok=True)
    return targets


def _check_options(args: argparse.Namespace, config, *, several: bool) -> bool:
    """Refuse flags that contradict each other before any model loads; return whether the
    results have an alpha channel."""
    from livematte.stages.effects import parse_background

    if args.matte and args.id_photo:
        raise ConfigError("--matte writes the matte only: it cannot be an --id-photo")
    if args.matte and args.bg:
        raise ConfigError("--matte writes the matte only: --bg has no effect on it")
    if config.effects.id_photo:
        from livematte.stages.id_photo import resolve_size

        resolve_size(config.effects.id_photo)  # an unknown size fails now, not after a model
    if args.json and several and args.json.suffix.lower() == ".json":
        raise SinkError(f"several inputs need a folder for --json, not the file {args.json}")
    return not args.matte and parse_background(config.effects.background).kind == "transparent"


@command("image", help="cut people out of photos (transparent PNG, composite, matte, analysis)")
def _image(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="photo(s), folder(s) or quoted glob(s), then the OUTPUT file/folder",
    )
    parser.add_argument(
        "--bg",
        metavar="SPEC",
        help="background: transparent (default), '#rrggbb', white, blur:N, an image or a video",
    )
    parser.add_argument(
        "--id-photo",
        metavar="SIZE",
        help="ID photo: passport (35x45 mm), us (2x2 in), 1inch, 2inch, 33x48; "
        "use with --bg white|blue|red",
    )
    add_effect_args(parser)
    parser.add_argument("--matte", action="store_true", help="write the alpha matte only (gray)")
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="write the body analysis (person_num, person_info) as JSON; a folder for many inputs",
    )
    parser.add_argument("--ext", default=".png", help="output extension in folder mode")
    add_pixel_limit_arg(parser)
    add_config_args(parser, preset="photo")
    add_engine_args(parser)

    def run(args: argparse.Namespace) -> int:
        if len(args.inputs) < 2:
            raise SourceError("give at least one INPUT and an OUTPUT")
        from livematte.api import build_pipeline

        # Imported here: the module loads OpenCV and PyAV, which `livematte --help` should not.
        from livematte.io.sources import expand_inputs

        inputs = [Path(p) for p in expand_inputs(args.inputs[:-1], photos=True)]
        if not inputs:
            raise SourceError("no images found in the given inputs")
        suffix = args.ext if args.ext.startswith(".") else "." + args.ext
        extra: dict[str, object] = {"runtime.mode": Mode.IMAGE}
        if args.bg:
            extra["effects.background"] = args.bg
        if args.id_photo:
            extra["effects.id_photo"] = args.id_photo
            extra.setdefault("effects.background", "white")
        extra.update(effect_overrides(args))
        if args.json:
            extra["keypoints.enabled"] = True
        config = config_from_args(args, extra)
        several = len(inputs) > 1
        alpha = _check_options(args, config, several=several)
        outputs = plan_outputs(args.inputs[:-1], inputs, args.inputs[-1], suffix, alpha=alpha)
        max_pixels = int(args.max_megapixels * 1_000_000)
        # One photo: read (and check) it before any model loads, so a bad file fails at once.
        first = read_photo(inputs[0], max_pixels) if not several else None

        if args.engine.distributed:  # the same batch on a Ray cluster (livematte.distributed)
            from livematte.distributed.batch import images_on_ray

            return images_on_ray(args, config, inputs, outputs, max_pixels)
        failures: list[str] = []
        start = time.perf_counter()
        with build_pipeline(config) as pipeline:
            for source, target in zip(inputs, outputs, strict=True):
                try:
                    image = first if first is not None else read_photo(source, max_pixels)
                    write_photo(pipeline, image, source, target, matte=args.matte,
                                analysis=args.json, many=several)  # fmt: skip
                except LivematteError as exc:
                    if not several:
                        raise
                    failures.append(f"{source}: {exc}")
                    print(f"livematte: skipped {source}: {exc}", file=sys.stderr)
            model = pipeline.matting_model()
        print(f"livematte: matting model {model}", file=sys.stderr)
        return batch_status(len(inputs), len(failures), time.perf_counter() - start)

    return run
