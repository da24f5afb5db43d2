"""Camera maths: conventions, look-at, the spiral of eq. 5, presets, standardisation, resampling.

Conventions (the same as gsplat's):

- Camera axes follow OpenCV: x right, y down, z forward (the optical axis).
- Poses are stored world-to-camera, ``w2c: [N, 4, 4]`` (gsplat's ``viewmats``); a world point
  ``X`` maps to camera coordinates ``w2c[:3, :3] @ X + w2c[:3, 3]``.
- ``K: [N, 3, 3]`` is in pixels, in continuous image coordinates: the image spans
  ``[0, W] x [0, H]`` and pixel ``(i, j)`` has its centre at ``(i + 0.5, j + 0.5)``. A centred
  principal point is therefore ``(W / 2, H / 2)``.
- The world frame is the reference (first) camera: after :func:`standardise` the first pose is
  the identity.
- All maths is numpy float64.

The spiral of the paper (eq. 5) is written in a y-up frame::

    P(t) = [r sin(2 pi t) cos(2 pi t),  r sin(2 pi t) sin(2 pi t),  -s sin(2 pi t)]

We read that frame as x right, y up, z forward (towards the look-at point), so it maps to our
OpenCV frame by ``(x, y, z) -> (x, -y, z)``, and the paper's up vector ``U = [0, 1, 0]`` becomes
``[0, -1, 0]``. ``P(0) = 0``: the first spiral camera sits at the reference camera and, looking
at ``o = (0, 0, d)``, is the identity.

No file I/O here; trajectory files are read and written by :mod:`dreamdance.trajectory`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamdance.errors import InputError

PRESETS = ("static", "orbit", "dolly", "pan", "zoom", "spiral")

UP = np.array([0.0, -1.0, 0.0])  # world "up" in the OpenCV frame of the reference camera

# Largest ||R^T R - I||_max accepted as rounding in a rotation read from a file.
ROTATION_TOLERANCE = 1e-3


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A camera path: one world-to-camera pose and one intrinsic matrix per frame.

    Attributes:
        w2c: world-to-camera poses (OpenCV axes). [N, 4, 4]
        K: intrinsics in pixels. [N, 3, 3]
        width: image width in pixels, the same for all frames.
        height: image height in pixels, the same for all frames.
    """

    w2c: np.ndarray  # [N, 4, 4]
    K: np.ndarray  # [N, 3, 3]
    width: int
    height: int

    def __post_init__(self):
        w2c = np.array(self.w2c, dtype=np.float64)
        K = np.array(self.K, dtype=np.float64)
        if w2c.ndim != 3 or w2c.shape[1:] != (4, 4) or len(w2c) < 1:
            raise ValueError(f"w2c must be [N, 4, 4] with N >= 1, got {w2c.shape}")
        if K.shape != (len(w2c), 3, 3):
            raise ValueError(f"K must be [{len(w2c)}, 3, 3], got {K.shape}")
        if not (np.isfinite(w2c).all() and np.isfinite(K).all()):
            raise ValueError("w2c and K must be finite")
        if not np.allclose(w2c[:, 3], [0.0, 0.0, 0.0, 1.0], atol=1e-9):
            raise ValueError("the last row of every w2c must be [0, 0, 0, 1]")
        width, height = int(self.width), int(self.height)
        if width != self.width or height != self.height or width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive integers, got {self.width}, "
                             f"{self.height}")
        object.__setattr__(self, "w2c", w2c)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "height", height)

    def __len__(self) -> int:
        return len(self.w2c)

    @property
    def c2w(self) -> np.ndarray:
        """Camera-to-world poses. [N, 4, 4]"""
        return invert_rigid(self.w2c)

    @property
    def centers(self) -> np.ndarray:
        """Camera centres in world coordinates. [N, 3]"""
        R, t = self.w2c[:, :3, :3], self.w2c[:, :3, 3]
        return -np.einsum("nji,nj->ni", R, t)


# ---------------------------------------------------------------------------------------------
# Small building blocks
# ---------------------------------------------------------------------------------------------


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


