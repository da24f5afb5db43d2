"""Temporal clean-up of pose sequences: gap filling, One-Euro smoothing, and input checks.

Every function works per person, part and keypoint, treats a keypoint whose confidence is
below ``threshold`` as absent in that frame, and returns a new :class:`PoseSequence` (the input
is not modified).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from dreamdance.errors import InputError
from dreamdance.motion.poses import PARTS, PoseSequence

log = logging.getLogger(__name__)

OUTSIDE_MARGIN = 0.1  # a point farther than this fraction of the frame outside it is dropped


def fill_gaps(poses: PoseSequence, max_gap: int = 4, threshold: float = 0.3) -> PoseSequence:
    """Fill short dropouts by linear interpolation.

    A run of at most ``max_gap`` frames below ``threshold``, with a confident frame on each side,
    gets x, y interpolated linearly between those two frames and the smaller of their
    confidences. Longer runs, and runs at the start or end, are left as they are.
    """
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    return _replace(poses, {part: _fill(getattr(poses, part), max_gap, threshold)
                            for part in PARTS})


def one_euro(poses: PoseSequence, min_cutoff: float = 1.0, beta: float = 0.01,
             d_cutoff: float = 1.0, threshold: float = 0.3) -> PoseSequence:
    """Smooth each keypoint coordinate with the One-Euro filter (Casiez et al., CHI 2012).

    The filter is an exponential smoother whose cutoff frequency rises with speed:
    ``fc = min_cutoff + beta · |dx̂|``, where ``dx̂`` is the derivative of the raw samples
    (pixels per second at ``poses.fps``, as in the authors' reference code) smoothed at
    ``d_cutoff``; ``alpha = r / (r + 1)`` with ``r = 2π fc / fps``.
    Jitter of a still point is damped by the low ``min_cutoff`` (Hz), fast motion passes with
    little lag (``beta``, per pixel/second). On a ramp of speed ``v`` (pixels/second) the
    steady lag is ``v / (2π fc)`` pixels.

    Only confident frames (confidence >= ``threshold``) are filtered; the filter restarts at
    the first confident frame after a gap, so it never pulls a point across a dropout.
    Confidences are unchanged.
    """
    for key, value in (("min_cutoff", min_cutoff), ("d_cutoff", d_cutoff)):
        if not value > 0:
            raise ValueError(f"{key} must be > 0, got {value}")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    out = {}
    for part in PARTS:
        arr = getattr(poses, part).copy()
        arr[..., :2] = _one_euro(arr[..., :2].astype(np.float64), arr[..., 2] >= threshold,
                                 float(poses.fps), min_cutoff, beta, d_cutoff)
        out[part] = arr
    return _replace(poses, out)


def sanitize(poses: PoseSequence, name: str) -> PoseSequence:
    """Check and clean a pose sequence from outside; ``name`` is the input, for messages.

    - A confident keypoint (confidence > 0) with a NaN or infinite x or y is refused:
      :class:`InputError` naming ``name``, the frame, person, part and keypoint.
    - A NaN or infinite confidence is read as absent: the keypoint becomes all zeros (count
      logged). This and the next rule are the only repairs made to bad input, and both are
      logged.
    - A keypoint farther outside the frame than 10% of its width (x) or height (y) is kept but
      marked absent (confidence 0; count logged).
    - Absent keypoints (confidence <= 0) with non-finite x or y get x = y = 0.
    """
    out, nan_conf, outside = {}, 0, 0
    w, h = poses.width, poses.height
    for part in PARTS:
        arr = getattr(poses, part).astype(np.float32, copy=True)
        conf = arr[..., 2]
        bad_conf = ~np.isfinite(conf)
        nan_conf += int(bad_conf.sum())
        arr[bad_conf] = 0
        finite_xy = np.isfinite(arr[..., :2]).all(-1)
        bad = (conf > 0) & ~finite_xy
        if bad.any():
            t, p, k = (int(i[0]) for i in np.nonzero(bad))
            raise InputError(name, f"frame {t} person {p} {part} keypoint {k}: NaN or "
                                   f"infinite coordinate ({bad.sum()} such keypoints)")
        arr[~finite_xy] = 0
        x, y = arr[..., 0], arr[..., 1]
        far = ((x < -OUTSIDE_MARGIN * w) | (x > (1 + OUTSIDE_MARGIN) * w)
               | (y < -OUTSIDE_MARGIN * h) | (y > (1 + OUTSIDE_MARGIN) * h)) & (conf > 0)
        outside += int(far.sum())
        conf[far] = 0
        out[part] = arr
    if nan_conf:
        log.warning("%s: %d keypoints with a NaN or infinite confidence treated as absent",
                    name, nan_conf)
    if outside:
        log.warning("%s: %d keypoints more than %d%% outside the %dx%d frame marked absent",
                    name, outside, round(OUTSIDE_MARGIN * 100), w, h)
    return _replace(poses, out)


def _fill(arr: np.ndarray, max_gap: int, threshold: float) -> np.ndarray:
    """Gap filling of one part: arr [T, P, K, 3]."""
    t_len = arr.shape[0]
    ok = arr[..., 2] >= threshold                                      # [T, P, K]
    t = np.arange(t_len).reshape(-1, 1, 1)
    prev = np.maximum.accumulate(np.where(ok, t, -1), axis=0)          # last confident <= t
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(ok, t, t_len), 0), axis=0), 0)
    fill = ~ok & (prev >= 0) & (nxt < t_len) & (nxt - prev - 1 <= max_gap)
    lo = np.clip(prev, 0, t_len - 1)[..., None]
    hi = np.clip(nxt, 0, t_len - 1)[..., None]
    a = np.take_along_axis(arr, np.broadcast_to(lo, arr.shape), 0).astype(np.float64)
    b = np.take_along_axis(arr, np.broadcast_to(hi, arr.shape), 0).astype(np.float64)
    w = ((t - prev) / np.maximum(nxt - prev, 1))[..., None]
    xy = a[..., :2] + w * (b[..., :2] - a[..., :2])
    conf = np.minimum(a[..., 2:], b[..., 2:])
    out = arr.copy()
    out[fill] = np.concatenate([xy, conf], -1)[fill].astype(arr.dtype)
    return out


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray | float:
    r = 2 * math.pi * cutoff / fps
    return r / (r + 1)


def _one_euro(xy: np.ndarray, ok: np.ndarray, fps: float, min_cutoff: float, beta: float,
              d_cutoff: float) -> np.ndarray:
    """xy [T, ..., 2] float64, ok [T, ...] -> filtered xy; non-confident frames unchanged."""
    out = xy.copy()
    a_d = _alpha(d_cutoff, fps)
    x_prev = np.zeros_like(xy[0])                # the previous raw sample
    x_hat = np.zeros_like(xy[0])
    dx_hat = np.zeros_like(xy[0])
    live = np.zeros(ok.shape[1:], bool)          # the filter has a state (previous frame ok)
    for t in range(xy.shape[0]):
        x, on = xy[t], ok[t]
        start = (on & ~live)[..., None]
        cont = (on & live)[..., None]
        dx_new = dx_hat + a_d * ((x - x_prev) * fps - dx_hat)
        a = _alpha(min_cutoff + beta * np.abs(dx_new), fps)
        x_new = x_hat + a * (x - x_hat)          # exactly x_hat when x == x_hat
        x_hat = np.where(cont, x_new, np.where(start, x, x_hat))
        dx_hat = np.where(cont, dx_new, np.where(start, 0.0, dx_hat))
        x_prev = np.where(on[..., None], x, x_prev)
        out[t] = np.where(on[..., None], x_hat, x)
        live = on
    return out


def _replace(poses: PoseSequence, arrays: dict[str, np.ndarray]) -> PoseSequence:
    return PoseSequence(**arrays, width=poses.width, height=poses.height, fps=poses.fps,
                        driver=poses.driver)
