"""What a pose backend is (``conf/pose/``, built with ``build(cfg.pose)``), and the steps every
backend shares.

A backend is called on a clip and returns a :class:`~dreamdance.motion.poses.PoseSequence` in
the frames' pixels (:class:`PoseBackend`); :func:`estimate_image` runs any backend on one image.
Both backends (:class:`~dreamdance.motion.dwpose.DWPoseExtractor`,
:class:`~dreamdance.motion.vitpose.ViTPoseExtractor`) detect people, predict COCO or
COCO-WholeBody keypoints for each, and hand them per frame to :func:`to_sequence`, which
pads the frames to one number of people and converts the keypoints to our parts
(:func:`~dreamdance.motion.keypoints.keypoints_to_parts`). Person ``p`` of a frame is its
``p``-th largest box: a rank, not a tracked identity.
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any, Protocol

import numpy as np

from dreamdance.errors import InputError
from dreamdance.motion.keypoints import keypoints_to_parts
from dreamdance.motion.poses import PoseSequence

log = logging.getLogger(__name__)


class PoseBackend(Protocol):
    """A pose estimator, as ``stage=motion`` and ``tools/prepare_data`` call it."""

    def __call__(self, frames: np.ndarray, fps: float = 8.0,
                 progress: bool = True) -> PoseSequence:
        """The poses of every frame.

        Args:
            frames: uint8 RGB. [T, H, W, 3]
            fps: the frames' rate, stored in the result.
            progress: show a progress bar.

        Returns:
            ``T`` frames in the frames' pixels (``W x H``), ``driver=0``, with as many people
            as the most crowded frame; a frame with fewer has zeros (absent) in the remaining
            slots, and a clip where nobody was found holds no people (logged).
        """
        ...


def estimate_image(backend: PoseBackend, rgb: np.ndarray, fps: float = 8.0) -> PoseSequence:
    """The poses in one image (the art, for its own pose), as a one-frame sequence.

    Args:
        backend: any pose backend.
        rgb: uint8 RGB. [H, W, 3]
        fps: the rate to record in the sequence.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3:
        raise ValueError(f"rgb must be [H, W, 3], got shape {rgb.shape}")
    return backend(rgb[None], fps=fps, progress=False)


def check_frames(frames: Any) -> np.ndarray:
    """``frames`` as a contiguous uint8 array [T, H, W, 3] with ``T, H, W >= 1``, else a
    ``ValueError``."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape[:3]) < 1:
        raise ValueError(f"frames must be [T, H, W, 3] with T >= 1, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
    return np.ascontiguousarray(frames)


def check_fps(fps: Any) -> float:
    """``fps`` as a float when it is a positive finite number, else a ``ValueError``."""
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not math.isfinite(fps) \
            or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    return float(fps)


def to_sequence(per_frame: list[np.ndarray], width: int, height: int, fps: float,
                name: str, det_threshold: float) -> PoseSequence:
    """The people found in each frame -> one sequence.

    Args:
        per_frame: per frame, each person's keypoints ``(x, y, confidence)`` in frame pixels,
            largest box first, in a model layout (17 or 133 keypoints). [n_t, K, 3]
        width, height: the frames' size.
        fps: their rate.
        name: the backend, for the log.
        det_threshold: the detector's threshold, for the log.

    Returns:
        ``len(per_frame)`` frames with ``max(n_t)`` people; the slots of a frame with fewer are
        zeros (absent). A frame with nobody is logged, and so is a clip with nobody at all.
    """
    assert per_frame, "no frames"
    t, k = len(per_frame), per_frame[0].shape[-2]
    people = max(len(kp) for kp in per_frame)
    kp_all = np.zeros((t, people, k, 3), np.float32)  # [T, P, K, 3]
    for i, kp in enumerate(per_frame):
        kp_all[i, :len(kp)] = kp
    empty = sum(len(kp) == 0 for kp in per_frame)
    if people == 0:
        log.warning("%s found nobody in any of the %d frames (no person scored above the "
                    "detector threshold %.2f): the pose track is empty", name, t, det_threshold)
    elif empty:
        log.warning("%s found nobody in %d of %d frames (left empty)", name, empty, t)
    return PoseSequence(**keypoints_to_parts(kp_all), width=width, height=height,
                        fps=float(fps), driver=0)


def check_threshold(value: Any, key: str) -> float:
    """A detector threshold: a number in ``[0, 1)``, else an :class:`InputError` naming
    ``key``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise InputError(f"{key}={value}", "must be a number in [0, 1)")
    return float(value)


def check_int(value: Any, key: str, low: int) -> int:
    """A whole-number setting ``>= low``, else an :class:`InputError` naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InputError(f"{key}={value}", f"must be an integer >= {low}")
    return int(value)
