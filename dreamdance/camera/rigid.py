"""Rigid poses: inversion, a pose from a rotation and a centre, rotations about y, look-at."""

from __future__ import annotations

import numpy as np

UP = np.array([0.0, -1.0, 0.0])  # world "up" in the OpenCV frame of the reference camera
UP.flags.writeable = False


def invert_rigid(T: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms ``[R | t]``: ``[R^T | -R^T t]``.

    Args:
        T: rigid transforms. [..., 4, 4]

    Returns:
        The inverses. [..., 4, 4]
    """
    T = np.asarray(T, dtype=np.float64)
    assert T.shape[-2:] == (4, 4), T.shape
    Rt = np.swapaxes(T[..., :3, :3], -1, -2)
    out = np.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, T[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def pose_from_rotation_center(R: np.ndarray, center: np.ndarray) -> np.ndarray:
    """World-to-camera pose of a camera with rotation ``R`` (world-to-camera) at ``center``.

    Args:
        R: world-to-camera rotations. [..., 3, 3]
        center: camera centres in world coordinates. [..., 3]

    Returns:
        ``[R | -R c]``. [..., 4, 4]
    """
    R = np.asarray(R, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64)
    assert R.shape[-2:] == (3, 3) and center.shape[-1] == 3, (R.shape, center.shape)
    batch = np.broadcast_shapes(R.shape[:-2], center.shape[:-1])
    out = np.zeros((*batch, 4, 4))
    out[..., :3, :3] = R
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", R, center)
    out[..., 3, 3] = 1.0
    return out


def rotation_y(angle: np.ndarray) -> np.ndarray:
    """Rotations by ``angle`` radians about the y axis (right-handed). [..., 3, 3]

    As a camera-to-world rotation with a positive angle, the camera turns to its right: its
    optical axis ``(0, 0, 1)`` goes to ``(sin a, 0, cos a)``.
    """
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    R = np.zeros((*a.shape, 3, 3))
    R[..., 0, 0], R[..., 0, 2] = c, s
    R[..., 1, 1] = 1.0
    R[..., 2, 0], R[..., 2, 2] = -s, c
    return R


def look_at(eye: np.ndarray, target: np.ndarray, up=UP) -> np.ndarray:
    """World-to-camera pose of a camera at ``eye`` whose optical axis (+z) points at ``target``.

    The image's up direction (the camera's -y) is as close as possible to the world ``up``.
    The default ``up = (0, -1, 0)`` is "up" in the OpenCV frame of the reference camera.

    Args:
        eye: camera centre. [3]
        target: point the camera looks at. [3]
        up: world up direction. [3]

    Returns:
        w2c. [4, 4]

    Raises:
        ValueError: ``eye == target``, or ``up`` parallel to the view direction (or zero).
    """
    eye = np.asarray(eye, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    up = np.asarray(up, dtype=np.float64)
    assert eye.shape == (3,) and target.shape == (3,) and up.shape == (3,), (
        eye.shape, target.shape, up.shape)
    forward = target - eye
    dist = np.linalg.norm(forward)
    if not dist > 1e-12 * max(1.0, np.linalg.norm(eye)):
        raise ValueError(f"look_at: eye {eye} and target {target} coincide")
    z = forward / dist
    down = -up / np.linalg.norm(up) if np.linalg.norm(up) > 0 else up
    y = down - np.dot(down, z) * z  # image "down" = world down, made orthogonal to the axis
    ny = np.linalg.norm(y)
    if not ny > 1e-9:
        raise ValueError(f"look_at: up {up} is parallel to the view direction {z}")
    y = y / ny
    x = np.cross(y, z)  # right-handed: x = y cross z
    return pose_from_rotation_center(np.stack([x, y, z]), eye)
