"""Gaussian splatting rasterisation: a PyTorch renderer that matches gsplat, and a dispatcher.

:func:`rasterize` renders colour, expected depth and alpha of a set of 3D Gaussians seen by one
or more pinhole cameras. On CUDA it calls ``gsplat.rasterization``; on the CPU it runs
:func:`~dreamdance.scene.rasterize_numba.rasterize_numba` (compiled compositing kernels); with
``backend="torch"`` (any device) it runs
:func:`~dreamdance.scene.rasterize_torch.rasterize_torch`, a differentiable PyTorch
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
"""

from __future__ import annotations

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
            tensors), "torch" (:mod:`.rasterize_torch`, any device) or "gsplat" (needs CUDA).

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
    args = (means, quats, scales, opacities, colors, viewmats, Ks, width, height)
    options = dict(near_plane=near_plane, far_plane=far_plane, eps2d=eps2d,
                   backgrounds=backgrounds)
    if backend == "numba":
        from dreamdance.scene.rasterize_numba import rasterize_numba

        return rasterize_numba(*args, **options)
    if backend == "torch":
        from dreamdance.scene.rasterize_torch import rasterize_torch

        return rasterize_torch(*args, **options, tile_size=tile_size)
    if not torch.cuda.is_available():
        raise InputError("backend=gsplat", "gsplat needs CUDA, which is not available here; "
                         "use backend=torch or backend=auto")
    check_inputs(*args, backgrounds, tile_size)
    if not means.is_cuda:
        raise ValueError(f"backend=gsplat: tensors must be on a CUDA device, got {means.device}")
    import gsplat  # here, not at the top: this module must import and run without CUDA

    renders, alphas, _ = gsplat.rasterization(
        *args, **options, tile_size=tile_size, render_mode="RGB+ED", packed=False,
        rasterize_mode="classic",
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
    check_inputs(means, quats, scales, opacities, None, viewmats, Ks, width, height, None, 1)
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


def splat_alpha(
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


def composite(alphas: Tensor) -> tuple[Tensor, Tensor]:
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


def finish(
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


def check_inputs(
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
