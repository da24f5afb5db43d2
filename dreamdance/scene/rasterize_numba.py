"""Gaussian splatting on the CPU: compiled (Numba) compositing kernels, differentiable.

:func:`rasterize_numba` gives the image of :func:`~dreamdance.scene.rasterize.rasterize_torch`
(gsplat's conventions, the same projection and the same stop rule) without building
per-pixel lists. The projection is :func:`~dreamdance.scene.rasterize.project_gaussians` under
autograd; the compositing is two loops compiled by Numba:

- Forward: the kept Gaussians, sorted by camera and then front to back by camera depth (ties
  in index order), are splatted one after another into the pixels of their boxes. Each pixel
  keeps its running transmittance ``T`` and sums ``sum(a_i T_i f_i)``; since every pixel sees
  its Gaussians front to back, this is per-pixel compositing. A pair is blended while ``T``
  after it stays above ``T_STOP``; at the first pair that would take it lower the pixel stops,
  and the rank of that Gaussian is kept for the backward pass.
- Backward: the same Gaussians in reverse order. Each pixel starts from its final ``T`` and
  recovers the transmittance before each blended pair as ``T / (1 - a)`` (``a <= 0.999``), with
  ``B``, the sum of ``w_k f_k`` over the pairs behind it:
  ``dL/df_i = w_i dL/dS``, ``dL/da_i = T_i (f_i . dL/dS) - (B . dL/dS + T_final dL/dT) / (1 - a_i)``,
  then through ``a = opacity exp(-sigma)`` to the 2D means, conics and opacities.

Both loops go tile by tile (``TILE`` pixels square, each tile's Gaussians binned in
compositing order), so a tile's pixel state stays in cache; a tile whose pixels have all
stopped is done. The forward pass runs the tiles in parallel on PyTorch's number of threads
(no two tiles share a pixel, so the image does not depend on it); the backward pass runs them
in order, so gradients are deterministic. The kernels are compiled on first use and cached on
disk (``NUMBA_CACHE_DIR`` chooses where).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor

from dreamdance.scene.rasterize import (
    ALPHA_MAX,
    ALPHA_THRESHOLD,
    T_STOP,
    check_inputs,
    compositing_order,
    finish,
    project_gaussians,
)

TILE = 32  # pixels per tile side: a tile's pixel state stays in cache while it is composited


def rasterize_numba(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    colors: Tensor,  # [N, 3]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    backgrounds: Tensor | None = None,  # [C, 3]
) -> tuple[Tensor, Tensor, Tensor]:
    """The CPU rasteriser: args and returns as :func:`~dreamdance.scene.rasterize.rasterize`
    (CPU tensors, float32 or float64). Gradients flow to every tensor argument."""
    check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                  backgrounds, 1)
    if means.device.type != "cpu":
        raise ValueError(f"backend=numba: tensors must be on the CPU, got {means.device}")
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    C, N = viewmats.shape[0], means.shape[0]
    means2d, conics, depths, radii = project_gaussians(
        means, quats, scales, opacities, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d,
    )
    order = compositing_order(depths, radii)  # [V] flat camera * N + n
    features = torch.cat([colors.repeat(C, 1), depths.reshape(C * N, 1)], -1)  # [C * N, 4]
    sums, trans = _Composite.apply(
        means2d.reshape(C * N, 2), conics.reshape(C * N, 3), opacities.repeat(C), features,
        order, radii.reshape(C * N, 2), width, height, N)  # [C * H * W, 4], [C * H * W]
    # finished in float64: alpha = 1 - T and depth = sum / alpha lose nothing to cancellation
    outs = finish(sums.reshape(C, height, width, 4), trans.reshape(C, height, width, 1),
                   None if backgrounds is None else backgrounds.double())
    return tuple(x.to(means.dtype) for x in outs)


class _Composite(torch.autograd.Function):
    """Front-to-back compositing of projected Gaussians (see the module docstring): sums
    ``[C * H * W, F]`` and transmittance ``[C * H * W]``, in float64."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, features, order, radii, width, height, n):
        # means2d [M, 2], conics [M, 3], opacities [M], features [M, F], order [V], radii [M, 2]
        arrays = _arrays(means2d, conics, opacities, features, radii)
        order = order.numpy()
        mx, my, *_, rx, ry = arrays
        tiles = _bin(order, mx, my, rx, ry, n, width, height, TILE)  # starts, ranks, tx, ty
        pixels = (means2d.shape[0] // n) * height * width
        sums = np.zeros((pixels, features.shape[1]))
        trans = np.ones(pixels)
        stop = np.full(pixels, order.shape[0], dtype=np.int64)
        _forward(order, *arrays, n, width, height, TILE, *tiles, sums, trans, stop)
        # what the backward pass reads: the same arrays and tiles, the final T and the stops
        ctx.state = (order, arrays, tiles, width, height, n, trans.copy(), stop,
                     means2d.dtype)
        return torch.from_numpy(sums), torch.from_numpy(trans)  # float64

    @staticmethod
    def backward(ctx, grad_sums, grad_trans):
        order, arrays, tiles, width, height, n, trans, stop, dtype = ctx.state
        features = arrays[6]
        # per Gaussian: mean x, y, conic xx, xy, yy, opacity, then the features
        grads = np.zeros((features.shape[0], 6 + features.shape[1]))
        _backward(order, *arrays, n, width, height, TILE, *tiles, trans, stop,
                  np.ascontiguousarray(grad_sums.detach().double().numpy()),
                  np.ascontiguousarray(grad_trans.detach().double().numpy()), grads)
        grads = torch.from_numpy(grads).to(dtype)
        return (grads[:, 0:2], grads[:, 2:5], grads[:, 5], grads[:, 6:], None, None, None,
                None, None)


def _arrays(means2d: Tensor, conics: Tensor, opacities: Tensor, features: Tensor,
            radii: Tensor) -> tuple[np.ndarray, ...]:
    """Contiguous float64 numpy views for the kernels: mx, my, cxx, cxy, cyy, opacity [M],
    features [M, F], box half-sizes rx, ry [M] (int64)."""
    p = torch.cat([means2d.detach(), conics.detach(), opacities.detach()[:, None]], -1)
    p = p.double().numpy().T.copy()  # [6, M]
    r = radii.long().numpy().T.copy()  # [2, M]
    return (*p, np.ascontiguousarray(features.detach().double().numpy()), r[0], r[1])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _alpha(mx, my, cxx, cxy, cyy, o, px, py):  # pragma: no cover - compiled
    """``(alpha, sigma, dx, dy, clamped)`` of a Gaussian at pixel ``(px, py)``; alpha 0 where
    it is skipped (sigma < 0 or alpha < 1/255)."""
    dx = mx - (px + 0.5)
    dy = my - (py + 0.5)
    sigma = 0.5 * (cxx * dx * dx + cyy * dy * dy) + cxy * dx * dy
    if sigma < 0.0:
        return 0.0, sigma, dx, dy, False
    a = o * math.exp(-sigma)
    clamped = a > ALPHA_MAX
    if clamped:
        a = ALPHA_MAX
    if a < ALPHA_THRESHOLD:
        return 0.0, sigma, dx, dy, clamped
    return a, sigma, dx, dy, clamped


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _box(mx, my, rx, ry, width, height):  # pragma: no cover - compiled
    """Inclusive pixel box ``(x0, y0, x1, y1)`` of a Gaussian (the rasteriser's)."""
    x0 = max(math.ceil(mx - rx - 0.5), 0)
    y0 = max(math.ceil(my - ry - 0.5), 0)
    x1 = min(math.floor(mx + rx - 0.5), width - 1)
    y1 = min(math.floor(my + ry - 0.5), height - 1)
    return (x0, y0, x1, y1)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _span(mx, my, cxx, cxy, cyy, o, py, x0, x1):  # pragma: no cover - compiled
    """The pixels ``[s0, s1]`` of row ``py`` within ``[x0, x1]`` where the Gaussian can reach
    alpha 1/255 (``sigma <= ln(255 o)``, with a rounding margin); empty when ``s1 < s0``."""
    dy = my - (py + 0.5)
    level = math.log(o / ALPHA_THRESHOLD) + 1e-3
    disc = 2.0 * cxx * level - (cxx * cyy - cxy * cxy) * dy * dy
    if disc < 0.0:
        return 0, -1
    centre = mx + cxy * dy / cxx
    half = math.sqrt(disc) / cxx
    return max(x0, math.ceil(centre - half - 0.5)), min(x1, math.floor(centre + half - 0.5))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bin(order, mx, my, rx, ry, n, width, height, tile):  # pragma: no cover - compiled
    """Each tile's Gaussians, as ranks into ``order`` in increasing order (front to back).

    Tiles are ``tile x tile`` pixels, ``tiles_x`` per row, ``tiles_y`` rows per camera; tile
    ``t``'s ranks are ``ranks[starts[t]:starts[t + 1]]``. Returns ``(starts, ranks, tiles_x,
    tiles_y)``."""
    tiles_x = (width + tile - 1) // tile
    tiles_y = (height + tile - 1) // tile
    n_cams = mx.shape[0] // n
    counts = np.zeros(n_cams * tiles_y * tiles_x + 1, np.int64)
    for r in range(order.shape[0]):
        k = order[r]
        x0, y0, x1, y1 = _box(mx[k], my[k], rx[k], ry[k], width, height)
        first = (k // n) * tiles_y
        for ty in range(y0 // tile, y1 // tile + 1):
            for tx in range(x0 // tile, x1 // tile + 1):
                counts[(first + ty) * tiles_x + tx + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    ranks = np.empty(starts[-1], np.int64)
    for r in range(order.shape[0]):
        k = order[r]
        x0, y0, x1, y1 = _box(mx[k], my[k], rx[k], ry[k], width, height)
        first = (k // n) * tiles_y
        for ty in range(y0 // tile, y1 // tile + 1):
            for tx in range(x0 // tile, x1 // tile + 1):
                t = (first + ty) * tiles_x + tx
                ranks[fill[t]] = r
                fill[t] += 1
    return starts, ranks, tiles_x, tiles_y


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tile_box(t, tiles_x, tiles_y, tile, box, width, height):  # pragma: no cover - compiled
    """A Gaussian's box ``(x0, y0, x1, y1)`` cut to tile ``t``, and the tile's first flat
    pixel index of its camera's image."""
    tx = t % tiles_x
    ty = (t // tiles_x) % tiles_y
    cam = t // (tiles_x * tiles_y)
    x0 = max(box[0], tx * tile)
    y0 = max(box[1], ty * tile)
    x1 = min(box[2], tx * tile + tile - 1)
    y1 = min(box[3], ty * tile + tile - 1)
    return x0, y0, x1, y1, cam * height * width


@numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def _forward(order, mx, my, cxx, cxy, cyy, opac, features, rx, ry, n, width, height, tile,
             starts, ranks, tiles_x, tiles_y, sums, trans, stop):  # pragma: no cover
    """Splat ``order``'s Gaussians front to back into ``sums [P, F]``, ``trans [P]`` and
    ``stop [P]`` (the rank of the Gaussian a pixel stopped at, ``len(order)`` if none), tile
    by tile (the tiles of :func:`_bin`)."""
    n_feat = features.shape[1]
    for t in numba.prange(starts.shape[0] - 1):
        # pixels of the tile not yet stopped: a tile whose pixels have all stopped is done
        tx0, ty0, tx1, ty1, _ = _tile_box(t, tiles_x, tiles_y, tile, (0, 0, width, height),
                                          width, height)
        live = (min(tx1, width - 1) - tx0 + 1) * (min(ty1, height - 1) - ty0 + 1)
        for i in range(starts[t], starts[t + 1]):
            if live == 0:
                break
            r = ranks[i]
            k = order[r]
            x0, y0, x1, y1, base = _tile_box(
                t, tiles_x, tiles_y, tile, _box(mx[k], my[k], rx[k], ry[k], width, height),
                width, height)
            for py in range(y0, y1 + 1):
                s0, s1 = _span(mx[k], my[k], cxx[k], cxy[k], cyy[k], opac[k], py, x0, x1)
                for px in range(s0, s1 + 1):
                    p = base + py * width + px
                    if stop[p] < r:
                        continue
                    a, _, _, _, _ = _alpha(mx[k], my[k], cxx[k], cxy[k], cyy[k], opac[k], px,
                                           py)
                    if a == 0.0:
                        continue
                    tr = trans[p]
                    after = tr * (1.0 - a)
                    if after <= T_STOP:
                        stop[p] = r
                        live -= 1
                        continue
                    w = a * tr
                    for j in range(n_feat):
                        sums[p, j] += w * features[k, j]
                    trans[p] = after


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _backward(order, mx, my, cxx, cxy, cyy, opac, features, rx, ry, n, width, height, tile,
              starts, ranks, tiles_x, tiles_y, trans, stop, grad_sums, grad_trans,
              grads):  # pragma: no cover - compiled
    """Gradients of the forward pass into ``grads [M, 6 + F]`` (mean x, y, conic xx, xy, yy,
    opacity, features), visiting each tile's Gaussians back to front."""
    n_feat = features.shape[1]
    t_now = trans.copy()  # transmittance after the pairs not yet visited
    behind = np.zeros((trans.shape[0], n_feat))  # sum of w_k f_k over the visited pairs
    for t in range(starts.shape[0] - 1):
        for i in range(starts[t + 1] - 1, starts[t] - 1, -1):
            r = ranks[i]
            k = order[r]
            x0, y0, x1, y1, base = _tile_box(
                t, tiles_x, tiles_y, tile, _box(mx[k], my[k], rx[k], ry[k], width, height),
                width, height)
            for py in range(y0, y1 + 1):
                s0, s1 = _span(mx[k], my[k], cxx[k], cxy[k], cyy[k], opac[k], py, x0, x1)
                for px in range(s0, s1 + 1):
                    p = base + py * width + px
                    if r >= stop[p]:
                        continue
                    a, sigma, dx, dy, clamped = _alpha(mx[k], my[k], cxx[k], cxy[k], cyy[k],
                                                       opac[k], px, py)
                    if a == 0.0:
                        continue
                    inv = 1.0 / (1.0 - a)
                    tr = t_now[p] * inv  # before this pair
                    w = a * tr
                    g_f = 0.0
                    g_b = 0.0
                    for j in range(n_feat):
                        g = grad_sums[p, j]
                        g_f += features[k, j] * g
                        g_b += behind[p, j] * g
                        grads[k, 6 + j] += w * g
                        behind[p, j] += w * features[k, j]
                    t_now[p] = tr
                    if clamped:
                        continue
                    g_a = tr * g_f - inv * (g_b + trans[p] * grad_trans[p])
                    grads[k, 5] += g_a * a / opac[k]  # da/do = exp(-sigma)
                    g_s = -g_a * a  # dL/dsigma
                    grads[k, 0] += g_s * (cxx[k] * dx + cxy[k] * dy)
                    grads[k, 1] += g_s * (cyy[k] * dy + cxy[k] * dx)
                    grads[k, 2] += g_s * 0.5 * dx * dx
                    grads[k, 3] += g_s * dx * dy
                    grads[k, 4] += g_s * 0.5 * dy * dy