def _broadcast_K(K: np.ndarray, n: int) -> np.ndarray:
    """``[3, 3]`` or ``[n, 3, 3]`` -> ``[n, 3, 3]`` (a copy)."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape == (3, 3):
        return np.repeat(K[None], n, axis=0)
    if K.shape == (n, 3, 3):
        return K.copy()
    raise ValueError(f"K must be [3, 3] or [{n}, 3, 3], got {K.shape}")


def _check_count(n: int) -> int:
    if int(n) != n or n < 1:
        raise ValueError(f"the number of frames must be a positive integer, got {n}")
    return int(n)


# ---------------------------------------------------------------------------------------------
# Look-at and intrinsics
# ---------------------------------------------------------------------------------------------


def _look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
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


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, -1.0, 0.0)) -> np.ndarray:
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
    return _look_at(eye, target, up)


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


def fov_from_intrinsics(K: np.ndarray, width: int, height: int, axis: str = "x") -> float:
    """Full field of view in degrees spanned by the image along ``axis``.

    Measured from the principal point to both image borders, so it also holds for an
    off-centre principal point; for a centred one it is ``2 atan(W / (2 fx))``.

    Args:
        K: intrinsics in pixels. [3, 3]
        width, height: image size in pixels.
        axis: ``"x"`` or ``"y"``.
    """
    K = np.asarray(K, dtype=np.float64)
    assert K.shape == (3, 3), K.shape
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    f, c, size = (K[0, 0], K[0, 2], width) if axis == "x" else (K[1, 1], K[1, 2], height)
    return float(np.rad2deg(np.arctan(c / f) + np.arctan((size - c) / f)))


# ---------------------------------------------------------------------------------------------
# The spiral (paper eq. 5)
# ---------------------------------------------------------------------------------------------


def spiral_positions(t: np.ndarray, r: float, s: float) -> np.ndarray:
    """Camera centres of eq. 5, converted to the OpenCV frame (y flipped, see module docs).

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
    n = _check_count(n)
    if t is None:
        t = np.linspace(0.0, 1.0, n, endpoint=False)
    t = np.asarray(t, dtype=np.float64)
    if t.shape != (n,):
        raise ValueError(f"t must be [{n}], got {t.shape}")
    o = np.asarray(look_at, dtype=np.float64)
    assert o.shape == (3,), o.shape
    eyes = spiral_positions(t, r, s)
    w2c = np.stack([_look_at(eye, o, UP) for eye in eyes])
    return Trajectory(w2c, _broadcast_K(K, n), width, height)


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


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------


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
    n = _check_count(n)
    K = np.asarray(K, dtype=np.float64)
    assert K.shape == (3, 3), K.shape
    if not (np.isfinite(depth) and depth > 0):
        raise ValueError(f"depth must be finite and positive, got {depth}")
    if not np.isfinite(amplitude):
        raise InputError(f"motion.preset_amplitude={amplitude}", "must be finite")
    t = np.linspace(0.0, 1.0, n)
    Ks = _broadcast_K(K, n)
    identity = np.repeat(np.eye(4)[None], n, axis=0)

    if name == "static":
        w2c = identity
    elif name == "orbit":
        yaw = np.deg2rad(15.0) * amplitude * np.sin(2.0 * np.pi * t)
        o = np.array([0.0, 0.0, depth])
        eyes = depth * np.stack([np.sin(yaw), np.zeros(n), 1.0 - np.cos(yaw)], axis=-1)
        w2c = np.stack([_look_at(eye, o, UP) for eye in eyes])
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


# ---------------------------------------------------------------------------------------------
# Whole-trajectory operations
# ---------------------------------------------------------------------------------------------


def standardise(traj: Trajectory) -> Trajectory:
    """Re-express a trajectory in the frame of its first camera.

    ``w2c_i' = w2c_i @ inv(w2c_0)``: the first pose becomes the identity and every relative
    motion ``w2c_i @ inv(w2c_j)`` is unchanged.
    """
    w2c = traj.w2c @ invert_rigid(traj.w2c[0])
    w2c[0] = np.eye(4)  # exact, not 1e-16 away
    return Trajectory(w2c, traj.K, traj.width, traj.height)


def normalise_scale(traj: Trajectory, scene_depth: float, max_ratio: float = 0.2) -> Trajectory:
    """Rescale camera translations to the scene: trajectories from SLAM/DPVO have no scale.

    Camera centres are scaled about the first camera's centre so that the largest distance of
    any centre from it becomes ``max_ratio * scene_depth``. Rotations and K are unchanged. A
    trajectory with no translation (largest distance below 1e-9 of the centres' magnitude) is
    returned unchanged.

    Args:
        traj: the trajectory.
        scene_depth: typical scene depth (world units), e.g. the median of the depth map.
        max_ratio: the largest camera excursion as a fraction of ``scene_depth``.
    """
    if not (np.isfinite(scene_depth) and scene_depth > 0):
        raise ValueError(f"scene_depth must be finite and positive, got {scene_depth}")
    if not (np.isfinite(max_ratio) and max_ratio > 0):
        raise ValueError(f"max_ratio must be finite and positive, got {max_ratio}")
    centers = traj.centers
    offsets = centers - centers[0]
    largest = float(np.linalg.norm(offsets, axis=-1).max())
    if largest <= 1e-9 * max(1.0, float(np.abs(centers).max())):
        return traj
    new_centers = centers[0] + offsets * (max_ratio * scene_depth / largest)
    w2c = pose_from_rotation_center(traj.w2c[:, :3, :3], new_centers)
    return Trajectory(w2c, traj.K, traj.width, traj.height)


