"""The training objective: CogVideoX's v-prediction MSE, re-weighted by the inpainting mask.

CogVideoX is trained with v-prediction and a loss on the implied clean latent weighted by
``1 / (1 - ᾱ_t)``. Writing ``x̂_0 = √ᾱ·x_t − √(1−ᾱ)·v̂`` shows that this weighted loss is the plain
MSE of the velocity, ``(x̂_0 − x_0)² / (1 − ᾱ) = (v̂ − v)²``, which is what :func:`v_loss`
computes; DreamDance multiplies it by a per-position weight that is ``mask_weight`` inside the
inpainting mask and 1 outside, so the character region counts more than the background the
model mostly copies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def latent_mask(mask: torch.Tensor, frames: int, height: int, width: int,
                temporal: int = 4) -> torch.Tensor:
    """The inpainting mask at the latent grid: a latent cell is inside when any pixel it
    stands for is (max-pooling). The causal VAE's first latent frame stands for frame 0, latent
    frame ``k > 0`` for frames ``temporal·(k−1)+1 … temporal·k``.

    Args:
        mask: pixel mask in {0, 1}.  [B, F, H, W]
        frames, height, width: the latent grid F' × h × w (F = temporal·(F' − 1) + 1).

    Returns:
        [B, F', 1, h, w] in {0, 1}.
    """
    b, f, _, _ = mask.shape
    if f != temporal * (frames - 1) + 1:
        raise ValueError(f"mask: {f} frames do not map to {frames} latent frames "
                         f"(expected {temporal * (frames - 1) + 1})")
    spatial = F.adaptive_max_pool2d(mask.float(), (height, width))  # [B, F, h, w]
    first = spatial[:, :1]  # [B, 1, h, w]
    rest = spatial[:, 1:].reshape(b, frames - 1, temporal, height, width).amax(2)  # [B, F'-1, h, w]
    return torch.cat([first, rest], 1).unsqueeze(2)  # [B, F', 1, h, w]


def loss_weights(mask: torch.Tensor, inside: float) -> torch.Tensor:
    """Per-position loss weights: ``inside`` where ``mask`` is 1, 1 where it is 0.  (shape kept)"""
    if not inside > 0:
        raise ValueError(f"mask weight must be > 0, got {inside}")
    return 1 + (inside - 1) * mask


def v_loss(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean squared error, normalised by the weights' sum (a weight of 1 everywhere
    gives the plain MSE).

    Args:
        prediction, target: velocities.  [B, F', C, h, w]
        weights: broadcastable to them, e.g. from :func:`loss_weights`.  [B, F', 1, h, w]

    Returns:
        a scalar.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target "
                         f"{tuple(target.shape)} differ")
    weights = weights.expand_as(prediction).float()
    error = (prediction.float() - target.float()).square()
    return (weights * error).sum() / weights.sum()


def fill_boxes(video: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Fill the character boxes of a background video with black (the early-training schedule).

    Args:
        video: in [0, 1].  [B, F, 3, H, W]
        boxes: 1 inside a character box.  [B, F, H, W]

    Returns:
        [B, F, 3, H, W]
    """
    return video * (1 - boxes.unsqueeze(2).to(video.dtype))
