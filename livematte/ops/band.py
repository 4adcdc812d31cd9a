"""The uncertain band of a matte: the pixels that are neither background nor person.

Colour work at full resolution (foreground estimation, blending onto a new background) only
changes anything where alpha is fractional: where it is 1 the result is the frame itself,
where it is 0 the background (or nothing).  On the real clips of ../shared/data/video those
pixels are 3-13% of a 720p frame, so the foreground and composite stages work on them alone:

* ``find_band`` finds them (two comparisons and ``cv2.findNonZero``: ~0.5 ms at 720p on one
  core, where ``np.flatnonzero`` alone took 1.3-2 ms);
* ``take`` / ``put`` gather and scatter whole pixels through a view with one element per
  pixel (a 3-byte ``void`` for BGR): 0.2-0.4 ms for 60k pixels, where numpy's 2-D fancy
  indexing ``image[ys, xs]`` took 1.3-1.7 ms;
* ``sample`` reads a smooth low-resolution field at the band's pixel centres (bilinear, as
  ``cv2.resize`` places them), through ``cv2.remap`` on a map holding just those points.

Alpha within ``SOFT_EPS`` of 0 or 1 counts as 0 or 1 here: the temporal smoother's history
decays towards 0 and 1 without reaching them, and those tails would otherwise double the band
(measured 7.1% -> 4.6% of a frame) for a change of at most a quarter of a grey level.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

__all__ = [
    "SOFT_EPS",
    "Band",
    "channels",
    "find_band",
    "find_small_band",
    "kept",
    "opaque_mask",
    "pixels_of",
    "put",
    "sample",
    "take",
]

#: Alpha below this is background, above ``1 - SOFT_EPS`` person, for colour work: a pixel's
#: composite then moves by at most 255 / 1024 = 0.25 grey levels.
SOFT_EPS = 1.0 / 1024.0

#: Pictures with at most this many pixels are thresholded in numpy: OpenCV's bindings read a
#: 1x1 .. 4x1 array as a Scalar (see compose.py).
_TINY = 16

#: remap wants maps under 32k on a side: the band's points are folded into rows this long.
_ROW = 1024
#: The integer map holds int16 coordinates: larger pictures are gathered by np.take.
_INT16 = 32767


@dataclass(frozen=True)
class Band:
    """The fractional pixels of one matte.

    Attributes:
        index: (N,) intp flat positions (row-major, ``y * width + x``), in raster order.
        xs, ys: (N,) int32 columns and rows of the same pixels.
        shape: (height, width) of the matte.
        alpha: (N,) float32 alpha at those pixels.
        points: (rows, 1024, 2) int16 x, y of the same pixels (zero-padded), a ``cv2.remap``
            map that gathers them exactly (``INTER_NEAREST``).
        source: the matte the band was found in (``find_band``), so a later stage can tell
            whether the band still describes the matte it holds (``band.source is alpha``).
        cover: uint8 HxW mask (255 where alpha > ``SOFT_EPS``: the band and the person) from
            ``find_band``, else None: where a composite shows the foreground's pixels, as a
            ``cv2.copyTo`` mask that costs no second pass over the float matte.
    """

    index: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    shape: tuple[int, int]
    alpha: np.ndarray
    points: np.ndarray
    source: np.ndarray | None = field(default=None, repr=False, compare=False)
    cover: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: ``put(..., keep=True)``: id(array) -> (weak reference to the array, the values put).
    _kept: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    #: Sampling maps by grid shape (``sample``): a frame's fields share one grid.
    _maps: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def size(self) -> int:
        """Number of pixels in the band."""
        return int(self.index.size)


def _soft_masks(alpha: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """uint8 masks (255 = true) of ``eps < alpha < 1 - eps`` and of ``alpha > eps``."""
    if alpha.size <= _TINY:
        low = alpha > eps
        return ((low & (alpha < 1.0 - eps)) * 255).astype(np.uint8), (low * 255).astype(np.uint8)
    low = cv2.compare(alpha, eps, cv2.CMP_GT)
    high = cv2.compare(alpha, 1.0 - eps, cv2.CMP_LT)
    return cv2.bitwise_and(low, high, dst=high), low


def find_band(alpha: np.ndarray, eps: float = SOFT_EPS) -> Band:
    """The pixels of ``alpha`` (HxW float32 0..1) strictly between ``eps`` and ``1 - eps``,
    with the ``cover`` mask (``alpha > eps``) the comparisons made on the way."""
    matte = np.ascontiguousarray(alpha, np.float32)
    soft, cover = _soft_masks(matte, eps)
    return replace(pixels_of(soft, matte), source=alpha, cover=cover)


def find_small_band(alpha: np.ndarray, most: int, eps: float = SOFT_EPS) -> Band | None:
    """``find_band``, or None without listing the pixels when there are more than ``most``.

    A light-wrap mask is fractional almost everywhere: counting costs ~0.1 ms at 720p,
    listing every pixel several.
    """
    matte = np.ascontiguousarray(alpha, np.float32)
    mask, cover = _soft_masks(matte, eps)
    if np.count_nonzero(mask) > most:
        return None
    return replace(pixels_of(mask, matte), source=alpha, cover=cover)


def pixels_of(mask: np.ndarray, values: np.ndarray | None = None) -> Band:
    """The non-zero pixels of a uint8 HxW ``mask`` as a Band; ``alpha`` read from ``values``
    (HxW float32, e.g. the matte) or zeros."""
    height, width = mask.shape
    found = cv2.findNonZero(mask) if mask.size > _TINY else _nonzero(mask)
    n = 0 if found is None else len(found)
    points = np.zeros((_rows(n) * _ROW, 2), np.int16 if max(height, width) < _INT16 else np.int32)
    if found is None or n == 0:
        empty = np.zeros(0, np.int32)
        flat = np.zeros(0, np.float32)
        return Band(
            np.zeros(0, np.intp), empty, empty, (height, width), flat, points.reshape(-1, _ROW, 2)
        )
    found = found.reshape(-1, 2)
    points[:n] = found
    # (x, y) pairs to two contiguous rows: numpy on strided columns ran ~15x slower.
    xs, ys = np.ascontiguousarray(found.T)
    # numpy's put and take index with intp: an int32 index was converted on every call
    # (put of 80k BGR pixels 0.25 -> 0.18 ms).
    index = ys.astype(np.intp)
    index *= width
    index += xs
    if values is None:
        alpha_px = np.zeros(n, np.float32)
    else:
        alpha_px = np.take(np.ascontiguousarray(values, np.float32).reshape(-1), index)
    return Band(index, xs, ys, (height, width), alpha_px, points.reshape(-1, _ROW, 2))


def _nonzero(mask: np.ndarray) -> np.ndarray | None:
    """``cv2.findNonZero`` for tiny masks (x, y int32 pairs; None when empty)."""
    ys, xs = np.nonzero(mask)
    return np.stack([xs, ys], axis=1).astype(np.int32) if xs.size else None


def _rows(n: int) -> int:
    """Rows of ``_ROW`` points holding ``n`` points (at least one: remap wants a map)."""
    return max(1, -(-n // _ROW))


def opaque_mask(alpha: np.ndarray, eps: float = SOFT_EPS) -> np.ndarray:
    """uint8 mask (255 = person) of ``alpha >= 1 - eps``, for ``cv2.copyTo``."""
    if alpha.size <= _TINY:
        return ((alpha >= 1.0 - eps) * 255).astype(np.uint8)
    return cv2.compare(alpha, 1.0 - eps, cv2.CMP_GE)


def _pixels(array: np.ndarray) -> np.ndarray:
    """A flat view of a C-contiguous HxW or HxWxC array with one element per pixel."""
    if array.ndim == 2:
        return array.reshape(-1)
    per_pixel = array.shape[2] * array.itemsize
    return array.reshape(-1, array.shape[2]).view(np.dtype((np.void, per_pixel))).reshape(-1)


def channels(values: np.ndarray, count: int) -> np.ndarray:
    """(N,) values repeated into (N, count), to multiply (N, count) colours element by element.

    numpy broadcasting (N, 3) * (N, 1) runs an inner loop of 3 per pixel, ~10x slower than two
    arrays of the same shape; ``cv2.merge`` makes the copy in one pass.
    """
    if values.size <= _TINY:
        return np.repeat(values.reshape(-1, 1), count, axis=1).astype(values.dtype)
    return cv2.merge([values] * count).reshape(-1, count)


def take(array: np.ndarray, band: Band) -> np.ndarray:
    """``array``'s pixels in the band: (N,) for HxW, (N, C) for HxWxC (a new array).

    Colour pictures are gathered by ``cv2.remap`` with the band's integer map (exact, and
    1.5-2x faster than ``np.take`` through a 3-byte view); other arrays by ``np.take``.
    """
    fits = array.shape[0] * array.shape[1] > _TINY and max(array.shape[:2]) < _INT16
    if array.ndim == 3 and array.shape[2] <= 4 and array.dtype == np.uint8 and fits:
        out = cv2.remap(array, band.points, None, cv2.INTER_NEAREST)
        return out.reshape(-1, array.shape[2])[: band.size]
    array = np.ascontiguousarray(array)
    rows = np.take(_pixels(array), band.index)
    if array.ndim == 2:
        return rows
    return rows.view(array.dtype).reshape(-1, array.shape[2])


def put(array: np.ndarray, band: Band, values: np.ndarray, *, keep: bool = False) -> None:
    """Write ``values`` ((N,) or (N, C), cast to ``array``'s type) at the band, in place.

    ``keep``: the band remembers the values written, so that ``kept(array, band)`` gives them
    back without a gather, as long as ``array`` lives (the caller must not write ``array``'s
    band again by other means: ``kept`` cannot see that).

    Raises:
        ValueError: ``array`` is not C-contiguous (the write would land in a copy).
    """
    if not array.flags.c_contiguous:
        raise ValueError("band.put needs a C-contiguous array")
    values = np.ascontiguousarray(values, array.dtype)
    if keep:
        band._kept[id(array)] = (weakref.ref(array), values)
    if array.ndim == 2:
        array.reshape(-1)[band.index] = values.reshape(-1)
        return
    np.put(_pixels(array), band.index, _pixels(values.reshape(-1, 1, array.shape[2])))


def kept(array: np.ndarray, band: Band) -> np.ndarray | None:
    """The values ``put(array, band, values, keep=True)`` wrote ((N,) or (N, C) of
    ``array``'s type, read-only: shared with the band), or None when it was not called for
    this very array."""
    entry = band._kept.get(id(array))
    if entry is None or entry[0]() is not array:
        return None
    values = entry[1].view()
    values.flags.writeable = False
    return values


def sample(grid: np.ndarray, band: Band) -> np.ndarray:
    """Bilinear samples of ``grid`` (a low-resolution map of the whole frame, hxw or hxwxC)
    at the band's full-resolution pixel centres: (N,) or (N, C) float32."""
    n = band.size
    rows = _rows(n)
    map_x, map_y = _sample_maps(band, grid.shape[:2])
    out = cv2.remap(grid, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    channels = grid.shape[2] if grid.ndim == 3 else 1
    out = out.reshape(rows * _ROW, channels)[:n]
    return out[:, 0] if grid.ndim == 2 else out


def _sample_maps(band: Band, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``sample``'s remap maps for a grid of ``grid`` = (h, w), made once per band and grid."""
    maps = band._maps.get(grid)
    if maps is not None:
        return maps
    height, width = band.shape
    n = band.size
    rows = _rows(n)
    map_x = np.zeros(rows * _ROW, np.float32)
    map_y = np.zeros(rows * _ROW, np.float32)
    sx, sy = grid[1] / width, grid[0] / height
    # Pixel centres aligned as cv2.resize places them: grid = s * (index + 0.5) - 0.5.
    np.multiply(band.xs, sx, out=map_x[:n], casting="unsafe")
    map_x[:n] += np.float32(0.5 * sx - 0.5)
    np.multiply(band.ys, sy, out=map_y[:n], casting="unsafe")
    map_y[:n] += np.float32(0.5 * sy - 0.5)
    maps = band._maps[grid] = (map_x.reshape(rows, _ROW), map_y.reshape(rows, _ROW))
    return maps
