"""Decode uploaded images safely and encode results.

Uploads come from strangers, so decoding is defensive:

* only PNG, JPEG (and MPO, the multi-picture JPEG many cameras write), BMP, GIF and WebP are
  opened: Pillow is told which plugins it may try, so an exotic format never reaches an
  obscure decoder;
* the size in bytes is checked before anything else, and the pixel count is read from the
  header (``Image.open`` is lazy) and checked BEFORE any pixel is decoded, which is what stops
  a 20000x20000 PNG of a few kB from allocating 1.2 GB;
* a truncated or corrupt file is an error, never a half-grey picture
  (``ImageFile.LOAD_TRUNCATED_IMAGES`` is left off);
* EXIF orientation is applied, so phone photos come out upright;
* every mode ends as 8-bit BGR: CMYK, 16-bit grey (scaled, not clipped), greyscale, palette,
  LA/RGBA/PA (the input's own transparency is returned separately so the cut-out can keep it).

Example::

    image = decode_image(data)          # DecodedImage(bgr=HxWx3 uint8, alpha=None or HxW)
    png = encode_png(rgba_or_bgra)      # bytes
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import (  # noqa: F401 - importing a plugin registers it; preinit() lacks WebP, MPO
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    MpoImagePlugin,
    PngImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from livematte.errors import TooManyPixelsError
from livematte.outputs import MAX_PIXELS, open_header
from livematte.server.errors import (
    CORRUPT_IMAGE,
    EMPTY_FILE,
    TOO_LARGE,
    TOO_MANY_PIXELS,
    UNSUPPORTED_IMAGE,
    ApiError,
)

#: Upload limit per file: the hosted service's "15MB以下".
MAX_FILE_BYTES = 15 * 1024 * 1024
#: Pillow format names Image.open may try.  MPO (the multi-picture JPEG of phones and
#: cameras) has no entry of its own: the JPEG opener returns it.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")

# Magic numbers of the accepted formats: a file that starts like one of them but does not
# decode is *corrupt* (1104); anything else is *unsupported* (1103).
_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"BM",
    b"GIF87a",
    b"GIF89a",
)


@dataclass
class DecodedImage:
    """An upload turned into what the pipeline eats.

    Attributes:
        bgr: HxWx3 uint8, BGR, EXIF orientation applied; transparent inputs are flattened on
            white so the model sees what a viewer would.
        alpha: HxW uint8 of the input's own transparency, or None when it had none.
        format: Pillow's format name ("JPEG", "PNG", ...).
    """

    bgr: np.ndarray
    alpha: np.ndarray | None
    format: str


def _looks_like_ours(data: bytes) -> bool:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    return any(data.startswith(magic) for magic in _MAGIC)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def open_checked(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Open ``data`` lazily and check size, format and pixel count from the header only.

    Raises:
        ApiError: 1102 empty, 1105 too large, 1103 unsupported, 1104 corrupt, 1106 too many
            pixels.
    """
    if not data:
        raise ApiError(EMPTY_FILE)
    if len(data) > max_bytes:
        raise ApiError(TOO_LARGE, f"file is {_mb(len(data))}; the limit is {_mb(max_bytes)}")
    try:
        img = open_header(io.BytesIO(data), max_pixels=max_pixels, formats=FORMATS)
    except TooManyPixelsError as exc:
        raise ApiError(TOO_MANY_PIXELS, str(exc)) from None
    except UnidentifiedImageError:
        if _looks_like_ours(data):
            raise ApiError(CORRUPT_IMAGE, "the image header is corrupt") from None
        raise ApiError(UNSUPPORTED_IMAGE) from None
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        # struct.error: some Pillow plugins leak it on truncated headers.
        raise ApiError(CORRUPT_IMAGE, f"the image is corrupt: {exc}") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ApiError(CORRUPT_IMAGE, f"the image has an empty size {width}x{height}")
    return img


