"""Videos in and out: :class:`Video` (``frames`` uint8 ``[T, H, W, 3]`` and ``fps``) from a video
file or a folder of frames, read whole, sampled at an fps, or probed; written as H.264 MP4."""

from __future__ import annotations

import contextlib
import math
import numbers
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import imageio.v2 as imageio
import numpy as np

from dreamdance.errors import InputError
from dreamdance.io import atomic_path
from dreamdance.media.images import PathLike, load_image, reason, to_uint8

# Errors imageio's FFMPEG plugin raises for files ffmpeg cannot open or decode.
_VIDEO_ERRORS = (OSError, RuntimeError, ValueError, IndexError, StopIteration)
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class Video:
    """Decoded video frames and their rate."""

    frames: np.ndarray  # [T, H, W, 3] uint8, T >= 1
    fps: float

    def __post_init__(self):
        f = self.frames
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8:
            raise ValueError(f"Video.frames must be a uint8 array, got {type(f).__name__}")
        if f.ndim != 4 or f.shape[3] != 3 or f.shape[0] < 1:
            raise ValueError(f"Video.frames must be [T>=1, H, W, 3], got shape {f.shape}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"Video.fps must be a positive number, got {self.fps}")
        self.fps = float(self.fps)


class VideoInfo(NamedTuple):
    """What :func:`probe_video` learns without decoding the whole video."""

    n_frames: int  # estimate for video files (duration x fps), exact for frame folders
    fps: float
    size: tuple[int, int]  # (H, W)


def read_video(
    path: PathLike,
    name: str | None = None,
    max_frames: int | None = None,
    fps_default: float = 8.0,
) -> Video:
    """Decode a video file (anything ffmpeg reads) or a folder of frame images.

    A folder's images (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.webp``, ``.tif``, ``.tiff``;
    hidden files skipped) are taken in name order with numbers compared as numbers
    (``f2.png`` before ``f10.png``); they must all have the same size, their alpha is dropped
    and the rate is ``fps_default``. A video file's rate comes from its metadata, or is
    ``fps_default`` when the file does not say.

    Args:
        path: a video file or a folder of frames.
        name: the input as the user knows it, for error messages (default ``str(path)``).
        max_frames: read at most this many frames from the start (None: all).
        fps_default: the rate of a frame folder, or of a file with no rate in its metadata.

    Returns:
        :class:`Video` with ``frames [T, H, W, 3]`` uint8.

    Raises:
        InputError: missing path; empty file; a still image; a file ffmpeg cannot decode or
            that breaks off mid-way; a folder with no frames, an unreadable frame or frames of
            different sizes.
    """
    fps, frames = _open(path, name, fps_default)
    _check_count(max_frames, "max_frames")
    kept = []
    for frame in frames:
        kept.append(frame)
        if max_frames is not None and len(kept) >= max_frames:
            frames.close()
            break
    return Video(np.stack(kept).astype(np.uint8, copy=False), fps)


def read_video_sampled(path: PathLike, fps: float | None, name: str | None = None,
                       max_frames: int | None = None, fps_default: float = 8.0,
                       transform: Callable[[np.ndarray], np.ndarray] | None = None
                       ) -> tuple[Video, np.ndarray, int]:
    """Decode a video (as :func:`read_video`) sampled at ``fps`` in one streaming pass, keeping
    only the frames the sampling uses (each passed through ``transform`` as it is decoded), so
    a long or large video never sits in memory whole.

    Output frame ``j`` is source frame ``min(round(j · r), n - 1)`` with ``r`` = source rate /
    ``fps`` and ``n`` the source frames, for ``j < floor((n - 1) / r) + 1`` — nearest by time,
    exactly as :func:`dreamdance.train.prepare.resample_index` and the motion stage sample.

    Args:
        fps: the output rate, > 0 (None: the source's, every frame).
        max_frames: stop after this many output frames (None: the whole video).
        transform: applied to each kept frame, ``[H, W, 3] uint8 -> [H', W', 3] uint8``.

    Returns:
        ``(video, index, n)``: the sampled frames at ``fps``; the source frame of each
        ``[T] int``; the source frames decoded.
    """
    if fps is not None:
        _check_fps(fps, "fps")
    _check_count(max_frames, "max_frames")
    src_fps, frames = _open(path, name, fps_default)
    fps = src_fps if fps is None else fps
    ratio = src_fps / fps

    def source(j: int) -> int:
        return int(np.round(j * src_fps / fps))

    kept: dict[int, np.ndarray] = {}  # decoded frames some output frame may still use
    out: list[int] = []               # the source frame of each output frame confirmed
    shown: list[np.ndarray] = []
    n = 0
    for i, frame in enumerate(frames):
        n = i + 1
        lo, hi = max(0, int(np.floor((i - 0.5) / ratio)) - 1), int(np.ceil((i + 0.5) / ratio)) + 1
        if any(source(j) == i for j in range(lo, hi + 1)):
            kept[i] = frame if transform is None else transform(frame)
        # output frame j exists once the video reaches its time: j <= i / r
        while len(out) <= i / ratio + 1e-9 and (max_frames is None or len(out) < max_frames):
            out.append(source(len(out)))
            shown.append(kept[out[-1]])
        for old in [k for k in kept if k < source(len(out))]:
            del kept[old]
        if max_frames is not None and len(out) >= max_frames:
            frames.close()
            break
    index = np.asarray(out, int)
    return Video(np.stack(shown).astype(np.uint8, copy=False), float(fps)), index, n


def _open(path: PathLike, name: str | None, fps_default: float
          ) -> tuple[float, Iterator[np.ndarray]]:
    """``(rate, frames)`` of a video file or frame folder; ``frames`` decodes one frame at a
    time (a generator; close it to stop early). Refusals as in :func:`read_video`."""
    path = Path(path)
    name = str(path) if name is None else name
    _check_fps(fps_default, "fps_default")
    if path.is_dir():
        return float(fps_default), _folder_frames(path, name)
    _check_video_file(path, name)
    try:
        reader = imageio.get_reader(str(path), format="FFMPEG")
        fps = reader.get_meta_data().get("fps") or 0.0
    except _VIDEO_ERRORS as e:
        raise InputError(name, f"no decodable video frames ({reason(e)})") from e
    fps = float(fps) if math.isfinite(fps) and fps > 0 else float(fps_default)
    return fps, _file_frames(reader, name)


def _file_frames(reader, name: str) -> Iterator[np.ndarray]:
    count = 0
    with _closing(reader):
        try:
            for frame in reader:
                count += 1
                yield np.asarray(frame)
        except _VIDEO_ERRORS as e:
            if not count:
                raise InputError(name, f"no decodable video frames ({reason(e)})") from e
            raise InputError(name, f"video breaks off after {count} frames ({reason(e)})") from e
    if not count:
        raise InputError(name, "no decodable video frames")


def probe_video(path: PathLike, name: str | None = None, fps_default: float = 8.0) -> VideoInfo:
    """Frame count, rate and size of a video file or frame folder, without decoding it all.

    For a file the count is ``round(duration * fps)`` from the container (an estimate; the
    exact count needs :func:`read_video`). For a folder the count is exact, the rate is
    ``fps_default`` and the size is that of the first frame.

    Returns:
        :class:`VideoInfo` ``(n_frames, fps, (H, W))``.
    """
    path = Path(path)
    name = str(path) if name is None else name
    _check_fps(fps_default, "fps_default")
    if path.is_dir():
        files = _frame_files(path, name)
        first = load_image(files[0], name=f"{name} (frame {files[0].name})").rgb
        return VideoInfo(len(files), float(fps_default), first.shape[:2])
    _check_video_file(path, name)
    try:
        with _closing(imageio.get_reader(str(path), format="FFMPEG")) as reader:
            meta = reader.get_meta_data()
    except _VIDEO_ERRORS as e:
        raise InputError(name, f"no decodable video frames ({reason(e)})") from e
    fps = float(meta.get("fps") or 0.0)
    fps = fps if math.isfinite(fps) and fps > 0 else float(fps_default)
    width, height = meta["size"]
    n_frames = max(1, int(math.floor(float(meta.get("duration") or 0.0) * fps + 0.5)))
    return VideoInfo(n_frames, fps, (int(height), int(width)))


def write_video(
    path: PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    crf: int = 18,
) -> Path:
    """Write an H.264 (libx264, yuv420p) mp4 atomically.

    yuv420p needs even sizes: an odd height or width is padded by one row at the bottom or one
    column at the right, repeating the edge pixels, so a ``[T, 5, 7, 3]`` input reads back as
    ``[T, 6, 8, 3]``. Frames may be streamed as an iterable of ``[H, W, 3]`` arrays; each is
    checked as it arrives, and if any check or the iterable itself fails, nothing is left
    under ``path`` (nor a temporary file).

    Args:
        path: the ``.mp4`` to write; the folder is created if needed.
        frames: ``[T, H, W, 3]`` with T >= 1, uint8 or float in [0, 1] (clipped, rounded),
            finite; or an iterable of ``[H, W, 3]`` frames of one size.
        fps: frames per second, > 0.
        crf: x264 constant rate factor, 0 (lossless) .. 51; 18 is visually lossless.

    Returns:
        ``Path(path)``.
    """
    path = Path(path)
    _check_fps(fps, "fps")
    if isinstance(crf, bool) or not isinstance(crf, numbers.Integral) or not 0 <= crf <= 51:
        raise ValueError(f"crf must be an integer in 0..51, got {crf!r}")
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[0] < 1:
            raise ValueError(f"frames must be [T>=1, H, W, 3], got shape {frames.shape}")
        _check_frame_dtype(frames)
        if frames.dtype != np.uint8 and not np.isfinite(frames).all():
            raise ValueError("frames must be finite (found NaN or inf)")
    with atomic_path(path) as tmp:
        writer = imageio.get_writer(
            str(tmp),
            format="FFMPEG",
            mode="I",
            fps=float(fps),
            codec="libx264",
            pixelformat="yuv420p",
            quality=None,
            macro_block_size=1,
            output_params=["-crf", str(crf)],
            ffmpeg_log_level="error",
        )
        with _closing(writer):
            count = 0
            for frame in _even_frames(frames):
                writer.append_data(frame)
                count += 1
        if count == 0:
            raise ValueError("frames is empty (T = 0)")
    return path


@contextlib.contextmanager
def _closing(handle):
    """Close an imageio reader/writer however the block ends (imageio's own ``with`` skips
    closing on error, which would leave ffmpeg running and writing). A failure to close
    while another error is in flight does not hide that error."""
    try:
        yield handle
    except BaseException:
        with contextlib.suppress(Exception):
            handle.close()
        raise
    handle.close()


def _check_video_file(path: Path, name: str) -> None:
    if not path.exists():
        raise InputError(name, "file not found")
    if path.stat().st_size == 0:
        raise InputError(name, "empty file (0 bytes)")
    if path.suffix.lower() in FRAME_SUFFIXES:
        raise InputError(name, "is an image, not a video (give a video or a folder of frames)")


def _even_frames(frames: np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Yield checked uint8 ``[H', W', 3]`` frames, padded to even H', W' by edge replication."""
    size = None
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame {i} must be [H, W, 3], got shape {frame.shape}")
        if size is None:
            size = frame.shape[:2]
        elif frame.shape[:2] != size:
            raise ValueError(f"frame {i} is {frame.shape[:2]}, frame 0 is {size}")
        _check_frame_dtype(frame)
        frame = to_uint8(frame)  # raises on NaN / inf
        pad = ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0))
        yield np.ascontiguousarray(np.pad(frame, pad, mode="edge"))


def _check_frame_dtype(frames: np.ndarray) -> None:
    if frames.dtype != np.uint8 and not np.issubdtype(frames.dtype, np.floating):
        raise ValueError(f"frames must be uint8 or float in [0, 1], got {frames.dtype}")


def _folder_frames(folder: Path, name: str) -> Iterator[np.ndarray]:
    files = _frame_files(folder, name)
    first = None
    for f in files:
        rgb = load_image(f, name=f"{name} (frame {f.name})").rgb
        if first is not None and rgb.shape != first:
            raise InputError(
                name,
                f"frame {f.name} is {rgb.shape[1]}x{rgb.shape[0]}, "
                f"frame {files[0].name} is {first[1]}x{first[0]} (all frames must be one size)",
            )
        first = rgb.shape
        yield to_uint8(rgb)


def _frame_files(folder: Path, name: str) -> list[Path]:
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    if not files:
        raise InputError(name, f"folder holds no frame images ({', '.join(FRAME_SUFFIXES)})")
    return sorted(files, key=lambda p: _natural_key(p.name))


def _natural_key(text: str) -> list:
    """``"f10.png"`` -> ``["f", 10, ".png"]``: numbers compare as numbers."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _check_count(n: int | None, what: str) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
        raise ValueError(f"{what} must be a positive integer or None, got {n!r}")


def _check_fps(fps: float, what: str) -> None:
    if (
        isinstance(fps, bool)
        or not isinstance(fps, numbers.Real)
        or not (math.isfinite(fps) and fps > 0)
    ):
        raise ValueError(f"{what} must be a positive number, got {fps!r}")
