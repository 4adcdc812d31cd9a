"""Writing results safely: a temporary name in the target folder, then an atomic rename.

Bad input never costs data: a crash or Ctrl-C halfway leaves no half-written file under the
final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from livematte.errors import SinkError, SourceError

#: Extensions ``write_image`` accepts, and whether they keep an alpha channel.
IMAGE_FORMATS = {".png": True, ".webp": True, ".tif": True, ".tiff": True,
                 ".jpg": False, ".jpeg": False, ".bmp": False}  # fmt: skip


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; move it into place only on success."""
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        raise SinkError(f"output folder does not exist: {folder}")
    try:
        handle, name = tempfile.mkstemp(
            prefix=f".{final.stem}.", suffix=".partial" + final.suffix, dir=folder
        )
    except OSError as exc:
        raise SinkError(f"cannot write in {folder}: {exc.strerror}") from exc
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


def read_image(path: Path) -> np.ndarray:
    """Read a photo as BGR uint8 (EXIF orientation applied; 16-bit and alpha flattened).

    Raises:
        SourceError: missing, unreadable or not an image.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)  # unicode-safe, unlike cv2.imread
    except FileNotFoundError:
        raise SourceError(f"input not found: {path}") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(f"not a readable image: {path}")
    return image


def write_image(path: Path, image: np.ndarray, *, jpeg_quality: int = 95) -> None:
    """Encode ``image`` (BGR, BGRA or gray) by the extension of ``path`` and write it atomically.

    Raises:
        SinkError: unsupported extension, alpha asked of a format without it, or not writable.
    """
    suffix = path.suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise SinkError(
            f"unsupported image format {suffix or '(none)'!r} for {path}; "
            f"use one of {', '.join(sorted(IMAGE_FORMATS))}"
        )
    if image.ndim == 3 and image.shape[2] == 4 and not IMAGE_FORMATS[suffix]:
        raise SinkError(
            f"{suffix} has no transparency: write .png/.webp, or pass a background (--bg)"
        )
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(suffix, image, params)
    if not ok:
        raise SinkError(f"could not encode {path}")
    with atomic_path(path) as temporary:
        encoded.tofile(temporary)