def _to_8bit(img: Image.Image) -> Image.Image:
    """Bring high-bit-depth single-channel modes to 8-bit "L" by scaling, not clipping."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16") or img.mode == "I":
        # 16-bit PNG grey arrives as I;16 or I (0..65535); Pillow's convert("L") would clip.
        scaled = arr.astype(np.float32) / 257.0
    else:  # "F": float, assume 0..1 when it fits, else 0..255
        scaled = arr * 255.0 if float(np.nanmax(arr, initial=0.0)) <= 1.0 else arr
    return Image.fromarray(np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8), "L")


def to_bgr(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert a loaded Pillow image of any mode to (BGR uint8, alpha uint8 or None)."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _to_8bit(img)
    if img.mode == "P":
        # Palette images may carry transparency in the palette or a tRNS chunk.
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "L" and "transparency" in img.info:
        img = img.convert("LA")
    elif img.mode == "RGB" and "transparency" in img.info:
        img = img.convert("RGBA")
    alpha = None
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(img.convert("RGBA"))
        alpha = np.ascontiguousarray(rgba[..., 3])
        if int(alpha.min()) == 255:
            alpha = None  # an opaque alpha channel carries nothing
        rgb = rgba[..., :3].astype(np.float32)
        if alpha is not None:
            # Flatten on white: fully transparent pixels often hold black or garbage.
            a = alpha[..., None].astype(np.float32) / 255.0
            rgb = rgb * a + 255.0 * (1.0 - a)
        rgb = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    else:
        # CMYK (Adobe-inverted JPEGs are undone by Pillow's plugin), L, 1, YCbCr, LAB, HSV...
        rgb = np.asarray(img.convert("RGB"))
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    return bgr, alpha


def decode_image(
    data: bytes, *, max_bytes: int = MAX_FILE_BYTES, max_pixels: int = MAX_PIXELS
) -> DecodedImage:
    """Decode one uploaded file (first frame of an animation) into BGR, checking every limit.

    Raises:
        ApiError: 1102, 1103, 1104, 1105 or 1106 (see ``livematte.server.errors``).
    """
    img = open_checked(data, max_bytes=max_bytes, max_pixels=max_pixels)
    fmt = img.format or "?"
    try:
        img.seek(0)  # GIF/WebP/MPO: the first frame
        img.load()
        img = ImageOps.exif_transpose(img)
        bgr, alpha = to_bgr(img)
    except ApiError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ApiError(CORRUPT_IMAGE, f"the image is corrupt or truncated: {exc}") from None
    except MemoryError:
        raise ApiError(TOO_MANY_PIXELS, "the image is too large to decode") from None
    finally:
        img.close()
    return DecodedImage(bgr=bgr, alpha=alpha, format=fmt)


def encode_png(image: np.ndarray, level: int = 3) -> bytes:
    """Encode HxW (grey), HxWx3 (BGR) or HxWx4 (BGRA) uint8 as PNG.

    Level 3 rather than zlib's default 6: a third of the time for a few percent more bytes,
    and on this server encoding is on the request's critical path.
    """
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:  # pragma: no cover - OpenCV only fails on impossible shapes
        raise ValueError(f"cannot encode an image of shape {image.shape} as PNG")
    return buf.tobytes()


def encode_jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    """Encode HxW or HxWx3 (BGR) uint8 as JPEG."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover
        raise ValueError(f"cannot encode an image of shape {image.shape} as JPEG")
    return buf.tobytes()


# --- rendering results -------------------------------------------------------------------------

#: ``size=preview``: at most 0.25 megapixels, as remove.bg's preview size.
PREVIEW_PIXELS = 250_000
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "zip": "application/zip"}


@dataclass(frozen=True)
class RenderOptions:
    """What the client asked the cut-out to look like (the optional form fields).

    Attributes:
        background: BGR colour to composite on, or None.
        crop: crop to the people (alpha's bounding box) plus ``margin``.
        margin: (value, unit) with unit "px" or "%" (of the subject's width/height).
        preview: scale the input to at most ``PREVIEW_PIXELS`` first.
        format: "png", "jpg" (composited; white when no background) or "zip" (color.jpg and
            alpha.png, as remove.bg's zip).
        channels: "rgba" for the cut-out, "alpha" for the matte only.
    """

    background: tuple[int, int, int] | None = None
    crop: bool = False
    margin: tuple[float, str] = (0.0, "px")
    preview: bool = False
    format: str = "png"
    channels: str = "rgba"


