"""ID photos: crop and scale a composited portrait to a standard size, with DPI metadata.

The head is found from the pose keypoints (hair top and chin estimated from the eyes and mouth,
see ``geometry``), levelled so the eye line is horizontal, scaled so the head
(chin to crown) fills the standard's fraction of the photo height, centred horizontally, and
placed with the standard's margin above the crown.  Use it with a plain background, e.g.
``--bg white`` / ``blue`` / ``red`` (the usual ID-photo colours, see ``effects.NAMED_COLOURS``).

Supported sizes (all at 300 dpi; head = chin-to-crown height / photo height)::

    name       mm (w x h)    pixels     head  crown margin  standard / use
    passport   35 x 45       413 x 531  0.76  0.09          ICAO 9303: EU, UK, Schengen (32-36 mm)
    us         50.8 x 50.8   600 x 600  0.59  0.08          US passport/visa 2x2 in (1-1 3/8 in)
    1inch      25 x 35       295 x 413  0.60  0.10          "one-inch" (yi cun) ID photo
    2inch      35 x 49       413 x 579  0.60  0.10          "two-inch" (er cun) ID photo
    33x48      33 x 48       390 x 567  0.64  0.08          China passport / visa (28-33 mm)

Aliases: 35x45, eu, uk, schengen, icao -> passport; 2x2 -> us; one-inch -> 1inch;
two-inch -> 2inch; cn-passport, cn-visa -> 33x48.

Files get their DPI written in: PNG ``pHYs`` and ``eXIf`` chunks (see ``set_png_dpi``), JPEG JFIF
density (OpenCV writes neither, so ``encode_image`` patches the encoded bytes itself).

Example::

    photo = make_id_photo(composite_bgr, person, resolve_size("passport"))
    write_image("passport.jpg", photo, dpi=300)
"""

from __future__ import annotations

import io
import math
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from livematte.config import EffectsConfig, RuntimeConfig
from livematte.errors import ConfigError, SinkError, SourceError, stderr_notice
from livematte.frame import Frame, Mode, Person, largest_person
from livematte.ops import geometry
from livematte.ops.compose import cover_fit
from livematte.outputs import atomic_path


@dataclass(frozen=True)
class PhotoSize:
    """A standard photo size and where the head goes in it."""

    name: str
    width_mm: float
    height_mm: float
    #: Chin-to-crown height as a fraction of the photo height.
    head: float
    #: Space above the crown as a fraction of the photo height.
    top: float
    dpi: int = 300
    note: str = ""

    @property
    def pixels(self) -> tuple[int, int]:
        """(width, height) in pixels at ``dpi``."""
        return (
            int(round(self.width_mm / 25.4 * self.dpi)),
            int(round(self.height_mm / 25.4 * self.dpi)),
        )


SIZES: dict[str, PhotoSize] = {
    s.name: s
    for s in (
        PhotoSize("passport", 35, 45, 0.756, 0.09, note="ICAO 9303: EU, UK, Schengen"),
        PhotoSize("us", 50.8, 50.8, 0.594, 0.08, note="US passport / visa, 2x2 in"),
        PhotoSize("1inch", 25, 35, 0.60, 0.10, note='"one-inch" ID photo'),
        PhotoSize("2inch", 35, 49, 0.60, 0.10, note='"two-inch" ID photo'),
        PhotoSize("33x48", 33, 48, 0.635, 0.083, note="China passport / visa"),
    )
}
ALIASES = {
    "35x45": "passport", "eu": "passport", "uk": "passport", "schengen": "passport",
    "icao": "passport", "2x2": "us", "one-inch": "1inch", "two-inch": "2inch",
    "cn-passport": "33x48", "cn-visa": "33x48",
}  # fmt: skip


