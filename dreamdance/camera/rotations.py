"""Rotations and quaternions (``[x, y, z, w]`` order, as TUM files use), and the check of a
rotation read from a file."""

from __future__ import annotations

import numpy as np

from dreamdance.errors import InputError

# Largest ||R^T R - I||_max accepted as rounding in a rotation read from a file.
ROTATION_TOLERANCE = 1e-3


def rotation_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Unit quaternions ``[x, y, z, w]`` with ``w >= 0`` (Shepperd's method).

    Args:
        R: rotation matrices. [..., 3, 3]

    Returns:
        Quaternions. [..., 4]
    """
    R = np.asarray(R, dtype=np.float64)
    assert R.shape[-2:] == (3, 3), R.shape
    flat = R.reshape(-1, 3, 3)
    q = np.empty((len(flat), 4))
    for k, m in enumerate(flat):
        tr = m[0, 0] + m[1, 1] + m[2, 2]
        i = int(np.argmax([tr, m[0, 0], m[1, 1], m[2, 2]]))
        if i == 0:
            w = 0.5 * np.sqrt(1.0 + tr)
            f = 0.25 / w
            q[k] = [(m[2, 1] - m[1, 2]) * f, (m[0, 2] - m[2, 0]) * f, (m[1, 0] - m[0, 1]) * f, w]
        elif i == 1:
            x = 0.5 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
            f = 0.25 / x
            q[k] = [x, (m[0, 1] + m[1, 0]) * f, (m[0, 2] + m[2, 0]) * f, (m[2, 1] - m[1, 2]) * f]
        elif i == 2:
            y = 0.5 * np.sqrt(1.0 - m[0, 0] + m[1, 1] - m[2, 2])
            f = 0.25 / y
            q[k] = [(m[0, 1] + m[1, 0]) * f, y, (m[1, 2] + m[2, 1]) * f, (m[0, 2] - m[2, 0]) * f]
        else:
            z = 0.5 * np.sqrt(1.0 - m[0, 0] - m[1, 1] + m[2, 2])
            f = 0.25 / z
            q[k] = [(m[0, 2] + m[2, 0]) * f, (m[1, 2] + m[2, 1]) * f, z, (m[1, 0] - m[0, 1]) * f]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    q[q[:, 3] < 0] *= -1.0
    return q.reshape(*R.shape[:-2], 4)


def quaternion_to_rotation(q: np.ndarray) -> np.ndarray:
    """Rotation matrices from quaternions ``[x, y, z, w]`` (normalised here).

    Args:
        q: non-zero quaternions. [..., 4]

    Returns:
        Rotations. [..., 3, 3]
    """
    q = np.asarray(q, dtype=np.float64)
    assert q.shape[-1] == 4, q.shape
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if not (norm > 0).all():
        raise ValueError("quaternion_to_rotation: zero quaternion")
    x, y, z, w = np.moveaxis(q / norm, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def slerp(q0: np.ndarray, q1: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation of unit quaternions along the shorter arc.

    Args:
        q0, q1: unit quaternions ``[x, y, z, w]``. [N, 4]
        a: interpolation weights, 0 gives ``q0`` and 1 gives ``q1``. [N]

    Returns:
        Unit quaternions. [N, 4]
    """
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)[..., None]
    assert q0.shape == q1.shape and q0.shape[-1] == 4, (q0.shape, q1.shape)
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # q and -q are the same rotation: take the short way
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin = np.sin(theta)
    near = sin < 1e-8  # (almost) the same rotation: linear interpolation is exact enough
    safe = np.where(near, 1.0, sin)
    w0 = np.where(near, 1.0 - a, np.sin((1.0 - a) * theta) / safe)
    w1 = np.where(near, a, np.sin(a * theta) / safe)
    q = w0 * q0 + w1 * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def check_rotation(R: np.ndarray, name: str, where: str = "") -> np.ndarray:
    """Validate a rotation read from a file and return the nearest exact rotation.

    Files store rotations with a few decimals, so a valid rotation is only orthonormal up to
    rounding. Within the rounding tolerance (``||R^T R - I||_max <= 1e-3`` and ``det > 0``) the
    nearest rotation (SVD projection) is returned; this absorbs rounding, it does not repair a
    matrix that is not a rotation: anything further off is an error.

    Args:
        R: the matrix. [3, 3]
        name: the input as the user knows it, e.g. ``"camera=traj.txt"``.
        where: location in the input, e.g. ``"line 3"``; prefixed to the message.

    Raises:
        InputError: non-finite values, not orthonormal, or a reflection (``det < 0``).
    """
    R = np.asarray(R, dtype=np.float64)
    assert R.shape == (3, 3), R.shape
    prefix = f"{where}: " if where else ""
    if not np.isfinite(R).all():
        raise InputError(name, f"{prefix}rotation has non-finite values")
    det = float(np.linalg.det(R))
    err = float(np.abs(R.T @ R - np.eye(3)).max())
    if err > ROTATION_TOLERANCE or det < 0:
        raise InputError(name, f"{prefix}rotation is not a rotation matrix "
                               f"(det={det:.4g}, orthogonality error {err:.2g})")
    U, _, Vt = np.linalg.svd(R)
    return U @ Vt
