"""OpenPose per-frame JSON: the pose format most tools write (OpenPose, DWPose, ControlNet).

One file per frame (``{video}_{frame:012d}_keypoints.json`` from OpenPose; any names, sorted
naturally so that ``frame_2`` comes before ``frame_10``), or a single file for one frame::

    {"people": [{"pose_keypoints_2d": [x, y, c, ...],        # 18 (COCO) or 25 (BODY_25) points
                 "face_keypoints_2d": [...],                 # 70 (68 + 2 pupils) or 68 points
                 "hand_left_keypoints_2d": [...],            # 21 points
                 "hand_right_keypoints_2d": [...]}],         # 21 points
     "canvas_width": 512, "canvas_height": 768}              # optional

A part that is missing, ``null`` or ``[]`` is absent (all zeros). BODY_25 is mapped to COCO-18
by dropping the mid-hip (8) and the six foot points (19-24); the pupils (face points 68, 69) are
dropped.

**Normalised coordinates.** The ControlNet/DWPose "pose JSON" flavour stores x and y as
fractions of the canvas. A sequence is read as normalised when every confident coordinate
(confidence > 0) of every frame lies in [0, 1]; x is then multiplied by the width and y by
the height. A pose in pixels whose every confident point lies within one pixel of the top-left
corner is the only case this rule misreads.

**Canvas size.** ``canvas_width`` / ``canvas_height`` in the files win; otherwise the
``width`` / ``height`` arguments; otherwise the read is refused.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from pathlib import Path

import numpy as np

from dreamdance.errors import InputError, show
from dreamdance.motion.poses import (
    MAX_FRAMES,
    MAX_PEOPLE,
    MAX_SIDE,
    PARTS,
    PoseSequence,
    check_person_frames,
    finite_array,
    whole_number,
)

#: OpenPose JSON key of each of our parts.
KEYS = {"body": "pose_keypoints_2d", "face": "face_keypoints_2d",
        "left_hand": "hand_left_keypoints_2d", "right_hand": "hand_right_keypoints_2d"}
#: BODY_25 index of each COCO-18 keypoint (BODY_25 8 is the mid-hip, 19-24 the feet).
BODY25_TO_COCO18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
#: Keypoint counts accepted per part (the first is ours; the others are mapped to it).
COUNTS = {"body": (18, 25), "face": (68, 70), "left_hand": (21,), "right_hand": (21,)}
#: Largest file of one frame (64 people of 137 keypoints take ~0.5 MB).
MAX_FILE_BYTES = 16 << 20


def read_openpose(path_or_folder: str | os.PathLike, width: int | None = None,
                  height: int | None = None, fps: float = 8.0,
                  name: str | None = None) -> PoseSequence:
    """Read OpenPose JSON (a folder of per-frame files, or one file) as a :class:`PoseSequence`.

    Args:
        path_or_folder: a ``.json`` file (one frame) or a folder of them (one per frame).
        width, height: the pixel frame, used when the files carry no ``canvas_width`` /
            ``canvas_height``.
        fps: frames per second of the sequence (OpenPose files do not store it).
        name: the input as the user knows it, for errors (default: the path).

    Raises:
        InputError: no such path, no JSON files, a file that is not OpenPose JSON, a part of
            unexpected length or not of numbers, a NaN/infinite value, no known canvas size,
            or more than the bounds of :mod:`dreamdance.motion.poses` allow (``MAX_FRAMES``
            files, ``MAX_PEOPLE`` people in a frame, ``MAX_PERSON_FRAMES`` frames x people,
            ``MAX_SIDE`` pixels, ``MAX_VALUE`` per number) or a file larger than
            :data:`MAX_FILE_BYTES` — all checked before the arrays are allocated.
    """
    path = Path(path_or_folder)
    name = name or str(path_or_folder)
    if not path.exists():
        raise InputError(name, "file not found")
    files = _frame_files(path, name) if path.is_dir() else [path]
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps) \
            or fps <= 0:
        raise InputError(name, f"fps={fps} must be a positive number")

    frames, canvas, num_people = [], None, 0
    for i, file in enumerate(files):
        where = f"frame {i} ({file.name})"
        data = _load(file, name, where)
        size = _canvas(data, name, where)
        if size is not None:
            if canvas is not None and size != canvas:
                raise InputError(name, f"{where}: canvas {size[0]}x{size[1]} differs from "
                                       f"{canvas[0]}x{canvas[1]} of the frames before")
            canvas = size
        num_people = max(num_people, len(data.get("people", [])))
        check_person_frames(len(files), num_people, name)
        frames.append(_people(data, name, where))

    if canvas is None:
        if width is None or height is None:
            raise InputError(name, "no canvas_width/canvas_height in the files; give width "
                                   "and height")
        canvas = (width, height)
    w, h = canvas
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 < v <= MAX_SIDE
               for v in canvas):
        raise InputError(name, f"width={w}, height={h} must be integers in 1..{MAX_SIDE}")
    w, h = int(w), int(h)

    arrays = {part: np.zeros((len(frames), num_people, k, 3), np.float32)
              for part, k in PARTS.items()}
    for t, people in enumerate(frames):
        for p, person in enumerate(people):
            for part in PARTS:
                arrays[part][t, p] = person[part]
    if _is_normalised(arrays):
        for arr in arrays.values():
            arr[..., 0] *= w
            arr[..., 1] *= h
    return PoseSequence(**arrays, width=w, height=h, fps=float(fps), driver=0)


def _frame_files(folder: Path, name: str) -> list[Path]:
    """The folder's ``.json`` files (hidden ones skipped) in natural order, at most
    :data:`~dreamdance.motion.poses.MAX_FRAMES` of them."""
    files = []
    for p in folder.iterdir():
        if p.suffix.lower() == ".json" and p.is_file() and not p.name.startswith("."):
            files.append(p)
            if len(files) > MAX_FRAMES:
                raise InputError(name, f"folder holds more than {MAX_FRAMES} .json files "
                                       "(one per frame)")
    if not files:
        raise InputError(name, "folder holds no .json files")
    return sorted(files, key=lambda p: _natural_key(p.name))


def _load(file: Path, name: str, where: str) -> dict:
    """One frame's decoded JSON: an object whose ``people`` (if any) is a list of at most
    :data:`~dreamdance.motion.poses.MAX_PEOPLE`."""
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(name, f"{where}: {size} bytes, more than one frame's file may hold "
                               f"({MAX_FILE_BYTES} bytes)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except RecursionError:
        raise InputError(name, f"{where}: not valid JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(name, f"{where}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("people", []), list):
        raise InputError(name, f"{where}: not OpenPose JSON (expected an object with a "
                               "\"people\" list)")
    if len(data.get("people", [])) > MAX_PEOPLE:
        raise InputError(name, f"{where}: {len(data['people'])} people, more than {MAX_PEOPLE}")
    return data


def _canvas(data: dict, name: str, where: str) -> tuple[int, int] | None:
    """``(canvas_width, canvas_height)`` of a frame, whole numbers in 1..MAX_SIDE; None when
    the frame gives neither."""
    cw, ch = data.get("canvas_width"), data.get("canvas_height")
    if cw is None and ch is None:
        return None
    size = (whole_number(cw, 1, MAX_SIDE), whole_number(ch, 1, MAX_SIDE))
    if None in size:
        raise InputError(name, f"{where}: canvas_width={show(cw)}, canvas_height={show(ch)} "
                               f"must be integers in 1..{MAX_SIDE}")
    return size


def _people(data: dict, name: str, where: str) -> list[dict[str, np.ndarray]]:
    people = []
    for j, person in enumerate(data.get("people", [])):
        if not isinstance(person, dict):
            raise InputError(name, f"{where} person {j}: not an object")
        people.append({part: _part(person.get(KEYS[part]), part, name, f"{where} person {j}")
                       for part in PARTS})
    return people


def _part(values, part: str, name: str, where: str) -> np.ndarray:
    """One part's flat ``[x, y, c, ...]`` list -> [k, 3] float32 in our layout."""
    k = PARTS[part]
    if values is None or (isinstance(values, list) and not values):
        return np.zeros((k, 3), np.float32)
    key = KEYS[part]
    if not isinstance(values, list):
        raise InputError(name, f"{where} {key}: not a list of numbers (got {show(values)})")
    if len(values) % 3 or any(isinstance(v, list) for v in values):
        raise InputError(name, f"{where} {key}: {len(values)} values, not a flat list of "
                               "(x, y, confidence) triples")
    n = len(values) // 3
    if n not in COUNTS[part]:
        expected = " or ".join(str(c) for c in COUNTS[part])
        raise InputError(name, f"{where} {key}: {n} keypoints, expected {expected}")
    arr = finite_array(values, name, f"{where} {key}").reshape(n, 3)
    if part == "body" and n == 25:
        arr = arr[list(BODY25_TO_COCO18)]
    return arr[:k]


def _is_normalised(arrays: dict[str, np.ndarray]) -> bool:
    """True when every confident x, y of every part lies in [0, 1] (and there is one)."""
    xy = np.concatenate([a[a[..., 2] > 0][:, :2].reshape(-1) for a in arrays.values()])
    return xy.size > 0 and bool(((xy >= 0) & (xy <= 1)).all())


def _natural_key(text: str) -> list:
    """``"frame_10.json"`` -> ``["frame_", 10, ".json"]``: numbers compare as numbers."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]
