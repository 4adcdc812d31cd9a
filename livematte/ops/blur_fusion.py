"""Foreground colours by blur fusion (Forte & Pitie, ICIP 2021), computed in the band only.

Each pass estimates smooth foreground/background colour fields F, B as alpha-weighted box
means, then corrects F per pixel so that ``alpha F + (1 - alpha) B`` reproduces the image.
A wide pass (r ~ 90 px at 2K) fills F/B far from the edge; a narrow one (r ~ 6) sharpens it.

Both passes produce smooth fields, so they run on reduced grids; the final per-pixel
correction runs at full resolution on the band of fractional alpha alone
(``livematte.ops.band``): where alpha is 1 the foreground is the image itself, where it
is 0 it is never seen.

* ``estimate_foreground_blur_fusion``: the fields on grids of 256 and 480 px long side.
* ``estimate_foreground_fast`` (live video): the narrow pass on the matting model's own grid
  (256x144 at 720p, the frame already reduced), the wide pass on half of it.  Before, the
  whole estimate was made at 320 px and upsampled into the band, and the full-resolution
  copies and resizes around it cost more than the estimate itself (11 ms of 28 per 720p live
  frame).

Both take a BGR ``uint8`` frame and ``float32`` alpha in 0..1, never modify them and return a
new BGR ``uint8`` foreground.
"""

from __future__ import annotations

import cv2
import numpy as np

from livematte.ops.band import Band, channels, find_band, put, sample, take
from livematte.ops.compose import resize_image

__all__ = ["FAST_FOREGROUND_SIDE", "estimate_foreground_blur_fusion", "estimate_foreground_fast"]

#: Long side (px) above which a reduced frame handed to ``estimate_foreground_fast`` is not
#: used, and to which the frame is reduced when none is handed over.
FAST_FOREGROUND_SIDE = 320


def estimate_foreground_blur_fusion(
    image: np.ndarray, alpha: np.ndarray, band: Band | None = None
) -> np.ndarray:
    """Blur fusion with the wide pass at 256 px and the narrow one at 480 px long side.

    ``band``: ``find_band(alpha)`` when the caller has it already.
    """
    h, w = alpha.shape
    band = find_band(alpha) if band is None else band
    if band.size == 0:
        return image.copy()
    g2 = _grid(w, h, 480)
    # The coarse grid is made from the finer one: resizing the full frame twice cost more
    # than the rest of the function.
    img2 = _unit(_shrink(image, g2))
    a2 = _shrink(alpha, g2)
    g1 = _grid(w, h, 256)
    fields = _fusion_fields(img2, a2, _shrink(img2, g1), _shrink(a2, g1), (w, h))
    return _foreground_in_band(image, band, fields)


