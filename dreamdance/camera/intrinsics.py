"""Pinhole intrinsics ``K`` in pixels: from a field of view, and scaled with the image."""

from __future__ import annotations

import numpy as np


def broadcast_K(K: np.ndarray, n: int) -> np.ndarray:
    """``[3, 3]`` or ``[n, 3, 3]`` -> ``[n, 3, 3]`` (a copy)."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape == (3, 3):
        return np.repeat(K[None], n, axis=0)
    if K.shape == (n, 3, 3):
        return K.copy()
    raise ValueError(f"K must be [3, 3] or [{n}, 3, 3], got {K.shape}")


def intrinsics_from_fov(fov_deg: float, width: int, height: int, axis: str = "x") -> np.ndarray:
    """Pinhole K with square pixels and the principal point at ``(W / 2, H / 2)``.

    Args:
        fov_deg: full field of view in degrees, along ``axis``, in (0, 180).
        width, height: image size in pixels.
        axis: ``"x"`` (horizontal field of view) or ``"y"`` (vertical).

    Returns:
        K in pixels. [3, 3]
    """
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"fov_deg must be in (0, 180), got {fov_deg}")
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive, got {width}, {height}")
    half = (width if axis == "x" else height) / 2.0
    f = half / np.tan(np.deg2rad(fov_deg) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics after scaling the image by ``(sx, sy)``: ``diag(sx, sy, 1) @ K``.

    ``fx' = fx * sx``, ``cx' = cx * sx`` (and skew ``* sx``), ``fy' = fy * sy``,
    ``cy' = cy * sy``: exact for the half-pixel-centre convention used here.

    Args:
        K: ``[..., 3, 3]`` in pixels.

    Returns:
        ``[..., 3, 3]``, a new float array.
    """
    K = _as_intrinsics(K)
    K[..., 0, :] *= sx
    K[..., 1, :] *= sy
    return K


def _as_intrinsics(K: np.ndarray) -> np.ndarray:
    K = np.array(K)  # a copy
    if K.ndim < 2 or K.shape[-2:] != (3, 3):
        raise ValueError(f"K must be [..., 3, 3], got shape {K.shape}")
    if not np.issubdtype(K.dtype, np.floating):
        K = K.astype(np.float64)
    return K