def resolve_size(name: str) -> PhotoSize:
    """Size by name or alias (case-insensitive); ConfigError listing the known ones."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in SIZES:
        known = ", ".join(list(SIZES) + list(ALIASES))
        raise ConfigError(f"effects.id_photo: unknown size {name!r}; known sizes: {known}")
    return SIZES[key]


def sizes_table() -> str:
    """The supported sizes as a Markdown table (for the README)."""
    rows = [
        "| name | size (mm) | pixels @ dpi | head height | crown margin | use |",
        "|---|---|---|---|---|---|",
    ]
    for s in SIZES.values():
        w, h = s.pixels
        rows.append(
            f"| `{s.name}` | {s.width_mm:g} x {s.height_mm:g} | {w} x {h} @ {s.dpi} "
            f"| {s.head:.0%} | {s.top:.0%} | {s.note} |"
        )
    return "\n".join(rows)


@dataclass(frozen=True)
class Head:
    """Head geometry in picture pixels: crown and chin on the face's centre line."""

    crown: np.ndarray
    chin: np.ndarray
    eyes: np.ndarray
    angle: float  # eye line, radians (0 = level)
    score: float

    @property
    def height(self) -> float:
        return float(np.hypot(*(self.chin - self.crown)))


def head_geometry(person: Person, alpha: np.ndarray | None = None) -> Head:
    """Crown, chin, eye centre and eye-line angle of ``person``.

    With the matte (``alpha``), the crown is the top of the hair found in it above the eyes
    (standards measure to the top of the head, and hair volume varies too much for the
    keypoint-only estimate); without it, ``geometry.hair_top``.
    """
    lm = person.landmarks
    eyes, _ = geometry.midpoint(lm, "left_eye", "right_eye")
    crown, score = geometry.hair_top(lm)
    if alpha is not None:
        crown = geometry.matte_crown(
            alpha, eyes, geometry.face_up(lm), geometry.face_unit(lm), crown
        )
    return Head(
        crown=crown,
        chin=geometry.chin(lm)[0],
        eyes=eyes,
        angle=geometry.eye_line_angle(lm),
        score=score,
    )


def id_photo_matrix(head: Head, size: PhotoSize, level: bool = True) -> np.ndarray:
    """2x3 affine map from picture pixels to ID-photo pixels (see the module docstring)."""
    w, h = size.pixels
    k = size.head * h / max(head.height, 1e-6)
    theta = -head.angle if level else 0.0
    c, s = math.cos(theta) * k, math.sin(theta) * k
    a = np.array([[c, -s], [s, c]])
    mid = (head.crown + head.chin) / 2.0
    # Horizontal: the face's centre line (crown-chin midpoint) on the photo's centre line.
    # Vertical: the crown at the standard's margin below the top edge.
    tx = w / 2.0 - 0.5 - (a @ mid)[0]
    ty = size.top * h - 0.5 - (a @ head.crown)[1]
    return np.hstack([a, [[tx], [ty]]])


def make_id_photo(
    image: np.ndarray,
    person: Person,
    size: PhotoSize,
    level: bool = True,
    alpha: np.ndarray | None = None,
) -> np.ndarray:
    """Crop, level and scale ``image`` (BGR or BGRA) to ``size`` around ``person``'s head.

    ``alpha`` (the matte) locates the top of the hair; see ``head_geometry``.  Areas outside
    the picture repeat its edge pixels (the plain background, or the shoulders continuing
    down), never black bands.
    """
    matrix = id_photo_matrix(head_geometry(person, alpha), size, level)
    k = math.hypot(matrix[0, 0], matrix[1, 0])
    src = image
    if k < 0.75:  # large shrink: area-average first, bilinear sampling would alias
        f = k / 0.75
        src = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        fx, fy = src.shape[1] / image.shape[1], src.shape[0] / image.shape[0]
        # Map shrunken-picture pixels back to picture pixels (pixel centres), then apply.
        back = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
        matrix = matrix @ back
    interp = cv2.INTER_LINEAR if k < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(src, matrix, size.pixels, flags=interp, borderMode=cv2.BORDER_REPLICATE)


