"""Camera trajectory from a driving video, on a CPU with OpenCV only (no weights).

The person is masked out and the camera is tracked from the background:

1. **Tracks.** Shi-Tomasi corners followed frame to frame by pyramidal Lucas-Kanade (KLT)
   with a forward-backward check; every frame is topped up with new corners away from the
   live tracks, so what the camera reveals is tracked as well. Only corners that stand out of
   the frame's own noise are taken (their structure-tensor strength against the noise level
   measured in the frame): noise gives no tracks, and so no invented motion. After a frame
   with too few tracks (blank, blurred, covered) the last good frame's tracks are looked for
   again for ``max_gap`` frames. Every feature carries a track id; two frames share the ids
   they hold.
2. **Rotation or translation.** Each frame is compared with the *anchor*, the last frame
   placed with a translation (frame 0 at first), so that parallax accumulates over frames that
   each moved little. A pure rotation is fitted first (homography RANSAC for the inliers, then
   the least-squares rotation of the bearing vectors); its residual is the parallax left once
   rotation is compensated. While that parallax (upper quartile, pixels) is below
   ``parallax_threshold``, or the rotation explains the matches better than an essential
   matrix by Torr's GRIC, the frame is a rotation (translation zero) about its reference:
   pans are common in dance videos and an essential matrix is degenerate for them. Otherwise
   ``cv2.findEssentialMat`` (USAC, ``ransac_threshold`` pixels) and ``cv2.recoverPose`` (with
   no limit on the distance of an inlier, so the far background counts) give the rotation
   and the direction of the translation, refined on the inliers by
   Levenberg-Marquardt on the robust Sampson error; the frame becomes the new anchor.
3. **One scale.** An essential matrix gives a unit translation. The inliers of each
   translating step are triangulated (``cv2.triangulatePoints``) and kept, in world
   coordinates, as a small map; the next step's unit-baseline depths of the tracks it shares
   with the map are matched to the map's depths (median of the ratios), so every step is in
   the scale of the first translating step, whose length is 1: **the overall scale is
   arbitrary** (the scene stage rescales the path to the scene, see
   :func:`dreamdance.camera.normalise_scale`). Frames first placed as rotations are re-placed
   by PnP against the map once one is built (a slow translation is then not left as a
   rotation). A video that only rotates has no map and zero translation throughout.
4. **Chain and standardise.** Relative poses are chained into world-to-camera poses and
   :func:`dreamdance.camera.standardise`-d, so the first pose is the identity.

Fewer than two frames raise :class:`~dreamdance.errors.InputError`. Everything else gives a
path, and a warning line for each thing it could not see:

- no frame with ``min_features`` background features (a plain backdrop, a noise-only video,
  masks that cover it): a still camera (identity poses);
- a frame that cannot be placed (too few shared tracks or inliers: a blank frame) is placed
  on the way between its neighbours once the path is re-attached; lost for more than
  ``max_gap`` frames (a cut), the frames hold the last pose and the path goes on from there;
- a step whose scale cannot be measured (too few map points in view) takes the median of
  the earlier step lengths.

Such frames have ``scale_confidence`` 0.

Coordinates follow :mod:`dreamdance.camera`: OpenCV axes, world-to-camera poses, K in pixels
with pixel centres at ``+0.5`` (OpenCV's feature positions, with centres at integers, are
shifted by half a pixel to match).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from dreamdance.camera import Trajectory, interpolate_poses, standardise
from dreamdance.errors import InputError


@dataclass(frozen=True)
class TrackConfig:
    """Settings of :func:`track_camera`; lengths are in pixels of the frames given.

    Attributes:
        max_corners: most tracks alive at once; each frame is topped up to it with new
            corners away from the live tracks, so areas the camera reveals are tracked too.
        quality: Shi-Tomasi quality level, relative to the frame's best corner (corners are
            taken best first, so a low level only fills up ``max_corners`` in weak texture).
        noise_margin: a corner is taken only where its strength (the structure tensor's
            smaller eigenvalue) is this many times what the frame's own sensor noise could
            give; flat or noise-only frames then give no features rather than random ones.
        min_distance: least distance between two detected corners.
        window: Lucas-Kanade window size.
        levels: Lucas-Kanade pyramid levels above the full image.
        fb_threshold: largest forward-backward KLT error kept.
        max_gap: a frame that cannot be tracked (blank, blurred, covered) is bridged: the
            tracks of the last good frame are looked for again up to this many frames later.
        ransac_threshold: RANSAC inlier threshold (epipolar distance, transfer error); half of
            it is the feature noise assumed by the model choice.
        parallax_threshold: least rotation-compensated parallax (upper quartile) for a frame
            to be placed with a translation.
        keyframe_overlap: a rotation-only frame becomes the reference of the next ones when
            it shares fewer than this fraction of its reference's tracks.
        min_inliers: fewest shared tracks and model inliers for a frame to be placed.
        min_features: fewest background features some frame must have; with none, the camera
            is taken as still (identity poses) and a warning says so.
        min_scale_points: fewest map points for measuring a step's scale.
        mask_dilation: the person masks are grown by this radius before features are taken;
            at least half the window keeps the person out of every tracking window.
    """

    max_corners: int = 500
    quality: float = 0.001
    noise_margin: float = 4.0
    min_distance: float = 7.0
    window: int = 21
    levels: int = 3
    fb_threshold: float = 1.0
    max_gap: int = 3
    ransac_threshold: float = 1.0
    parallax_threshold: float = 2.0
    keyframe_overlap: float = 0.6
    min_inliers: int = 20
    min_features: int = 30
    min_scale_points: int = 10
    mask_dilation: int = 10

    def __post_init__(self):
        def fail(key: str, problem: str) -> InputError:
            return InputError(f"camtrack.{key}={getattr(self, key)}", problem)

        def number(key: str) -> float:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not np.isfinite(value):
                raise fail(key, "must be a finite number")
            return float(value)

        for key, least in (("max_corners", 1), ("window", 3), ("min_inliers", 8),
                           ("min_features", 1), ("min_scale_points", 1), ("max_gap", 0),
                           ("levels", 0), ("mask_dilation", 0)):
            value = number(key)
            if value != int(value) or value < least:
                raise fail(key, f"must be an integer >= {least}")
        for key in ("min_distance", "fb_threshold", "ransac_threshold", "parallax_threshold"):
            if not number(key) > 0:
                raise fail(key, "must be positive")
        if not number("noise_margin") >= 0:
            raise fail("noise_margin", "must be >= 0")
        for key in ("quality", "keyframe_overlap"):
            if not 0.0 < number(key) < 1.0:
                raise fail(key, "must be in (0, 1)")


@dataclass(frozen=True, eq=False)
class TrackResult:
    """What :func:`track_camera` found.

    Attributes:
        trajectory: the camera path, standardised (first pose the identity), arbitrary scale.
        inliers: per frame, the correspondences that agree with the model that placed it
            (rotation, essential matrix or PnP); for frame 0 the number of its background
            features; 0 for a frame that could not be placed. [T]
        scale_confidence: per frame, in [0, 1], the fraction of map points whose depth ratio
            is within 10% of its step's scale. 1 for frame 0, the step that sets the scale and
            rotations before any translation; a frame placed by PnP, or as a rotation, has the
            confidence of the step it depends on; 0 where the scale was assumed or the pose
            held. [T]
        rotation_only: per frame, whether it was placed as a pure rotation (no translation
            from its reference; frame 0, and frames held or bridged: True). [T]
        warnings: one line per frame held or bridged, or whose scale was assumed; one line
            for a video with nothing to track.
    """

    trajectory: Trajectory
    inliers: np.ndarray  # [T] int
    scale_confidence: np.ndarray  # [T] float
    rotation_only: np.ndarray  # [T] bool
    warnings: list[str]


class CameraTracker:
    """The camera tracker as a configured component: ``CameraTracker(**cfg)(frames, K, masks)``.

    Keyword arguments are the fields of :class:`TrackConfig` (``conf/camtrack/opencv.yaml``).
    """

    def __init__(self, **settings):
        self.cfg = TrackConfig(**settings)

    def __call__(self, frames: np.ndarray, K: np.ndarray, masks: np.ndarray | None = None,
                 name: str = "driving") -> TrackResult:
        return track_camera(frames, K, masks, self.cfg, name=name)

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self.cfg, f.name)!r}"
                           for f in dataclasses.fields(self.cfg))
        return f"CameraTracker({fields})"


def track_camera(
    frames: np.ndarray,
    K: np.ndarray,
    masks: np.ndarray | None = None,
    cfg: TrackConfig | None = None,
    name: str = "driving",
) -> TrackResult:
    """The camera path of a video, from its background (see the module notes for the method).

    Args:
        frames: RGB frames. [T, H, W, 3] uint8
        K: intrinsics of every frame, in pixels (pixel centres at ``+0.5``). [3, 3]
        masks: True on the person (or anything else that moves by itself), whose features are
            ignored; None: use the whole frame. [T, H, W] bool
        cfg: settings; default :class:`TrackConfig`.
        name: the input as the user knows it, for error messages.

    Returns:
        The trajectory (first pose the identity, arbitrary overall scale) with per-frame
        inlier counts, scale confidences and warnings.

    Raises:
        InputError: fewer than 2 frames.
    """
    cfg = cfg or TrackConfig()
    frames, K, masks = check_inputs(frames, K, masks, name)
    T, H, W = frames.shape[:3]
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])  # [T, H, W]
    background = background_masks(masks, T, H, W, cfg.mask_dilation)  # [T, H, W] uint8
    ids, pts = track_klt(gray, background, cfg)
    counts = np.array([len(i) for i in ids])
    if counts.max() < cfg.min_features:
        where = "the background" if masks is not None else "any frame"
        return still(T, K, W, H, [
            f"nothing to track: at most {counts.max()} features stand out of the noise on "
            f"{where} (need {cfg.min_features}); the camera is taken as still"])
    return _solve(ids, pts, K, W, H, cfg)


def check_inputs(frames: np.ndarray, K: np.ndarray, masks: np.ndarray | None,
                 name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A camera tracker's inputs as arrays, checked (see :func:`track_camera`).

    Returns:
        frames [T, H, W, 3] uint8, K [3, 3] float64, masks [T, H, W] bool or None.

    Raises:
        InputError: fewer than 2 frames.
        ValueError: shapes or types a caller got wrong.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be [T, H, W, 3] uint8, got {frames.shape} {frames.dtype}")
    T, H, W = frames.shape[:3]
    if T < 2:
        raise InputError(name, f"a camera path needs at least 2 frames, got {T}")
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K must be a finite [3, 3] with positive focal lengths, got shape "
                         f"{K.shape}")
    if masks is not None:
        masks = np.asarray(masks, dtype=bool)
        if masks.shape != (T, H, W):
            raise ValueError(f"masks must be [{T}, {H}, {W}] bool, got {masks.shape}")
    return frames, K, masks


def still(T: int, K: np.ndarray, W: int, H: int, warnings: list[str]) -> TrackResult:
    """The result for a video with nothing to track: identity poses, no inliers, confidence
    0, with the ``warnings`` that say why."""
    traj = Trajectory(np.repeat(np.eye(4)[None], T, 0), np.repeat(K[None], T, 0), W, H)
    return TrackResult(traj, np.zeros(T, np.int64), np.zeros(T), np.ones(T, bool), warnings)


# ---------------------------------------------------------------------------------------------
# Features and tracks
# ---------------------------------------------------------------------------------------------


def background_masks(masks: np.ndarray | None, T: int, H: int, W: int,
                     dilation: int) -> np.ndarray:
    """Where features may be taken: 255 off the person (``masks`` grown by ``dilation``).

    Args:
        masks: True on the person, or None. [T, H, W] bool

    Returns:
        [T, H, W] uint8, 255 = background.
    """
    if masks is None:
        return np.full((T, H, W), 255, np.uint8)
    person = masks.astype(np.uint8)
    if dilation > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilation + 1,) * 2)
        person = np.stack([cv2.dilate(m, kernel) for m in person])
    return np.where(person > 0, 0, 255).astype(np.uint8)


#: The structure tensor's smaller eigenvalue (``cv2.cornerMinEigenVal``, block 7, Sobel 3) at
#: the strongest pixel of white noise of unit standard deviation (measured: 2.1e-5 at the 99.9th
#: percentile, 2.6e-5 at the maximum of a 384 x 384 frame, for noise of 1 to 8 grey levels).
NOISE_EIGENVALUE = 2.6e-5


def noise_level(gray: np.ndarray) -> float:
    """Standard deviation of a frame's sensor noise, in grey levels: the median absolute
    response to the Laplacian-difference kernel of Immerkaer (1996), robust to edges. [H, W]"""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = cv2.filter2D(gray.astype(np.float32), -1, kernel)[1:-1, 1:-1]
    return float(1.4826 * np.median(np.abs(response)) / 6.0)


def trackable(gray: np.ndarray, margin: float) -> np.ndarray:
    """Where a corner stands out of the frame's noise: its smaller structure-tensor eigenvalue
    is over ``margin`` times the strongest that noise of the measured level (at least half a
    grey level, the quantisation) gives. [H, W] uint8 -> [H, W] uint8 (255 = trackable)"""
    floor = margin * NOISE_EIGENVALUE * max(noise_level(gray), 0.5) ** 2
    strength = cv2.cornerMinEigenVal(gray, 7, 3)
    return np.where(strength > floor, 255, 0).astype(np.uint8)


def _detect(gray: np.ndarray, allowed: np.ndarray, n: int, cfg: TrackConfig) -> np.ndarray:
    """Up to ``n`` Shi-Tomasi corners where ``allowed`` is 255 and the frame is
    :func:`trackable`, in OpenCV pixel coordinates (centre of pixel (0, 0) at 0). [N, 2] float32"""
    if n <= 0:
        return np.zeros((0, 2), np.float32)
    allowed = cv2.bitwise_and(allowed, trackable(gray, cfg.noise_margin))
    if not allowed.any():
        return np.zeros((0, 2), np.float32)
    found = cv2.goodFeaturesToTrack(gray, maxCorners=int(n), qualityLevel=cfg.quality,
                                    minDistance=cfg.min_distance, mask=allowed, blockSize=7)
    return np.zeros((0, 2), np.float32) if found is None else found.reshape(-1, 2)


def _flow(gray0: np.ndarray, gray1: np.ndarray, p: np.ndarray, allowed: np.ndarray,
          cfg: TrackConfig) -> tuple[np.ndarray, np.ndarray]:
    """Corners ``p`` of ``gray0`` found in ``gray1`` by pyramidal Lucas-Kanade, kept when the
    backward flow returns within ``fb_threshold`` and they land inside ``allowed`` (255).

    Returns:
        Positions [N, 2] float32 and which were kept [N] bool.
    """
    H, W = gray1.shape
    if not len(p):
        return p, np.zeros(0, bool)
    lk = dict(winSize=(cfg.window, cfg.window), maxLevel=cfg.levels,
              criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    q, st, _ = cv2.calcOpticalFlowPyrLK(gray0, gray1, p.reshape(-1, 1, 2), None, **lk)
    back, st_back, _ = cv2.calcOpticalFlowPyrLK(gray1, gray0, q, None, **lk)
    q, back = q.reshape(-1, 2), back.reshape(-1, 2)
    fb = np.linalg.norm(back - p, axis=1)
    inside = (q[:, 0] >= 0) & (q[:, 0] <= W - 1) & (q[:, 1] >= 0) & (q[:, 1] <= H - 1)
    keep = (st.ravel() == 1) & (st_back.ravel() == 1) & (fb < cfg.fb_threshold) & inside
    xi = np.clip(np.rint(q[:, 0]), 0, W - 1).astype(int)
    yi = np.clip(np.rint(q[:, 1]), 0, H - 1).astype(int)
    return q, keep & (allowed[yi, xi] > 0)


def track_klt(gray: np.ndarray, background: np.ndarray,
              cfg: TrackConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Corner tracks through a video (KLT with a forward-backward check).

    Each frame's tracks are followed into the next, and the frame is topped up to
    ``max_corners`` with new corners away from the live tracks. After a frame with fewer than
    ``min_features`` tracks (a blank or covered frame), the tracks of the last frame that had
    enough are looked for again, up to ``max_gap`` frames on, so the path can be re-attached.

    Args:
        gray: frames. [T, H, W] uint8
        background: where features may lie (255). [T, H, W] uint8

    Returns:
        Per frame, track ids [N_t] int64 and positions [N_t, 2] float64 in the continuous
        image coordinates of :mod:`dreamdance.camera` (pixel centres at ``+0.5``).
    """
    T = len(gray)
    p = _detect(gray[0], background[0], cfg.max_corners, cfg)
    ids_t = np.arange(len(p))
    next_id = len(p)
    good = (0, p, ids_t)  # the last frame with min_features tracks
    all_ids, all_pts = [ids_t], [p.astype(np.float64) + 0.5]
    for t in range(1, T):
        q, keep = _flow(gray[t - 1], gray[t], p, background[t], cfg)
        p, ids_t = q[keep], ids_t[keep]
        g, gp, gids = good
        if g != t - 1 and t - g <= cfg.max_gap + 1:  # bridge the frames since the good one
            q, keep = _flow(gray[g], gray[t], gp, background[t], cfg)
            again = keep & ~np.isin(gids, ids_t)
            p, ids_t = np.concatenate([p, q[again]]), np.concatenate([ids_t, gids[again]])
        allowed = background[t].copy()
        for x, y in p:  # no new corner next to a live track
            cv2.circle(allowed, (round(float(x)), round(float(y))),
                       max(1, round(cfg.min_distance)), 0, -1)
        new = _detect(gray[t], allowed, cfg.max_corners - len(p), cfg)
        p = np.concatenate([p, new]).astype(np.float32)
        ids_t = np.concatenate([ids_t, np.arange(next_id, next_id + len(new))])
        next_id += len(new)
        if len(p) >= cfg.min_features:
            good = (t, p, ids_t)
        all_ids.append(ids_t)
        all_pts.append(p.astype(np.float64) + 0.5)
    return all_ids, all_pts


# ---------------------------------------------------------------------------------------------
# Two-view geometry
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Chaining
# ---------------------------------------------------------------------------------------------


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


def _solve(ids: list[np.ndarray], pts: list[np.ndarray], K: np.ndarray, W: int, H: int,
           cfg: TrackConfig) -> TrackResult:
    """Place every frame in turn (see :class:`_Chain`) and standardise the poses."""
    chain = _Chain(ids, pts, K, cfg)
    for i in range(1, len(ids)):
        chain.add(i)
    chain.finish()
    traj = standardise(Trajectory(chain.w2c, np.repeat(K[None], len(ids), axis=0), W, H))
    return TrackResult(traj, chain.inliers, chain.conf, chain.rot_only, chain.warnings)
