"""The PyTorch rasteriser (``backend="torch"``, any device, differentiable) and its dense
reference twin; conventions as :mod:`dreamdance.scene.rasterize`.

:func:`rasterize_torch` bins each Gaussian into the pixels it reaches rather than into tiles:
a pass without autograd enumerates, row by row of its box, the span of pixels inside the
ellipse where its alpha reaches 1/255, sorts these (pixel, Gaussian) pairs by pixel keeping
depth order, and drops pairs behind a pixel's transmittance stop. The differentiable pass then
composites each pixel's list, padded to the longest list of a chunk of pixels. Work and memory
scale with the number of contributing pairs, not with pixels times Gaussians or with tiles
times their lists: the image is enumerated in bands of tile rows holding a bounded number of
pairs, and several composited chunks are recomputed in the backward pass rather than stored.
Without autograd (no input requires a gradient) each band's pairs are composited as soon as
they are enumerated, on the flat sorted pairs, and nothing is kept: the renders of the
background video, the warps and the candidate ranking take this path.
:func:`rasterize_dense` is its reference twin: every Gaussian against every pixel, small
scenes only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor

from dreamdance.scene.rasterize import (
    ALPHA_MAX,
    ALPHA_THRESHOLD,
    T_STOP,
    check_inputs,
    composite,
    compositing_order,
    finish,
    project_gaussians,
    splat_alpha,
)

# Memory bounds of rasterize_torch: (pixel, Gaussian) candidate pairs enumerated at once (box
# pairs, an upper bound), and padded list entries composited at once.
PAIRS_PER_BAND = 1 << 23
SLOTS_PER_CHUNK = 1 << 22
BAND_PIXELS = 1 << 16  # pixel offsets within a band are sorted as 16-bit keys


def rasterize_torch(
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
    tile_size: int = 16,
) -> tuple[Tensor, Tensor, Tensor]:
    """The PyTorch rasteriser: per-pixel lists of contributing Gaussians, differentiable.

    Args and returns: as :func:`rasterize`; ``tile_size`` is the height unit of the bands the
    image is enumerated in. Gradients flow to every tensor argument (viewmats and Ks too).
    """
    check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                  backgrounds, tile_size)
    C, N = viewmats.shape[0], means.shape[0]
    means2d, conics, depths, radii = project_gaussians(
        means, quats, scales, opacities, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d,
    )
    # per (camera, Gaussian), flat index camera * N + n: mean x, y, conic xx, xy, yy, opacity,
    # then the composited features r, g, b, z. 10 x [C * N]
    params = [
        *means2d.reshape(C * N, 2).unbind(-1),
        *conics.reshape(C * N, 3).unbind(-1),
        opacities.repeat(C),
        *colors.repeat(C, 1).unbind(-1),
        depths.reshape(C * N),
    ]
    if not (torch.is_grad_enabled() and any(p.requires_grad for p in params)):
        # forward only: composite each band's pairs as they are enumerated
        sums, trans = _composite_bands(params[:6], torch.stack(params[6:], -1), depths, radii,
                                       width, height, tile_size)  # [C * H * W, 4], [C * H * W]
        return finish(sums.reshape(C, height, width, 4), trans.reshape(C, height, width, 1),
                       backgrounds)
    pixels, gids = _contributing_pairs(
        [p.detach() for p in params[:6]], depths.detach(), radii, width, height, tile_size
    )  # [Q], [Q]: grouped by pixel, front to back within a pixel

    chunks = list(_padded_chunks(pixels, gids))  # [P], [P, K], [P, K] each
    # several chunks under autograd: recompute each in the backward pass to bound memory
    recompute = len(chunks) > 1 and torch.is_grad_enabled() and any(
        p.requires_grad for p in params)
    out_pixels, out_sums, out_trans = [], [], []
    for pix, index, mask in chunks:
        if recompute:
            sums, trans = torch.utils.checkpoint.checkpoint(
                _render_chunk, pix, index, mask, width, height, *params, use_reentrant=False
            )
        else:
            sums, trans = _render_chunk(pix, index, mask, width, height, *params)
        out_pixels.append(pix)
        out_sums.append(sums)
        out_trans.append(trans)

    n_pixels = C * height * width
    pix = torch.cat(out_pixels)
    sums = means.new_zeros(n_pixels, 4).index_copy(0, pix, torch.cat(out_sums))
    trans = means.new_ones(n_pixels).index_copy(0, pix, torch.cat(out_trans))
    return finish(sums.reshape(C, height, width, 4), trans.reshape(C, height, width, 1),
                   backgrounds)


def contributing_pairs(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    tile_size: int = 16,
) -> tuple[Tensor, Tensor]:
    """The (pixel, Gaussian) pairs :func:`rasterize_torch` composites (alpha >= 1/255, before
    each pixel's transmittance stop, with a small margin): how deep a scene is.

    Args: as :func:`rasterize`.

    Returns:
        pixels: flat pixel index ``(camera * H + y) * W + x``, grouped by pixel. [Q] int64
        gaussians: flat index ``camera * N + n``, front to back within a pixel. [Q] int64
    """
    with torch.no_grad():
        means2d, conics, depths, radii = project_gaussians(
            means, quats, scales, opacities, viewmats, Ks, width, height,
            near_plane=near_plane, far_plane=far_plane, eps2d=eps2d)
        C, N = depths.shape
        params = [*means2d.reshape(C * N, 2).unbind(-1), *conics.reshape(C * N, 3).unbind(-1),
                  opacities.repeat(C)]
        return _contributing_pairs(params, depths, radii, width, height, tile_size)


def rasterize_dense(
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
    """Reference twin of :func:`rasterize_torch`: every Gaussian against every pixel.

    Memory is O(C * H * W * N): for tests and small scenes. Args and returns: as
    :func:`rasterize`.
    """
    check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                  backgrounds, 1)
    C, N = viewmats.shape[0], means.shape[0]
    means2d, conics, depths, radii = project_gaussians(
        means, quats, scales, opacities, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d,
    )
    valid = (radii > 0).all(-1)  # [C, N]
    # front to back: stable sort by depth (ties in index order), dropped Gaussians last
    key = torch.where(valid, depths.detach(), torch.full_like(depths, math.inf))
    order = torch.sort(key, dim=1, stable=True).indices  # [C, N]
    means2d = means2d.gather(1, order[..., None].expand(C, N, 2))
    conics = conics.gather(1, order[..., None].expand(C, N, 3))
    features = torch.cat([colors[order], depths.gather(1, order)[..., None]], -1)  # [C, N, 4]
    valid = valid.gather(1, order)

    ys, xs = torch.meshgrid(
        torch.arange(height, device=means.device), torch.arange(width, device=means.device),
        indexing="ij",
    )
    x = xs.reshape(1, height * width, 1).to(means.dtype) + 0.5  # [1, H * W, 1] pixel centres
    y = ys.reshape(1, height * width, 1).to(means.dtype) + 0.5
    mx, my = means2d[:, None, :, 0], means2d[:, None, :, 1]  # [C, 1, N]
    cxx, cxy, cyy = conics[:, None].unbind(-1)  # [C, 1, N]
    alphas = splat_alpha(
        mx - x, my - y, cxx, cxy, cyy, opacities[order][:, None], valid[:, None]
    )  # [C, H * W, N]
    weights, trans = composite(alphas)  # [C, H * W, N], [C, H * W]
    sums = weights @ features  # [C, H * W, 4]
    return finish(sums.reshape(C, height, width, 4), trans.reshape(C, height, width, 1),
                   backgrounds)


def _render_chunk(
    pix: Tensor,  # [P] flat pixel index
    index: Tensor,  # [P, K] flat (camera, Gaussian) index of each list entry
    mask: Tensor,  # [P, K] True on real entries
    width: int,
    height: int,
    *params: Tensor,  # 10 x [C * N]: mean x, y, conic xx, xy, yy, opacity, r, g, b, z
) -> tuple[Tensor, Tensor]:
    """Composite the per-pixel lists of one chunk: colour and depth sums [P, 4], T [P]."""
    P, K = index.shape
    flat = index.reshape(-1)
    mx, my, cxx, cxy, cyy, opac, *feats = (p.index_select(0, flat).view(P, K) for p in params)
    x = (pix % width).to(mx.dtype)[:, None] + 0.5  # [P, 1] pixel centres
    y = ((pix // width) % height).to(mx.dtype)[:, None] + 0.5
    alphas = splat_alpha(mx - x, my - y, cxx, cxy, cyy, opac, mask)  # [P, K]
    weights, trans = composite(alphas)  # [P, K], [P]
    return torch.stack([(weights * f).sum(-1) for f in feats], -1), trans


@torch.no_grad()
def _contributing_pairs(
    params: list[Tensor],  # 6 x [C * N]: mean x, y, conic xx, xy, yy, opacity
    depths: Tensor,  # [C, N]
    radii: Tensor,  # [C, N, 2]
    width: int,
    height: int,
    tile_size: int,
) -> tuple[Tensor, Tensor]:
    """The (pixel, Gaussian) pairs that are blended, front to back within each pixel.

    The pairs of :func:`_band_pairs`, less those behind a pixel's transmittance stop (dropped
    with a margin: :func:`composite` makes the exact cut).

    Returns:
        pixels: flat pixel index ``(camera * H + y) * W + x``, grouped by pixel. [Q] int64
        gaussians: flat index ``camera * N + n`` into ``params``. [Q] int64
    """
    cut = math.log(T_STOP) - 1e-3  # log-transmittance below which pairs are dropped (margin)
    pixels, gaussians = [], []
    for start, n, local, gid, alphas in _band_pairs(params, depths, radii, width, height,
                                                     tile_size):
        log_1m = torch.log1p(-alphas)  # [M] log(1 - alpha)
        if torch.bincount(local, weights=log_1m, minlength=n).min() <= cut:
            # some pixel reaches the stop: drop the pairs behind it
            log_t = _log_transmittance(local, log_1m, n)
            kept = torch.nonzero(log_t > cut)[:, 0]
            local, gid = local.index_select(0, kept), gid.index_select(0, kept)
        pixels.append(local + start)
        gaussians.append(gid)
    if not pixels:
        empty = torch.zeros(0, dtype=torch.long, device=depths.device)
        return empty, empty
    return torch.cat(pixels), torch.cat(gaussians)


@torch.no_grad()
def _composite_bands(
    params: list[Tensor],  # 6 x [C * N]: mean x, y, conic xx, xy, yy, opacity
    features: Tensor,  # [C * N, F] composited features (r, g, b, z)
    depths: Tensor,  # [C, N]
    radii: Tensor,  # [C, N, 2]
    width: int,
    height: int,
    tile_size: int,
) -> tuple[Tensor, Tensor]:
    """Forward-only compositing of the pairs of :func:`_band_pairs`, band by band.

    The same sums as :func:`composite` on the padded lists, computed on the flat pairs: the
    transmittance before each pair is ``exp`` of the within-pixel running sum of
    ``log(1 - alpha)`` (in float64), a pair is blended while the transmittance after it
    stays above ``T_STOP``, and ``1 - T`` is the sum of the weights ``a_i T_i``. Nothing is
    kept for a backward pass.

    Returns:
        sums: ``sum(w_i f_i)`` per flat pixel. [C * H * W, F]
        trans: transmittance per flat pixel. [C * H * W]
    """
    C, _ = depths.shape
    n_pixels = C * height * width
    features = F.pad(features, (0, 1), value=1.0)  # [C * N, F + 1]: the last sums the weights
    sums = features.new_zeros(n_pixels, features.shape[1])
    cut = math.log(T_STOP)
    for start, n, local, gid, alphas in _band_pairs(params, depths, radii, width, height,
                                                     tile_size):
        log_1m = torch.log1p(-alphas)  # [M] log(1 - alpha)
        log_t = _log_transmittance(local, log_1m, n)  # [M] after each pair, float64
        weights = alphas * torch.exp(log_t - log_1m).to(alphas.dtype)  # a_i T_i
        weights = torch.where(log_t > cut, weights, 0.0)  # blended before the stop
        sums[start:start + n].index_add_(0, local, features.index_select(0, gid) * weights[:, None])
    # 1 - T = sum(a_i T_i): no cancellation where little is covered
    return sums[:, :-1], 1.0 - sums[:, -1]


def _log_transmittance(local: Tensor, log_1m: Tensor, n: int) -> Tensor:
    """Log-transmittance after each pair, within its pixel (float64).

    Args:
        local: pixel of each pair, grouped by pixel, in ``[0, n)``. [M] int64
        log_1m: ``log(1 - alpha)`` of each pair, front to back within a pixel. [M]
    """
    total = torch.cumsum(log_1m, 0, dtype=torch.float64)  # [M] running over the band
    starts = torch.searchsorted(local, torch.arange(n, device=local.device))  # [n]
    before = torch.cat([total.new_zeros(1), total]).index_select(0, starts)  # [n]
    return total - before.index_select(0, local)


@torch.no_grad()
def _band_pairs(
    params: list[Tensor],  # 6 x [C * N]: mean x, y, conic xx, xy, yy, opacity
    depths: Tensor,  # [C, N]
    radii: Tensor,  # [C, N, 2]
    width: int,
    height: int,
    tile_size: int,
):
    """The (pixel, Gaussian) pairs with alpha >= 1/255, band by band.

    Each Gaussian is binned into the pixels of each row of its box where it reaches alpha
    1/255 (an exact span of its ellipse, widened by a rounding margin). The C images are
    stacked into ``C * H`` rows and handled in bands of whole tile rows that hold at most
    ``PAIRS_PER_BAND`` box pairs and ``BAND_PIXELS`` pixels; a tile row over the pair budget
    is split into single rows.

    Yields per band:
        start: flat pixel index ``(camera * H + y) * W + x`` of the band's first pixel.
        n: pixels in the band.
        local: pixel of each pair less ``start``, grouped by pixel. [M] int64
        gaussians: flat index ``camera * N + n`` into ``params``, front to back within a
            pixel. [M] int64
        alphas: ``min(0.999, opacity exp(-sigma))`` of each pair (0 below 1/255). [M]
    """
    C, N = depths.shape
    device = depths.device
    ids = compositing_order(depths, radii)  # [V]
    mx, my, cxx, cxy, cyy, opac = (p.index_select(0, ids) for p in params)  # [V]
    # the ellipse where alpha >= 1/255: sigma <= level, plus a margin for rounding
    level = torch.log(opac / ALPHA_THRESHOLD) + 1e-3
    ry = radii.reshape(-1, 2)[ids, 1].to(my.dtype)
    row0 = (ids // N) * height  # first stacked row of the Gaussian's camera
    y0 = torch.ceil(my - ry - 0.5).clamp(min=0).long() + row0  # box rows, stacked
    y1 = torch.floor(my + ry - 0.5).clamp(max=height - 1).long() + row0
    box_w = 2 * radii.reshape(-1, 2)[ids, 0].long() + 1  # bounds the pairs of each row

    # box pairs per stacked row, grouped into bands of tile rows (of rows if a tile row is
    # over the budget); a band never spans two cameras
    n_rows = C * height
    diff = torch.zeros(n_rows + 1, dtype=torch.long, device=device)
    diff.index_add_(0, y0.clamp(max=n_rows), box_w)
    diff.index_add_(0, (y1 + 1).clamp(min=0, max=n_rows), -box_w)
    per_row = torch.cumsum(diff[:-1], 0).tolist()  # [C * H]
    units = []  # (first row, end row, box pairs)
    for s in (s for cam in range(C) for s in range(cam * height, (cam + 1) * height, tile_size)):
        e = min(s + tile_size, (s // height + 1) * height)
        n = sum(per_row[s:e])
        if n > PAIRS_PER_BAND:
            units.extend((r, r + 1, per_row[r]) for r in range(s, e))
        else:
            units.append((s, e, n))
    bounds, pairs = [0], 0
    for s, e, n in units:
        too_big = pairs + n > PAIRS_PER_BAND or (e - bounds[-1]) * width > BAND_PIXELS
        if s > bounds[-1] and (too_big or s % height == 0):
            bounds.append(s)
            pairs = 0
        pairs += n
    bounds.append(n_rows)

    for r0, r1 in zip(bounds[:-1], bounds[1:], strict=True):
        sel = torch.nonzero((y0 < r1) & (y1 >= r0))[:, 0]  # [B] front to back
        if sel.numel() == 0:
            continue
        # rows of each Gaussian inside the band
        first = y0[sel].clamp(min=r0)
        n_rows_g = (y1[sel].clamp(max=r1 - 1) - first + 1).clamp(min=0)  # [B]
        owner = _repeat_arange(n_rows_g)  # [R] one entry per (Gaussian, row)
        g = sel.index_select(0, owner)  # index into the [V] arrays
        row = torch.arange(owner.numel(), device=device) + (first - _starts(n_rows_g)).index_select(
            0, owner)  # stacked row
        mx_r, my_r, a, b, c, level_r = (
            v.index_select(0, g) for v in (mx, my, cxx, cxy, cyy, level)
        )
        dy = my_r - ((row - row0.index_select(0, g)).to(my.dtype) + 0.5)  # [R]
        # sigma(dx) = a/2 dx^2 + b dy dx + c/2 dy^2 <= level, solved for dx = mean x - pixel x
        disc = 2 * a * level_r - (a * c - b * b) * dy * dy
        centre = mx_r + b * dy / a
        half = torch.sqrt(disc.clamp(min=0)) / a
        x0 = torch.ceil(centre - half - 0.5).clamp(min=0).long()
        x1 = torch.floor(centre + half - 0.5).clamp(max=width - 1).long()
        count = torch.where(disc >= 0, (x1 - x0 + 1).clamp(min=0), 0)  # [R]
        if int(count.sum()) == 0:
            continue

        # pairs: pixel offset in the band, Gaussian, and alpha
        owner = _repeat_arange(count)  # [M] row of each pair, Gaussian-major, front to back
        step = torch.arange(owner.numel(), device=device) - _starts(count).index_select(0, owner)
        key = ((row - r0) * width + x0).index_select(0, owner) + step  # [M]
        dx = (mx_r - x0.to(mx.dtype) - 0.5).index_select(0, owner) - step.to(mx.dtype)
        sigma = ((0.5 * a).index_select(0, owner) * dx + (b * dy).index_select(0, owner)) * dx
        sigma = sigma + (0.5 * c * dy * dy).index_select(0, owner)
        alphas = (opac.index_select(0, g).index_select(0, owner) * torch.exp(-sigma))
        alphas = torch.where(alphas >= ALPHA_THRESHOLD, alphas.clamp(max=ALPHA_MAX), 0.0)
        gid = ids.index_select(0, g).index_select(0, owner)

        # group by pixel, keeping depth order within a pixel (stable sort)
        n = (r1 - r0) * width
        small, offset = _small_key(key, n)
        small, order = torch.sort(small, stable=True)
        yield (r0 * width, n, small.long() + offset, gid.index_select(0, order),
               alphas.index_select(0, order))


def _starts(counts: Tensor) -> Tensor:
    """Exclusive cumulative sum: where each run of ``counts`` starts. [B] -> [B]"""
    return torch.cumsum(counts, 0) - counts


def _repeat_arange(counts: Tensor) -> Tensor:
    """``repeat_interleave(arange(B), counts)`` (counts >= 0), via a cumulative sum. [B] -> [M]"""
    ends = torch.cumsum(counts, 0)
    marks = torch.zeros(int(ends[-1]) + 1, dtype=torch.long, device=counts.device)
    marks.index_add_(0, ends, torch.ones_like(ends))
    return torch.cumsum(marks[:-1], 0)


def _small_key(key: Tensor, n: int) -> tuple[Tensor, int]:
    """Keys in [0, n) as ``key - offset`` in the narrowest integer type (sorts faster)."""
    if n <= min(BAND_PIXELS, 1 << 16):
        return (key - (1 << 15)).to(torch.int16), 1 << 15
    return key.to(torch.int32 if n <= 1 << 31 else torch.int64), 0


@torch.no_grad()
def _padded_chunks(pixels: Tensor, gaussians: Tensor):
    """Yield per-pixel lists padded to a common length, in chunks of bounded size.

    Args:
        pixels: flat pixel index of each pair, grouped by pixel. [Q]
        gaussians: Gaussian of each pair. [Q]

    Yields:
        pix: pixel indices of the chunk. [P]
        index: Gaussian of each list entry (0 in padding). [P, K]
        mask: True on real entries. [P, K]
    """
    if pixels.numel() == 0:  # one empty chunk keeps the outputs on the autograd graph
        empty = torch.zeros(0, 1, dtype=torch.long, device=pixels.device)
        yield pixels, empty, empty.bool()
        return
    pix, counts = torch.unique_consecutive(pixels, return_counts=True)  # [A]
    starts = _starts(counts)
    order = torch.sort(counts, descending=True, stable=True).indices  # longest lists first
    pix, counts, starts = pix[order], counts[order], starts[order]
    counts_list = counts.tolist()
    i = 0
    while i < len(counts_list):
        k = counts_list[i]
        j = min(len(counts_list), i + max(1, SLOTS_PER_CHUNK // k))
        slot = torch.arange(k, device=pixels.device)  # [K]
        mask = slot[None] < counts[i:j, None]  # [P, K]
        pos = torch.where(mask, starts[i:j, None] + slot[None], 0)
        yield pix[i:j], gaussians.index_select(0, pos.reshape(-1)).view(pos.shape), mask
        i = j
