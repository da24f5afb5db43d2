"""Resizing images with OpenCV, and the size a resolution setting gives."""

from __future__ import annotations

import math
import numbers

import cv2
import numpy as np

_INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    # INTER_NEAREST_EXACT samples the source pixel under each output pixel centre, which is
    # what the half-pixel convention of :mod:`dreamdance.media` asks for (plain INTER_NEAREST is shifted).
    "nearest": cv2.INTER_NEAREST_EXACT,
}
_RESIZE_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)


def resize(image: np.ndarray, size: tuple[int, int], interpolation: str = "area") -> np.ndarray:
    """Resize with OpenCV to ``size = (W', H')``.

    A camera's ``K`` scales with the image by
    :func:`~dreamdance.camera.intrinsics.scale_intrinsics` (``sx = W' / W``, ``sy = H' / H``).

    Args:
        image: ``[H, W]`` or ``[H, W, C]``; uint8, uint16, float32 or float64.
        size: ``(W', H')``, positive integers (OpenCV's order).
        interpolation: ``"area"`` (best for shrinking), ``"linear"`` or ``"nearest"``
            (samples the source pixel under each output pixel centre; use for masks/labels).

    Returns:
        The image, ``[H', W'(, C)]`` of the input dtype.
    """
    _check_image(image)
    new_w, new_h = _check_size(size)
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"interpolation must be one of {sorted(_INTERPOLATIONS)}, got {interpolation!r}"
        )
    out = cv2.resize(image, (new_w, new_h), interpolation=_INTERPOLATIONS[interpolation])
    if image.ndim == 3 and out.ndim == 2:  # OpenCV drops a single channel axis
        out = out[..., None]
    return out


def fit_size(size: tuple[int, int], resolution: int, multiple: int = 16) -> tuple[int, int]:
    """The size a ``size = (W, H)`` image takes at a long side of ``resolution`` with both sides
    multiples of ``multiple``.

    Each side becomes ``round(side * resolution / max(W, H) / multiple) * multiple`` (halves
    round up; at least ``multiple``): the aspect ratio changes by at most ``multiple / 2`` pixels
    per side. When ``resolution`` is not itself a multiple, the long side is rounded too (e.g.
    500 with 16 -> 496).

    Returns:
        ``(W', H')``.
    """
    w, h = size
    scale = resolution / max(w, h)

    def snap(side: int) -> int:
        return max(multiple, int(math.floor(side * scale / multiple + 0.5)) * multiple)

    return snap(w), snap(h)


def _check_image(image: np.ndarray) -> tuple[int, int]:
    """Check an ``[H, W]`` or ``[H, W, C]`` array OpenCV can resize; return ``(H, W)``."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ValueError(f"image must be [H, W] or [H, W, C] with H, W >= 1, got {image.shape}")
    if image.dtype not in _RESIZE_DTYPES:
        names = ", ".join(np.dtype(d).name for d in _RESIZE_DTYPES)
        raise ValueError(f"image dtype must be one of {names}, got {image.dtype}")
    return image.shape[0], image.shape[1]


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if (
        len(size) != 2
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in size)
        or min(size) < 1
    ):
        raise ValueError(f"size must be two positive integers (W, H), got {size!r}")
    return int(size[0]), int(size[1])
