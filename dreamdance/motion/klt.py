"""Background features tracked through a video: Shi-Tomasi corners that stand out of the
frame's noise, followed by pyramidal Lucas-Kanade with a forward-backward check (see
:mod:`dreamdance.motion.camera_track`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from dreamdance.motion.camera_track import TrackConfig


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
