"""Compositing, the one module for it: alpha blending, fitting pictures to a size, cropping to
the subject, alpha to uint8.  Used by the effects and sticker stages, ID photos, the sinks and
the server.

Everything works on BGR ``uint8`` pictures and ``float32`` alpha in 0..1 and leans on OpenCV
kernels (``cv2.blendLinear``, ``cv2.warpAffine``), which are several times faster than numpy
broadcasting at 720p and release the GIL.  Arithmetic between an array and a Python number is done
in numpy, never with ``cv2.subtract(1.0, a)`` / ``cv2.multiply(a, k)``: OpenCV's bindings take an
array of at most 4 elements in a column (1x1, 4x1) for a Scalar, and OpenCV 5.1 then returns the
array unchanged (a 1x1 blend of 200 over 0 at alpha 1.0 gave 161).  Scratch memory lives in a
``Compositor`` that keeps its buffers between frames; the *output* of a frame is always a fresh
array, because sinks may still be reading the previous frame's output from another thread.

Example::

    comp = Compositor()
    out = comp.blend(person_bgr, background_bgr, alpha)        # BGR
    rgba = comp.bgra(person_bgr, alpha)                         # BGRA, straight alpha
    paste_sprite(out, sprite, matrix)                           # sticker in front
"""

from __future__ import annotations

import cv2
import numpy as np

from livematte.ops.band import Band, channels, find_small_band, kept, opaque_mask, put, take

_EPS = 1e-6
#: Pictures with at most this many pixels are blended in numpy (see the module docstring).
_TINY = 16


#: Above this share of fractional pixels the blend runs over the whole picture (``blendLinear``)
#: instead of gathering the band: at 720p on one core the band path costs ~0.15 ms + ~13 ns a
#: band pixel, blendLinear 3.2 ms, so they meet near a quarter of the frame.
DENSE_SHARE = 0.25


