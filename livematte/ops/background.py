"""The background layer's picture operations: grade (dim, desaturate), the lens blur of the real
background, light wrap.  Used by the effects stage (``livematte.stages.effects``), which chooses
and caches the background; these only compute.

Every function takes BGR ``uint8`` pictures and ``float32`` alpha in 0..1 and returns a BGR
``uint8`` picture; none modifies its inputs.

Example::

    bg = grade(LensBlur(15).apply(image, alpha), dim=0.2, desaturate=0.0)
    person = light_wrap(foreground, bg, alpha, 0.5)
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from livematte.ops.compose import Compositor

__all__ = ["LensBlur", "disc_kernel", "grade", "light_wrap"]


def grade(image: np.ndarray, dim: float, desaturate: float) -> np.ndarray:
    """Desaturate then darken a BGR picture (returns ``image`` itself when both are 0)."""
    out = image
    if desaturate > 0:
        grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        out = cv2.addWeighted(image, 1.0 - desaturate, grey, desaturate, 0.0)
    if dim > 0:
        out = cv2.convertScaleAbs(out, alpha=1.0 - dim, beta=0.0)
    return out


def disc_kernel(radius: float) -> np.ndarray:
    """Antialiased flat disc (the shape an out-of-focus lens makes of a point light)."""
    n = int(math.ceil(radius))
    yy, xx = np.mgrid[-n : n + 1, -n : n + 1].astype(np.float32)
    kernel = np.clip(radius + 0.5 - np.sqrt(xx * xx + yy * yy), 0.0, 1.0)
    return kernel / kernel.sum()


_SQUARE_LUT = np.round(np.arange(256.0) ** 2 / 255.0**2 * 65535.0).astype(np.uint16).reshape(1, 256)


class LensBlur:
    """Blur of the real background that ignores the person (no halo of their colours).

    Real time at 720p because it runs at reduced resolution: the working scale is chosen so the
    kernel there is ~5 px in radius, and the result is upsampled, which costs nothing visible
    in a picture that is blurred anyway.  The blur is normalised by the background weight
    ``1 - alpha`` (eroded one pixel so half-covered edge pixels do not count), so pixels next to
    and under the person take the colours of the background around them.  It runs on squared
    values (roughly linear light) so highlights bloom into discs the way a lens renders them.
    """

    def __init__(self, radius: float, kind: str = "lens") -> None:
        self.radius = float(radius)
        self.kind = kind
        self.scale = min(0.4, 5.0 / self.radius)
        self._kernel = disc_kernel(max(self.radius * self.scale, 0.5))

    def _filter(self, img: np.ndarray) -> np.ndarray:
        if self.kind == "gaussian":
            sigma = max(self.radius * self.scale / 2.0, 0.3)
            return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        return cv2.filter2D(img, -1, self._kernel, borderType=cv2.BORDER_REFLECT)

    def apply(self, image: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        """Blurred background, BGR uint8 at the size of ``image``."""
        h, w = image.shape[:2]
        sw, sh = max(int(round(w * self.scale)), 1), max(int(round(h * self.scale)), 1)
        # Square *before* shrinking (16-bit LUT), so a small highlight keeps its energy and
        # blooms into a disc instead of being averaged away with its dark surroundings.
        small = cv2.resize(cv2.LUT(image, _SQUARE_LUT), (sw, sh), interpolation=cv2.INTER_AREA)
        lin = small.astype(np.float32) * np.float32(1.0 / 65535.0)
        if alpha is None:
            res = self._filter(lin)
        else:
            a = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA)
            weight = cv2.erode(1.0 - a, np.ones((3, 3), np.uint8))
            # A tiny floor keeps the division finite deep inside the person, where no
            # background is in reach; there the (hidden) result is the blurred person.
            weight += np.float32(1e-4)
            # Numerator and weight share one 4-channel filter call (one pass over memory).
            packed = cv2.merge([lin * weight[..., None], weight])
            packed = self._filter(packed)
            res = packed[..., :3] / packed[..., 3:4]
        cv2.sqrt(np.maximum(res, 0.0, out=res), dst=res)
        res = cv2.convertScaleAbs(res, alpha=255.0)
        return cv2.resize(res, (w, h), interpolation=cv2.INTER_LINEAR)


def light_wrap(
    foreground: np.ndarray, background: np.ndarray, alpha: np.ndarray, strength: float
) -> np.ndarray:
    """Let the new background's light spill onto the person's edges.

    The spill at a pixel is ``strength`` x how much background surrounds it (a blur of
    ``1 - alpha`` about 1.5% of the frame height wide), mixing in a blurred background.  The
    interior of the person (no background nearby) is left unchanged.  Runs at 1/4 resolution.
    """
    h, w = alpha.shape
    sw, sh = max(w // 4, 1), max(h // 4, 1)
    a_s = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA)
    b_s = cv2.resize(background, (sw, sh), interpolation=cv2.INTER_AREA)
    sigma = max(0.015 * sh, 0.5)
    spread = cv2.GaussianBlur(1.0 - a_s, (0, 0), sigma)
    b_s = cv2.GaussianBlur(b_s, (0, 0), sigma)
    m = cv2.resize(spread, (w, h), interpolation=cv2.INTER_LINEAR)
    m *= np.float32(strength)  # numpy, not cv2.multiply: see compose.py on tiny arrays
    bb = cv2.resize(b_s, (w, h), interpolation=cv2.INTER_LINEAR)
    return Compositor().blend(bb, foreground, m)
