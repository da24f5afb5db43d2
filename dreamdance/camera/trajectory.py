"""The :class:`Trajectory` (one pose and one K per frame) and operations on a whole one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamdance.camera.intrinsics import scale_intrinsics
from dreamdance.camera.rigid import invert_rigid, pose_from_rotation_center
from dreamdance.camera.rotations import quaternion_to_rotation, rotation_to_quaternion, slerp


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


def check_count(n: int) -> int:
    if int(n) != n or n < 1:
        raise ValueError(f"the number of frames must be a positive integer, got {n}")
    return int(n)


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
    n = check_count(n)
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
