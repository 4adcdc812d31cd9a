"""Photos one at a time, as ``livematte image`` runs them (locally or on Ray workers).

``read_photo`` reads with the pixel limit, ``write_photo`` runs the pipeline and writes the
result (an ID photo with its print resolution, a matte, an analysis JSON) atomically, and
``batch_status`` prints a batch's last lines and gives its exit status.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from livematte.errors import TooManyPixelsError


def read_photo(source: Path, max_pixels: int):
    """``source`` as BGR, refused above ``max_pixels`` (from its header, before decoding).

    Raises:
        SourceError: unreadable; TooManyPixelsError: too large (naming --max-megapixels).
    """
    from livematte.outputs import read_image

    try:
        return read_image(source, max_pixels=max_pixels)
    except TooManyPixelsError as exc:
        raise TooManyPixelsError(f"{exc} (--max-megapixels raises it)") from None


def write_photo(pipeline, image, source: Path, target: Path, *, matte: bool = False,
                analysis: Path | None = None, many: bool = False) -> None:  # fmt: skip
    """``image`` (read from ``source``) through ``pipeline`` into ``target``, and its analysis
    JSON into ``analysis``.

    Raises:
        LivematteError: the output cannot be written.
    """
    from livematte.frame import Frame
    from livematte.io.sinks import frame_pixels
    from livematte.outputs import write_image

    config = pipeline.config
    frame = pipeline.process(Frame(image=image))
    result = frame_pixels(frame, "matte") if matte else frame.output
    if config.effects.id_photo and not matte:
        # ID photos carry their print resolution (PNG pHYs / JPEG density)
        from livematte.stages.id_photo import resolve_size
        from livematte.stages.id_photo import write_image as write_with_dpi

        write_with_dpi(target, result, dpi=resolve_size(config.effects.id_photo).dpi)
    else:
        write_image(target, result)
    if analysis:
        write_analysis(analysis, source, frame, many=many)


def batch_status(count: int, failed: int, elapsed: float) -> int:
    """Print the batch's last lines (``3/4 images in 1.2 s``) and return the exit status."""
    if count > 1 or failed:
        print(f"{count - failed}/{count} images in {elapsed:.1f} s", file=sys.stderr)
    if failed:
        print(f"livematte: error: {failed} image(s) failed", file=sys.stderr)
        return 1
    return 0


def write_analysis(target: Path, source: Path, frame, *, many: bool) -> None:
    """The body analysis of ``frame`` as JSON: ``target`` itself, or ``target/<stem>.json``
    for many inputs."""
    from livematte.ops.body_parts import analysis_json
    from livematte.outputs import atomic_path

    if many:
        target.mkdir(parents=True, exist_ok=True)
        target = target / (source.stem + ".json")
    # Locations clipped to the picture, as the API does.
    text = json.dumps(analysis_json(frame.people, frame.size), indent=2)
    with atomic_path(target) as temporary:
        temporary.write_text(text + "\n", encoding="utf-8")
