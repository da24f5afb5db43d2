"""Warp-and-inpaint helpers: holes in a rendered view, depth alignment, where to add Gaussians,
and which view to visit next.

A new view is rendered from the current Gaussian field; pixels the field does not cover are
*holes*. After the holes are inpainted and a depth is estimated for the whole view, that depth
is aligned to the rendered depth on the known pixels (least-squares scale and shift, then the
remaining residual diffused into the holes, so the new surface meets the old one without a
step), and Gaussians are added for hole pixels only — not on depth edges, where one pixel spans
two surfaces and its Gaussian would float between them.
"""

from __future__ import annotations

import cv2
import numpy as np


def find_holes(alpha: np.ndarray, threshold: float = 0.5, min_area: int = 4,
               grow: int = 1) -> np.ndarray:
    """Pixels the field does not cover.

    Args:
        alpha: accumulated opacity of a render. [H, W]
        threshold: alpha below this is a hole.
        min_area: connected hole regions smaller than this many pixels are dropped (specks
            between splats that the next optimisation closes anyway).
        grow: dilate the holes by this many pixels so that their soft fringe is repainted.

    Returns:
        bool mask, True = hole. [H, W]
    """
    holes = (alpha < threshold).astype(np.uint8)
    if min_area > 1:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=8)
        keep = np.zeros(n, bool)
        keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
        holes = keep[labels].astype(np.uint8)
    if grow > 0:
        holes = cv2.dilate(holes, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return holes.astype(bool)


def fit_scale_shift(pred: np.ndarray, target: np.ndarray, known: np.ndarray) -> tuple[float, float]:
    """Least-squares ``a, b`` minimising ``|a·pred + b − target|²`` over ``known`` pixels.

    A non-positive scale (a degenerate fit) falls back to the ratio of medians with no shift.
    """
    p, t = pred[known].astype(np.float64), target[known].astype(np.float64)
    if p.size < 2 or np.ptp(p) < 1e-9:
        return float(np.median(t) / max(np.median(p), 1e-9)) if p.size else 1.0, 0.0
    A = np.stack([p, np.ones_like(p)], 1)
    (a, b), *_ = np.linalg.lstsq(A, t, rcond=None)
    if a <= 0:
        return float(np.median(t) / max(np.median(p), 1e-9)), 0.0
    return float(a), float(b)


def diffuse(values: np.ndarray, known: np.ndarray, iterations: int = 40) -> np.ndarray:
    """Fill the unknown pixels of ``values [H, W]`` or ``[H, W, C]`` with the harmonic (Laplace)
    interpolation of the known ones (``known [H, W]``), each channel alike: smooth, no
    overshoot, exact on affine ramps. Solved coarse-to-fine (a masked image pyramid gives the
    start, Jacobi sweeps refine each level). float32, the shape of ``values``"""
    shape = values.shape
    if known.all():
        return values.astype(np.float32)
    if not known.any():
        return np.zeros(shape, np.float32)
    v = values.reshape(*known.shape, -1)  # [H, W, C]
    v = np.where(known[..., None], v, 0).astype(np.float32)
    return _harmonic(v, known, iterations).reshape(shape)


_NEIGHBOURS = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], np.float32)


def _harmonic(v: np.ndarray, known: np.ndarray, iterations: int) -> np.ndarray:
    """:func:`diffuse` of ``v [H, W, C]`` (0 where unknown). [H, W, C]"""
    h, w, c = v.shape
    keep = known[..., None]
    if min(h, w) > 4:
        size = ((w + 1) // 2, (h + 1) // 2)
        k = known.astype(np.float32)
        vs = cv2.resize(v * k[..., None], size, interpolation=cv2.INTER_AREA)
        ks = cv2.resize(k, size, interpolation=cv2.INTER_AREA)
        coarse_known = ks > 1e-6
        vs = vs.reshape(size[1], size[0], c) / np.maximum(ks, 1e-6)[..., None]
        vs = np.where(coarse_known[..., None], vs, 0).astype(np.float32)
        coarse = vs if coarse_known.all() else _harmonic(vs, coarse_known, iterations)
        u = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, c)
    else:
        u = np.broadcast_to(v[known].mean(0), v.shape).astype(np.float32)
    u = np.where(keep, v, u)
    for _ in range(iterations):
        mean = cv2.filter2D(u, -1, _NEIGHBOURS, borderType=cv2.BORDER_REPLICATE)
        u = np.where(keep, v, mean.reshape(h, w, c))
    return u


