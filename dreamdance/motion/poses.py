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

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dreamdance.errors import InputError, is_number, number_array, show
from dreamdance.io import read_json, write_json

FORMAT = "dreamdance-poses"
# Bounds on what a pose file may claim, checked before anything is allocated.
MAX_FILE_BYTES = 256 << 20  # a file's size: ~20,000 poses as write_poses writes them
MAX_FRAMES = 100_000  # frames in a file: 55 minutes at 30 fps
MAX_PEOPLE = 64  # people in one frame
MAX_PERSON_FRAMES = 100_000  # frames x people: the arrays then take 154 MB (128 x 3 float32)
MAX_SIDE = 16384  # width and height, pixels
MIN_FPS, MAX_FPS = 0.1, 1000.0  # frames per second
MAX_VALUE = 1e6  # |x|, |y| and |confidence| of a keypoint (pixels: 60 frames of the widest)
PARTS = {"body": 18, "face": 68, "left_hand": 21, "right_hand": 21}
_NUMBER_TYPES = {int, float}  # a JSON number's Python types (bool, an int subclass, is not one)
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
    """Read our pose file; every problem is an :class:`InputError` naming ``name`` (the input).

    What a file may claim is bounded (:data:`MAX_FILE_BYTES`, :data:`MAX_FRAMES`,
    :data:`MAX_PEOPLE`, :data:`MAX_PERSON_FRAMES`, :data:`MAX_SIDE`, :data:`MIN_FPS` ..
    :data:`MAX_FPS`, :data:`MAX_VALUE`) and checked before the arrays are allocated; every
    number must be a finite JSON number (``true`` is not 1, ``"5"`` is not 5).
    """
    name = name or str(path)
    data = _load(path, name)
    width, height, fps, driver, frames = _header(data, name)
    people = [_frame_people(frame, i, name) for i, frame in enumerate(frames)]
    num_people = max(len(p) for p in people)
    check_person_frames(len(frames), num_people, name)
    if not 0 <= driver < max(num_people, 1):
        raise InputError(name, f"driver {driver} but only {num_people} people")
    arrays = {part: np.zeros((len(frames), num_people, k, 3), np.float32)
              for part, k in PARTS.items()}
    for i, frame_people in enumerate(people):
        for j, person in enumerate(frame_people):
            for part, k in PARTS.items():
                pts = person.get(part)
                if pts is not None:
                    arrays[part][i, j] = _keypoints(pts, k, name, f"frame {i} person {j} {part}")
    return PoseSequence(**arrays, width=width, height=height, fps=fps, driver=driver)


