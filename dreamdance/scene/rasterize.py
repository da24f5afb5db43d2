"""Gaussian splatting rasterisation: a PyTorch renderer that matches gsplat, and a dispatcher.

:func:`rasterize` renders colour, expected depth and alpha of a set of 3D Gaussians seen by one
or more pinhole cameras. On CUDA it calls ``gsplat.rasterization``; on the CPU it runs
:func:`~dreamdance.scene.rasterize_numba.rasterize_numba` (compiled compositing kernels); with
``backend="torch"`` (any device) it runs :func:`rasterize_torch`, a differentiable PyTorch
implementation. All follow gsplat 1.5's conventions so that they give the same image:

- Cameras: ``viewmats`` are world-to-camera with OpenCV axes (x right, y down, z forward),
  ``Ks`` are in pixels, and pixel ``(x, y)`` has its centre at ``(x + 0.5, y + 0.5)``.
- Projection (gsplat's ``fully_fused_projection``): covariance ``R S S^T R^T`` from a quaternion
  (wxyz, normalised) and scales; EWA splatting with the Jacobian evaluated at the mean clamped
  to the frustum widened by ``0.3 tan(fov / 2)`` on each side (1.3 times the field of view for
  a centred principal point); a low-pass ``eps2d * I`` added to each 2D covariance.
  Gaussians with camera depth outside ``[near_plane, far_plane]``, with a singular 2D
  covariance, with opacity below 1/255, or whose bounding box misses the image are dropped.
  The box half-sizes are gsplat's opacity-aware ones,
  ``ceil(min(3.33, sqrt(2 ln(255 opacity))) * sqrt(cov2d_xx or _yy))``: every pixel where a
  Gaussian reaches alpha 1/255 lies inside its box, so the image does not depend on tiling.
- Compositing (gsplat's ``rasterize_to_pixels``, "classic" mode): front to back in order of
  camera depth ``z``; ``alpha = min(0.999, opacity * exp(-sigma))`` with
  ``sigma = 1/2 d^T conic d`` and ``d = mean2d - pixel``; a Gaussian with ``sigma < 0`` or
  ``alpha < 1/255`` is skipped; a pixel stops before the Gaussian that would bring its
  transmittance ``T`` to 1e-4 or below. ``rgb = sum(c_i a_i T_i) + T * background``,
  ``depth = sum(z_i a_i T_i) / alpha`` (0 where alpha is 0, gsplat's "RGB+ED"),
  ``alpha = 1 - T``.

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
import numbers

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor

from dreamdance.errors import InputError

BACKENDS = ("auto", "numba", "torch", "gsplat")

ALPHA_THRESHOLD = 1.0 / 255.0  # gsplat's ALPHA_THRESHOLD: fainter splats are skipped
ALPHA_MAX = 0.999  # alpha is clamped to this, so transmittance never reaches 0
T_STOP = 1e-4  # a pixel stops before the splat that would take its transmittance this low
EXTEND = 3.33  # gsplat's cap on the box half-size, in standard deviations

# Memory bounds of rasterize_torch: (pixel, Gaussian) candidate pairs enumerated at once (box
# pairs, an upper bound), and padded list entries composited at once.
PAIRS_PER_BAND = 1 << 23
SLOTS_PER_CHUNK = 1 << 22
BAND_PIXELS = 1 << 16  # pixel offsets within a band are sorted as 16-bit keys


def rasterize(
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
    backend: str = "auto",
) -> tuple[Tensor, Tensor, Tensor]:
    """Render 3D Gaussians: gsplat on CUDA, the compiled CPU rasteriser on the CPU.

    Args:
        means: Gaussian centres in world coordinates. [N, 3]
        quats: rotations as quaternions (w, x, y, z), normalised here. [N, 4]
        scales: standard deviations along the rotated axes (activated: positive). [N, 3]
        opacities: opacities in (0, 1) (activated). [N]
        colors: colours (activated). [N, 3]
        viewmats: world-to-camera matrices, OpenCV axes. [C, 4, 4]
        Ks: intrinsics in pixels. [C, 3, 3]
        width: image width in pixels.
        height: image height in pixels.
        near_plane: Gaussians with camera depth below this are dropped.
        far_plane: Gaussians with camera depth above this are dropped.
        eps2d: low-pass filter added to the diagonal of each 2D covariance, in pixels^2.
        backgrounds: colour behind the Gaussians, or None for black. [C, 3]
        tile_size: tile side in pixels (gsplat's tiles; band height unit of the PyTorch path).
            The image does not depend on it.
        backend: "auto" (gsplat when CUDA is available and the tensors are on it,
            "numba" for CPU tensors, else "torch"), "numba" (:mod:`.rasterize_numba`, CPU
            tensors), "torch" (:func:`rasterize_torch`, any device) or "gsplat" (needs CUDA).

    Returns:
        rgb: colour, background blended. [C, H, W, 3]
        depth: expected camera depth ``sum(w_i z_i) / alpha``, 0 where alpha is 0. [C, H, W, 1]
        alpha: accumulated opacity ``1 - T``. [C, H, W, 1]
    """
    if backend not in BACKENDS:
        raise InputError("backend", f"expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        backend = ("gsplat" if torch.cuda.is_available() and means.is_cuda
                   else "numba" if means.device.type == "cpu" else "torch")
    if backend == "numba":
        from dreamdance.scene.rasterize_numba import rasterize_numba

        return rasterize_numba(
            means, quats, scales, opacities, colors, viewmats, Ks, width, height,
            near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, backgrounds=backgrounds,
        )
    if backend == "torch":
        return rasterize_torch(
            means, quats, scales, opacities, colors, viewmats, Ks, width, height,
            near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, backgrounds=backgrounds,
            tile_size=tile_size,
        )
    if not torch.cuda.is_available():
        raise InputError("backend=gsplat", "gsplat needs CUDA, which is not available here; "
                         "use backend=torch or backend=auto")
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                  backgrounds, tile_size)
    if not means.is_cuda:
        raise ValueError(f"backend=gsplat: tensors must be on a CUDA device, got {means.device}")
    import gsplat  # here, not at the top: this module must import and run without CUDA

    renders, alphas, _ = gsplat.rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, backgrounds=backgrounds,
        tile_size=tile_size, render_mode="RGB+ED", packed=False, rasterize_mode="classic",
    )  # [C, H, W, 4], [C, H, W, 1]
    return renders[..., :3], renders[..., 3:4], alphas


def project_gaussians(
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
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Project 3D Gaussians to the image planes, as gsplat's ``fully_fused_projection``.

    Args: as :func:`rasterize`.

    Returns:
        means2d: projected centres in pixels. [C, N, 2]
        conics: inverse 2D covariances (xx, xy, yy), low-pass included. [C, N, 3]
        depths: camera depths z of the centres. [C, N]
        radii: box half-sizes (x, y) in pixels, 0 for a dropped Gaussian (int32). [C, N, 2]

    Dropped Gaussians get finite placeholder values so that gradients stay finite.
    """
    _check_inputs(means, quats, scales, opacities, None, viewmats, Ks, width, height, None, 1)
    R = _quat_to_rotmat(quats)  # [N, 3, 3]
    M = R * scales[:, None, :]  # [N, 3, 3]
    covars = M @ M.transpose(-1, -2)  # [N, 3, 3]
    Rv = viewmats[:, None, :3, :3]  # [C, 1, 3, 3]
    means_c = (Rv @ means[None, :, :, None])[..., 0] + viewmats[:, None, :3, 3]  # [C, N, 3]
    covars_c = Rv @ covars[None] @ Rv.transpose(-1, -2)  # [C, N, 3, 3]

    x, y, z = means_c.unbind(-1)  # [C, N]
    in_depth = (z >= near_plane) & (z <= far_plane)  # [C, N]
    z_safe = torch.where(in_depth, z, torch.ones_like(z))
    fx, fy = Ks[:, None, 0, 0], Ks[:, None, 1, 1]  # [C, 1]
    cx, cy = Ks[:, None, 0, 2], Ks[:, None, 1, 2]  # [C, 1]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy  # [C, 1]
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy
    rz = 1.0 / z_safe  # [C, N]
    tx = z_safe * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x * rz))
    ty = z_safe * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y * rz))
    zero = torch.zeros_like(rz)
    J = torch.stack(
        [fx * rz, zero, -fx * tx * rz * rz, zero, fy * rz, -fy * ty * rz * rz], dim=-1
    ).reshape(*rz.shape, 2, 3)  # [C, N, 2, 3]
    cov2d = J @ covars_c @ J.transpose(-1, -2)  # [C, N, 2, 2]
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], dim=-1)  # [C, N, 2]

    a = cov2d[..., 0, 0] + eps2d  # [C, N]
    b = 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0])
    c = cov2d[..., 1, 1] + eps2d
    det = a * c - b * b
    valid = in_depth & (det > 0) & (opacities[None] >= ALPHA_THRESHOLD)  # [C, N]
    det = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)  # [C, N, 3]

    with torch.no_grad():
        o = opacities.detach().clamp(min=ALPHA_THRESHOLD)[None]  # [1, N]
        extend = torch.sqrt(2.0 * torch.log(o / ALPHA_THRESHOLD)).clamp(max=EXTEND)
        rx = torch.ceil(extend * a.detach().clamp(min=0).sqrt())  # [C, N]
        ry = torch.ceil(extend * c.detach().clamp(min=0).sqrt())
        mx, my = means2d.detach().unbind(-1)
        inside = (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
        keep = valid & inside & ((rx > 0) | (ry > 0))
        radii = torch.where(keep[..., None], torch.stack([rx, ry], -1), 0).int()  # [C, N, 2]
    return means2d, conics, z, radii


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
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
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
        return _finish(sums.reshape(C, height, width, 4), trans.reshape(C, height, width, 1),
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
    return _finish(sums.reshape(C, height, width, 4), trans.reshape(C, height, width, 1),
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
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
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
    alphas = _splat_alpha(
        mx - x, my - y, cxx, cxy, cyy, opacities[order][:, None], valid[:, None]
    )  # [C, H * W, N]
    weights, trans = _composite(alphas)  # [C, H * W, N], [C, H * W]
    sums = weights @ features  # [C, H * W, 4]
    return _finish(sums.reshape(C, height, width, 4), trans.reshape(C, height, width, 1),
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
    alphas = _splat_alpha(mx - x, my - y, cxx, cxy, cyy, opac, mask)  # [P, K]
    weights, trans = _composite(alphas)  # [P, K], [P]
    return torch.stack([(weights * f).sum(-1) for f in feats], -1), trans


def _splat_alpha(
    dx: Tensor,  # [...] mean x - pixel centre x
    dy: Tensor,  # [...] mean y - pixel centre y
    conic_xx: Tensor,  # [...]
    conic_xy: Tensor,  # [...]
    conic_yy: Tensor,  # [...]
    opacities: Tensor,  # [...]
    mask: Tensor,  # [...] bool, False where the pair is not to be evaluated
) -> Tensor:
    """Alpha of each (pixel, Gaussian) pair; 0 where masked or below gsplat's threshold."""
    sigma = 0.5 * (conic_xx * dx * dx + conic_yy * dy * dy) + conic_xy * dx * dy
    alphas = (opacities * torch.exp(-sigma)).clamp(max=ALPHA_MAX)
    hit = mask & (sigma >= 0) & (alphas >= ALPHA_THRESHOLD)
    return torch.where(hit, alphas, torch.zeros_like(alphas))


def _composite(alphas: Tensor) -> tuple[Tensor, Tensor]:
    """Front-to-back blending weights ``a_i T_i`` and final transmittance, with the 1e-4 stop.

    Args:
        alphas: per-pixel lists of alphas, front first, 0 for skipped entries. [..., K]

    Returns:
        weights: ``a_i T_i``, 0 after the stop. [..., K]
        trans: transmittance after the last blended entry. [...]
    """
    with torch.no_grad():  # blended while the running transmittance stays above T_STOP
        blended = torch.cumprod(1.0 - alphas, dim=-1) > T_STOP
    alphas = torch.where(blended, alphas, torch.zeros_like(alphas))
    trans = torch.cumprod(1.0 - alphas, dim=-1)  # [..., K] after each entry
    before = torch.cat([torch.ones_like(trans[..., :1]), trans[..., :-1]], dim=-1)
    return alphas * before, trans[..., -1]


def _finish(
    sums: Tensor,  # [C, H, W, 4] accumulated colour and depth
    trans: Tensor,  # [C, H, W, 1]
    backgrounds: Tensor | None,  # [C, 3]
) -> tuple[Tensor, Tensor, Tensor]:
    """Background blending and depth normalisation, as gsplat's "RGB+ED" render mode."""
    rgb = sums[..., :3]
    if backgrounds is not None:
        rgb = rgb + trans * backgrounds[:, None, None, :]
    alpha = 1.0 - trans
    depth = sums[..., 3:4] / alpha.clamp(min=1e-10)
    return rgb, depth, alpha


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
    with a margin: :func:`_composite` makes the exact cut).

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

    The same sums as :func:`_composite` on the padded lists, computed on the flat pairs: the
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


def compositing_order(depths: Tensor, radii: Tensor) -> Tensor:
    """The kept (camera, Gaussian) pairs as flat indices ``camera * N + n``: cameras in order,
    front to back by camera depth within each (ties in index order). ``depths [C, N]``,
    ``radii [C, N, 2]`` (0 where dropped) -> [V] int64"""
    C, N = depths.shape
    ids = torch.nonzero((radii > 0).all(-1).flatten())[:, 0]  # [V] kept
    ids = ids[torch.sort(depths.detach().flatten()[ids], stable=True).indices]
    if C > 1:
        ids = ids[torch.sort(ids // N, stable=True).indices]
    return ids


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



def _quat_to_rotmat(quats: Tensor) -> Tensor:
    """Rotation matrices of quaternions (w, x, y, z), normalised first. [N, 4] -> [N, 3, 3]"""
    w, x, y, z = F.normalize(quats, p=2, dim=-1).unbind(-1)
    R = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    )
    return R.reshape(quats.shape[:-1] + (3, 3))


def _check_inputs(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor | None,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    backgrounds: Tensor | None,
    tile_size: int,
) -> None:
    """Raise ``ValueError`` naming the first argument with a wrong shape, type or device: these are
    the callers' contract (a bug when broken), not user input."""
    if means.ndim != 2 or means.shape[1] != 3:
        raise ValueError(f"means: expected shape [N, 3], got {list(means.shape)}")
    N = means.shape[0]
    if viewmats.ndim != 3 or viewmats.shape[1:] != (4, 4):
        raise ValueError(f"viewmats: expected shape [C, 4, 4], got {list(viewmats.shape)}")
    C = viewmats.shape[0]
    expected = {
        "quats": (quats, (N, 4)),
        "scales": (scales, (N, 3)),
        "opacities": (opacities, (N,)),
        "Ks": (Ks, (C, 3, 3)),
    }
    if colors is not None:
        expected["colors"] = (colors, (N, 3))
    if backgrounds is not None:
        expected["backgrounds"] = (backgrounds, (C, 3))
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name}: expected shape {list(shape)}, got {list(tensor.shape)}")
    tensors = {"means": means, "viewmats": viewmats, **{k: t for k, (t, _) in expected.items()}}
    for name, tensor in tensors.items():
        if not tensor.is_floating_point():
            raise ValueError(f"{name}: expected a floating-point tensor, got {tensor.dtype}")
        if tensor.dtype != means.dtype or tensor.device != means.device:
            raise ValueError(f"{name}: expected {means.dtype} on {means.device} like means, got "
                             f"{tensor.dtype} on {tensor.device}")
    for name, value in (("width", width), ("height", height), ("tile_size", tile_size)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
