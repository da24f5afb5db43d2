"""Named camera motions (``camera=orbit`` …) for a character with no driving camera."""

from __future__ import annotations

import numpy as np

from dreamdance.camera import rigid
from dreamdance.camera.intrinsics import broadcast_K
from dreamdance.camera.rigid import pose_from_rotation_center, rotation_y
from dreamdance.camera.spiral import spiral
from dreamdance.camera.trajectory import Trajectory, check_count
from dreamdance.errors import InputError

PRESETS = ("static", "orbit", "dolly", "pan", "zoom", "spiral")


def preset(
    name: str,
    n: int,
    K: np.ndarray,
    width: int,
    height: int,
    depth: float,
    amplitude: float = 1.0,
) -> Trajectory:
    """A named camera motion of ``n`` frames; the first camera is the identity with ``K``.

    Times run over ``t = linspace(0, 1, n)``, so every motion except ``spiral`` ends where it
    started. With ``d = depth`` (the distance to the look-at point ``(0, 0, d)``) and
    ``a = amplitude``:

    - ``static``: identity poses.
    - ``orbit``: the camera circles ``(0, 0, d)`` at distance ``d``, looking at it; its yaw
      about the point is ``15 deg * a * sin(2 pi t)`` (it moves first to its right, turning
      left to keep the point in view, then to its left).
    - ``dolly``: identity rotation, centre ``(0, 0, 0.2 d a sin(pi t))``: in, then back out.
    - ``pan``: camera at the origin turning in place, yaw ``20 deg * a * sin(2 pi t)``.
    - ``zoom``: identity poses, focal lengths scaled by ``1 + 0.5 a sin(pi t)`` about the
      principal point.
    - ``spiral``: eq. 5 with ``r = s = 0.05 d a`` looking at ``(0, 0, d)``, over one period
      ``linspace(0, 1, n, endpoint=False)``.

    Args:
        name: one of :data:`PRESETS`.
        n: number of frames.
        K: intrinsics of the reference camera. [3, 3]
        width, height: image size in pixels.
        depth: scene depth (world units), the look-at distance.
        amplitude: scales the motion; 0 gives a static camera.

    Returns:
        The trajectory, ``len == n``.

    Raises:
        InputError: unknown ``name``, or an amplitude that makes the zoom's focal length
            non-positive.
    """
    if name not in PRESETS:
        raise InputError(f"camera={name}", f"unknown preset; choose one of {', '.join(PRESETS)}")
    n = check_count(n)
    K = np.asarray(K, dtype=np.float64)
    assert K.shape == (3, 3), K.shape
    if not (np.isfinite(depth) and depth > 0):
        raise ValueError(f"depth must be finite and positive, got {depth}")
    if not np.isfinite(amplitude):
        raise InputError(f"motion.preset_amplitude={amplitude}", "must be finite")
    t = np.linspace(0.0, 1.0, n)
    Ks = broadcast_K(K, n)
    identity = np.repeat(np.eye(4)[None], n, axis=0)

    if name == "static":
        w2c = identity
    elif name == "orbit":
        yaw = np.deg2rad(15.0) * amplitude * np.sin(2.0 * np.pi * t)
        o = np.array([0.0, 0.0, depth])
        eyes = depth * np.stack([np.sin(yaw), np.zeros(n), 1.0 - np.cos(yaw)], axis=-1)
        w2c = np.stack([rigid.look_at(eye, o) for eye in eyes])
    elif name == "dolly":
        z = 0.2 * depth * amplitude * np.sin(np.pi * t)
        centers = np.stack([np.zeros(n), np.zeros(n), z], axis=-1)
        w2c = pose_from_rotation_center(np.eye(3), centers)
    elif name == "pan":
        yaw = np.deg2rad(20.0) * amplitude * np.sin(2.0 * np.pi * t)
        w2c = pose_from_rotation_center(np.swapaxes(rotation_y(yaw), -1, -2), np.zeros(3))
    elif name == "zoom":
        if not 1.0 + 0.5 * amplitude > 0:
            raise InputError(f"motion.preset_amplitude={amplitude}", "zoom needs an amplitude > -2")
        w2c = identity
        scale = 1.0 + 0.5 * amplitude * np.sin(np.pi * t)
        Ks[:, 0, 0] *= scale
        Ks[:, 1, 1] *= scale
    else:  # spiral
        r = 0.05 * depth * amplitude
        return spiral(n, r, r, np.array([0.0, 0.0, depth]), K, width, height)
    return Trajectory(w2c, Ks, width, height)
