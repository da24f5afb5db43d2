"""Two-view geometry of matched pixels: a pure rotation or an essential matrix, the model
chosen by GRIC, refinement on the Sampson error, triangulation."""

from __future__ import annotations

import cv2
import numpy as np


def bearings(p: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Unit viewing rays of pixels. [N, 2] -> [N, 3]"""
    b = np.linalg.solve(K, np.concatenate([p, np.ones((len(p), 1))], axis=1).T).T
    return b / np.linalg.norm(b, axis=1, keepdims=True)


def rotation_from_bearings(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """The rotation ``R`` minimising ``sum ||b2 - R b1||^2`` (Kabsch). [N, 3] x 2 -> [3, 3]"""
    U, _, Vt = np.linalg.svd(b2.T @ b1)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt


def _project(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Pixels of camera-frame points (or directions). [N, 3] -> [N, 2]"""
    x = X @ K.T
    return x[:, :2] / x[:, 2:3]


def rotation_fit(p1: np.ndarray, p2: np.ndarray, K: np.ndarray, threshold: float,
                 samples: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Pure-rotation model ``p2 ~ K R K^-1 p1``: RANSAC over two-point rotations, then the
    least-squares rotation of the bearing vectors refit on the points it transfers within
    ``threshold``. With a translation the best rotation explains the dominant depth; what it
    leaves elsewhere is the parallax.

    Args:
        p1, p2: matched pixels. [N, 2]
        samples: RANSAC draws (a fixed seed: the same input gives the same answer).

    Returns:
        ``R`` (camera 1 to camera 2) [3, 3] and each point's transfer error in pixels. [N]
    """
    b1, b2 = bearings(p1, K), bearings(p2, K)

    def errors(R):  # [..., 3, 3] -> [..., N]
        x = np.einsum("...ij,nj->...ni", K @ R, b1)
        return np.linalg.norm(x[..., :2] / x[..., 2:3] - p2, axis=-1)

    pairs = np.random.default_rng(0).integers(0, len(p1), (samples, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    M = np.einsum("sni,snj->sij", b2[pairs], b1[pairs])  # [S, 3, 3]
    U, _, Vt = np.linalg.svd(M)
    D = np.ones((len(M), 3))
    D[:, 2] = np.sign(np.linalg.det(U @ Vt))
    Rs = U @ (D[:, :, None] * Vt)  # Kabsch per sample
    with np.errstate(invalid="ignore", divide="ignore"):
        score = (errors(Rs) < threshold).sum(axis=1)
    R = Rs[int(np.argmax(score))] if len(Rs) else np.eye(3)
    err = errors(R)
    for _ in range(3):
        inl = err < threshold
        if inl.sum() < 3:
            break
        R = rotation_from_bearings(b1[inl], b2[inl])
        err = errors(R)
    return R, err


def gric(sq_errors: np.ndarray, sigma: float, manifold_dim: int, params: int) -> float:
    """Torr's Geometric Robust Information Criterion of a two-view model (lower is better).

    ``sum(min(e^2 / sigma^2, 2 (4 - d))) + log(4) d n + log(4 n) k`` for ``n`` correspondences
    (points in a 4-dimensional space), a model manifold of dimension ``d`` and ``k`` parameters:
    a pure rotation has ``d = 2, k = 3``, an essential matrix ``d = 3, k = 5``.

    Args:
        sq_errors: squared geometric distances of the correspondences to the model. [N]
        sigma: the feature noise, in the same units.
    """
    n = len(sq_errors)
    capped = np.minimum(sq_errors / sigma**2, 2.0 * (4 - manifold_dim))
    return float(capped.sum() + np.log(4.0) * manifold_dim * n + np.log(4.0 * n) * params)


def sampson_errors(p1: np.ndarray, p2: np.ndarray, K: np.ndarray, R: np.ndarray,
                   t: np.ndarray) -> np.ndarray:
    """Sampson distances in pixels of matches to the epipolar geometry of ``(R, t)``. [N]"""
    Kinv = np.linalg.inv(K)
    F = Kinv.T @ _skew(t) @ R @ Kinv
    one = np.ones((len(p1), 1))
    return np.abs(_sampson(np.concatenate([p1, one], 1), np.concatenate([p2, one], 1), F))


def essential_fit(p1: np.ndarray, p2: np.ndarray, K: np.ndarray,
                  threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relative pose from an essential matrix: USAC (``threshold`` pixels), the cheirality check
    of ``cv2.recoverPose``, then :func:`refine_relative_pose` on the inliers.

    Args:
        p1, p2: matched pixels. [N, 2]

    Returns:
        ``R`` [3, 3] and unit ``t`` [3] with ``x2 = R x1 + t`` (camera-1 to camera-2
        coordinates), and the inliers [N] bool (none when no model was found).
    """
    E, emask = cv2.findEssentialMat(p1, p2, K, method=cv2.USAC_ACCURATE, prob=0.999,
                                    threshold=threshold)
    if E is None or emask is None or E.shape[0] < 3:
        return np.eye(3), np.zeros(3), np.zeros(len(p1), bool)
    # every inlier counts, however far: the default distance threshold (50 baselines) would
    # drop the far background of a small step and keep only the nearest surface
    _, R, t, pmask, _ = cv2.recoverPose(E[:3], p1, p2, K, distanceThresh=1e9,
                                        mask=emask.copy())
    inl = pmask.ravel() > 0
    if inl.sum() < 5:
        return np.eye(3), np.zeros(3), inl
    R, t = refine_relative_pose(p1[inl], p2[inl], K, R, t.ravel(), 0.5 * threshold)
    return R, t, inl


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def _exp_so3(w: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(w.reshape(3, 1))[0]


def _sampson(p1h: np.ndarray, p2h: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Signed Sampson distances (pixels) of homogeneous pixels under a fundamental matrix."""
    Fx1 = p1h @ F.T  # [N, 3]
    Ftx2 = p2h @ F  # [N, 3]
    num = np.sum(p2h * Fx1, axis=1)
    den = np.sqrt(Fx1[:, 0] ** 2 + Fx1[:, 1] ** 2 + Ftx2[:, 0] ** 2 + Ftx2[:, 1] ** 2)
    return num / np.maximum(den, 1e-12)


def refine_relative_pose(p1: np.ndarray, p2: np.ndarray, K: np.ndarray, R: np.ndarray,
                         t: np.ndarray, scale: float, iterations: int = 15
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg-Marquardt on the robust (Cauchy, ``scale`` pixels) Sampson error over ``R``
    and the unit ``t``, with a numeric Jacobian; a step is kept only if it lowers the cost.

    Args:
        p1, p2: inlier pixels. [N, 2]
        R, t: initial relative pose. [3, 3], [3]
        scale: residual (pixels) at which the Cauchy loss starts to flatten.

    Returns:
        Refined ``R`` [3, 3] and unit ``t`` [3].
    """
    Kinv = np.linalg.inv(K)
    p1h = np.concatenate([p1, np.ones((len(p1), 1))], axis=1)
    p2h = np.concatenate([p2, np.ones((len(p2), 1))], axis=1)
    t = t / np.linalg.norm(t)

    def residual(R_, t_):
        return _sampson(p1h, p2h, Kinv.T @ _skew(t_) @ R_ @ Kinv)

    def cost_of(r):
        return float(np.sum(np.log1p((r / scale) ** 2)))

    def apply(R_, t_, d):
        a = np.eye(3)[np.argmin(np.abs(t_))]  # two unit vectors orthogonal to t
        u = np.cross(t_, a)
        u /= np.linalg.norm(u)
        t_new = t_ + d[3] * u + d[4] * np.cross(t_, u)
        return _exp_so3(d[:3]) @ R_, t_new / np.linalg.norm(t_new)

    r = residual(R, t)
    cost, lam, eps = cost_of(r), 1e-3, 1e-6
    for _ in range(iterations):
        w = 1.0 / (1.0 + (r / scale) ** 2)  # IRLS weights of the Cauchy loss
        J = np.stack([(residual(*apply(R, t, eps * e)) - r) / eps for e in np.eye(5)], axis=1)
        A = J.T @ (w[:, None] * J)
        d = -np.linalg.solve(A + lam * np.diag(np.diag(A) + 1e-12), J.T @ (w * r))
        R_new, t_new = apply(R, t, d)
        r_new = residual(R_new, t_new)
        if cost_of(r_new) < cost:
            R, t, r, cost, lam = R_new, t_new, r_new, cost_of(r_new), lam * 0.3
        else:
            lam *= 10.0
        if np.abs(d).max() < 1e-10:
            break
    return R, t


def triangulate(p1: np.ndarray, p2: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray,
                max_error: float) -> tuple[np.ndarray, np.ndarray]:
    """Points in camera-1 coordinates from two views ``[I | 0]`` and ``[R | t]``.

    Args:
        p1, p2: matched pixels. [N, 2]
        max_error: largest reprojection error (pixels) in either view of a kept point.

    Returns:
        Points [N, 3] and which are valid [N] bool: in front of both cameras, finite, and
        reprojecting within ``max_error``.
    """
    P1 = K @ np.concatenate([np.eye(3), np.zeros((3, 1))], axis=1)
    P2 = K @ np.concatenate([R, t.reshape(3, 1)], axis=1)
    Xh = cv2.triangulatePoints(P1, P2, p1.T.astype(np.float64), p2.T.astype(np.float64)).T
    with np.errstate(divide="ignore", invalid="ignore"):
        X = Xh[:, :3] / Xh[:, 3:4]
    X2 = X @ R.T + t
    ok = np.isfinite(X).all(axis=1) & (X[:, 2] > 0) & (X2[:, 2] > 0)
    X = np.where(ok[:, None], X, 1.0)
    X2 = np.where(ok[:, None], X2, 1.0)
    err = np.maximum(np.linalg.norm(_project(K, X) - p1, axis=1),
                     np.linalg.norm(_project(K, X2) - p2, axis=1))
    return X, ok & (err < max_error)