class Compositor:
    """Blends a foreground over a background with preallocated scratch buffers."""

    def __init__(self) -> None:
        self._inv: np.ndarray | None = None

    def _inverse(self, alpha: np.ndarray) -> np.ndarray:
        if self._inv is None or self._inv.shape != alpha.shape:
            self._inv = np.empty(alpha.shape, np.float32)
        np.subtract(np.float32(1.0), alpha, out=self._inv)
        return self._inv

    def blend(
        self,
        foreground: np.ndarray,
        background: np.ndarray,
        alpha: np.ndarray,
        out: np.ndarray | None = None,
        *,
        band: Band | None = None,
        plain: bool = False,
    ) -> np.ndarray:
        """``out = alpha * foreground + (1 - alpha) * background`` (BGR uint8, rounded).

        Mattes are 0 or 1 almost everywhere: the picture is the background with the person's
        pixels copied over it (``cv2.copyTo``), and only the band of fractional alpha is
        blended (``livematte.ops.band``; alpha within 1/1024 of 0 or 1 counts as 0 or 1,
        at most a quarter of a grey level).  At 720p this is 0.6-1.2 ms against 3.2-3.6 ms
        for ``cv2.blendLinear`` over every pixel, which still runs when the band is large.

        Args:
            foreground, background: HxWx3 uint8 of the same size.
            alpha: HxW float32 in 0..1.
            out: optional destination (a new array when None).
            band: ``find_band(alpha)`` when the caller has it already.
            plain: the background is one colour (the caller knows; its first pixel is read).
        """
        alpha = _as_float_alpha(alpha)
        if out is None:
            out = np.empty_like(foreground)
        if alpha.size <= _TINY:
            # A few pixels: numpy, so no OpenCV binding can take an array for a Scalar.
            a = alpha[..., None]
            np.copyto(out, np.rint(foreground * a + background * (1.0 - a)).astype(np.uint8))
            return out
        most = int(DENSE_SHARE * alpha.size)
        if band is None or band.shape != alpha.shape:
            band = find_small_band(alpha, most)
        if band is None or band.size > most or not out.flags.c_contiguous:
            # blendLinear divides by (w1 + w2), which is 1 here, so it is an exact lerp.
            cv2.blendLinear(foreground, background, alpha, self._inverse(alpha), dst=out)
            return out
        if plain:
            # Its first row repeated: the writes alone (0.08 against 0.12 ms at 720p with
            # the caches cold), not a read of the whole background too.
            np.copyto(out.reshape(out.shape[0], -1), background[:1].reshape(1, -1))
        else:
            np.copyto(out, background)
        # The band's pixels are written again below: copying them here too lets the mask be
        # the one find_band made (alpha > eps), instead of a second pass over the float matte.
        cover = band.cover if band.cover is not None else opaque_mask(alpha)
        cv2.copyTo(foreground, cover, out)
        if band.size:
            # The foreground's colours there, as the estimator wrote them (no gather).
            f = kept(foreground, band)
            f = (take(foreground, band) if f is None else f).astype(np.float32)
            if plain and band.size > _TINY:
                # One colour: OpenCV's per-channel Scalar, the same sums as numpy's with a
                # gathered background (0.03 ms for 70k pixels against a 0.13 ms gather;
                # numpy broadcasting a (3,) row took 0.3 ms).  More than _TINY rows: no
                # binding can read them as a Scalar (see the module docstring).
                colour = (*(float(v) for v in background[0, 0]), 0.0)
                rows = f.reshape(-1, 1, 3)
                cv2.subtract(rows, colour, dst=rows)
                f *= channels(band.alpha, 3)
                cv2.add(rows, colour, dst=rows)
            else:
                b = take(background, band).astype(np.float32)
                f -= b
                f *= channels(band.alpha, 3)
                f += b
            f += np.float32(0.5)  # 0.5..255.5: the cast to uint8 in put() rounds
            put(out, band, f)
        return out

    def bgra(self, foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Straight (non-premultiplied) BGRA, as PNG and WebM-with-alpha expect."""
        if foreground.size <= 3 * _TINY:
            out = np.empty(foreground.shape[:2] + (4,), np.uint8)
            out[..., :3] = foreground
            out[..., 3] = alpha_to_u8(alpha)
            return out
        # One interleaving pass (cv2.merge): 1.8 ms at 720p against 6.8 for two strided writes.
        return cv2.merge([foreground, alpha_to_u8(alpha)])


def alpha_to_u8(alpha: np.ndarray) -> np.ndarray:
    """float 0..1 (or uint8) alpha to rounded uint8 0..255 (saturating)."""
    if alpha.dtype == np.uint8:
        return alpha
    return cv2.convertScaleAbs(alpha, alpha=255.0, beta=0.0)


def flatten(image: np.ndarray, colour: tuple[int, int, int] | np.ndarray) -> np.ndarray:
    """BGRA -> BGR over ``colour`` (a BGR triple or an HxWx3 picture); BGR passes through."""
    if image.shape[2] == 3:
        return image
    alpha = image[:, :, 3:4].astype(np.float32) * np.float32(1.0 / 255.0)
    under = np.asarray(colour, np.float32)
    out = image[:, :, :3].astype(np.float32) * alpha + under * (1.0 - alpha)
    return (out + 0.5).astype(np.uint8)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 image to ``size`` = (w, h) with anti-aliasing when shrinking.

    Large reductions go bilinear to twice the target, then area-average by exactly 2 (OpenCV
    has a fast path for that): close to a full area resize at a third of its cost.
    """
    h, w = image.shape[:2]
    tw, th = size
    if (tw, th) == (w, h):
        return image
    if tw > w or th > h:
        return cv2.resize(image, (tw, th), interpolation=cv2.INTER_LINEAR)
    if w >= 4 * tw and h >= 4 * th:
        image = cv2.resize(image, (2 * tw, 2 * th), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)


def cover_fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to fill ``size`` = (width, height) and centre-crop; never distorts."""
    w, h = size
    ih, iw = image.shape[:2]
    if iw * h > w * ih:  # source wider than target: crop its sides
        cw, ch = ih * w / h, float(ih)
    else:
        cw, ch = float(iw), iw * h / w
    x0 = int(round((iw - cw) / 2))
    y0 = int(round((ih - ch) / 2))
    crop = image[y0 : y0 + max(int(round(ch)), 1), x0 : x0 + max(int(round(cw)), 1)]
    if crop.shape[1] == w and crop.shape[0] == h:
        return np.ascontiguousarray(crop)
    shrink = crop.shape[1] > w
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def fit_pixels(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Downscale (area filter) so that width*height <= ``max_pixels``; smaller images pass."""
    h, w = image.shape[:2]
    if w * h <= max_pixels:
        return image
    scale = (max_pixels / (w * h)) ** 0.5
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def content_box(
    alpha8: np.ndarray, margin: tuple[float, str] = (0.0, "px")
) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) around alpha > ~5 %, grown by ``margin`` = (value, "px"|"%"
    of the subject's width/height); None when nothing is opaque enough."""
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


def crop_padded(array: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Cut ``box`` = (left, top, right, bottom) out of ``array``; parts outside are zero
    (transparent for BGRA and mattes)."""
    left, top, right, bottom = box
    h, w = array.shape[:2]
    out = np.zeros((bottom - top, right - left, *array.shape[2:]), array.dtype)
    sx, sy, ex, ey = max(left, 0), max(top, 0), min(right, w), min(bottom, h)
    out[sy - top : ey - top, sx - left : ex - left] = array[sy:ey, sx:ex]
    return out


def _as_float_alpha(alpha: np.ndarray) -> np.ndarray:
    if alpha.dtype == np.float32:
        return alpha
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) * np.float32(1.0 / 255.0)
    return alpha.astype(np.float32)


def premultiply(bgra: np.ndarray) -> np.ndarray:
    """uint8 BGRA -> float32 premultiplied BGRA in 0..1.

    Premultiplied colour is what must be resampled (scaled, rotated): interpolating straight
    colour drags the colour of fully transparent pixels into the visible edge (dark fringes).
    """
    img = bgra.astype(np.float32) * np.float32(1.0 / 255.0)
    img[..., :3] *= img[..., 3:4]
    return img


def warp_sprite(
    sprite: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """Resample a premultiplied float BGRA sprite into the region of a picture it covers.

    Args:
        sprite: hxwx4 float32 premultiplied BGRA.
        matrix: 2x3 affine map from sprite pixels to picture pixels.
        shape: (height, width) of the picture.

    Returns:
        (patch, (x0, y0, x1, y1)): the warped sprite for picture[y0:y1, x0:x1], or None when the
        sprite falls entirely outside the picture.
    """
    h, w = sprite.shape[:2]
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64)
    pts = corners @ np.asarray(matrix, np.float64).T
    x0 = max(int(np.floor(pts[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(pts[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(pts[:, 0].max())) + 1, shape[1])
    y1 = min(int(np.ceil(pts[:, 1].max())) + 1, shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    local = np.asarray(matrix, np.float64).copy()
    local[0, 2] -= x0
    local[1, 2] -= y0
    patch = cv2.warpAffine(
        sprite,
        local,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )
    return patch, (x0, y0, x1, y1)


def over(
    picture: np.ndarray,
    patch: np.ndarray,
    box: tuple[int, int, int, int],
    behind: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Composite a premultiplied float BGRA patch onto ``picture[box]`` in place.

    Args:
        picture: HxWx3 (BGR) or HxWx4 (straight BGRA) uint8, modified in place.
        patch: float32 premultiplied BGRA covering ``box`` = (x0, y0, x1, y1).
        behind: optional (person_colour HxWx3 uint8, person_alpha HxW float32) of the whole
            picture; the patch then goes *under* the person, i.e. the matte occludes it.  For
            BGR pictures this is exact when picture = A*F + (1-A)*B:
            ``(1-s)*picture + s*((1-A)*S + A*F)``.
    """
    x0, y0, x1, y1 = box
    roi = picture[y0:y1, x0:x1]
    s = patch[..., 3:4]
    sp = patch[..., :3] * np.float32(255.0)
    colour = roi[..., :3].astype(np.float32)
    if picture.shape[2] == 3:
        if behind is None:
            res = colour * (1.0 - s) + sp
        else:
            f = behind[0][y0:y1, x0:x1].astype(np.float32)
            a = _as_float_alpha(behind[1][y0:y1, x0:x1])[..., None]
            res = colour * (1.0 - s) + sp * (1.0 - a) + f * (s * a)
        roi[...] = np.clip(res + 0.5, 0, 255).astype(np.uint8)
        return
    a_o = roi[..., 3:4].astype(np.float32) * np.float32(1.0 / 255.0)
    if behind is None:
        a_new = s + a_o * (1.0 - s)
        c_new = sp + colour * (a_o * (1.0 - s))
    else:
        # The picture *is* the person layer here (transparent output), so it stays on top.
        a_new = a_o + s * (1.0 - a_o)
        c_new = colour * a_o + sp * (1.0 - a_o)
    c_new /= np.maximum(a_new, _EPS)
    roi[..., :3] = np.clip(c_new + 0.5, 0, 255).astype(np.uint8)
    roi[..., 3] = np.clip(a_new[..., 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)


def paste_sprite(
    picture: np.ndarray,
    sprite: np.ndarray,
    matrix: np.ndarray,
    behind: tuple[np.ndarray, np.ndarray] | None = None,
) -> bool:
    """Warp a premultiplied float BGRA sprite with ``matrix`` and composite it (see ``over``).

    Returns:
        False when the sprite lies entirely outside the picture (nothing drawn).
    """
    warped = warp_sprite(sprite, matrix, picture.shape[:2])
    if warped is None:
        return False
    over(picture, warped[0], warped[1], behind)
    return True
