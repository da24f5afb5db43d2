"""Fitting new Gaussians to stored views: L1 + 0.2·(1 − SSIM) on each view's known pixels.

Only the newest Gaussians are trained; the older ones stay frozen (the scene built so far is
kept stable while new content is fitted around it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from dreamdance.scene.gaussians import Gaussians
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
    loss = torch.tensor(float("nan"))
    for _ in tqdm(range(cfg.steps), desc=desc, leave=False):
        v = views[int(torch.randint(len(views), (1,), generator=rng))]
        scene = g if fixed is None else Gaussians.cat([fixed, g])
        out = render(scene, v.w2c, v.K, *v.size, backend=cfg.backend)
        loss = photometric_loss(out.rgb, v.rgb, v.mask, cfg.ssim_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    log.debug("%s: last loss %.4f over %d steps", desc, float(loss.detach()), cfg.steps)
    return g.detach()