#: Minimum visibility of what the head top is built from (eyes, and mouth or ears: see
#: ``geometry.top_head``) for a head to be trusted.
MIN_HEAD_SCORE = 0.3


def main_person(people: list[Person], min_score: float = MIN_HEAD_SCORE) -> Person | None:
    """The person an ID photo is of: the largest usable head (eyes and ears seen), else the
    largest person (whose head then decides whether a photo can be made)."""
    heads = [(head_geometry(p), p) for p in people]
    usable = [(h.height, -i) for i, (h, _) in enumerate(heads) if h.score >= min_score]
    if usable:
        return heads[-max(usable)[1]][1]
    return largest_person(people)


class IdPhotoStage:
    """Pipeline stage (last): turn ``frame.output`` into an ID photo of ``effects.id_photo``.

    The photo is of ``main_person``; in IMAGE mode a picture of several people says so through
    ``notice``.  In IMAGE mode a picture without a usable face raises ``SourceError``; in
    VIDEO/LIVE modes such frames fall back to a centre crop so the output size never changes.

    Args:
        notice: receives one-line notices (default: printed to stderr).
    """

    def __init__(
        self,
        config: EffectsConfig,
        runtime: RuntimeConfig | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.size = resolve_size(config.id_photo)
        self.level = config.id_photo_level
        self.min_score = MIN_HEAD_SCORE
        self.notice = notice or stderr_notice

    def process(self, frame: Frame) -> Frame:
        """Replace ``frame.output`` (or a copy of the image) by the ID photo."""
        start = time.perf_counter()
        picture = frame.output if frame.output is not None else frame.image
        person = main_person(frame.people, self.min_score)
        if person is not None and len(frame.people) > 1 and frame.mode is Mode.IMAGE:
            left, top, right, bottom = (round(v) for v in person.box)
            self.notice(
                f"ID photo: {len(frame.people)} people in the picture; using the one with the "
                f"largest clear face (box {left},{top}-{right},{bottom})"
            )
        head = head_geometry(person) if person is not None else None
        if person is None or head is None or head.score < self.min_score or head.height < 4:
            if frame.mode is Mode.IMAGE:
                raise SourceError(
                    "ID photo: no clear face found; use a frontal photo showing the whole head"
                )
            frame.output = cover_fit(picture, self.size.pixels)
        else:
            alpha = frame.alpha
            if alpha is not None and alpha.dtype == np.uint8:
                alpha = alpha.astype(np.float32) / 255.0
            frame.output = make_id_photo(picture, person, self.size, self.level, alpha)
        frame.timings["id_photo"] = (time.perf_counter() - start) * 1000.0
        return frame

    def reset(self) -> None:
        """Stateless."""

    def close(self) -> None:
        """Nothing to release."""


def id_photo_enabled(config: EffectsConfig) -> bool:
    """True when ``effects.id_photo`` names a size."""
    return bool(config.id_photo.strip())


# --- DPI metadata -------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _exif_resolution(dpi: float) -> bytes:
    """A big-endian TIFF/EXIF block holding only XResolution, YResolution (rationals) and
    ResolutionUnit = inch: the exact DPI, which pHYs (integer pixels per metre) cannot hold."""
    num, den = Fraction(dpi).limit_denominator(10_000).as_integer_ratio()
    entries = [  # tag, type (5 = RATIONAL, 3 = SHORT), count, value or offset
        (0x011A, 5, 1, struct.pack(">I", 50)),
        (0x011B, 5, 1, struct.pack(">I", 58)),
        (0x0128, 3, 1, struct.pack(">HH", 2, 0)),
    ]
    ifd = struct.pack(">H", len(entries)) + b"".join(
        struct.pack(">HHI", tag, kind, count) + value for tag, kind, count, value in entries
    )
    # header (8) + IFD (2 + 3 * 12) + next-IFD offset (4) = 50: the two rationals follow
    return (
        b"MM\x00\x2a"
        + struct.pack(">I", 8)
        + ifd
        + struct.pack(">I", 0)
        + (struct.pack(">II", num, den) * 2)
    )


def set_png_dpi(png: bytes, dpi: float) -> bytes:
    """Return ``png`` with its resolution right after ``IHDR``, in two chunks: ``pHYs`` (pixels
    per metre, what most viewers read) and ``eXIf`` (the exact value in dots per inch).

    pHYs holds whole pixels per metre, so 300 dpi is stored as 11811 (= 299.9994 dpi, the
    nearest it can say; 11812 would be 300.0248); the eXIf chunk (PNG 1.5 / 3rd edition)
    carries 300/1 exactly, for readers of EXIF (exiftool, Photoshop, Pillow ``getexif``).
    """
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    ppm = int(round(dpi / 0.0254))
    out, pos = [png[:8]], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        end = pos + 12 + length
        if kind not in (b"pHYs", b"eXIf"):  # drop any existing one
            out.append(png[pos:end])
        if kind == b"IHDR":
            out.append(_png_chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1)))
            out.append(_png_chunk(b"eXIf", _exif_resolution(dpi)))
        pos = end
    return b"".join(out)