def fit_pixels(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Downscale (area filter) so that width*height <= ``max_pixels``; smaller images pass."""
    h, w = image.shape[:2]
    if w * h <= max_pixels:
        return image
    scale = (max_pixels / (w * h)) ** 0.5
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale and centre-crop ``image`` to fill width x height (CSS ``object-fit: cover``)."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    size = (max(width, round(w * scale)), max(height, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    big = cv2.resize(image, size, interpolation=interp)
    top, left = (size[1] - height) // 2, (size[0] - width) // 2
    return big[top : top + height, left : left + width]


def _crop_box(alpha8: np.ndarray, margin: tuple[float, str]) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) around alpha > ~5 %, grown by the margin; None if empty."""
    mask = alpha8 > 12
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    left, right, top, bottom = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    value, unit = margin
    if unit == "%":
        mx, my = (right - left) * value / 100.0, (bottom - top) * value / 100.0
    else:
        mx = my = value
    return (left - round(mx), top - round(my), right + round(mx), bottom + round(my))


def _crop(array: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Cut ``box`` out of ``array``; parts outside the image are zero (transparent)."""
    left, top, right, bottom = box
    h, w = array.shape[:2]
    out = np.zeros((bottom - top, right - left, *array.shape[2:]), array.dtype)
    sx, sy, ex, ey = max(left, 0), max(top, 0), min(right, w), min(bottom, h)
    out[sy - top : ey - top, sx - left : ex - left] = array[sy:ey, sx:ex]
    return out


def composite(fg: np.ndarray, alpha8: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """fg * a + bg * (1 - a) in integer arithmetic (uint16 keeps memory low on big photos)."""
    a = alpha8[..., None].astype(np.uint16)
    out = fg.astype(np.uint16) * a + bg.astype(np.uint16) * (255 - a) + 127
    return (out // 255).astype(np.uint8)


def _encode(image: np.ndarray, fmt: str) -> tuple[bytes, str]:
    """``image`` as (JPEG, "jpg") when ``fmt`` is "jpg", else as (PNG, "png")."""
    if fmt == "jpg":
        return encode_jpeg(image), "jpg"
    return encode_png(image), "png"


def render(
    alpha: np.ndarray,
    foreground: np.ndarray,
    options: RenderOptions,
    *,
    input_alpha: np.ndarray | None = None,
    bg_image: np.ndarray | None = None,
) -> tuple[bytes, str]:
    """Turn a matte and its foreground into the bytes the client asked for.

    Args:
        alpha: HxW float32 0..1 (or uint8) from the pipeline.
        foreground: HxWx3 uint8 BGR, colour-decontaminated.
        options: the request's RenderOptions.
        input_alpha: the upload's own transparency (multiplied in, so it stays transparent).
        bg_image: BGR background picture (already decoded); scaled to cover the output.

    Returns:
        (data, extension) with extension "png", "jpg" or "zip" (see ``MEDIA_TYPES``).
    """
    if alpha.dtype != np.uint8:
        alpha8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    else:
        alpha8 = alpha
    if input_alpha is not None:
        alpha8 = ((alpha8.astype(np.uint16) * input_alpha + 127) // 255).astype(np.uint8)
    fg = foreground
    if options.crop:
        box = _crop_box(alpha8, options.margin)
        if box is not None:  # nobody found: keep the whole picture rather than fail
            alpha8, fg = _crop(alpha8, box), _crop(fg, box)
    if options.format == "zip":
        return make_zip({"color.jpg": encode_jpeg(fg), "alpha.png": encode_png(alpha8)}), "zip"
    if options.channels == "alpha":
        return _encode(alpha8, options.format)
    h, w = alpha8.shape
    bg = None
    if bg_image is not None:
        bg = cover(bg_image, w, h)
    elif options.background is not None or options.format == "jpg":
        bg = np.empty((h, w, 3), np.uint8)
        bg[:] = options.background or (255, 255, 255)
    if bg is None:
        return encode_png(np.dstack([fg, alpha8])), "png"
    return _encode(composite(fg, alpha8, bg), options.format)


def make_zip(files: dict[str, bytes]) -> bytes:
    """A zip of ``files`` stored uncompressed: PNG/JPEG are compressed already, and stored
    entries let the web page unpack them without an inflate implementation."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()
