"""Rendering a Gaussian field from cameras: one view, or every frame of a trajectory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from dreamdance.camera import Trajectory
from dreamdance.scene.gaussians import Gaussians
from dreamdance.scene.rasterize import rasterize


class Render(NamedTuple):
    """One camera's render: ``rgb [H, W, 3]``, expected ``depth [H, W]``, ``alpha [H, W]``."""

    rgb: torch.Tensor
    depth: torch.Tensor
    alpha: torch.Tensor


def render(g: Gaussians, w2c: torch.Tensor, K: torch.Tensor, width: int, height: int,
           background: torch.Tensor | None = None, backend: str = "auto") -> Render:
    """Render ``g`` from one camera (``w2c [4, 4]``, ``K [3, 3]``), with autograd.

    Colours are clamped to [0, 1] and the raw parameters activated here, at the render call.
    """
    assert w2c.shape == (4, 4) and K.shape == (3, 3), (w2c.shape, K.shape)
    rgb, depth, alpha = rasterize(
        g.means, g.quats, g.scales, g.opacities, g.colors.clamp(0, 1),
        w2c[None].to(g.means), K[None].to(g.means), width, height,
        backgrounds=None if background is None else background[None].to(g.means),
        backend=backend)
    return Render(rgb[0], depth[0, ..., 0], alpha[0, ..., 0])


def render_trajectory(g: Gaussians, traj: Trajectory, width: int | None = None,
                      height: int | None = None, desc: str = "render",
                      backend: str = "auto") -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Render every camera of ``traj`` (optionally at another size, K rescaled); yields numpy
    ``(rgb [H, W, 3] float32, depth [H, W], alpha [H, W])`` per frame, with a progress bar."""
    from dreamdance.camera import rescale_intrinsics

    if width is not None and height is not None:
        traj = rescale_intrinsics(traj, width, height)
    w2c = torch.as_tensor(traj.w2c, dtype=torch.float32)
    K = torch.as_tensor(traj.K, dtype=torch.float32)
    with torch.no_grad():
        for i in tqdm(range(len(traj)), desc=desc, leave=False):
            r = render(g, w2c[i], K[i], traj.width, traj.height, backend=backend)
            yield r.rgb.cpu().numpy(), r.depth.cpu().numpy(), r.alpha.cpu().numpy()
