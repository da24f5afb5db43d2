"""Camera maths: conventions, look-at, the spiral of eq. 5, presets, standardisation, resampling.

One module a concept: :mod:`~dreamdance.camera.rigid` (poses, look-at),
:mod:`~dreamdance.camera.rotations` (quaternions, slerp), :mod:`~dreamdance.camera.intrinsics`,
:mod:`~dreamdance.camera.trajectory` (the :class:`Trajectory` and whole-path operations),
:mod:`~dreamdance.camera.spiral` (eq. 5), :mod:`~dreamdance.camera.presets` and
:mod:`~dreamdance.camera.files` (trajectory files). Their public names are importable from here.

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

Trajectory files are read and written by :mod:`dreamdance.camera.files`.
"""

from dreamdance.camera.intrinsics import broadcast_K, intrinsics_from_fov, scale_intrinsics
from dreamdance.camera.presets import PRESETS, preset
from dreamdance.camera.rigid import UP, invert_rigid, look_at, pose_from_rotation_center, rotation_y
from dreamdance.camera.rotations import (
    ROTATION_TOLERANCE,
    check_rotation,
    quaternion_to_rotation,
    rotation_to_quaternion,
    slerp,
)
from dreamdance.camera.spiral import spiral, spiral_defaults, spiral_positions
from dreamdance.camera.trajectory import (
    Trajectory,
    check_count,
    interpolate_poses,
    normalise_scale,
    resample,
    rescale_intrinsics,
    scale_translation,
    standardise,
)

__all__ = [
    "PRESETS", "ROTATION_TOLERANCE", "UP", "Trajectory", "broadcast_K", "check_count",
    "check_rotation", "interpolate_poses", "intrinsics_from_fov", "invert_rigid", "look_at",
    "normalise_scale", "pose_from_rotation_center", "preset", "quaternion_to_rotation",
    "resample", "rescale_intrinsics", "rotation_to_quaternion", "rotation_y", "scale_intrinsics",
    "scale_translation", "slerp", "spiral", "spiral_defaults", "spiral_positions", "standardise",
]
