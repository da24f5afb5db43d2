"""The pose file (``motion/poses.json``): whole-body keypoints per frame, in pixels.

Parts and their keypoint counts follow OpenPose: ``body`` COCO-18 (OpenPose order: nose, neck,
right shoulder/elbow/wrist, left shoulder/elbow/wrist, right hip/knee/ankle, left
hip/knee/ankle, right eye, left eye, right ear, left ear), ``face`` 68, ``left_hand`` and
``right_hand`` 21 each. A keypoint is ``(x, y, confidence)`` in pixels of the stated
``width`` × ``height``; confidence 0 means absent, so a part that was not detected is all zeros.
Several people may be present; ``driver`` names the one that drives the animation. File::

    {"format": "dreamdance-poses", "version": 1, "width": 512, "height": 512, "fps": 8,
     "driver": 0,
     "frames": [{"people": [{"body": [[x, y, c], ...18], "face": [...68] | null,
                             "left_hand": [...21] | null, "right_hand": [...21] | null}]}]}
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from dreamdance.errors import InputError
from dreamdance.io import read_json, write_json

FORMAT = "dreamdance-poses"
PARTS = {"body": 18, "face": 68, "left_hand": 21, "right_hand": 21}
BODY_NAMES = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear",
)


@dataclass
class PoseSequence:
    """Keypoints of every person in every frame; absent people/parts have confidence 0.

    Args:
        body: [T, P, 18, 3] float32 (x, y, confidence).
        face: [T, P, 68, 3].
        left_hand: [T, P, 21, 3].
        right_hand: [T, P, 21, 3].
        width, height: the pixel frame the coordinates refer to.
        fps: frames per second of the motion.
        driver: index of the person that drives the animation.
    """

    body: np.ndarray
    face: np.ndarray
    left_hand: np.ndarray
    right_hand: np.ndarray
    width: int
    height: int
    fps: float
    driver: int = 0

    def __post_init__(self):
        t, p = self.body.shape[:2]
        for part, k in PARTS.items():
            arr = getattr(self, part)
            if arr.shape != (t, p, k, 3):
                raise ValueError(f"{part}: expected shape {(t, p, k, 3)}, got {arr.shape}")
        if not 0 <= self.driver < max(p, 1):
            raise ValueError(f"driver {self.driver} out of range for {p} people")

    def __len__(self) -> int:
        return self.body.shape[0]

    @property
    def num_people(self) -> int:
        return self.body.shape[1]


def read_poses(path: str | os.PathLike, name: str | None = None) -> PoseSequence:
    """Read our pose file; every problem is an :class:`InputError` naming ``name`` (the input)."""
    name = name or str(path)
    if not os.path.isfile(path):
        raise InputError(name, "file not found")
    try:
        data = read_json(path)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(name, f"not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(name, f"not a pose file (expected \"format\": \"{FORMAT}\")")
    try:
        width, height = int(data["width"]), int(data["height"])
        fps, driver, frames = float(data.get("fps", 8)), int(data.get("driver", 0)), data["frames"]
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(name, f"missing or malformed header field {e}") from None
    if width <= 0 or height <= 0 or not math.isfinite(fps) or fps <= 0:
        raise InputError(name, f"bad header: width={width}, height={height}, fps={fps}")
    if not frames:
        raise InputError(name, "no frames")
    num_people = max(len(f.get("people", [])) for f in frames)
    arrays = {part: np.zeros((len(frames), num_people, k, 3), np.float32)
              for part, k in PARTS.items()}
    for i, frame in enumerate(frames):
        for j, person in enumerate(frame.get("people", [])):
            for part, k in PARTS.items():
                pts = person.get(part)
                if pts is None:
                    continue
                arr = np.asarray(pts, dtype=np.float32)
                if arr.shape != (k, 3):
                    raise InputError(name, f"frame {i} person {j} {part}: expected {k} keypoints "
                                           f"of (x, y, confidence), got shape {arr.shape}")
                if not np.isfinite(arr).all():
                    raise InputError(name, f"frame {i} person {j} {part}: NaN or infinite value")
                arrays[part][i, j] = arr
    if num_people and not 0 <= driver < num_people:
        raise InputError(name, f"driver {driver} but only {num_people} people")
    return PoseSequence(**arrays, width=width, height=height, fps=fps, driver=driver)


def write_poses(path: str | os.PathLike, poses: PoseSequence, decimals: int = 2) -> None:
    """Write our pose file atomically; absent parts (all confidence 0) are written as null."""
    frames = []
    for t in range(len(poses)):
        people = []
        for p in range(poses.num_people):
            person = {}
            for part in PARTS:
                arr = getattr(poses, part)[t, p]
                person[part] = np.round(arr, decimals).tolist() if (arr[:, 2] > 0).any() else None
            people.append(person)
        frames.append({"people": people})
    write_json(path, {"format": FORMAT, "version": 1, "width": poses.width,
                      "height": poses.height, "fps": poses.fps, "driver": poses.driver,
                      "frames": frames})


def resample_poses(poses: PoseSequence, n: int) -> PoseSequence:
    """Resample to ``n`` frames over the same duration (fps scales by ``n / len``).

    A keypoint confident in both neighbouring frames is interpolated linearly; otherwise the
    nearer frame's keypoint (and confidence) is taken, so absent points never drift.
    """
    t_old = len(poses)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n == t_old:
        return poses
    src = np.linspace(0, t_old - 1, n)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, t_old - 1)
    w = (src - lo).astype(np.float32)[:, None, None, None]
    out = {}
    for part in PARTS:
        a = getattr(poses, part)
        nearest = np.where(w < 0.5, a[lo], a[hi])
        both = (a[lo, ..., 2:] > 0) & (a[hi, ..., 2:] > 0)
        linear = (1 - w) * a[lo] + w * a[hi]
        xy = np.where(both, linear[..., :2], nearest[..., :2])
        out[part] = np.concatenate([xy, nearest[..., 2:]], axis=-1).astype(np.float32)
    return PoseSequence(**out, width=poses.width, height=poses.height,
                        fps=poses.fps if t_old == 1 else poses.fps * (n - 1) / (t_old - 1),
                        driver=poses.driver)


TOO_SHORT = ("refuse", "hold", "loop")


def frame_index(n: int, frames: int, too_short: str = "refuse", name: str = "poses") -> np.ndarray:
    """Indices of the first ``frames`` of ``n``; when ``n < frames``: refuse (``InputError``
    naming ``name``), ``hold`` the last, or ``loop``. [frames] int"""
    if n >= frames:
        return np.arange(frames)
    if too_short == "refuse":
        raise InputError(name, f"{n} frames, fewer than frames={frames} "
                               "(lower frames, or set motion.too_short=hold or loop)")
    return np.minimum(np.arange(frames), n - 1) if too_short == "hold" else np.arange(frames) % n


def fit_to_frames(poses: PoseSequence, frames: int, fps: float, too_short: str = "refuse",
                  name: str = "poses") -> PoseSequence:
    """Retime ``poses`` to ``fps`` and take its first ``frames`` frames.

    A sequence that is still too short is refused (``InputError`` naming ``name``), held on its
    last pose (``hold``) or started again (``loop``).
    """
    if too_short not in TOO_SHORT:
        raise InputError(f"motion.too_short={too_short}", f"must be one of {', '.join(TOO_SHORT)}")
    if abs(poses.fps - fps) > 1e-6 and len(poses) > 1:
        poses = resample_poses(poses, round((len(poses) - 1) * fps / poses.fps) + 1)
    index = frame_index(len(poses), frames, too_short, name=name)
    return PoseSequence(**{part: getattr(poses, part)[index] for part in PARTS},
                        width=poses.width, height=poses.height, fps=float(fps),
                        driver=poses.driver)
