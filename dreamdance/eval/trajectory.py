"""Errors of an estimated camera path against the true one.

The definitions are the field's (those of ``evo``, Grupp 2017, and of the TUM RGB-D benchmark,
Sturm et al. 2012) for paths whose overall scale is free, as a monocular tracker's is:

- **ATE** (absolute trajectory error): the estimated camera centres are aligned to the true
  ones by the similarity (rotation, translation, scale) of least squares (Umeyama 1991), and
  the root mean square of the remaining centre distances is reported (``evo_ape -as``).
- **RPE** (relative pose error) over ``delta`` frames: the relative motion from frame ``i`` to
  ``i + delta`` of the estimate against the truth, after the same alignment's scale; its
  translation part (RMS, in the true path's units) and its rotation part (RMS angle, degrees)
  (``evo_rpe -as``).
- Per frame: the **rotation error** (angle of ``R_est R_true^T``) and the **direction error**
  (angle between the estimated and true camera centres seen from the first one; the scale is
  free, so a path's direction is what can be right).

Poses are world-to-camera ``[T, 4, 4]``, both paths standardised to start at the same pose
(:func:`dreamdance.camera.standardise`) when compared per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamdance.camera import invert_rigid


def rotation_errors(w2c: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Angle of ``R_est R_true^T`` per frame, degrees. [T, 4, 4] x 2 -> [T]"""
    M = w2c[:, :3, :3] @ np.swapaxes(true[:, :3, :3], -1, -2)
    cos = (np.trace(M, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))


def centres(w2c: np.ndarray) -> np.ndarray:
    """Camera centres in world coordinates. [T, 4, 4] -> [T, 3]"""
    return invert_rigid(w2c)[:, :3, 3]


def direction_errors(w2c: np.ndarray, true: np.ndarray, least: float = 1e-9) -> np.ndarray:
    """Angle between the estimated and true camera centres per frame, degrees; NaN where the
    true centre is within ``least`` of the origin (a camera that has not moved has no
    direction). [T, 4, 4] x 2 -> [T]"""
    a, b = centres(w2c), centres(true)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.sum(a * b, axis=1) / (na * nb)
    out = np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))
    out[nb <= least] = np.nan
    out[(nb > least) & (na <= least * max(1.0, float(na.max())))] = 90.0  # did not move at all
    return out


def umeyama(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The similarity ``target ~ s R source + t`` of least squares (Umeyama 1991).

    Args:
        source, target: points. [N, 3]

    Returns:
        ``R`` [3, 3], ``t`` [3], ``s`` (0 when ``source`` is a single point repeated).
    """
    mu_s, mu_t = source.mean(0), target.mean(0)
    xs, xt = source - mu_s, target - mu_t
    var_s = float(np.mean(np.sum(xs**2, axis=1)))
    U, D, Vt = np.linalg.svd(xt.T @ xs / len(source))
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    s = float(np.trace(np.diag(D) @ S) / var_s) if var_s > 0 else 0.0
    return R, mu_t - s * R @ mu_s, s


@dataclass(frozen=True)
class PathErrors:
    """The errors of one estimated path (see the module notes).

    Attributes:
        ate: absolute trajectory error, RMS, true units (after the similarity alignment).
        rpe_translation: relative pose error's translation part, RMS, true units.
        rpe_rotation: relative pose error's rotation part, RMS, degrees.
        rotation: per-frame rotation error, degrees. [T]
        direction: per-frame direction error, degrees (NaN where the camera has not moved). [T]
        scale: the alignment's scale (true units per estimated unit).
    """

    ate: float
    rpe_translation: float
    rpe_rotation: float
    rotation: np.ndarray
    direction: np.ndarray
    scale: float

    @property
    def max_rotation(self) -> float:
        return float(self.rotation.max())

    @property
    def max_direction(self) -> float:
        """Largest direction error, degrees; 0 for a camera that never moved."""
        d = self.direction[np.isfinite(self.direction)]
        return float(d.max()) if len(d) else 0.0


def path_errors(w2c: np.ndarray, true: np.ndarray, delta: int = 1) -> PathErrors:
    """ATE, RPE over ``delta`` frames, and per-frame errors of ``w2c`` against ``true``.

    Both paths are first re-expressed from their own first camera, so a path that starts
    elsewhere is compared by its motion.

    Args:
        w2c, true: world-to-camera poses. [T, 4, 4]
    """
    if w2c.shape != true.shape or w2c.ndim != 3 or w2c.shape[1:] != (4, 4):
        raise ValueError(f"paths must both be [T, 4, 4], got {w2c.shape} and {true.shape}")
    if not 1 <= delta < len(w2c):
        raise ValueError(f"delta must be in [1, {len(w2c) - 1}], got {delta}")
    w2c = w2c @ invert_rigid(w2c[0])
    true = true @ invert_rigid(true[0])
    c_est, c_true = centres(w2c), centres(true)
    R, t, s = umeyama(c_est, c_true)
    ate = float(np.sqrt(np.mean(np.sum((c_true - (s * c_est @ R.T + t)) ** 2, axis=1))))
    c2w_est, c2w_true = invert_rigid(w2c), invert_rigid(true)
    rel_est = w2c[delta:] @ c2w_est[:-delta]  # camera i to camera i + delta
    rel_true = true[delta:] @ c2w_true[:-delta]
    err = rel_est.copy()
    err[:, :3, 3] *= s
    err = err @ invert_rigid(rel_true)
    rpe_t = float(np.sqrt(np.mean(np.sum(err[:, :3, 3] ** 2, axis=1))))
    rot = rotation_errors(rel_est, rel_true)
    return PathErrors(ate, rpe_t, float(np.sqrt(np.mean(rot**2))), rotation_errors(w2c, true),
                      direction_errors(w2c, true), s)
