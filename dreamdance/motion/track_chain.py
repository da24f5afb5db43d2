"""Frames placed one after another into a camera path: each against its anchor (rotation or
translation), the scale carried by a small map of triangulated points, PnP for frames first
placed as rotations (see :mod:`dreamdance.motion.camera_track`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np

from dreamdance.camera import Trajectory, interpolate_poses, standardise
from dreamdance.motion.track_result import TrackResult
from dreamdance.motion.two_view import (
    essential_fit,
    gric,
    rotation_fit,
    sampson_errors,
    triangulate,
)

if TYPE_CHECKING:
    from dreamdance.motion.camera_track import TrackConfig


def _relative(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = R, t
    return out


def resect(X: np.ndarray, p: np.ndarray, K: np.ndarray, w2c: np.ndarray,
           threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera pose from known world points (PnP RANSAC from ``w2c``, then Levenberg-Marquardt
    on the inliers).

    Args:
        X: world points. [N, 3]
        p: their pixels. [N, 2]
        w2c: initial pose. [4, 4]
        threshold: RANSAC reprojection threshold in pixels.

    Returns:
        The pose [4, 4] and the inliers [N] bool (none when it failed).
    """
    rvec = cv2.Rodrigues(w2c[:3, :3])[0]
    tvec = w2c[:3, 3].reshape(3, 1).copy()
    ok, rvec, tvec, idx = cv2.solvePnPRansac(X, p, K, None, rvec, tvec, useExtrinsicGuess=True,
                                             iterationsCount=200, reprojectionError=threshold,
                                             confidence=0.999, flags=cv2.SOLVEPNP_ITERATIVE)
    inl = np.zeros(len(X), bool)
    if not ok or idx is None or len(idx) < 6:
        return w2c, inl
    inl[idx.ravel()] = True
    rvec, tvec = cv2.solvePnPRefineLM(X[inl], p[inl], K, None, rvec, tvec)
    return _relative(cv2.Rodrigues(rvec)[0], tvec.ravel()), inl


class _Placement(NamedTuple):
    """Frame ``i`` relative to a reference frame, from their shared tracks."""

    R: np.ndarray  # [3, 3] reference camera to frame camera
    t: np.ndarray | None  # [3] unit translation, None for a pure rotation
    inliers: int
    shared: np.ndarray  # [M] ids of the shared tracks used
    X: np.ndarray | None  # [M, 3] triangulated, reference coordinates, unit baseline
    valid: np.ndarray | None  # [M] essential inliers with a valid triangulation
    outliers: np.ndarray | None  # [M] essential outliers


def _place(ids1: np.ndarray, p1: np.ndarray, ids2: np.ndarray, p2: np.ndarray, K: np.ndarray,
           cfg: TrackConfig, bad: np.ndarray) -> _Placement | None:
    """Pose of frame 2 relative to frame 1 from their shared tracks (not in ``bad``), or None.

    A pure rotation is kept unless the rotation-compensated parallax reaches
    ``cfg.parallax_threshold`` (upper quartile) and the essential matrix explains the matches
    better by GRIC (noise ``ransac_threshold / 2``).
    """
    shared, a, b = np.intersect1d(ids1, ids2, return_indices=True)
    keep = ~np.isin(shared, bad)
    shared, a, b = shared[keep], a[keep], b[keep]
    if len(a) < cfg.min_inliers:
        return None
    q1, q2 = p1[a], p2[b]
    R_rot, err_rot = rotation_fit(q1, q2, K, cfg.ransac_threshold)
    n_rot = int((err_rot < cfg.ransac_threshold).sum())
    rotation = _Placement(R_rot, None, n_rot, shared, None, None, None) \
        if n_rot >= cfg.min_inliers else None
    if np.percentile(err_rot, 75) < cfg.parallax_threshold:
        return rotation
    R, t, inl = essential_fit(q1, q2, K, cfg.ransac_threshold)
    if inl.sum() < cfg.min_inliers:
        return rotation
    sigma = 0.5 * cfg.ransac_threshold
    g_rot = gric(0.5 * err_rot**2, sigma, 2, 3)  # a transfer error is shared by two images
    g_ess = gric(sampson_errors(q1, q2, K, R, t) ** 2, sigma, 3, 5)
    if rotation is not None and g_rot <= g_ess:
        return rotation
    X, valid = triangulate(q1, q2, K, R, t, 2.0 * cfg.ransac_threshold)
    return _Placement(R, t, int(inl.sum()), shared, X, valid & inl, ~inl)