def scale_translation(traj: Trajectory, factor: float) -> Trajectory:
    """Every camera centre scaled by ``factor`` about the world origin (rotations and K kept):
    the same path in other units."""
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"factor must be finite and positive, got {factor}")
    w2c = traj.w2c.copy()
    w2c[:, :3, 3] *= factor
    return Trajectory(w2c, traj.K, traj.width, traj.height)


def resample(traj: Trajectory, n: int) -> Trajectory:
    """Resample to ``n`` frames at uniform time.

    Frames are taken as evenly spaced over ``[0, 1]``; the first and last frames are kept.
    Rotations are interpolated by slerp, camera centres and K linearly. ``n == len(traj)``
    returns an equal trajectory.
    """
    n = _check_count(n)
    m = len(traj)
    if n == m:
        return Trajectory(traj.w2c, traj.K, traj.width, traj.height)
    if m == 1:
        return Trajectory(np.repeat(traj.w2c, n, 0), np.repeat(traj.K, n, 0),
                          traj.width, traj.height)
    u = np.linspace(0.0, m - 1.0, n)  # position in source frames
    i0 = np.minimum(np.floor(u).astype(int), m - 2)
    a = u - i0  # in [0, 1]
    q = rotation_to_quaternion(traj.w2c[:, :3, :3])
    R = quaternion_to_rotation(slerp(q[i0], q[i0 + 1], a))
    c = traj.centers
    centers = (1.0 - a)[:, None] * c[i0] + a[:, None] * c[i0 + 1]
    K = (1.0 - a)[:, None, None] * traj.K[i0] + a[:, None, None] * traj.K[i0 + 1]
    # Keep source frames that land exactly on a sample bit for bit (the endpoints, at least).
    exact = a == 0.0
    w2c = pose_from_rotation_center(R, centers)
    w2c[exact] = traj.w2c[i0[exact]]
    K[exact] = traj.K[i0[exact]]
    last = a == 1.0
    w2c[last] = traj.w2c[i0[last] + 1]
    K[last] = traj.K[i0[last] + 1]
    return Trajectory(w2c, K, traj.width, traj.height)


def interpolate_poses(a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Poses a fraction ``u`` of the way from ``a`` to ``b``: rotations by slerp, camera
    centres on the line between. [N, 4, 4] x 2, [N] -> [N, 4, 4]"""
    q = rotation_to_quaternion(np.stack([a[:, :3, :3], b[:, :3, :3]]))
    c = invert_rigid(np.stack([a, b]))[..., :3, 3]
    u = np.asarray(u, dtype=np.float64)
    return pose_from_rotation_center(quaternion_to_rotation(slerp(q[0], q[1], u)),
                                     (1.0 - u)[:, None] * c[0] + u[:, None] * c[1])


# ---------------------------------------------------------------------------------------------
# Rotations and quaternions ([x, y, z, w] order, as TUM files use)
# ---------------------------------------------------------------------------------------------


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


def crop_intrinsics(K: np.ndarray, x0: float, y0: float) -> np.ndarray:
    """Intrinsics after cropping the image at top-left ``(x0, y0)``: ``cx' = cx - x0``,
    ``cy' = cy - y0`` (general form: ``[[1, 0, -x0], [0, 1, -y0], [0, 0, 1]] @ K``).

    Args:
        K: ``[..., 3, 3]`` in pixels.

    Returns:
        ``[..., 3, 3]``, a new float array.
    """
    K = _as_intrinsics(K)
    K[..., 0, :] -= x0 * K[..., 2, :]
    K[..., 1, :] -= y0 * K[..., 2, :]
    return K


def rescale_intrinsics(traj: Trajectory, width: int, height: int) -> Trajectory:
    """The same cameras at another image size: K's x row scaled by ``W'/W``, y row by ``H'/H``.

    Exact for the continuous image coordinates used here (the image spans ``[0, W]``). A change
    of aspect ratio gives non-square pixels (the image is stretched, not cropped).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive, got {width}, {height}")
    if (width, height) == (traj.width, traj.height):
        return traj
    K = scale_intrinsics(traj.K, width / traj.width, height / traj.height)
    return Trajectory(traj.w2c, K, width, height)


def _as_intrinsics(K: np.ndarray) -> np.ndarray:
    K = np.array(K)  # a copy
    if K.ndim < 2 or K.shape[-2:] != (3, 3):
        raise ValueError(f"K must be [..., 3, 3], got shape {K.shape}")
    if not np.issubdtype(K.dtype, np.floating):
        K = K.astype(np.float64)
    return K