def set_jpeg_dpi(jpeg: bytes, dpi: float) -> bytes:
    """Return ``jpeg`` with its JFIF APP0 density set to ``dpi`` (adds the segment if absent)."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    d = int(round(dpi))
    if jpeg[2:4] == b"\xff\xe0" and jpeg[6:11] == b"JFIF\x00":
        return jpeg[:13] + struct.pack(">BHH", 1, d, d) + jpeg[18:]
    app0 = b"JFIF\x00" + struct.pack(">BBBHHBB", 1, 1, 1, d, d, 0, 0)
    return jpeg[:2] + b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + jpeg[2:]


def read_dpi(data: bytes) -> tuple[float, float] | None:
    """(x, y) DPI stored in image bytes as Pillow reads it (PNG: the exact EXIF resolution
    when present, else pHYs), or None when there is none."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        exif = img.getexif()
        scale = {2: 1.0, 3: 2.54}.get(int(exif.get(0x0128, 2)))  # ResolutionUnit inch / cm
        if img.format == "PNG" and scale and 0x011A in exif and 0x011B in exif:
            return (float(exif[0x011A]) * scale, float(exif[0x011B]) * scale)
        dpi = img.info.get("dpi")
        return (float(dpi[0]), float(dpi[1])) if dpi else None


def encode_image(image: np.ndarray, ext: str, dpi: float, quality: int = 95) -> bytes:
    """Encode to ``.png`` / ``.jpg`` bytes with DPI metadata (other formats: plain encode)."""
    ext = ext.lower() if ext.startswith(".") else "." + ext.lower()
    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif ext in (".tif", ".tiff"):
        params = [cv2.IMWRITE_TIFF_RESUNIT, 2, cv2.IMWRITE_TIFF_XDPI, int(dpi),
                  cv2.IMWRITE_TIFF_YDPI, int(dpi)]  # fmt: skip
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise SinkError(f"cannot encode an image as {ext}")
    data = buf.tobytes()
    if ext == ".png":
        return set_png_dpi(data, dpi)
    if ext in (".jpg", ".jpeg"):
        return set_jpeg_dpi(data, dpi)
    return data


def write_image(path: str | Path, image: np.ndarray, dpi: float = 300, quality: int = 95) -> None:
    """Write an image with DPI metadata; atomic (temporary name, then renamed into place)."""
    path = Path(path)
    data = encode_image(image, path.suffix or ".png", dpi, quality)
    try:
        with atomic_path(path) as temporary:
            temporary.write_bytes(data)
    except SinkError:
        raise
    except OSError as exc:  # e.g. disk full while writing the temporary file
        raise SinkError(f"cannot write {path}: {exc.strerror or exc}") from exc
