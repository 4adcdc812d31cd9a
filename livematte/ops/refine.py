"""From a coarse low-resolution person mask to a full-resolution alpha matte and foreground.

Three refinements, cheapest first:

* ``upsample`` — bilinear resize, the raw baseline every other mode is measured against.
* ``fast_guided_upsample`` — He & Sun's *fast guided filter* (arXiv:1505.00996): the local
  linear model ``alpha ~ a * I + b`` is fitted at the mask's low resolution, then only the
  smooth coefficient maps ``a, b`` are upsampled and applied to the full-resolution guide, so
  edges snap to the image at full resolution for the price of two resizes and one
  multiply-add.  A grey guide is used for live video (fast); a colour guide for photos.
* ``closed_form_refine`` — Levin et al.'s closed-form matting solved in an uncertain band
  around the person edge (trimap made from the coarse matte; ``band_solve.closed_form_band``), at a
  reduced ``solve_scale`` so a photo takes a fraction of a second; a final guided upsampling
  brings the solved band back to full resolution.

Foreground colour (decontamination, so the old background does not fringe a new composite):

* ``estimate_foreground_blur_fusion`` / ``estimate_foreground_fast`` — Forte & Pitié's
  "approximate fast foreground colour estimation" (ICIP 2021): two box-blur passes, cheap
  enough for live video (``livematte.ops.blur_fusion``, re-exported here).
* ``estimate_foreground_ml`` — multi-level estimation (Germer et al.) in the band, for photos.

All functions take BGR ``uint8`` images and ``float32`` alpha in 0..1 and never modify inputs.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from livematte.ops.band import Band
from livematte.ops.blur_fusion import (
    FAST_FOREGROUND_SIDE,
    estimate_foreground_blur_fusion,
    estimate_foreground_fast,
)

__all__ = [
    "upsample",
    "fit_clip",
    "guided_coefficients",
    "fast_guided_upsample",
    "make_trimap",
    "thin_cores",
    "closed_form_refine",
    "estimate_foreground",
    "estimate_foreground_blur_fusion",
    "estimate_foreground_fast",
    "estimate_foreground_ml",
    "FAST_FOREGROUND_SIDE",
]

#: Photos above this many pixels are closed-form refined at a bounded working resolution (that
#: of a 1080p photo): a 12 Mpx photo took 1.1 s CPU in the solve at 0.35 of its own size, ~0.2
#: s bounded; the band's edges come back to full resolution through the guided filter.
WORK_PIXELS = 1920 * 1080
#: ``thin_cores``: a thin shape's pixels at least this share of its half-width from its edge
#: are known foreground; shapes under ``THIN_MIN`` pixels of half-width stay unknown (specks).
THIN_CORE = 0.5
THIN_MIN = 1.5


def upsample(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``alpha`` to ``size`` = (width, height): bilinear up, area-averaged down."""
    h, w = alpha.shape[:2]
    if (w, h) == tuple(size):
        return alpha.astype(np.float32, copy=True)
    shrinking = size[0] < w and size[1] < h
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(alpha.astype(np.float32, copy=False), size, interpolation=interp)


