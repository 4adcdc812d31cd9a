"""Draw the sticker art shipped with livematte (so its license is the project's own).

Every sticker is drawn with OpenCV primitives on a 4x supersampled canvas and shrunk with area
averaging (in premultiplied colour, so edges have no dark fringe): antialiased and fully
deterministic, no randomness.  Run from the repository root::

    python scripts/make_stickers.py            # writes livematte/stickers/*.png
    python scripts/make_stickers.py --out /tmp/art
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

SS = 4  # supersampling factor
OUT = Path(__file__).resolve().parent.parent / "livematte" / "stickers"


class Canvas:
    """Straight-alpha float BGRA canvas at SS x the final size; shapes composite "over"."""

    def __init__(self, width: int, height: int) -> None:
        self.size = (width, height)
        self.rgba = np.zeros((height * SS, width * SS, 4), np.float32)

    def mask(self) -> np.ndarray:
        return np.zeros(self.rgba.shape[:2], np.uint8)

    def paint(self, mask: np.ndarray, bgr: tuple[int, int, int], opacity: float = 1.0) -> None:
        """Composite a flat colour through a uint8 (or float 0..1) coverage mask."""
        # Only the mask's bounding box changes (outside it the coverage is 0): much faster.
        x, y, w, h = cv2.boundingRect(mask) if mask.dtype == np.uint8 else (0, 0, 0, 0)
        if w == 0 or h == 0:
            x, y, h, w = 0, 0, *mask.shape[:2]
        mask, rgba = mask[y : y + h, x : x + w], self.rgba[y : y + h, x : x + w]
        m = mask.astype(np.float32) / (255.0 if mask.dtype == np.uint8 else 1.0)
        m = (m * opacity)[..., None]
        a = rgba[..., 3:4]
        a_new = m + a * (1.0 - m)
        colour = np.array(bgr, np.float32) / 255.0
        rgba[..., :3] = (m * colour + a * (1.0 - m) * rgba[..., :3]) / np.maximum(a_new, 1e-6)
        rgba[..., 3:4] = a_new

    def poly(self, pts, bgr, opacity=1.0, outline=None, thick=3.0) -> np.ndarray:
        m = self.mask()
        p = [np.round(np.asarray(pts, np.float64) * SS).astype(np.int32)]
        cv2.fillPoly(m, p, 255, cv2.LINE_AA)
        self.paint(m, bgr, opacity)
        if outline is not None:
            o = self.mask()
            cv2.polylines(o, p, True, 255, max(int(thick * SS), 1), cv2.LINE_AA)
            self.paint(o, outline)
        return m

    def ellipse(self, c, axes, angle, bgr, opacity=1.0, outline=None, thick=3.0) -> np.ndarray:
        m = self.mask()
        cc = (round(c[0] * SS), round(c[1] * SS))
        ax = (round(axes[0] * SS), round(axes[1] * SS))
        cv2.ellipse(m, cc, ax, angle, 0, 360, 255, -1, cv2.LINE_AA)
        self.paint(m, bgr, opacity)
        if outline is not None:
            o = self.mask()
            cv2.ellipse(o, cc, ax, angle, 0, 360, 255, max(int(thick * SS), 1), cv2.LINE_AA)
            self.paint(o, outline)
        return m

    def line(self, p0, p1, bgr, thick) -> None:
        m = self.mask()
        a = (round(p0[0] * SS), round(p0[1] * SS))
        b = (round(p1[0] * SS), round(p1[1] * SS))
        cv2.line(m, a, b, 255, max(int(thick * SS), 1), cv2.LINE_AA)
        self.paint(m, bgr)

    def finish(self) -> np.ndarray:
        """Premultiply, area-shrink, un-premultiply: uint8 BGRA at the final size."""
        pre = self.rgba.copy()
        pre[..., :3] *= pre[..., 3:4]
        small = cv2.resize(pre, self.size, interpolation=cv2.INTER_AREA)
        a = small[..., 3:4]
        small[..., :3] /= np.maximum(a, 1e-6)
        return np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8)


INK = (40, 30, 30)


def party_hat() -> np.ndarray:
    c = Canvas(256, 320)
    cone = [(128, 30), (232, 292), (24, 292)]
    cone_mask = c.poly(cone, (200, 80, 240))  # magenta
    for k in range(-4, 8):  # diagonal stripes, clipped to the cone
        m = c.mask()
        y0 = 60 + k * 52
        pts = np.array([(0, y0), (256, y0 - 90), (256, y0 - 64), (0, y0 + 26)], np.float64) * SS
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255, cv2.LINE_AA)
        c.paint(np.minimum(m, cone_mask), (40, 210, 250) if k % 2 else (240, 190, 60))
    c.poly(cone, (0, 0, 0), opacity=0.0, outline=INK, thick=3)
    for i in range(9):  # frilly brim
        c.ellipse((28 + i * 25, 292), (16, 14), 0, (255, 255, 255), outline=INK, thick=2)
    c.ellipse((128, 30), (24, 24), 0, (60, 230, 255), outline=INK, thick=3)  # pompom
    return c.finish()


def glasses() -> np.ndarray:
    c = Canvas(512, 200)
    for cx in (149, 363):
        c.ellipse((cx, 100), (88, 80), 0, (230, 140, 40), opacity=0.45)  # tinted lens
        c.ellipse((cx - 30, 72), (26, 14), -30, (255, 255, 255), opacity=0.6)  # glint
        m = c.mask()
        cv2.ellipse(m, (cx * SS, 100 * SS), (88 * SS, 80 * SS), 0, 0, 360, 255, 14 * SS, 16)
        c.paint(m, (150, 20, 230))  # frame
    m = c.mask()
    cv2.ellipse(m, (256 * SS, 96 * SS), (36 * SS, 24 * SS), 0, 200, 340, 255, 12 * SS, 16)
    c.paint(m, (150, 20, 230))  # bridge
    c.line((54, 88), (8, 70), (150, 20, 230), 12)
    c.line((458, 88), (504, 70), (150, 20, 230), 12)
    return c.finish()


def crown() -> np.ndarray:
    c = Canvas(320, 224)
    tips = [(20, 40), (90, 70), (160, 16), (230, 70), (300, 40)]
    body = [(30, 210), (20, 40), (70, 130), (90, 70), (125, 125), (160, 16), (195, 125),
            (230, 70), (250, 130), (300, 40), (290, 210)]  # fmt: skip
    c.poly(body, (40, 190, 245), outline=(20, 90, 150), thick=4)  # gold
    c.poly([(30, 170), (290, 170), (290, 210), (30, 210)], (30, 150, 225), outline=(20, 90, 150))
    for x, colour in ((80, (60, 40, 220)), (160, (200, 90, 30)), (240, (60, 40, 220))):
        c.ellipse((x, 190), (14, 12), 0, colour, outline=(255, 255, 255), thick=2)
    for tx, ty in tips:
        c.ellipse((tx, ty), (12, 12), 0, (245, 245, 255), outline=(20, 90, 150), thick=2)
    return c.finish()


def bunny_ears() -> np.ndarray:
    c = Canvas(320, 400)
    for cx, ang in ((100, -12), (220, 12)):
        c.ellipse((cx, 200), (52, 180), ang, (245, 245, 250), outline=(170, 160, 170), thick=4)
        c.ellipse((cx, 215), (26, 135), ang, (190, 160, 250))  # pink inner
    return c.finish()


def bunny_nose() -> np.ndarray:
    c = Canvas(160, 96)
    for y, d in ((40, -6), (52, 0), (64, 6)):  # whiskers
        c.line((60, 50), (6, y + d), INK, 2.5)
        c.line((100, 50), (154, y + d), INK, 2.5)
    c.poly([(56, 30), (104, 30), (80, 62)], (170, 120, 250), outline=INK, thick=3)
    return c.finish()


def halo() -> np.ndarray:
    c = Canvas(320, 120)
    glow = c.mask()
    cv2.ellipse(glow, (160 * SS, 60 * SS), (130 * SS, 36 * SS), 0, 0, 360, 255, 30 * SS, 16)
    glow = cv2.GaussianBlur(glow.astype(np.float32) / 255.0, (0, 0), 10 * SS)
    c.paint(glow / max(float(glow.max()), 1e-6), (120, 230, 255), opacity=0.6)
    ring = c.mask()
    cv2.ellipse(ring, (160 * SS, 60 * SS), (130 * SS, 36 * SS), 0, 0, 360, 255, 12 * SS, 16)
    c.paint(ring, (60, 215, 255))
    return c.finish()


def wings() -> np.ndarray:
    c = Canvas(640, 360)
    for side in (-1, 1):
        root = (320 + side * 40, 225)
        for i in range(6):  # feathers fanning out and up, the top one drawn last (on top)
            a = math.radians(30 - i * 16)
            length = 140 + i * 22
            cx = root[0] + side * math.cos(a) * length / 2
            cy = root[1] + math.sin(a) * length / 2
            angle = math.degrees(a) if side > 0 else 180 - math.degrees(a)
            c.ellipse((cx, cy), (length / 2, 30), angle, (250, 250, 255),
                      outline=(190, 180, 180), thick=3)  # fmt: skip
        c.ellipse((root[0] + side * 40, root[1] - 20), (62, 48), 0, (255, 255, 255),
                  outline=(190, 180, 180), thick=3)  # fmt: skip
    return c.finish()


ART: dict[str, Callable[[], np.ndarray]] = {
    "party_hat": party_hat,
    "glasses": glasses,
    "crown": crown,
    "bunny_ears": bunny_ears,
    "bunny_nose": bunny_nose,
    "halo": halo,
    "wings": wings,
}


def main(argv: list[str] | None = None) -> None:
    """Write every sticker as NAME.png into --out (default livematte/stickers)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, draw in ART.items():
        path = args.out / f"{name}.png"
        cv2.imwrite(str(path), draw(), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(path)


if __name__ == "__main__":
    main()
