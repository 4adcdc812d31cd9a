"""``livematte image``: photos and folders to transparent PNGs, composites, mattes, analysis."""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

from livematte.cli import Handler, add_config_args, command, config_from_args
from livematte.commands.effect_flags import add_effect_args, effect_overrides
from livematte.errors import LivematteError, SinkError, SourceError


def expand_inputs(patterns: list[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths, in order.

    Raises:
        SourceError: a name matches nothing.
    """
    # Imported here: the module loads OpenCV and PyAV, which `livematte --help` should not.
    from livematte.pipeline.sources import _GLOB_CHARS, IMAGE_EXTENSIONS, natural_key

    # The image files the video path reads as frames, plus GIF, whose first frame is a photo
    # here (the video path reads a GIF as an animation instead).
    photo_suffixes = IMAGE_EXTENSIONS | {".gif"}
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            photos = (p for p in path.iterdir() if p.suffix.lower() in photo_suffixes)
            found.extend(sorted(photos, key=natural_key))
        elif _GLOB_CHARS.search(pattern):
            matches = sorted((Path(p) for p in glob.glob(pattern, recursive=True)), key=natural_key)
            if not matches:
                raise SourceError(f"no files match {pattern!r}")
            found.extend(matches)
        elif path.exists():
            found.append(path)
        else:
            raise SourceError(f"input not found: {pattern}")
    return found


def plan_outputs(inputs: list[Path], output: Path, suffix: str) -> list[Path]:
    """Where each input's result goes: the output file itself, or a file in the output folder."""
    if len(inputs) == 1 and not (output.is_dir() or str(output).endswith(("/", "\\"))):
        return [output]
    output.mkdir(parents=True, exist_ok=True)
    names = [p.stem + suffix for p in inputs]
    if len(set(names)) != len(names):
        raise SinkError("several inputs share a file name; process them in separate folders")
    return [output / name for name in names]


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
    add_config_args(parser, preset="photo")

    def run(args: argparse.Namespace) -> int:
        if len(args.inputs) < 2:
            raise SourceError("give at least one INPUT and an OUTPUT")
        from livematte.api import build_pipeline
        from livematte.frame import Frame
        from livematte.outputs import read_image, write_image
        from livematte.pipeline.sinks import frame_pixels

        inputs = expand_inputs(args.inputs[:-1])
        if not inputs:
            raise SourceError("no images found in the given inputs")
        suffix = args.ext if args.ext.startswith(".") else "." + args.ext
        outputs = plan_outputs(inputs, Path(args.inputs[-1]), suffix)
        extra: dict[str, object] = {"runtime.mode": "image"}
        if args.bg:
            extra["effects.background"] = args.bg
        if args.id_photo:
            extra["effects.id_photo"] = args.id_photo
            extra.setdefault("effects.background", "white")
        extra.update(effect_overrides(args))
        if args.json:
            extra["keypoints.enabled"] = True
        config = config_from_args(args, extra)

        failures: list[str] = []
        start = time.perf_counter()
        with build_pipeline(config) as pipeline:
            for source, target in zip(inputs, outputs, strict=True):
                try:
                    frame = pipeline.process(Frame(image=read_image(source)))
                    result = frame_pixels(frame, "matte") if args.matte else frame.output
                    if config.effects.id_photo and not args.matte:
                        # ID photos carry their print resolution (PNG pHYs / JPEG density)
                        from livematte.pipeline.id_photo import resolve_size
                        from livematte.pipeline.id_photo import write_image as write_with_dpi

                        dpi = resolve_size(config.effects.id_photo).dpi
                        write_with_dpi(target, result, dpi=dpi)
                    else:
                        write_image(target, result)
                    if args.json:
                        _write_analysis(args.json, source, frame, many=len(inputs) > 1)
                except LivematteError as exc:
                    if len(inputs) == 1:
                        raise
                    failures.append(f"{source}: {exc}")
                    print(f"livematte: skipped {source}: {exc}", file=sys.stderr)
        elapsed = time.perf_counter() - start
        done = len(inputs) - len(failures)
        if len(inputs) > 1 or failures:
            print(f"{done}/{len(inputs)} images in {elapsed:.1f} s", file=sys.stderr)
        if failures:
            print(f"livematte: error: {len(failures)} image(s) failed", file=sys.stderr)
            return 1
        return 0

    return run


def _write_analysis(target: Path, source: Path, frame, *, many: bool) -> None:
    from livematte.outputs import atomic_path
    from livematte.pipeline.body_parts import analysis_json

    if many:
        target.mkdir(parents=True, exist_ok=True)
        target = target / (source.stem + ".json")
    # Locations clipped to the picture, as the API does.
    text = json.dumps(analysis_json(frame.people, frame.size), indent=2)
    with atomic_path(target) as temporary:
        temporary.write_text(text + "\n", encoding="utf-8")
