"""Camera trajectory files: TUM/DPVO, RealEstate10K/CameraCtrl and our own JSON.

Formats (one camera per line for the text formats; ``#`` comments and blank lines skipped):

- **TUM / DPVO** — ``t tx ty tz qx qy qz qw``: camera-to-world, translation then a unit
  quaternion in ``[x, y, z, w]`` order, OpenCV camera axes. No intrinsics: K comes from the
  caller. Timestamps are written but not used on reading (frames are taken as evenly spaced).
- **RealEstate10K / CameraCtrl** — a first line with the source URL, then 19 numbers per frame:
  ``timestamp fx fy cx cy 0 0`` and the 3x4 world-to-camera matrix, row-major; ``fx, cx`` are
  divided by the image width and ``fy, cy`` by the height. CameraCtrl's loader drops the first
  line unread, so our writer always writes one (``dreamdance``); our reader accepts files with or
  without it. Timestamps are written in microseconds when an fps is known, else frame indices.
- **DreamDance JSON** — ``{"format": "dreamdance-camera", "version": 1, "fps": optional,
  "frames": [{"w2c": 4x4, "K": 3x3, "width": W, "height": H}, ...]}``, the run directory's
  ``motion/camera.json``.

Every problem with a file's contents raises :class:`~dreamdance.errors.InputError` naming the
input (``camera=PATH``) and, for text files, the line. What a file may claim is bounded
(:data:`MAX_FILE_BYTES`, :data:`MAX_CAMERAS`, :data:`MAX_SIDE`, :data:`MAX_VALUE`); every number
must be finite, and in JSON a number (``true`` is not 1, ``"5"`` is not 5).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from dreamdance.camera import (
    PRESETS,
    Trajectory,
    check_rotation,
    invert_rigid,
    preset,
    quaternion_to_rotation,
    rescale_intrinsics,
    rotation_to_quaternion,
    standardise,
)
from dreamdance.errors import InputError, is_number, number_array, show
from dreamdance.io import write_json, write_text

FORMATS = ("json", "tum", "re10k")
JSON_TAG = "dreamdance-camera"
JSON_VERSION = 1
RE10K_HEADER = "dreamdance"

TUM_COLUMNS = 8
RE10K_COLUMNS = 19
_COLUMNS_TEXT = {
    TUM_COLUMNS: "8 columns (t tx ty tz qx qy qz qw)",
    RE10K_COLUMNS: "19 columns (t fx fy cx cy 0 0 + 3x4 world-to-camera)",
}
QUATERNION_TOLERANCE = 1e-3  # largest | ||q|| - 1 | accepted as rounding
# Bounds on what a trajectory file may claim, checked before anything is allocated.
MAX_FILE_BYTES = 64 << 20  # a file's size (JSON decoding holds a few times this)
MAX_CAMERAS = 100_000  # cameras in a file: 55 minutes at 30 fps
MAX_SIDE = 16384  # width and height, pixels
MAX_VALUE = 1e8  # |translation| and |intrinsic| entries: products of two stay far from overflow


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def read_trajectory(
    path: str | os.PathLike,
    width: int,
    height: int,
    K_default: np.ndarray,
    name: str | None = None,
) -> Trajectory:
    """Read a trajectory file of any supported format, as stored (not standardised).

    ``.json`` files (or text starting with ``{``) are our JSON; other text files are told apart
    by their number of columns: 8 is TUM, 19 is RealEstate10K.

    Args:
        path: the file.
        width, height: image size, used to denormalise RealEstate10K intrinsics and as the size
            of TUM trajectories. JSON files carry their own size.
        K_default: intrinsics for formats without them (TUM). [3, 3]
        name: the input as the user knows it; default ``camera=PATH``.

    Returns:
        The trajectory.

    Raises:
        InputError: missing, empty or malformed file, with the line or frame at fault.
    """
    name = name or f"camera={path}"
    path = Path(path)
    if not path.exists():
        raise InputError(name, "file not found")
    if not path.is_file():
        raise InputError(name, "not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(name, f"{size} bytes, more than a trajectory file may hold "
                               f"({MAX_FILE_BYTES} bytes)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(name, "not a text file (expected .json, TUM or RealEstate10K text)") from None
    if not text.strip():
        raise InputError(name, "empty file: no camera poses")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except RecursionError:
            raise InputError(name, "not valid JSON: nested too deeply") from None
        except ValueError as e:
            raise InputError(name, f"not valid JSON: {e}") from None
        return parse_json(data, name)
    return parse_text(text, width, height, K_default, name)


def parse_text(
    text: str, width: int, height: int, K_default: np.ndarray, name: str
) -> Trajectory:
    """Parse TUM or RealEstate10K text (told apart by the column count). See
    :func:`read_trajectory`."""
    header = None  # (line number, first token) of a non-numeric first line
    rows: list[tuple[int, np.ndarray]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tokens = line.split()
        bad = _first_non_number(tokens)
        if bad is not None:
            if header is None and not rows:
                header = (number, tokens[0])  # RealEstate10K's URL line
                continue
            raise InputError(name, f"line {number}: not a number: {_token(bad)}")
        if len(rows) == MAX_CAMERAS:
            raise InputError(name, f"line {number}: more than {MAX_CAMERAS} cameras")
        rows.append((number, _text_row(tokens, rows[0][1] if rows else None, number, name)))
    if not rows:
        raise InputError(name, "empty file: no camera poses")
    if len(rows[0][1]) == TUM_COLUMNS:
        if header is not None:
            raise InputError(name, f"line {header[0]}: not a number: {_token(header[1])}")
        return _parse_tum(rows, width, height, K_default, name)
    return _parse_re10k(rows, width, height, name)


def _text_row(tokens: list[str], first: np.ndarray | None, number: int, name: str) -> np.ndarray:
    """The numbers of one line, as many as on the ``first`` line (8 or 19 on the first), all
    finite, all but the timestamp within :data:`MAX_VALUE`. [8] or [19]"""
    if first is None and len(tokens) not in _COLUMNS_TEXT:
        raise InputError(
            name,
            f"line {number}: expected 8 columns (TUM: t tx ty tz qx qy qz qw) or 19 "
            f"(RealEstate10K: t fx fy cx cy 0 0 + 3x4 world-to-camera), got {len(tokens)}",
        )
    if first is not None and len(tokens) != len(first):
        expected = _COLUMNS_TEXT[len(first)]
        raise InputError(name, f"line {number}: expected {expected}, got {len(tokens)}")
    values = np.array([float(tok) for tok in tokens], dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError(name, f"line {number}: non-finite value (nan or inf)")
    _check_range(values[1:], name, f"line {number}")
    return values


def _check_range(values: np.ndarray, name: str, where: str) -> None:
    """Refuse a value beyond +-:data:`MAX_VALUE` (the values are finite)."""
    if values.size and np.abs(values).max() > MAX_VALUE:
        raise InputError(name, f"{where}: value {np.abs(values).max():g} beyond "
                               f"+-{MAX_VALUE:g}")


def _token(token: str) -> str:
    """A token of a text file for a one-line message, cut to 40 characters."""
    return repr(token) if len(token) <= 40 else f"{token[:37]!r}..."


def _first_non_number(tokens: list[str]) -> str | None:
    """The first token that does not parse as a number (the caller decides what it means: the
    RealEstate10K URL line, or an error naming the line); None when all do."""
    for tok in tokens:
        try:
            float(tok)
        except ValueError:
            return tok
    return None


def _parse_tum(rows, width, height, K_default, name) -> Trajectory:
    K = np.asarray(K_default, dtype=np.float64)
    assert K.shape == (3, 3), K.shape
    c2w = np.repeat(np.eye(4)[None], len(rows), axis=0)
    for i, (number, v) in enumerate(rows):
        q = v[4:8]
        norm = float(np.linalg.norm(q))
        if abs(norm - 1.0) > QUATERNION_TOLERANCE:
            raise InputError(name, f"line {number}: quaternion (qx qy qz qw) has norm {norm:.6g}, "
                                   f"expected 1 (tolerance {QUATERNION_TOLERANCE:g})")
        R = quaternion_to_rotation(q / norm)
        c2w[i, :3, :3] = check_rotation(R, name, f"line {number}")
        c2w[i, :3, 3] = v[1:4]
    return Trajectory(invert_rigid(c2w), np.repeat(K[None], len(rows), 0), width, height)


def _parse_re10k(rows, width, height, name) -> Trajectory:
    w2c = np.repeat(np.eye(4)[None], len(rows), axis=0)
    K = np.repeat(np.eye(3)[None], len(rows), axis=0)
    for i, (number, v) in enumerate(rows):
        fx, fy, cx, cy = v[1:5]
        if not (fx > 0 and fy > 0):
            raise InputError(name, f"line {number}: focal lengths must be positive, "
                                   f"got fx={fx:g}, fy={fy:g}")
        K[i, 0, 0], K[i, 0, 2] = fx * width, cx * width
        K[i, 1, 1], K[i, 1, 2] = fy * height, cy * height
        P = v[7:19].reshape(3, 4)
        w2c[i, :3, :3] = check_rotation(P[:, :3], name, f"line {number}")
        w2c[i, :3, 3] = P[:, 3]
    return Trajectory(w2c, K, width, height)


def parse_json(data, name: str) -> Trajectory:
    """Validate and convert our JSON (already decoded). See :func:`read_trajectory`."""
    if not isinstance(data, dict) or data.get("format") != JSON_TAG:
        tag = data.get("format") if isinstance(data, dict) else None
        shown = repr(tag) if tag is None or isinstance(tag, str) and len(tag) <= 40 else show(tag)
        raise InputError(name, f"not a DreamDance camera file (format tag {shown}, "
                               f"expected {JSON_TAG!r})")
    version = data.get("version")
    if not is_number(version) or version != JSON_VERSION:
        raise InputError(name, f"unsupported version {show(version)} "
                               f"(this DreamDance reads version {JSON_VERSION})")
    fps = data.get("fps")
    if fps is not None and not (is_number(fps) and _is_finite(fps) and fps > 0):
        raise InputError(name, f"fps must be a positive number, got {show(fps)}")
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        raise InputError(name, "'frames' must be a non-empty list")
    if len(frames) > MAX_CAMERAS:
        raise InputError(name, f"{len(frames)} frames, more than {MAX_CAMERAS} cameras")
    w2c, K, sizes = [], [], set()
    for i, frame in enumerate(frames):
        where = f"frames[{i}]"
        if not isinstance(frame, dict):
            raise InputError(name, f"{where}: expected an object with w2c, K, width, height")
        missing = [key for key in ("w2c", "K", "width", "height") if key not in frame]
        if missing:
            raise InputError(name, f"{where}: missing {', '.join(missing)}")
        T = _json_matrix(frame["w2c"], (4, 4), name, f"{where}.w2c")
        if np.abs(T[3] - [0.0, 0.0, 0.0, 1.0]).max() > 1e-6:
            raise InputError(name, f"{where}.w2c: last row must be [0, 0, 0, 1], got {T[3]}")
        T[:3, :3] = check_rotation(T[:3, :3], name, f"{where}.w2c")
        T[3] = [0.0, 0.0, 0.0, 1.0]
        k = _json_matrix(frame["K"], (3, 3), name, f"{where}.K")
        if not (k[0, 0] > 0 and k[1, 1] > 0) or np.abs(k[2] - [0.0, 0.0, 1.0]).max() > 1e-6:
            raise InputError(name, f"{where}.K: expected [[fx, s, cx], [0, fy, cy], [0, 0, 1]] "
                                   f"with fx, fy > 0, got {k.tolist()}")
        size = (frame["width"], frame["height"])
        if not all(type(v) is int and 0 < v <= MAX_SIDE for v in size):
            raise InputError(name, f"{where}: width and height must be positive integers up "
                                   f"to {MAX_SIDE}, got {show(size[0])}, {show(size[1])}")
        sizes.add(size)
        if len(sizes) > 1:
            raise InputError(name, f"{where}: size {size[0]}x{size[1]} differs from frame 0's "
                                   f"{frames[0]['width']}x{frames[0]['height']}")
        w2c.append(T)
        K.append(k)
    width, height = sizes.pop()
    return Trajectory(np.stack(w2c), np.stack(K), width, height)


def _is_finite(v) -> bool:
    """Whether a JSON number is finite (an int always is, however large)."""
    return type(v) is int or math.isfinite(v)


def _json_matrix(value, shape, name, where) -> np.ndarray:
    """A ``shape`` list of lists of JSON numbers -> finite float64 array within
    :data:`MAX_VALUE`. [*shape]"""
    ok = (isinstance(value, list) and len(value) == shape[0]
          and all(isinstance(row, list) and len(row) == shape[1] for row in value)
          and all(is_number(v) for row in value for v in row))
    if not ok:
        raise InputError(name, f"{where}: expected a {shape[0]}x{shape[1]} list of numbers")
    return number_array(value, name, where, MAX_VALUE)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def write_trajectory(
    path: str | os.PathLike,
    traj: Trajectory,
    format: str = "json",
    fps: float | None = None,
) -> Path:
    """Write a trajectory atomically.

    Args:
        path: destination file.
        traj: the trajectory.
        format: ``"json"`` (ours, keeps everything), ``"tum"`` (poses only) or ``"re10k"``.
        fps: frame rate, stored in JSON and used for timestamps; without it, timestamps are
            frame indices.

    Returns:
        ``Path(path)``.
    """
    if format not in FORMATS:
        raise InputError(f"format={format}",
                         f"unknown trajectory format; choose one of {', '.join(FORMATS)}")
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    if format == "json":
        return write_json(path, trajectory_to_json(traj, fps))
    return write_text(path, format_tum(traj, fps) if format == "tum" else format_re10k(traj, fps))


def trajectory_to_json(traj: Trajectory, fps: float | None = None) -> dict:
    """Our JSON document for ``traj`` (see the module docs)."""
    doc: dict = {"format": JSON_TAG, "version": JSON_VERSION}
    if fps is not None:
        doc["fps"] = float(fps)
    doc["frames"] = [
        {"w2c": T.tolist(), "K": k.tolist(), "width": traj.width, "height": traj.height}
        for T, k in zip(traj.w2c, traj.K, strict=True)
    ]
    return doc


def _num(v: float) -> str:
    return f"{float(v):.12g}"


def format_tum(traj: Trajectory, fps: float | None = None) -> str:
    """TUM text: ``t tx ty tz qx qy qz qw`` per frame, camera-to-world, ``t`` in seconds."""
    c2w = traj.c2w
    q = rotation_to_quaternion(c2w[:, :3, :3])
    lines = ["# t tx ty tz qx qy qz qw (camera-to-world, OpenCV camera axes)"]
    for i in range(len(traj)):
        t = i / fps if fps else i
        lines.append(" ".join(_num(v) for v in [t, *c2w[i, :3, 3], *q[i]]))
    return "\n".join(lines) + "\n"


def format_re10k(traj: Trajectory, fps: float | None = None) -> str:
    """RealEstate10K text: a header line, then ``t fx fy cx cy 0 0`` + 3x4 w2c per frame.

    Numbers are separated by single spaces, as CameraCtrl's loader splits on ``' '``; ``t`` is
    in microseconds when ``fps`` is given. The format has no skew: ``K[0, 1]`` is not stored.
    """
    W, H = traj.width, traj.height
    lines = [RE10K_HEADER]
    for i, (T, k) in enumerate(zip(traj.w2c, traj.K, strict=True)):
        t = str(round(i * 1e6 / fps)) if fps else str(i)
        intr = [k[0, 0] / W, k[1, 1] / H, k[0, 2] / W, k[1, 2] / H]
        lines.append(" ".join([t, *map(_num, intr), "0", "0", *map(_num, T[:3].ravel())]))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The `camera=` input
# ---------------------------------------------------------------------------------------------


def load_camera(
    spec: str,
    n: int,
    width: int,
    height: int,
    K: np.ndarray,
    depth: float,
    amplitude: float = 1.0,
) -> Trajectory:
    """The trajectory named by ``camera=SPEC``: a preset name or a trajectory file.

    A preset is built with ``n`` frames. A file is read, standardised to its first camera and
    brought to ``width x height`` (K rescaled) but keeps its own frame count: resampling to
    ``n`` frames is the caller's choice.

    Args:
        spec: preset name (one of :data:`~dreamdance.camera.PRESETS`) or path.
        n: frame count for presets.
        width, height: image size in pixels.
        K: intrinsics of the reference camera (presets, TUM files). [3, 3]
        depth: scene depth, the look-at distance of the presets.
        amplitude: motion scale of the presets.

    Raises:
        InputError: neither a preset nor an existing file, or a bad file.
    """
    if spec in PRESETS:
        return preset(spec, n, K, width, height, depth, amplitude)
    name = f"camera={spec}"
    if not Path(spec).exists():
        raise InputError(name, f"no such file, and not a preset ({', '.join(PRESETS)})")
    traj = read_trajectory(spec, width, height, K, name=name)
    return rescale_intrinsics(standardise(traj), width, height)