def estimate_foreground_fast(
    image: np.ndarray,
    alpha: np.ndarray,
    small: np.ndarray | None = None,
    band: Band | None = None,
) -> np.ndarray:
    """Blur fusion on the frame's reduced grid (<= 320 px long side), wide pass at half of it.

    Args:
        small: the frame already reduced to at most ``FAST_FOREGROUND_SIDE`` on its long side
            with the frame's aspect (the matting model's guide, 256x144 at 720p): saves
            shrinking the frame again.
        band: ``find_band(alpha)`` when the caller has it already.
    """
    h, w = alpha.shape
    band = find_band(alpha) if band is None else band
    if band.size == 0:
        return image.copy()
    if (
        small is None
        or small.ndim != 3
        or max(small.shape[:2]) > FAST_FOREGROUND_SIDE
        or abs(small.shape[1] * h - small.shape[0] * w) > max(w, h)  # not the frame's aspect
    ):
        small = _shrink(image, _grid(w, h, FAST_FOREGROUND_SIDE))
    grid = (small.shape[1], small.shape[0])
    img2 = _unit(small)
    a2 = _shrink(alpha, grid)
    half = (max(1, grid[0] // 2), max(1, grid[1] // 2))
    fields = _fusion_fields(img2, a2, _shrink(img2, half), _shrink(a2, half), (w, h))
    return _foreground_in_band(image, band, fields)


def _fusion_fields(
    img2: np.ndarray,
    a2: np.ndarray,
    img1: np.ndarray,
    a1: np.ndarray,
    size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Blur fusion's smooth B and F - B fields on the grid of ``img2`` (float32 BGR 0..1).

    The wide pass runs on the grid of ``img1`` (may be the same grid), the narrow one on
    ``img2``'s; radii are the paper's (90 and 6 px at 2K) scaled from the full ``size``.
    ``img2`` is a temporary of the caller: it is overwritten.
    """
    w, h = size
    scale = max(h, w) / 2000.0
    r1, r2 = max(3.0, 90.0 * scale), max(1.0, 6.0 * scale)
    fb1, bb1 = _blur_fields(img1, img1, a1, max(1, round(r1 * img1.shape[1] / w)))
    if fb1.shape != img2.shape:
        # Pass 2 starts from pass 1's corrected F (evaluated on the finer grid) and blurred B.
        size2 = (img2.shape[1], img2.shape[0])
        fb1 = cv2.resize(fb1, size2, interpolation=cv2.INTER_LINEAR)
        bb1 = cv2.resize(bb1, size2, interpolation=cv2.INTER_LINEAR)
    a3 = _three(a2)  # shared by the correction and the narrow pass
    f2 = _correct(img2, fb1, bb1, a3)
    blur_f, blur_b = _blur_fields(f2, bb1, a2, max(1, round(r2 * img2.shape[1] / w)), a3)
    blur_f -= blur_b
    return blur_b, blur_f


def _foreground_in_band(
    image: np.ndarray, band: Band, fields: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """The image with blur fusion's per-pixel correction written into the band only.

    The band's pixels are worked on as four-channel rows (BGR + an unused fourth): cv2.remap
    has a vector path for four channels (~1.7x faster than three) and every array then has
    the same shape, so numpy never broadcasts over a channel axis.
    """
    n = band.size
    zero = np.zeros(fields[0].shape[:2], np.float32)
    back = sample(cv2.merge([fields[0], zero]), band)
    diff = sample(cv2.merge([fields[1], zero]), band)
    colour = cv2.cvtColor(take(image, band).reshape(1, n, 3), cv2.COLOR_BGR2BGRA)
    colour = _unit(colour.reshape(n, 4))
    a = band.alpha
    f = _correct_diff(colour, back, diff, channels(a, 4), channels(1.0 - a * a, 4))
    f *= np.float32(255.0)
    f += np.float32(0.5)  # 0.5..255.5 after the clip: the cast to uint8 truncates = rounds
    # Cast on the four-channel rows, then drop the fourth: the channel shuffle moves bytes,
    # not floats.
    bgr = cv2.cvtColor(f.astype(np.uint8).reshape(1, n, 4), cv2.COLOR_BGRA2BGR)
    out = image.copy()
    # Kept by the band: the composite reads these colours back without a gather.
    put(out, band, bgr.reshape(n, 3), keep=True)
    return out


def _unit(image: np.ndarray) -> np.ndarray:
    """uint8 -> float32 0..1, scaled in place: numpy's one-call ``multiply(..., dtype=)``
    casts through buffers and ran slower (0.062 against 0.048 ms for 80k x 4)."""
    out = image.astype(np.float32)
    out *= np.float32(1.0 / 255.0)
    return out


def _grid(w: int, h: int, long_side: int) -> tuple[int, int]:
    s = min(1.0, long_side / max(w, h))
    return max(1, round(w * s)), max(1, round(h * s))


def _shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average down to ``size`` (any dtype), by ``resize_image``'s bilinear-then-area
    steps: pyrDown halvings did the same here at several times the cost (1.8 ms at 720p)."""
    return resize_image(image, size)


def _blur_fields(
    f: np.ndarray, b: np.ndarray, a: np.ndarray, r: int, a3: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-weighted box means of ``f`` (weights a) and ``b`` (weights 1 - a); ``a3``:
    ``_three(a)`` when the caller has it."""
    k = (2 * r + 1, 2 * r + 1)
    a3 = _three(a) if a3 is None else a3
    blur_a = _three(cv2.blur(a, k))
    fa = f * a3
    # b (1 - a) = b - b a; when b is f (the first pass) b a is already at hand.
    ba = b - (fa if b is f else b * a3)
    blur_f = cv2.blur(fa, k)
    blur_f /= blur_a + np.float32(1e-5)
    blur_b = cv2.blur(ba, k)
    blur_b /= np.float32(1.0 + 1e-5) - blur_a
    return blur_f, blur_b


def _three(a: np.ndarray) -> np.ndarray:
    """HxW -> HxWx3 copies (numpy broadcasting over a channel axis of 3 is ~2x slower)."""
    return cv2.merge([a, a, a]) if a.size > 16 else np.repeat(a[..., None], 3, axis=2)


def _correct(
    img: np.ndarray, blur_f: np.ndarray, blur_b: np.ndarray, a3: np.ndarray
) -> np.ndarray:
    """Move the smooth F estimate so that a F + (1 - a) B matches the observed colour (HxWx3,
    as ``a3``, alpha in three channels); computed in ``img``, which is returned."""
    return _correct_diff(img, blur_b, blur_f - blur_b, a3, np.float32(1.0) - a3 * a3)


def _correct_diff(
    img: np.ndarray, back: np.ndarray, diff: np.ndarray, a: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """The paper's ``F + a (I - a F - (1 - a) B)`` from B and D = F - B, clipped to 0..1.

    Rewritten as ``B + a (I - B) + (1 - a^2) D`` (``k`` = 1 - a^2; all arrays of one shape):
    five passes over the colours instead of nine.  Modifies ``img`` and ``diff`` (temporaries
    of the caller); returns ``img``.
    """
    img -= back
    img *= a
    img += back
    diff *= k
    img += diff
    return np.clip(img, 0.0, 1.0, out=img)
