"""Reading photos safely and writing results atomically.

Bad input never costs data: a crash or Ctrl-C halfway leaves no half-written file under the
final name (:func:`livematte.atomic.atomic_path`), and a decompression bomb is refused from
its header, before a pixel is decoded (:func:`open_header`, shared with the HTTP server).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import IO, TYPE_CHECKING

from livematte.atomic import atomic_path
from livematte.errors import SinkError, SourceError, TooManyPixelsError

if TYPE_CHECKING:  # OpenCV, NumPy and Pillow load when used: `livematte --help` reads MAX_PIXELS
    import numpy as np
    from PIL import Image

__all__ = ["IMAGE_FORMATS", "MAX_PIXELS", "atomic_path", "check_image_format", "check_pixels",
           "open_header", "read_image", "refuse_overwriting_input", "write_image"]  # fmt: skip

#: Extensions ``write_image`` accepts, and whether they keep an alpha channel.
IMAGE_FORMATS = {".png": True, ".webp": True, ".tif": True, ".tiff": True,
                 ".jpg": False, ".jpeg": False, ".bmp": False}  # fmt: skip
#: Pixel limit per photo (CLI ``image`` and HTTP server): 40 MP covers a 7300x5500 camera
#: photo; a 20000x20000 PNG bomb (400 MP, 48 kB) fails in milliseconds instead of decoding
#: for 80 s.
MAX_PIXELS = 40_000_000


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """Raise TooManyPixelsError when ``width * height`` is over ``max_pixels``."""
    if width * height > max_pixels:
        raise TooManyPixelsError(
            f"image is {width}x{height} = {width * height / 1e6:.1f} MP; "
            f"the limit is {max_pixels / 1e6:.1f} MP"
        )


def open_header(
    data: IO[bytes], *, max_pixels: int, formats: tuple[str, ...] | None = None
) -> Image.Image:
    """Open an image with Pillow, which reads only its header, and check its pixel count.

    Raises:
        TooManyPixelsError: more than ``max_pixels`` (no pixel was decoded).
        PIL.UnidentifiedImageError, OSError, ValueError: as ``PIL.Image.open``.
    """
    from PIL import Image

    # Pillow's own guard refuses at twice Image.MAX_IMAGE_PIXELS before we see the size;
    # raise it to the caller's limit so that the limit is the caller's.
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit; ours is checked just below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(data, formats=formats)
    except Image.DecompressionBombError:
        # Pillow's own guard (twice Image.MAX_IMAGE_PIXELS) fired first: it gives no size.
        over = 2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6
        raise TooManyPixelsError(
            f"image is over {over:.1f} MP (million pixels); the limit is {max_pixels / 1e6:.1f} MP"
        ) from None
    try:
        check_pixels(*img.size, max_pixels)
    except TooManyPixelsError:
        img.close()
        raise
    return img


def read_image(path: Path, *, max_pixels: int | None = None) -> np.ndarray:
    """Read a photo as BGR uint8 (EXIF orientation applied; 16-bit and alpha flattened).

    ``max_pixels`` is checked from the header before decoding (formats Pillow cannot parse:
    right after OpenCV decodes them).

    Raises:
        SourceError: missing, unreadable or not an image.
        TooManyPixelsError: more pixels than ``max_pixels``.
    """
    import cv2
    import numpy as np

    try:
        data = np.fromfile(path, dtype=np.uint8)  # unicode-safe, unlike cv2.imread
    except FileNotFoundError:
        raise SourceError(f"input not found: {path}") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    if max_pixels is not None and data.size:
        try:
            open_header(io.BytesIO(data.tobytes()), max_pixels=max_pixels).close()
        except TooManyPixelsError as exc:
            raise TooManyPixelsError(f"{path}: {exc}") from None
        except Exception:  # noqa: BLE001 - not for Pillow: OpenCV decides below
            pass
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(f"not a readable image: {path}")
    if max_pixels is not None:
        try:
            check_pixels(image.shape[1], image.shape[0], max_pixels)
        except TooManyPixelsError as exc:
            raise TooManyPixelsError(f"{path}: {exc}") from None
    return image


def check_image_format(path: Path, *, alpha: bool) -> str:
    """The lower-case extension of ``path`` when ``write_image`` can write it (with ``alpha``).

    Raises:
        SinkError: unsupported extension, or alpha asked of a format without it.
    """
    suffix = path.suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise SinkError(
            f"unsupported image format {suffix or '(none)'!r} for {path}; "
            f"use one of {', '.join(sorted(IMAGE_FORMATS))}"
        )
    if alpha and not IMAGE_FORMATS[suffix]:
        raise SinkError(
            f"{suffix} has no transparency: write .png/.webp, or pass a background (--bg)"
        )
    return suffix


def refuse_overwriting_input(source: str | Path, target: str | Path) -> None:
    """Raise SinkError when ``target`` is ``source`` (same file by inode: links, ``./x``).

    Raises:
        SinkError: writing ``target`` would destroy the input.
    """
    try:
        same = os.path.samefile(source, target)
    except OSError:  # either is missing (or not a file path): nothing to destroy
        return
    if same:
        raise SinkError(f"output would overwrite the input: {target}")


def write_image(path: Path, image: np.ndarray, *, jpeg_quality: int = 95) -> None:
    """Encode ``image`` (BGR, BGRA or gray) by the extension of ``path`` and write it atomically.

    Raises:
        SinkError: unsupported extension, alpha asked of a format without it, or not writable.
    """
    import cv2

    suffix = check_image_format(path, alpha=image.ndim == 3 and image.shape[2] == 4)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(suffix, image, params)
    if not ok:
        raise SinkError(f"could not encode {path}")
    with atomic_path(path) as temporary:
        encoded.tofile(temporary)
