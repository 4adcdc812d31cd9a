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
from livematte.frame import Frame
from livematte.ops.compose import alpha_to_u8, content_box, crop_padded
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
    """What the client asked for (the optional form fields).

    Attributes:
        look: config overrides for the picture itself (background, stickers, ID photo, dim,
            ...), the keys the CLI's flags set (``livematte.server.form.parse_look``).
        crop: crop to the people (alpha's bounding box) plus ``margin``.
        margin: (value, unit) with unit "px" or "%" (of the subject's width/height).
        preview: scale the input to at most ``PREVIEW_PIXELS`` first.
        format: "png", "jpg" (composited; white when no background) or "zip" (color.jpg and
            alpha.png, as remove.bg's zip).
        channels: "rgba" for the cut-out, "alpha" for the matte only.
    """

    look: tuple[tuple[str, object], ...] = ()
    crop: bool = False
    margin: tuple[float, str] = (0.0, "px")
    preview: bool = False
    format: str = "png"
    channels: str = "rgba"

    @property
    def overrides(self) -> dict[str, object]:
        """``look`` as a dict, with the JPEG rule: no transparency, so white by default."""
        found = dict(self.look)
        if self.format == "jpg" and found.get("effects.background", "transparent") == "transparent":
            found["effects.background"] = "white"
        return found


def _encode(image: np.ndarray, fmt: str) -> tuple[bytes, str]:
    """``image`` as (JPEG, "jpg") when ``fmt`` is "jpg", else as (PNG, "png")."""
    if fmt == "jpg":
        return encode_jpeg(image), "jpg"
    return encode_png(image), "png"


def render(frame: Frame, options: RenderOptions) -> tuple[bytes, str]:
    """Turn a processed frame into the bytes the client asked for.

    The picture is ``frame.output``, exactly as the pipeline composited it (what
    ``livematte image`` writes); ``crop``, ``channels`` and the zip only cut or pick from it.

    Returns:
        (data, extension) with extension "png", "jpg" or "zip" (see ``MEDIA_TYPES``).
    """
    output = frame.output if frame.output is not None else frame.image
    fg = frame.foreground if frame.foreground is not None else frame.image
    if frame.alpha is not None:
        alpha8 = alpha_to_u8(frame.alpha)
    else:
        alpha8 = np.full(frame.image.shape[:2], 255, np.uint8)
    if options.crop:
        box = content_box(alpha8, options.margin)
        if box is not None:  # nobody found: keep the whole picture rather than fail
            if output.shape[2] == 3:  # a composite has nothing to show past its edges
                h, w = alpha8.shape
                box = (max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h))
            alpha8, fg = crop_padded(alpha8, box), crop_padded(fg, box)
            output = crop_padded(output, box)
    if options.format == "zip":
        return make_zip({"color.jpg": encode_jpeg(fg), "alpha.png": encode_png(alpha8)}), "zip"
    if options.channels == "alpha":
        return _encode(alpha8, options.format)
    return _encode(output, options.format)


def make_zip(files: dict[str, bytes]) -> bytes:
    """A zip of ``files`` stored uncompressed: PNG/JPEG are compressed already, and stored
    entries let the web page unpack them without an inflate implementation."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()