def _load(path: str | os.PathLike, name: str) -> Any:
    """The decoded JSON of a pose file no larger than :data:`MAX_FILE_BYTES`."""
    if not os.path.isfile(path):
        raise InputError(name, "file not found")
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise InputError(name, f"{size} bytes, more than a pose file may hold "
                               f"({MAX_FILE_BYTES} bytes)")
    try:
        return read_json(path)
    except RecursionError:
        raise InputError(name, "not valid JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(name, f"not valid JSON ({e})") from None


def _header(data: Any, name: str) -> tuple[int, int, float, int, list]:
    """``(width, height, fps, driver, frames)`` of a decoded pose file, each checked."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(name, f"not a pose file (expected \"format\": \"{FORMAT}\")")
    missing = [key for key in ("width", "height", "frames") if key not in data]
    if missing:
        raise InputError(name, f"missing header field {missing[0]!r}")
    sides = f"an integer in 1..{MAX_SIDE}"
    width = _field(data, "width", None, _side, sides, name)
    height = _field(data, "height", None, _side, sides, name)
    fps = _field(data, "fps", 8.0, _fps, f"a number in {MIN_FPS:g}..{MAX_FPS:g}", name)
    driver = _field(data, "driver", 0, _driver, f"an integer in 0..{MAX_PEOPLE - 1}", name)
    frames = data["frames"]
    if not isinstance(frames, list):
        raise InputError(name, f"bad header: frames is {show(frames)}, expected a list")
    if not frames:
        raise InputError(name, "no frames")
    if len(frames) > MAX_FRAMES:
        raise InputError(name, f"{len(frames)} frames, more than {MAX_FRAMES}")
    return width, height, fps, driver, frames


def _field(data: dict, key: str, default: Any, check: Callable[[Any], Any], expected: str,
           name: str) -> Any:
    """Header field ``key`` (``default`` when absent) as ``check`` gives it; an
    :class:`InputError` when ``check`` gives None."""
    raw = data.get(key, default)
    value = check(raw)
    if value is None:
        raise InputError(name, f"bad header: {key}={show(raw)} (expected {expected})")
    return value


def _side(value: Any) -> int | None:
    return whole_number(value, 1, MAX_SIDE)


def _driver(value: Any) -> int | None:
    return whole_number(value, 0, MAX_PEOPLE - 1)


def _fps(value: Any) -> float | None:
    return float(value) if is_number(value) and MIN_FPS <= value <= MAX_FPS else None


def _frame_people(frame: Any, i: int, name: str) -> list[dict]:
    """The people (objects) of frame ``i``; a missing ``people`` is none."""
    if not isinstance(frame, dict):
        raise InputError(name, f"frame {i} is {show(frame)}, expected an object with a "
                               "\"people\" list")
    people = frame.get("people", [])
    if not isinstance(people, list):
        raise InputError(name, f"frame {i}: people is {show(people)}, expected a list")
    if len(people) > MAX_PEOPLE:
        raise InputError(name, f"frame {i}: {len(people)} people, more than {MAX_PEOPLE}")
    for j, person in enumerate(people):
        if not isinstance(person, dict):
            raise InputError(name, f"frame {i} person {j} is {show(person)}, expected an "
                                   f"object with {', '.join(PARTS)}")
    return people


def _keypoints(values: Any, k: int, name: str, where: str) -> np.ndarray:
    """``[[x, y, confidence], ...]`` from a file -> [k, 3] float32, or an :class:`InputError`."""
    if not (isinstance(values, list) and len(values) == k and set(map(type, values)) == {list}
            and set(map(len, values)) == {3}):
        raise InputError(name, f"{where}: expected {k} keypoints of (x, y, confidence), "
                               f"got {_shape(values)}")
    return finite_array([v for row in values for v in row], name, where).reshape(k, 3)


def _shape(value: Any) -> str:
    """``shape (17, 3)`` for a rectangular list of lists, else what the value is."""
    if not isinstance(value, list):
        return show(value)
    if value and all(isinstance(r, list) for r in value):
        lengths = {len(r) for r in value}
        return f"shape ({len(value)}, {lengths.pop()})" if len(lengths) == 1 else "a ragged list"
    return f"shape ({len(value)},)"


def whole_number(value: Any, low: int, high: int) -> int | None:
    """``value`` as an int when it is a whole JSON number (``512`` or ``512.0``) in
    ``low..high``; None otherwise."""
    if not is_number(value) or not low <= value <= high or value != int(value):
        return None
    return int(value)


def finite_array(values: list, name: str, where: str) -> np.ndarray:
    """A flat list of JSON numbers -> [N] float32, each finite and within :data:`MAX_VALUE`.

    Anything else is an :class:`InputError` naming ``name`` at ``where``.
    """
    if not set(map(type, values)) <= _NUMBER_TYPES:  # one pass over a long list
        bad = next(v for v in values if not is_number(v))
        raise InputError(name, f"{where}: not a list of numbers (found {show(bad)})")
    return number_array(values, name, where, MAX_VALUE).astype(np.float32)


def check_person_frames(frames: int, people: int, name: str) -> None:
    """Refuse a sequence whose arrays would hold more than :data:`MAX_PERSON_FRAMES` poses
    (``frames x people``)."""
    if frames * people > MAX_PERSON_FRAMES:
        raise InputError(name, f"{frames} frames x {people} people is more than "
                               f"{MAX_PERSON_FRAMES} poses")


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


def resample_poses(poses: PoseSequence, n: int, first: int | None = None) -> PoseSequence:
    """Resample to ``n`` frames over the same duration (fps scales by ``n / len``).

    A keypoint confident in both neighbouring frames is interpolated linearly; otherwise the
    nearer frame's keypoint (and confidence) is taken, so absent points never drift.

    Args:
        poses: the sequence, ``T`` frames.
        n: frames over the same duration.
        first: when given, only the first ``min(n, first)`` of those frames are made (the same
            values, and the same fps, as the first frames of the whole ``n``), so that a long
            resampled sequence of which only the start is used costs only that start.

    Returns:
        The sequence, [min(n, first), P, K, 3] per part.
    """
    t_old = len(poses)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n == t_old and (first is None or first >= n):
        return poses
    count = n if first is None else min(n, first)
    # np.linspace(0, t_old - 1, n)[:count], without making all n of them
    src = np.arange(count, dtype=np.float64) * ((t_old - 1) / max(n - 1, 1))
    if count == n > 1:
        src[-1] = t_old - 1
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
    last pose (``hold``) or started again (``loop``). Only the frames kept are resampled, so a
    long file retimed to a much higher fps costs no more than ``frames`` frames.
    """
    if too_short not in TOO_SHORT:
        raise InputError(f"motion.too_short={too_short}", f"must be one of {', '.join(TOO_SHORT)}")
    if abs(poses.fps - fps) > 1e-6 and len(poses) > 1:
        n = round((len(poses) - 1) * fps / poses.fps) + 1
        poses = resample_poses(poses, n, first=frames)
    index = frame_index(len(poses), frames, too_short, name=name)
    return PoseSequence(**{part: getattr(poses, part)[index] for part in PARTS},
                        width=poses.width, height=poses.height, fps=float(fps),
                        driver=poses.driver)
