"""The spiral of the paper (eq. 5), the scene stage's camera path for its new views."""

from __future__ import annotations

import numpy as np

from dreamdance.camera import rigid
from dreamdance.camera.intrinsics import broadcast_K
from dreamdance.camera.trajectory import Trajectory, check_count


def spiral_positions(t: np.ndarray, r: float, s: float) -> np.ndarray:
    """Camera centres of eq. 5, converted to the OpenCV frame (y flipped, see :mod:`dreamdance.camera`).

    ``P(t) = [r sin(2 pi t) cos(2 pi t), -r sin(2 pi t)^2, -s sin(2 pi t)]``.

    Args:
        t: times, one period is ``[0, 1)``. [N]
        r: radius in the image plane (world units).
        s: amplitude along the optical axis (world units).

    Returns:
        Camera centres. [N, 3]
    """
    t = np.asarray(t, dtype=np.float64)
    assert t.ndim == 1, t.shape
    a = np.sin(2.0 * np.pi * t)
    b = np.cos(2.0 * np.pi * t)
    paper = np.stack([r * a * b, r * a * a, -s * a], axis=-1)  # x right, y up, z forward
    return paper * np.array([1.0, -1.0, 1.0])  # -> OpenCV: y down


def spiral(
    n: int,
    r: float,
    s: float,
    look_at: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    t: np.ndarray | None = None,
) -> Trajectory:
    """Cameras on the spiral of eq. 5, each looking at ``look_at`` with up ``[0, -1, 0]``.

    With ``look_at = (0, 0, d)`` the first camera (``t = 0``) is the identity.

    Args:
        n: number of cameras.
        r, s: spiral sizes, see :func:`spiral_positions`.
        look_at: the point every camera looks at (``o`` in the paper). [3]
        K: intrinsics, shared or per camera. [3, 3] or [n, 3, 3]
        width, height: image size in pixels.
        t: times; default ``linspace(0, 1, n, endpoint=False)`` (one period, no repeat). [n]

    Returns:
        The trajectory, ``len == n``.
    """
    n = check_count(n)
    if t is None:
        t = np.linspace(0.0, 1.0, n, endpoint=False)
    t = np.asarray(t, dtype=np.float64)
    if t.shape != (n,):
        raise ValueError(f"t must be [{n}], got {t.shape}")
    o = np.asarray(look_at, dtype=np.float64)
    assert o.shape == (3,), o.shape
    eyes = spiral_positions(t, r, s)
    w2c = np.stack([rigid.look_at(eye, o) for eye in eyes])
    return Trajectory(w2c, broadcast_K(K, n), width, height)


def spiral_defaults(depth: np.ndarray) -> dict:
    """Spiral sizes for a scene, from its depth map.

    - ``look_at = (0, 0, median depth)``: the cameras keep the middle of the scene in view.
    - ``r = 0.1 x`` the 10th-percentile depth: a small excursion relative to the nearest
      content, enough parallax to reveal occluded background without leaving the scene or
      moving through near geometry.
    - ``s = r``. The paper uses ``s = 1`` in its own (unstated) depth units; tying ``s`` to the
      scene's depth keeps the motion the same relative size for any metric depth.

    Non-finite and non-positive depths (sky, invalid pixels) are ignored.

    Args:
        depth: metric depth. [H, W]

    Returns:
        ``dict(r=float, s=float, look_at=[3])``, keyword arguments for :func:`spiral`.
    """
    depth = np.asarray(depth, dtype=np.float64)
    assert depth.ndim == 2, depth.shape
    valid = depth[np.isfinite(depth) & (depth > 0)]
    if valid.size == 0:
        raise ValueError("depth has no finite positive values")
    r = 0.1 * float(np.percentile(valid, 10))
    return dict(r=r, s=r, look_at=np.array([0.0, 0.0, float(np.median(valid))]))
