"""Fitting new Gaussians to stored views: L1 + 0.2·(1 − SSIM) on each view's known pixels.

Only the newest Gaussians are trained; the older ones stay frozen (the scene built so far is
kept stable while new content is fitted around it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dreamdance.scene.gaussians import Gaussians
from dreamdance.scene.rasterize import project_gaussians
from dreamdance.scene.render import render

log = logging.getLogger(__name__)


@dataclass
class View:
    """A stored view to fit: ``rgb [H, W, 3]`` in [0, 1], ``mask [H, W]`` bool (the pixels that
    count), ``w2c [4, 4]``, ``K [3, 3]`` (all float32 tensors except the mask)."""

    rgb: torch.Tensor
    mask: torch.Tensor
    w2c: torch.Tensor
    K: torch.Tensor

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return self.rgb.shape[1], self.rgb.shape[0]


@dataclass
class FitConfig:
    """Adam learning rates per raw parameter (3DGS-like), steps and the loss weights."""

    steps: int = 30
    lr_means: float = 1.6e-4   # times the scene extent
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_colors: float = 2.5e-3
    ssim_weight: float = 0.2
    extent: float = 1.0
    seed: int = 0
    backend: str = "auto"


def photometric_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                     ssim_weight: float = 0.2) -> torch.Tensor:
    """``L1 + ssim_weight·(1 − SSIM)`` averaged over ``mask``.

    Args:
        pred, target: [H, W, 3] in [0, 1].
        mask: [H, W] bool, the pixels that count.
    """
    assert pred.shape == target.shape and pred.shape[:2] == mask.shape, (pred.shape, mask.shape)
    m = mask.to(pred.dtype)[..., None]
    denom = m.sum().clamp_min(1.0)
    l1 = ((pred - target).abs() * m).sum() / (3 * denom)
    if ssim_weight == 0:
        return l1
    from torchmetrics.functional.image import structural_similarity_index_measure

    _, ssim_map = structural_similarity_index_measure(
        pred.permute(2, 0, 1)[None], target.permute(2, 0, 1)[None], data_range=1.0,
        return_full_image=True)
    ssim = (ssim_map[0].permute(1, 2, 0) * m).sum() / (3 * denom)
    return l1 + ssim_weight * (1 - ssim)


def fit(frozen: Gaussians | None, trainable: Gaussians, views: list[View],
        cfg: FitConfig | None = None, desc: str = "fit") -> Gaussians:
    """Optimise ``trainable`` (with ``frozen`` rendered alongside, unchanged) on random views.

    With frozen Gaussians, each step renders only what the trainable ones can change: the
    pixels inside their footprints (:func:`footprints`) are rendered from the trainable
    Gaussians and the frozen ones whose footprints reach those pixels; every other pixel is
    the view's frozen-only render, made once (without autograd). A pixel's colour depends only
    on the Gaussians whose footprints hold it, so the image, the loss and the gradients are
    those of rendering everything.

    Returns the trained Gaussians, detached. The last loss is logged.
    """
    cfg = cfg or FitConfig()
    if cfg.steps <= 0 or len(trainable) == 0 or not views:
        return trainable.detach()
    g = trainable.detach().requires_grad_(True)
    opt = torch.optim.Adam([
        {"params": [g.means], "lr": cfg.lr_means * cfg.extent},
        {"params": [g.log_scales], "lr": cfg.lr_scales},
        {"params": [g.quats], "lr": cfg.lr_quats},
        {"params": [g.logit_opacities], "lr": cfg.lr_opacities},
        {"params": [g.colors], "lr": cfg.lr_colors},
    ], eps=1e-15)
    rng = torch.Generator().manual_seed(cfg.seed)
    fixed = frozen.detach() if frozen is not None and len(frozen) else None
    backdrops: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # view -> frozen-only render
    loss = torch.tensor(float("nan"))
    for _ in tqdm(range(cfg.steps), desc=desc, leave=False):
        j = int(torch.randint(len(views), (1,), generator=rng))
        v = views[j]
        if fixed is None:
            rgb = render(g, v.w2c, v.K, *v.size, backend=cfg.backend).rgb
        else:
            if j not in backdrops:
                with torch.no_grad():
                    backdrops[j] = (render(fixed, v.w2c, v.K, *v.size, backend=cfg.backend).rgb,
                                    footprints(fixed, v.w2c, v.K, *v.size))
            rgb = _render_over(fixed, g, v, *backdrops[j], cfg.backend)
        loss = photometric_loss(rgb, v.rgb, v.mask, cfg.ssim_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    log.debug("%s: last loss %.4f over %d steps", desc, float(loss.detach()), cfg.steps)
    return g.detach()


def footprints(g: Gaussians, w2c: torch.Tensor, K: torch.Tensor, width: int,
               height: int) -> torch.Tensor:
    """Pixel boxes ``(x0, y0, x1, y1)`` (inclusive) that hold every pixel where each Gaussian
    reaches alpha 1/255 in this camera (the rasteriser's boxes); ``x1 < x0`` for a Gaussian
    that is dropped or off the image. [N, 4] int64"""
    with torch.no_grad():
        means2d, _, _, radii = project_gaussians(
            g.means, g.quats, g.scales, g.opacities, w2c[None].to(g.means),
            K[None].to(g.means), width, height)
        (mx, my), (rx, ry) = means2d[0].unbind(-1), radii[0].to(means2d.dtype).unbind(-1)
        boxes = torch.stack([torch.ceil(mx - rx - 0.5).clamp(min=0),
                             torch.ceil(my - ry - 0.5).clamp(min=0),
                             torch.floor(mx + rx - 0.5).clamp(max=width - 1),
                             torch.floor(my + ry - 0.5).clamp(max=height - 1)], -1).long()
        kept = (radii[0] > 0).all(-1) & (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])
        return torch.where(kept[:, None], boxes, boxes.new_tensor([0, 0, -1, -1]))


def _render_over(fixed: Gaussians, g: Gaussians, v: View, backdrop: torch.Tensor,
                 fixed_boxes: torch.Tensor, backend: str) -> torch.Tensor:
    """``render(cat([fixed, g]))``'s colour, rendering only the pixels ``g`` reaches (with the
    frozen Gaussians that reach them); elsewhere ``backdrop``, the frozen-only render. [H, W, 3]"""
    width, height = v.size
    region = _box_union(footprints(g, v.w2c, v.K, width, height), width, height)  # [H, W]
    sat = F.pad(region.long().cumsum(0).cumsum(1), (1, 0, 1, 0))  # [H + 1, W + 1]
    x0, y0, x1, y1 = fixed_boxes.unbind(-1)
    x1, y1 = torch.maximum(x1, x0 - 1) + 1, torch.maximum(y1, y0 - 1) + 1  # exclusive ends
    reach = (sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]) > 0  # [N_fixed]
    out = render(Gaussians.cat([fixed.subset(reach), g]), v.w2c, v.K, width, height,
                 backend=backend)
    return torch.where(region[..., None], out.rgb, backdrop)


def _box_union(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The pixels inside any of the inclusive ``boxes [N, 4]`` (empty where ``x1 < x0``).
    [H, W] bool"""
    boxes = boxes[(boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])]
    x0, y0, x1, y1 = boxes.unbind(-1)
    diff = torch.zeros(height + 1, width + 1, dtype=torch.long, device=boxes.device)
    for ys, xs, sign in ((y0, x0, 1), (y0, x1 + 1, -1), (y1 + 1, x0, -1), (y1 + 1, x1 + 1, 1)):
        diff.index_put_((ys, xs), torch.full_like(ys, sign), accumulate=True)
    return diff.cumsum(0).cumsum(1)[:height, :width] > 0