def fit_clip(alpha: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``low..high`` linearly onto 0..1 and clip (snaps speckle and holes, keeps ramps).

    Works in place on float32 arrays (returns the same array).
    """
    if low > 0.0 or high < 1.0:
        alpha -= low
        alpha *= 1.0 / max(high - low, 1e-6)
    np.clip(alpha, 0.0, 1.0, out=alpha)
    return alpha


def _box(x: np.ndarray, r: int) -> np.ndarray:
    # Normalised box mean; reflect borders so edges are not darkened.
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_coefficients(
    guide: np.ndarray, p: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the guided filter's local linear model ``p ~ a . guide + b``; return box-averaged a, b.

    Args:
        guide: HxW (grey) or HxWx3 (colour) float32 in 0..1.
        p: HxW float32 input to filter.
        radius: box radius in pixels of this resolution.
        eps: regulariser; larger = smoother output, smaller = follows the guide's edges more.

    Returns:
        ``(a, b)`` with ``a`` HxW (grey) or HxWx3 (colour), ``b`` HxW; the filtered output is
        ``sum(a * guide, axis=-1) + b``.
    """
    mean_p = _box(p, radius)
    if guide.ndim == 2:
        mean_i = _box(guide, radius)
        cov_ip = _box(guide * p, radius) - mean_i * mean_p
        var_i = _box(guide * guide, radius) - mean_i * mean_i
        a = cov_ip / (var_i + eps)
        b = mean_p - a * mean_i
        return _box(a, radius), _box(b, radius)
    # Colour guide: a = (Sigma + eps U)^-1 cov(I, p) per pixel, Sigma the 3x3 colour covariance.
    mean_i = _box(guide, radius)
    cov_ip = _box(guide * p[..., None], radius) - mean_i * mean_p[..., None]
    sig = {}
    for i in range(3):
        for j in range(i, 3):
            s = _box(guide[..., i] * guide[..., j], radius) - mean_i[..., i] * mean_i[..., j]
            sig[i, j] = s + eps if i == j else s
    # Symmetric 3x3 inverse by cofactors, vectorised over pixels.
    c00 = sig[1, 1] * sig[2, 2] - sig[1, 2] ** 2
    c01 = sig[0, 2] * sig[1, 2] - sig[0, 1] * sig[2, 2]
    c02 = sig[0, 1] * sig[1, 2] - sig[0, 2] * sig[1, 1]
    c11 = sig[0, 0] * sig[2, 2] - sig[0, 2] ** 2
    c12 = sig[0, 1] * sig[0, 2] - sig[0, 0] * sig[1, 2]
    c22 = sig[0, 0] * sig[1, 1] - sig[0, 1] ** 2
    det = sig[0, 0] * c00 + sig[0, 1] * c01 + sig[0, 2] * c02
    inv_det = 1.0 / np.maximum(det, 1e-12)
    cx, cy, cz = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    a = np.empty_like(cov_ip)
    a[..., 0] = (c00 * cx + c01 * cy + c02 * cz) * inv_det
    a[..., 1] = (c01 * cx + c11 * cy + c12 * cz) * inv_det
    a[..., 2] = (c02 * cx + c12 * cy + c22 * cz) * inv_det
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    return _box(a, radius), _box(b, radius)


def fast_guided_upsample(
    coarse: np.ndarray,
    image: np.ndarray,
    radius: int,
    eps: float,
    *,
    guide_low: np.ndarray | None = None,
    color: bool = False,
    clip: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Upsample a coarse mask to the image's resolution with the fast guided filter.

    Args:
        coarse: hxw float32 mask (0..1) covering the whole image, at any lower resolution.
        image: HxWx3 uint8 BGR full-resolution guide.
        radius: filter radius in *full-resolution* pixels (scaled down to the working grid).
        eps: guided-filter regulariser (guide in 0..1 units).
        guide_low: optional BGR uint8/float image already resized to the working grid (saves
            one resize in live mode where the model input is at hand).
        color: use the 3-channel guide (better separation of similar greys, ~2x slower).
        clip: ``(low, high)`` mapped onto 0..1 (see ``fit_clip``), folded into a and b.

    Returns:
        HxW float32 alpha in 0..1.
    """
    height, width = image.shape[:2]
    # Coefficients are fitted on the coarse grid (never finer than the image).
    wl, hl = min(coarse.shape[1], width), min(coarse.shape[0], height)
    p = upsample(coarse, (wl, hl))
    if guide_low is None or guide_low.shape[:2] != (hl, wl):
        guide_low = cv2.resize(image, (wl, hl), interpolation=cv2.INTER_AREA)
    scale = 1.0 / 255.0 if guide_low.dtype == np.uint8 else 1.0
    if color:
        g = guide_low.astype(np.float32) * scale
    else:
        g = cv2.cvtColor(guide_low, cv2.COLOR_BGR2GRAY).astype(np.float32) * scale
    r = max(1, round(radius * wl / width))
    a, b = guided_coefficients(g, p, r, eps)
    low, high = clip
    gain = 1.0 / max(high - low, 1e-6)
    # Fold the clip ramp and the uint8->0..1 scale into the coefficients at low resolution:
    # the full-resolution work is then one multiply-add on the uint8 guide.
    a *= gain / 255.0
    b = (b - low) * gain
    size = (width, height)
    a_full = cv2.resize(a, size, interpolation=cv2.INTER_LINEAR)
    q = cv2.resize(b, size, interpolation=cv2.INTER_LINEAR)
    if color:
        q += np.einsum("hwc,hwc->hw", a_full, image, dtype=np.float32)
    else:
        # In place, no temporaries.  Working out only the pixels that can be fractional (the
        # 3x3-cell neighbourhood of the coefficients bounds every pixel) was measured and
        # dropped: ~15% of a 720p frame is such cells, and gathering, sampling and
        # scattering them cost more than these passes over the whole frame (5 vs 3.7 ms).
        np.multiply(a_full, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), out=a_full)
        q += a_full
    return clip01(q)




def clip01(alpha: np.ndarray) -> np.ndarray:
    """Clip float32 ``alpha`` to 0..1 in place (two threshold passes: cheaper than np.clip)."""
    if alpha.size <= 16 or alpha.dtype != np.float32:  # see compose.py on tiny arrays
        return np.clip(alpha, 0.0, 1.0, out=alpha)
    cv2.threshold(alpha, 1.0, 1.0, cv2.THRESH_TRUNC, dst=alpha)
    cv2.threshold(alpha, 0.0, 0.0, cv2.THRESH_TOZERO, dst=alpha)
    return alpha


def make_trimap(alpha: np.ndarray, band_width: int) -> np.ndarray:
    """Trimap (0 background, 0.5 unknown, 1 foreground) with an unknown band around the edge.

    The band is ``band_width`` pixels either side of the 0.5 contour, widened to cover every
    pixel whose alpha is already fractional (hair the coarse matte sees as semi-transparent).
    """
    fg = (alpha > 0.5).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band_width + 1, 2 * band_width + 1))
    sure_fg = cv2.erode(fg, k, borderType=cv2.BORDER_REPLICATE).astype(bool)
    sure_bg = ~cv2.dilate(fg, k, borderType=cv2.BORDER_REPLICATE).astype(bool)
    soft = (alpha > 0.02) & (alpha < 0.98)
    trimap = np.full(alpha.shape, 0.5, np.float64)
    trimap[sure_fg & ~soft] = 1.0
    trimap[sure_bg & ~soft] = 0.0
    trimap[thin_cores(fg, band_width) & ~soft] = 1.0
    return trimap


def thin_cores(fg: np.ndarray, band_width: int) -> np.ndarray:
    """The middle of foreground parts too thin to keep a core after the band's erosion.

    A shape no wider than the band (a person 16 px wide in a 640 px photo, a band of 4 px on
    the 0.35 solve grid) has no known foreground: the solve, with only background around it,
    returned 0 and the person vanished (COCO/OCHuman: a skier in a box, small surfers).  A
    pixel whose distance from the edge is at least ``THIN_CORE`` of the largest distance within
    ``band_width`` of it (the part's own half-width) and at least ``THIN_MIN`` is kept as known
    (where the matte is not already fractional).  Photo preset, COCO/OCHuman person IoU 0.558
    -> 0.576 (14 images better by up to 0.16); p3m SAD 16.63 -> 16.68, worst 52.7 -> 52.8.

    Args:
        fg: HxW uint8 0/1 foreground (alpha > 0.5).
        band_width: the trimap's band half-width, pixels.

    Returns:
        HxW bool.
    """
    dist = cv2.distanceTransform(fg, cv2.DIST_L2, 3)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band_width + 1, 2 * band_width + 1))
    local = cv2.dilate(dist, k)
    return (dist > THIN_CORE * local) & (dist >= THIN_MIN)


def closed_form_refine(
    alpha: np.ndarray,
    image: np.ndarray,
    band_width: int,
    solve_scale: float,
    *,
    radius: int = 2,
    eps: float = 1e-4,
) -> np.ndarray:
    """Solve closed-form matting in the uncertain band of ``alpha`` (full resolution).

    Photos above ``WORK_PIXELS`` are solved as if scaled down to it: the solve grid, and the
    band on it, are those of a 1080p photo of the same framing (``band_width`` then counts
    pixels of that working resolution).

    Args:
        alpha: HxW float32 full-resolution matte (e.g. the guided result) to refine.
        image: HxWx3 uint8 BGR.
        band_width: unknown band half-width in full-resolution (working-resolution) pixels.
        solve_scale: resolution factor of the solve (0.5 = half resolution, 4x fewer unknowns).
        radius, eps: guided filter used to bring the solved band back to full resolution.
            Its colour guide is singular on a grey photo (three equal channels): at eps 1e-5
            it drew rings round the person there (p3m grey copies vs colour, IoU 0.895 on
            p_a09f6d7a; 0.986 at 1e-4, where colour photos gain too: SAD 16.88 -> 16.62).

    Returns:
        HxW float32 alpha; pixels outside the band are returned unchanged.
    """
    from livematte.ops.band_solve import closed_form_band, pixels, points

    height, width = alpha.shape
    work = min(1.0, math.sqrt(WORK_PIXELS / (height * width)))
    scale = solve_scale * work
    sw, sh = max(8, round(width * scale)), max(8, round(height * scale))
    sw, sh = min(sw, width), min(sh, height)
    small_img = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    small_alpha = upsample(alpha, (sw, sh))
    band = max(1, round(band_width * sw / (width * work)))
    trimap = make_trimap(small_alpha, band)
    unknown = trimap == 0.5
    if not unknown.any() or unknown.all():
        return alpha.copy()
    try:
        solved = closed_form_band(small_img, trimap)
    except Exception:  # noqa: BLE001 - a failed solve keeps the guided matte, never crashes
        return alpha.copy()
    out = alpha.copy()
    if (sw, sh) == (width, height):
        out[unknown] = solved[unknown]
        return out
    # The band's full-resolution pixels, and only they, get the solve back through the guided
    # filter's linear model, fitted on the solve grid around the band only (a margin of two
    # box radii and the bilinear neighbour: the same coefficients as on the whole grid).
    r = max(1, round(radius * round(width / sw) * sw / width))  # radius on the solve grid
    gy, gx = pixels(unknown.view(np.uint8))
    m = 2 * r + 2
    y0, y1 = max(0, int(gy.min()) - m), min(sh, int(gy.max()) + m + 1)
    x0, x1 = max(0, int(gx.min()) - m), min(sw, int(gx.max()) + m + 1)
    guide = small_img[y0:y1, x0:x1].astype(np.float32) * np.float32(1.0 / 255.0)
    a, b = guided_coefficients(guide, solved[y0:y1, x0:x1], r, eps)
    band_full = cv2.resize(unknown.view(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    ys, xs = pixels(band_full)
    sy, sx = sh / height, sw / width
    coef = points(np.dstack([a, b]), ys - y0 / sy, xs - x0 / sx, sy, sx)
    colours = image[ys, xs].astype(np.float32) * np.float32(1.0 / 255.0)
    value = np.einsum("nc,nc->n", coef[:, :3], colours) + coef[:, 3]
    out[ys, xs] = np.clip(value, 0.0, 1.0)
    return out




def estimate_foreground_ml(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colours by multi-level estimation (Germer et al.) in the band, BGR uint8 out.

    ``livematte.ops.band_solve.foreground_ml``: opaque pixels keep the image's colours.
    """
    from livematte.ops.band_solve import foreground_ml

    return foreground_ml(image, alpha)


def estimate_foreground(
    image: np.ndarray,
    alpha: np.ndarray,
    method: str,
    small: np.ndarray | None = None,
    band: Band | None = None,
) -> np.ndarray:
    """Dispatch to ``fast``, ``blur_fusion`` or ``ml`` (see those functions); BGR uint8 out.

    ``small``: the frame on a reduced grid, used by ``fast`` (see there); ``band``:
    ``find_band(alpha)`` when the caller has it (``fast``, ``blur_fusion``).
    """
    if method == "ml":
        return estimate_foreground_ml(image, alpha)
    if method == "blur_fusion":
        return estimate_foreground_blur_fusion(image, alpha, band)
    if method == "fast":
        return estimate_foreground_fast(image, alpha, small, band)
    raise ValueError(f"unknown foreground method {method!r}; known: fast, blur_fusion, ml")