def align_depth(pred: np.ndarray, rendered: np.ndarray, known: np.ndarray,
                min_depth: float = 1e-3) -> np.ndarray:
    """Bring an estimated depth into the field's frame.

    Args:
        pred: depth estimated for the inpainted view. [H, W]
        rendered: the field's expected depth in that view (valid where ``known``). [H, W]
        known: pixels the field covers. [H, W] bool

    Returns:
        ``rendered`` on known pixels; on holes ``a·pred + b`` plus the known residual diffused
        inwards, so depths meet continuously at the hole border. [H, W] float32
    """
    if not known.any():
        return np.maximum(pred, min_depth).astype(np.float32)
    a, b = fit_scale_shift(pred, rendered, known)
    fitted = a * pred + b
    residual = diffuse(np.where(known, rendered - fitted, 0.0), known)
    out = np.where(known, rendered, fitted + residual)
    return np.maximum(out, min_depth).astype(np.float32)


def depth_edges(depth: np.ndarray, ratio: float = 0.08) -> np.ndarray:
    """Pixels on a depth discontinuity. [H, W] bool

    Inverse depth is affine in the pixel coordinates on any plane, so its 4-neighbour Laplacian
    vanishes on planar surfaces however slanted (a ground plane at a grazing angle is not an
    edge) and is large where two surfaces meet. A pixel is an edge where that Laplacian exceeds
    ``ratio`` × its own inverse depth (the image border is extended linearly, so a plane
    stays edge-free up to the border).
    """
    inv = 1.0 / np.maximum(depth.astype(np.float32), 1e-6)
    p = np.pad(inv, 1, mode="reflect", reflect_type="odd")  # linear extrapolation at the border
    lap = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * inv
    return np.abs(lap) > ratio * inv


def new_pixels(holes: np.ndarray, depth: np.ndarray, edge_ratio: float = 0.08) -> np.ndarray:
    """Hole pixels that get a new Gaussian: holes minus depth edges. [H, W] bool"""
    return holes & ~depth_edges(depth, edge_ratio)


def next_view(hole_ratios: np.ndarray, visited: set[int], min_ratio: float = 0.002) -> int | None:
    """The unvisited candidate with the largest hole ratio, or None when every unvisited one
    is covered to within ``min_ratio``."""
    order = [i for i in np.argsort(-hole_ratios, kind="stable") if i not in visited]
    if not order or hole_ratios[order[0]] < min_ratio:
        return None
    return int(order[0])


def plate_hole(mask: np.ndarray, dilate: float = 0.02) -> np.ndarray:
    """The region of the art to repaint for the background plate: the character mask
    (``[H, W]`` in [0, 1]) above 0.5, dilated by ``dilate`` × the long side (its soft edge and
    any halo go too). [H, W] bool"""
    r = max(1, round(dilate * max(mask.shape)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate((mask > 0.5).astype(np.uint8), kernel).astype(bool)


def lazy_next_view(ratios: np.ndarray, visited: set[int], refresh, min_ratio: float = 0.002) -> int | None:
    """:func:`next_view` with stale ratios refreshed only where it matters (lazy greedy).

    Adding Gaussians never uncovers a pixel, so a stale hole ratio is an upper bound of the
    fresh one. Refresh (``refresh(i) -> float``) the best stale candidate until the best is
    fresh: that one is the true best, and most candidates are never re-rendered. ``ratios`` is
    updated in place.
    """
    fresh: set[int] = set()
    while True:
        i = next_view(ratios, visited, min_ratio)
        if i is None or i in fresh:
            return i
        ratios[i] = refresh(i)
        fresh.add(i)


def in_front(points: np.ndarray, depth: np.ndarray, seen: np.ndarray, w2c: np.ndarray,
             K: np.ndarray, margin: float) -> np.ndarray:
    """Which world points would stand in front of the surface a stored view sees: they project
    inside the view, onto a pixel of ``seen``, at a z-depth below ``(1 - margin)`` times the
    view's depth there. A Gaussian there would show in that view and change its image, which
    the view contradicts.

    Args:
        points: world coordinates. [M, 3]
        depth: the view's z-depth. [H, W]
        seen: the view's pixels whose depth holds (what it saw or was given). bool [H, W]
        w2c: the view's world-to-camera pose. [4, 4]
        K: its intrinsics. [3, 3]
        margin: relative depth tolerance.

    Returns:
        bool. [M]
    """
    h, w = depth.shape
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]  # [M, 3]
    z = cam[:, 2]
    ahead = z > 1e-9
    uv = (cam @ K.T)[:, :2] / np.where(ahead, z, 1.0)[:, None]  # [M, 2] pixel coordinates
    inside = ahead & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    col = np.clip(np.floor(uv[:, 0]), 0, w - 1).astype(int)
    row = np.clip(np.floor(uv[:, 1]), 0, h - 1).astype(int)
    return inside & seen[row, col] & (z < (1.0 - margin) * depth[row, col])
