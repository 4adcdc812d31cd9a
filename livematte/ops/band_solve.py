"""Photo-quality matting work restricted to the uncertain band, in numpy and OpenCV only.

Both replace pymatting on the photo path: importing pymatting (numba, scipy, every kernel
loaded from its cache) cost ~1 s of a cold ``livematte image``, and its solvers ran on whole
images or bounding boxes where only the band of uncertain alpha needs an answer.

* ``foreground_ml`` — Germer et al.'s multi-level foreground estimation ("Fast multi-level
  foreground estimation", ICPR 2020; pymatting's ``estimate_foreground_ml``): the
  coarse-to-fine levels run on the band's bounding box reduced to 256 px, where the colours
  diffuse across the picture, and only the fractional pixels read their colour back from it
  (everything else is the image itself, or unused).
* ``closed_form_band`` — Levin et al.'s closed-form matting ("A closed-form solution to
  natural image matting", PAMI 2008) with the unknowns limited to the band: the Laplacian
  rows of the unknown pixels are built only from the 3x3 windows that touch them, and the
  system (unknowns only, known pixels on the right-hand side) is solved directly, by block
  elimination along the band.

Both take BGR ``uint8`` images and never modify their inputs.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["foreground_ml", "closed_form_band", "pixels", "points"]

#: Long side (px) of the grid the multi-level foreground levels run on (the band's bounding
#: box, reduced).  Colour fringe on a new background (scripts/eval_matting.py's fringe test,
#: lower is better): 128 px 15.2, 256 px 15.6, 480 px 15.8, pymatting's full-resolution
#: solver 16.0; on a 1080p portrait ~40 ms CPU instead of its 0.3-0.5 s.  Two more Jacobi
#: sweeps at full resolution on the band did not help (15.8 at 256 px).
ML_WORK_SIDE = 256


def _ml_step(image, alpha, fg, bg, reg, grad_w):
    """One Jacobi sweep of Germer's per-pixel 2x2 solve over a dense level (edge-clamped)."""
    h, w = alpha.shape
    a00 = alpha * alpha
    a11 = (1.0 - alpha) ** 2
    a01 = alpha * (1.0 - alpha)
    b0 = alpha[..., None] * image
    b1 = (1.0 - alpha)[..., None] * image
    pa, pf, pb = (cv2.copyMakeBorder(x, 1, 1, 1, 1, cv2.BORDER_REPLICATE) for x in (alpha, fg, bg))
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        na = pa[dy : dy + h, dx : dx + w]
        da = reg + grad_w * np.abs(alpha - na)
        a00 = a00 + da
        a11 = a11 + da
        b0 += da[..., None] * pf[dy : dy + h, dx : dx + w]
        b1 += da[..., None] * pb[dy : dy + h, dx : dx + w]
    return _solve2(a00, a01, a11, b0, b1)


def _solve2(a00, a01, a11, b0, b1):
    inv = 1.0 / (a00 * a11 - a01 * a01)
    m00, m01, m11 = (a11 * inv)[..., None], (-a01 * inv)[..., None], (a00 * inv)[..., None]
    f = np.clip(m00 * b0 + m01 * b1, 0.0, 1.0)
    b = np.clip(m01 * b0 + m11 * b1, 0.0, 1.0)
    return f, b


def _ml_levels(image, alpha, reg, grad_w, small_iterations=10, big_iterations=2, small=32):
    """Germer's coarse-to-fine levels (sizes ``w0 ** (i / n)``) on a dense float32 grid."""
    h0, w0 = alpha.shape
    fg_mean = image[alpha > 0.9].mean(0) if (alpha > 0.9).any() else np.full(3, 0.5)
    bg_mean = image[alpha < 0.1].mean(0) if (alpha < 0.1).any() else np.full(3, 0.5)
    fg = np.empty((1, 1, 3), np.float32)
    bg = np.empty((1, 1, 3), np.float32)
    fg[:] = fg_mean
    bg[:] = bg_mean
    levels = max(1, math.ceil(math.log2(max(w0, h0))))
    for i in range(levels + 1):
        w = max(1, round(w0 ** (i / levels)))
        h = max(1, round(h0 ** (i / levels)))
        img, a = image, alpha
        if (w, h) != (w0, h0):
            img = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            a = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
        fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST).reshape(h, w, 3)
        bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_NEAREST).reshape(h, w, 3)
        for _ in range(small_iterations if max(w, h) <= small else big_iterations):
            fg, bg = _ml_step(img, a, fg, bg, reg, grad_w)
    return fg, bg


