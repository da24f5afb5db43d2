"""Per-frame image metrics: PSNR, SSIM and L1, on the whole frame or on a foreground mask.

Frames are float ``[N, 3, H, W]`` in [0, 1] (data range 1). Each function returns one value
per frame; callers average over frames and videos.

- **L1**: mean absolute difference over pixels and channels.
- **PSNR**: ``10·log10(1 / MSE)``; the MSE is floored at ``1e-10``, so identical frames give
  100 dB instead of infinity.
- **SSIM** (Wang et al. 2004, as scikit-image's ``structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=1)``): 11×11 Gaussian window (σ = 1.5),
  K1 = 0.01, K2 = 0.03, the SSIM map of each channel averaged over channels, and the mean taken
  over the map without its 5-pixel border (where the window would leave the image).

**Foreground variant** (``mask`` given, ``[N, 1, H, W]``, a pixel is foreground where the mask
is > 0.5): L1 and PSNR's MSE are averaged over foreground pixels only; SSIM is the same map
averaged over the foreground pixels inside the border. A frame with no foreground pixel gives
NaN (callers skip it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SSIM_SIGMA = 1.5
SSIM_RADIUS = int(3.5 * SSIM_SIGMA + 0.5)  # scipy's truncate=3.5 -> an 11-tap window
PSNR_MSE_FLOOR = 1e-10


def check_frames(pred: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None = None) -> None:
    """Raise ``ValueError`` unless ``pred``/``ref`` are matching ``[N, 3, H, W]`` floats and
    ``mask`` is None or ``[N, 1, H, W]``."""
    if pred.ndim != 4 or pred.shape[1] != 3 or not pred.is_floating_point():
        raise ValueError(f"pred must be float [N, 3, H, W], got {pred.dtype} {tuple(pred.shape)}")
    if ref.shape != pred.shape or ref.dtype != pred.dtype:
        raise ValueError(f"ref must match pred {pred.dtype} {tuple(pred.shape)}, "
                         f"got {ref.dtype} {tuple(ref.shape)}")
    if mask is not None and mask.shape != (pred.shape[0], 1, *pred.shape[2:]):
        raise ValueError(f"mask must be [N, 1, H, W] = {[pred.shape[0], 1, *pred.shape[2:]]}, "
                         f"got {list(mask.shape)}")


def foreground(mask: torch.Tensor) -> torch.Tensor:
    """Binary float foreground (mask > 0.5). Args: mask: [N, 1, H, W]. Returns [N, 1, H, W]."""
    return (mask > 0.5).to(torch.float64)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-frame mean of ``values`` over pixels (and channels), weighted by a binary mask.

    Args:
        values: per-pixel values. [N, C, H, W]
        mask: binary weights or None (all pixels). [N, 1, H, W]

    Returns:
        float64 per-frame means, NaN where the mask is empty. [N]
    """
    values = values.to(torch.float64)
    if mask is None:
        return values.mean(dim=(1, 2, 3))
    weight = mask.expand_as(values)
    total = weight.sum(dim=(1, 2, 3))
    return (values * weight).sum(dim=(1, 2, 3)) / total.where(total > 0, torch.nan)


def l1(pred: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error per frame.

    Args:
        pred: predicted frames in [0, 1]. [N, 3, H, W]
        ref: reference frames in [0, 1]. [N, 3, H, W]
        mask: foreground mask or None. [N, 1, H, W]

    Returns:
        float64 per-frame L1. [N]
    """
    check_frames(pred, ref, mask)
    fg = None if mask is None else foreground(mask)
    return masked_mean((pred - ref).abs(), fg)


def psnr(pred: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio per frame, in dB (data range 1); arguments as :func:`l1`.

    Returns:
        float64 per-frame PSNR. [N]
    """
    check_frames(pred, ref, mask)
    fg = None if mask is None else foreground(mask)
    mse = masked_mean((pred.double() - ref.double()) ** 2, fg)
    return 10 * torch.log10(1 / mse.clamp(min=PSNR_MSE_FLOOR))


def gaussian_window(sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS) -> torch.Tensor:
    """Normalised 1-D Gaussian taps. Returns float64 [2 * radius + 1]."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def ssim_map(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """SSIM map averaged over channels, on the window-valid interior.

    Args:
        pred: predicted frames in [0, 1], H, W >= 11. [N, 3, H, W]
        ref: reference frames in [0, 1]. [N, 3, H, W]

    Returns:
        float64 map. [N, 1, H - 10, W - 10]
    """
    check_frames(pred, ref)
    r = SSIM_RADIUS
    if min(pred.shape[2:]) < 2 * r + 1:
        raise ValueError(f"SSIM needs frames of at least {2 * r + 1}x{2 * r + 1}, "
                         f"got {pred.shape[3]}x{pred.shape[2]}")
    x, y = pred.double(), ref.double()
    n, c, h, w = x.shape
    g = gaussian_window().to(x.device)

    def blur(z: torch.Tensor) -> torch.Tensor:  # separable valid filter per channel
        z = z.reshape(n * c, 1, h, w)
        z = F.conv2d(z, g.view(1, 1, -1, 1))
        z = F.conv2d(z, g.view(1, 1, 1, -1))
        return z.reshape(n, c, h - 2 * r, w - 2 * r)

    mx, my = blur(x), blur(y)  # (N, C, H', W')
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean(dim=1, keepdim=True)  # (N, 1, H', W')


def ssim(pred: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Structural similarity per frame (see the module docstring for the definition).

    Args:
        pred: predicted frames in [0, 1]. [N, 3, H, W]
        ref: reference frames in [0, 1]. [N, 3, H, W]
        mask: foreground mask or None. [N, 1, H, W]

    Returns:
        float64 per-frame SSIM. [N]
    """
    check_frames(pred, ref, mask)
    s = ssim_map(pred, ref)
    fg = None
    if mask is not None:
        r = SSIM_RADIUS
        fg = foreground(mask)[:, :, r:-r, r:-r]
    return masked_mean(s, fg)


def composite_on_black(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keep the foreground, black elsewhere (the input of foreground FID / FID-VID / FVD).

    Args:
        frames: frames in [0, 1]. [N, 3, H, W]
        mask: foreground mask. [N, 1, H, W]

    Returns:
        frames with background pixels set to 0. [N, 3, H, W]
    """
    if mask.shape != (frames.shape[0], 1, *frames.shape[2:]):
        raise ValueError(f"mask must be [N, 1, H, W] for frames {tuple(frames.shape)}, "
                         f"got {tuple(mask.shape)}")
    return frames * (mask > 0.5).to(frames.dtype)


def finite_mean(values: list[float]) -> float | None:
    """Mean of the finite values (None when there are none)."""
    kept = [v for v in values if math.isfinite(v)]
    return sum(kept) / len(kept) if kept else None
