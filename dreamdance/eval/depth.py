"""Depth accuracy against a known depth map: AbsRel, as usual for monocular depth.

A monocular estimate (and a weight-free prior even more so) knows depth only up to scale, so
the error is reported twice:

- **raw**: ``AbsRel = mean(|pred - true| / true)`` over the valid pixels;
- **aligned**: the same after scaling ``pred`` by ``s = median(true) / median(pred)`` (the
  median alignment of the monocular-depth literature, e.g. Eigen et al. 2014's evaluation).

Valid pixels are those where both depths are finite and ``> 0`` (and inside ``mask``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DepthErrors:
    """AbsRel of one depth map.

    Attributes:
        abs_rel: mean ``|pred - true| / true``, as predicted.
        abs_rel_aligned: the same for ``scale * pred``.
        scale: the median alignment ``median(true) / median(pred)``.
        pixels: how many pixels were compared.
    """

    abs_rel: float
    abs_rel_aligned: float
    scale: float
    pixels: int


def depth_errors(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None
                 ) -> DepthErrors:
    """AbsRel of ``pred`` against ``true``, raw and median-aligned.

    Args:
        pred: predicted z-depth. [H, W]
        true: true z-depth. [H, W]
        mask: pixels to compare, or None for all. [H, W] bool

    Raises:
        ValueError: shapes differ, or no pixel is valid.
    """
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(f"pred and true must be matching [H, W], got {pred.shape}, {true.shape}")
    valid = np.isfinite(pred) & np.isfinite(true) & (pred > 0) & (true > 0)
    if mask is not None:
        if np.shape(mask) != pred.shape:
            raise ValueError(f"mask must be {pred.shape}, got {np.shape(mask)}")
        valid &= np.asarray(mask, bool)
    if not valid.any():
        raise ValueError("no pixel has a finite positive depth in both maps")
    p, t = pred[valid], true[valid]
    scale = float(np.median(t) / np.median(p))
    return DepthErrors(float(np.mean(np.abs(p - t) / t)), float(np.mean(np.abs(scale * p - t) / t)),
                       scale, int(valid.sum()))