class _Chain:
    """Poses placed so far and what places the next frame.

    - ``anchor``: the last frame placed with a translation (or frame 0): the reference a
      translation is measured from, so parallax accumulates over frames that each moved little.
    - ``key``: the reference of rotation-only frames; moves on when it shares too few tracks.
    - the map: world points (with track ids) triangulated at the latest translating steps;
      tracks an essential matrix rejects are not used again (``bad``).
    - ``pending``: frames placed as rotations since the anchor, re-placed by PnP against the
      map once there is one (so a slow translation is not left as a rotation).
    """

    def __init__(self, ids: list[np.ndarray], pts: list[np.ndarray], K: np.ndarray,
                 cfg: TrackConfig):
        T = len(ids)
        self.ids, self.pts, self.K, self.cfg = ids, pts, K, cfg
        self.w2c = np.repeat(np.eye(4)[None], T, axis=0)
        self.inliers = np.zeros(T, np.int64)
        self.inliers[0] = len(ids[0])
        self.conf = np.ones(T)
        self.rot_only = np.ones(T, bool)
        self.warnings: list[str] = []
        self.anchor = self.key = 0
        self.map_ids = np.zeros(0, np.int64)
        self.map_X = np.zeros((0, 3))
        self.map_conf = 1.0
        self.bad = np.zeros(0, np.int64)  # tracks found to be outliers
        self.steps: list[float] = []  # lengths of the translating steps
        self.pending: list[int] = []
        self.last = 0  # the last frame placed
        self.lost: list[int] = []  # frames not placed since then

    def place(self, ref: int, i: int) -> _Placement | None:
        return _place(self.ids[ref], self.pts[ref], self.ids[i], self.pts[i], self.K, self.cfg,
                      self.bad)

    def add(self, i: int) -> None:
        """Place frame ``i``."""
        cfg = self.cfg
        found, ref = self.place(self.anchor, i), self.anchor
        if (found is None or found.t is None) and self.key != self.anchor:
            at_key = self.place(self.key, i)  # more shared tracks for a rotation
            if at_key is not None:
                found, ref = at_key, self.key
        if found is None and self.last not in (self.anchor, self.key):
            found, ref = self.place(self.last, i), self.last
        if found is None:
            if i - self.last <= cfg.max_gap or len(self.ids[i]) < cfg.min_features:
                self.lost.append(i)  # placed later, between its placed neighbours
            else:
                self.cut(i)
            return
        if found.t is None:
            self.w2c[i] = _relative(found.R, np.zeros(3)) @ self.w2c[ref]
            self.inliers[i], self.conf[i] = found.inliers, self.conf[ref]
            self.pending.append(i)
            if ref != self.key or len(found.shared) < cfg.keyframe_overlap * len(self.ids[ref]):
                self.key = i
        else:
            self.translate(ref, i, found)
        self.bridge(i)

    def bridge(self, i: int) -> None:
        """Place the lost frames between the last placed frame and ``i`` on the way between
        them (rotations by slerp, centres on the line), with a warning each."""
        a = self.last
        if self.lost:
            lost = np.array(self.lost)
            n = len(lost)
            self.w2c[lost] = interpolate_poses(np.repeat(self.w2c[a][None], n, 0),
                                               np.repeat(self.w2c[i][None], n, 0),
                                               (lost - a) / (i - a))
            self.conf[lost] = 0.0
            for j in self.lost:
                self.warnings.append(f"frame {j}: too few background tracks agree on a camera "
                                     f"motion; pose interpolated between frames {a} and {i}")
            self.lost.clear()
        self.last = i

    def cut(self, i: int) -> None:
        """Frames lost for longer than ``max_gap`` (a cut, or a long covered stretch): they
        hold the last placed pose, and the path goes on from frame ``i``, the first one after
        them with features to track."""
        self.resolve()
        a = self.last
        for j in [*self.lost, i]:
            self.w2c[j], self.conf[j] = self.w2c[a], 0.0
            self.warnings.append(f"frame {j}: too few background tracks agree on a camera "
                                 f"motion; pose held from frame {a}")
        self.lost.clear()
        self.anchor = self.key = self.last = i
        self.map_ids, self.map_X = self.map_ids[:0], self.map_X[:0]

    def finish(self) -> None:
        """Frames lost at the end hold the last placed pose; pending rotations are resolved."""
        self.resolve()
        for j in self.lost:
            self.w2c[j], self.conf[j] = self.w2c[self.last], 0.0
            self.warnings.append(f"frame {j}: too few background tracks agree on a camera "
                                 f"motion; pose held from frame {self.last}")
        self.lost.clear()

    def translate(self, ref: int, i: int, found: _Placement) -> None:
        """Place ``i`` by a translating step from ``ref``, scaled to the map, and extend it."""
        cfg, base = self.cfg, self.w2c[ref]
        self.rot_only[i] = False
        self.inliers[i] = found.inliers
        self.bad = np.union1d(self.bad, found.shared[found.outliers])
        tri_ids, X_unit = found.shared[found.valid], found.X[found.valid]
        _, a, b = np.intersect1d(tri_ids, self.map_ids, return_indices=True)
        X_old = self.map_X[b] @ base[:3, :3].T + base[:3, 3]  # reference coordinates
        ratio = X_old[:, 2] / X_unit[a, 2]
        ratio = ratio[ratio > 0]
        if len(ratio) >= cfg.min_scale_points:
            scale = float(np.exp(np.median(np.log(ratio))))
            self.conf[i] = float(np.mean(np.abs(ratio / scale - 1.0) < 0.1))
        elif not self.steps:
            scale = 1.0  # the first translating step sets the (arbitrary) unit
        else:
            scale, self.conf[i] = float(np.median(self.steps)), 0.0
            self.warnings.append(f"frame {i}: too few triangulated points in view to measure "
                                 f"the scale ({len(ratio)} < {cfg.min_scale_points}); step "
                                 "length assumed from the earlier steps")
        self.steps.append(scale)
        self.w2c[i] = _relative(found.R, scale * found.t) @ base
        X_world = (scale * X_unit - base[:3, 3]) @ base[:3, :3]
        old = ~np.isin(self.map_ids, tri_ids)
        self.map_ids = np.concatenate([self.map_ids[old], tri_ids])
        self.map_X = np.concatenate([self.map_X[old], X_world])
        self.map_conf = self.conf[i]
        self.resolve()
        self.anchor = self.key = i

    def resolve(self) -> None:
        """Re-place the pending rotation frames by PnP against the map, where it is seen."""
        cfg = self.cfg
        for j in self.pending:
            keep = ~np.isin(self.ids[j], self.bad)
            common, a, b = np.intersect1d(self.map_ids, self.ids[j][keep], return_indices=True)
            if len(common) < max(cfg.min_inliers, cfg.min_scale_points):
                continue
            pose, inl = resect(self.map_X[a], self.pts[j][keep][b], self.K, self.w2c[j],
                               cfg.ransac_threshold)
            if inl.sum() >= cfg.min_inliers:
                self.w2c[j], self.inliers[j], self.conf[j] = pose, int(inl.sum()), self.map_conf
                self.rot_only[j] = False
                drop = np.isin(self.map_ids, common[~inl])  # map points it disagrees with
                self.map_ids, self.map_X = self.map_ids[~drop], self.map_X[~drop]
        self.pending.clear()


def chain_path(ids: list[np.ndarray], pts: list[np.ndarray], K: np.ndarray, W: int, H: int,
           cfg: TrackConfig) -> TrackResult:
    """Place every frame in turn (see :class:`_Chain`) and standardise the poses."""
    chain = _Chain(ids, pts, K, cfg)
    for i in range(1, len(ids)):
        chain.add(i)
    chain.finish()
    traj = standardise(Trajectory(chain.w2c, np.repeat(K[None], len(ids), axis=0), W, H))
    return TrackResult(traj, chain.inliers, chain.conf, chain.rot_only, chain.warnings)