def foreground_ml(
    image: np.ndarray,
    alpha: np.ndarray,
    *,
    regularization: float = 1e-5,
    gradient_weight: float = 1.0,
    work_side: int = ML_WORK_SIDE,
) -> np.ndarray:
    """Decontaminated foreground colours (BGR uint8) by multi-level estimation in the band.

    The levels run on the band's bounding box reduced to ``work_side``; each fractional pixel
    then reads its colour from that grid (bilinear).  Opaque pixels keep the image's colours,
    transparent ones too (they are unused).
    """
    out = image.copy()
    ys, xs = _fractional(alpha)
    if ys.size == 0:
        return out
    h, w = alpha.shape
    pad = 2
    y0, y1 = max(0, int(ys.min()) - pad), min(h, int(ys.max()) + pad + 1)
    x0, x1 = max(0, int(xs.min()) - pad), min(w, int(xs.max()) + pad + 1)
    ch, cw = y1 - y0, x1 - x0
    s = min(1.0, work_side / max(ch, cw))
    size = (max(1, round(cw * s)), max(1, round(ch * s)))
    crop, a = image[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    if s < 1.0:
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
    small = crop.astype(np.float32) * np.float32(1.0 / 255.0)
    fg, _ = _ml_levels(small, a.astype(np.float32, copy=False), regularization, gradient_weight)
    colours = points(fg, ys - y0, xs - x0, size[1] / ch, size[0] / cw)
    out[ys, xs] = np.clip(colours * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def _fractional(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the pixels with 0 < alpha < 1."""
    below_one = float(np.nextafter(np.float32(1.0), np.float32(0.0)))
    return pixels(cv2.inRange(alpha, 1e-30, below_one))


def pixels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a uint8 mask's non-zero pixels (``cv2.findNonZero``: several
    times faster than ``np.nonzero`` on a sparse full-resolution mask)."""
    found = cv2.findNonZero(mask)
    if found is None:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    found = found.reshape(-1, 2)
    return found[:, 1].astype(np.intp), found[:, 0].astype(np.intp)


def points(grid: np.ndarray, ys: np.ndarray, xs: np.ndarray, sy: float, sx: float) -> np.ndarray:
    """Bilinear values of a coarse ``grid`` at full-resolution pixel centres ``(ys, xs)``.

    ``sy``, ``sx``: grid size over full size.  ``cv2.remap`` on a map of just these points is
    a vectorised gather (maps folded into rows of 1024: remap wants fewer than 32k columns).
    """
    n = len(ys)
    cols = 1024
    rows = -(-n // cols)
    map_y = np.zeros(rows * cols, np.float32)
    map_x = np.zeros(rows * cols, np.float32)
    map_y[:n] = (ys + 0.5) * sy - 0.5
    map_x[:n] = (xs + 0.5) * sx - 0.5
    out = cv2.remap(grid, map_x.reshape(rows, cols), map_y.reshape(rows, cols),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return out.reshape(rows * cols, -1)[:n]


#: The 3x3 window offsets (radius 1, as Levin et al. and pymatting); two pixels of a window are
#: at most two apart, so each Laplacian row is a 5x5 stencil.
_WINDOW = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def closed_form_band(
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    epsilon: float = 1e-7,
) -> np.ndarray:
    """Closed-form alpha for the unknown pixels of ``trimap`` (0 and 1 known, else unknown).

    Args:
        image: HxWx3 uint8 (any channel order: the Laplacian does not depend on it).
        trimap: HxW float, 0 / 1 where known.
        epsilon: the Laplacian's colour regulariser (pymatting's default).

    Returns:
        HxW float32 alpha: ``trimap`` where known, the solution clipped to 0..1 elsewhere.
    """
    height, width = trimap.shape
    unknown = (trimap != 0.0) & (trimap != 1.0)
    out = trimap.astype(np.float32)
    if not unknown.any() or height < 3 or width < 3:
        return out
    # Work in the unknowns' bounding box, 3 pixels wider (rows reach two pixels out).
    ys, xs = np.nonzero(unknown)
    y0, y1 = max(0, int(ys.min()) - 3), min(height, int(ys.max()) + 4)
    x0, x1 = max(0, int(xs.min()) - 3), min(width, int(xs.max()) + 4)
    img = image[y0:y1, x0:x1].astype(np.float64) * (1.0 / 255.0)
    unk = unknown[y0:y1, x0:x1]
    h, w = unk.shape
    # Unknown numbers on a grid two pixels wider all round (-1: known or outside), so each
    # row's 25 stencil neighbours are one flat gather.
    number = np.full((h + 4, w + 4), -1, np.int64)
    rows_y, rows_x = np.nonzero(unk)
    n = rows_y.size
    number[rows_y + 2, rows_x + 2] = np.arange(n)
    stencil = _band_laplacian(img, unk, number, n, (y0, x0, height, width), epsilon)
    offsets = np.array([dy * (w + 4) + dx for dy in range(-2, 3) for dx in range(-2, 3)])
    neighbours = ((rows_y + 2) * (w + 4) + rows_x + 2)[:, None] + offsets
    cols = number.ravel()[neighbours]
    values = np.pad(trimap[y0:y1, x0:x1].astype(np.float64) * ~unk, 2).ravel()[neighbours]
    rhs = -np.einsum("ij,ij->i", stencil, values)
    cols[cols < 0] = n  # known: their part is in rhs
    solved = _solve(stencil, cols, rhs)
    out[y0:y1, x0:x1][unk] = np.clip(solved, 0.0, 1.0)
    return out


#: Largest sum of cubed level sizes the level solver takes on (its dense work); above it (wide
#: soft regions: 2 of the 15 p3m portraits) the sparse direct solver of scipy is loaded instead.
LEVEL_WORK = 2e8


def _solve(stencil: np.ndarray, cols: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the (n, n) system whose rows are ``stencil`` at columns ``cols`` (n = none).

    The band is nearly one-dimensional: ordered by breadth-first levels along it, the matrix
    is block tridiagonal with small blocks (40-90 unknowns on the p3m portraits at the photo
    preset's solve scale) and a block elimination solves it exactly in numpy, 25-80 ms for
    7-10k unknowns, as fast as SuperLU, without loading scipy (0.2 s CPU of every cold
    ``livematte image``).  Jacobi-preconditioned conjugate gradients took 70-1000 iterations
    (0.1-2 s) on the same systems.
    """
    order = _levels(cols, rhs.size)
    if sum(len(level) ** 3 for level in order) <= LEVEL_WORK:
        return _solve_levels(stencil, cols, rhs, order)
    return _solve_sparse(stencil, cols, rhs)


def _bfs(cols: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """Breadth-first levels over the stencil graph from ``seed``; each further connected
    component starts a new level (it does not touch the one before, which is all the
    elimination needs)."""
    seen = np.zeros(n + 1, bool)
    seen[n] = True  # the "known pixel" column
    seen[seed] = True
    frontier = np.array([seed])
    order = []
    visited = 1
    while True:
        order.append(frontier)
        reached = cols[frontier].ravel()
        reached = reached[~seen[reached]]
        if reached.size:
            frontier = np.unique(reached)
        elif visited < n:
            frontier = np.flatnonzero(~seen[:n])[:1]
        else:
            return order
        seen[frontier] = True
        visited += frontier.size


def _levels(cols: np.ndarray, n: int) -> list[np.ndarray]:
    """Levels from a far end of the band (the last level of a first search), so that the
    fronts cross the band instead of growing along it."""
    return _bfs(cols, n, int(_bfs(cols, n, 0)[-1][0]))


def _solve_levels(stencil, cols, rhs, order):
    """Block elimination of the block tridiagonal system the levels make (Schur complements
    level by level, then back substitution)."""
    n = rhs.size
    level = np.empty(n + 1, np.int64)
    level[n] = -1
    index = np.zeros(n + 1, np.int64)
    for k, rows in enumerate(order):
        level[rows] = k
        index[rows] = np.arange(rows.size)
    inverses, couplings, partial = [], [None], []
    for k, rows in enumerate(order):
        c, v = cols[rows], stencil[rows]
        lv, at = level[c], index[c]
        r = np.broadcast_to(np.arange(rows.size)[:, None], c.shape)
        block = np.zeros((rows.size, rows.size))
        mine = lv == k
        block[r[mine], at[mine]] = v[mine]
        y = rhs[rows]
        if k:
            before = lv == k - 1
            coupling = np.zeros((rows.size, order[k - 1].size))
            coupling[r[before], at[before]] = v[before]
            block -= coupling @ (inverses[-1] @ coupling.T)
            y = y - coupling @ (inverses[-1] @ partial[-1])
            couplings.append(coupling)
        inverses.append(np.linalg.inv(block))
        partial.append(y)
    x = np.empty(n)
    xk = None
    for k in range(len(order) - 1, -1, -1):
        y = partial[k] if xk is None else partial[k] - couplings[k + 1].T @ xk
        xk = inverses[k] @ y
        x[order[k]] = xk
    return x


def _solve_sparse(stencil: np.ndarray, cols: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """SuperLU (symmetric mode, minimum-degree ordering on A + A^T) for wide bands."""
    import scipy.sparse  # imported here: rarely needed, and ~0.2 s CPU to load
    import scipy.sparse.linalg

    n = rhs.size
    inside = cols < n
    rows = np.broadcast_to(np.arange(n)[:, None], cols.shape)
    matrix = scipy.sparse.csc_matrix((stencil[inside], (rows[inside], cols[inside])), shape=(n, n))
    factor = scipy.sparse.linalg.splu(
        matrix, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True}
    )
    return factor.solve(rhs)


def _band_laplacian(img, unk, number, n, frame, epsilon):
    """Rows of the matting Laplacian for the ``n`` unknown pixels, as (n, 25) 5x5 stencils.

    Only windows that touch an unknown pixel and lie wholly inside the picture count (as in
    pymatting's ``cf_laplacian``, whose matrix this reproduces).
    """
    y0, x0, height, width = frame
    h, w = unk.shape
    touch = cv2.dilate(unk.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    # Window centres at least one pixel inside the whole picture.
    touch[: max(0, 1 - y0)] = False
    touch[max(0, height - 1 - y0) :] = False
    touch[:, : max(0, 1 - x0)] = False
    touch[:, max(0, width - 1 - x0) :] = False
    touch[[0, -1]] = False
    touch[:, [0, -1]] = False
    cy, cx = np.nonzero(touch)
    colours = np.stack([img[cy + dy, cx + dx] for dy, dx in _WINDOW], axis=1)  # (m, 9, 3)
    centred = colours - colours.mean(axis=1, keepdims=True)
    cov = centred.transpose(0, 2, 1) @ centred
    cov[:, range(3), range(3)] += epsilon
    inv = np.linalg.inv(cov * (1.0 / 9.0))
    # value_ij = delta_ij - (1 + c_i^T inv c_j) / 9 for the pixel pair (i, j) of each window
    pairs = (centred @ inv) @ centred.transpose(0, 2, 1)
    pairs += 1.0
    pairs *= -1.0 / 9.0
    pairs[:, range(9), range(9)] += 1.0
    stencil = np.zeros((n + 1, 25))  # row n collects the known pixels' rows, then is dropped
    for i, (iy, ix) in enumerate(_WINDOW):
        row = number[cy + iy + 2, cx + ix + 2]
        row[row < 0] = n
        to = [(jy - iy + 2) * 5 + (jx - ix + 2) for jy, jx in _WINDOW]
        # Each window gives its pixel i one value per offset; windows are distinct pixels i,
        # so only row n (known pixels) repeats, and it is thrown away.
        stencil[row[:, None], to] += pairs[:, i, :]
    return stencil[:n]
