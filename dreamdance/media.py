"""Images and videos in, images and videos out, and resizing that keeps intrinsics consistent.

Canonical forms used across DreamDance:

- image: ``rgb`` float32 ``[H, W, 3]`` in [0, 1] and ``alpha`` float32 ``[H, W]`` in [0, 1]
  or ``None`` (:class:`LoadedImage`);
- video: :class:`Video`, ``frames`` uint8 ``[T, H, W, 3]`` and ``fps``;
- intrinsics: ``K`` in pixels, ``[..., 3, 3]``, in continuous image coordinates where the image
  spans ``[0, W] x [0, H]`` and pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``
  (gsplat's convention). Resizing by ``(sx, sy)`` maps ``u -> u * sx``; cropping at ``(x0, y0)``
  maps ``u -> u - x0``; :func:`~dreamdance.camera.scale_intrinsics` and :func:`~dreamdance.camera.crop_intrinsics` apply the same
  maps to ``K``.

Everything read from a user's file is checked on entry and a problem is raised as
:class:`~dreamdance.errors.InputError` naming the input; every file written goes through
:func:`~dreamdance.io.atomic_path`.
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dreamdance.camera import crop_intrinsics, scale_intrinsics
from dreamdance.errors import InputError
from dreamdance.io import atomic_path

PathLike = str | os.PathLike

# Errors Pillow raises for files it cannot identify or decode.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
    cv2.error,
)
# Errors imageio's FFMPEG plugin raises for files ffmpeg cannot open or decode.
_VIDEO_ERRORS = (OSError, RuntimeError, ValueError, IndexError, StopIteration)

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_ORIENTATION = 0x0112
_INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    # INTER_NEAREST_EXACT samples the source pixel under each output pixel centre, which is
    # what the half-pixel convention above asks for (plain INTER_NEAREST is shifted).
    "nearest": cv2.INTER_NEAREST_EXACT,
}
_RESIZE_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)


# --------------------------------------------------------------------------------------------
# Images


class LoadedImage(NamedTuple):
    """An image in canonical form."""

    rgb: np.ndarray  # [H, W, 3] float32 in [0, 1]
    alpha: np.ndarray | None  # [H, W] float32 in [0, 1]; None when the file has no alpha


def load_image(path: PathLike, name: str | None = None) -> LoadedImage:
    """Read any common image file into canonical form, upright.

    Handles Pillow's modes RGB, RGBA, L, LA, P (a palette transparency entry becomes alpha),
    1, CMYK, I;16 and I (scaled by 1/65535), F (float, must lie in [0, 1]) and 16-bit colour
    PNG (decoded at full precision). The EXIF orientation tag is applied, so a portrait phone
    photo stored sideways comes back portrait. An alpha channel that is opaque everywhere is
    still returned. Multi-frame files (GIF, APNG) give their first frame.

    Args:
        path: the image file.
        name: the input as the user knows it, for error messages (default ``str(path)``).

    Returns:
        :class:`LoadedImage` ``(rgb [H, W, 3], alpha [H, W] or None)``, float32 in [0, 1].

    Raises:
        InputError: the file is missing, a folder, empty, not an image, truncated or corrupt,
            or holds values outside the range of its mode.
    """
    path = Path(path)
    name = str(path) if name is None else name
    _check_is_file(path, name)
    if path.stat().st_size == 0:
        raise InputError(name, "not a readable image (empty file, 0 bytes)")
    try:
        # Pillow reads the file from memory: no read it makes can then ask for more bytes than
        # the file holds (its PNG reader allocates what a chunk's length field claims).
        with Image.open(io.BytesIO(path.read_bytes())) as img:
            img.load()  # full decode: a truncated or corrupt file fails here
            if img.format == "PNG" and _is_16bit_colour_png(path):
                orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1))
                rgb, alpha = _decode_16bit_png(path, name)
                return LoadedImage(
                    apply_orientation(rgb, orientation),
                    None if alpha is None else apply_orientation(alpha, orientation),
                )
            return _pil_to_canonical(ImageOps.exif_transpose(img), name)
    except InputError:
        raise
    except PermissionError as e:
        raise InputError(name, "cannot be read (permission denied)") from e
    except _DECODE_ERRORS as e:
        raise InputError(name, f"not a readable image ({_reason(e)})") from e


def save_image(path: PathLike, rgb: np.ndarray, alpha: np.ndarray | None = None) -> Path:
    """Write an image atomically; the format follows the extension (PNG for ``.png``).

    Args:
        path: where to write; the folder is created if needed.
        rgb: ``[H, W, 3]``, float in [0, 1] (clipped, rounded) or uint8.
        alpha: ``[H, W]``, float in [0, 1] or uint8, or None. Given: the file is RGBA.

    Returns:
        ``Path(path)``.
    """
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be [H, W, 3], got shape {rgb.shape}")
    pixels = to_uint8(rgb)
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.shape != rgb.shape[:2]:
            raise ValueError(f"alpha must be [H, W] = {rgb.shape[:2]}, got shape {alpha.shape}")
        if path.suffix.lower() in (".jpg", ".jpeg"):
            raise ValueError(f"{path.name}: JPEG cannot hold alpha; use .png")
        pixels = np.concatenate([pixels, to_uint8(alpha)[..., None]], axis=2)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(pixels)).save(tmp)
    return path


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float in [0, 1] -> uint8 (``round(x * 255)``, clipped to 0..255); uint8 passes through.

    Args:
        x: any shape, floating (finite) or uint8.

    Returns:
        uint8 array of the same shape.
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"expected float in [0, 1] or uint8, got {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError("values must be finite (found NaN or inf)")
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation tag (1..8) to an array, as ``ImageOps.exif_transpose`` does.

    Args:
        image: ``[H, W, ...]``.
        orientation: the EXIF value; 1 (or anything outside 2..8) leaves the image as it is.

    Returns:
        ``[H, W, ...]`` for orientations 1..4, ``[W, H, ...]`` for 5..8.
    """
    swap = (1, 0) + tuple(range(2, image.ndim))
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(swap),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.transpose(swap)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return image if op is None else np.ascontiguousarray(op(image))


def _check_is_file(path: Path, name: str) -> None:
    if not path.exists():
        raise InputError(name, "file not found")
    if path.is_dir():
        raise InputError(name, "is a folder, not a file")


def _reason(e: BaseException) -> str:
    """A short, one-line reason for a decoding error (no paths, no ffmpeg banners)."""
    if isinstance(e, UnidentifiedImageError):
        return "unknown format or not an image"
    text = str(e)
    if "=== stderr ===" in text:  # imageio-ffmpeg: ffmpeg's last word says what went wrong
        stderr = [line.strip() for line in text.split("=== stderr ===")[-1].splitlines()]
        stderr = [line for line in stderr if line]
        if stderr:
            text = stderr[-1].rsplit(": ", 1)[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = lines[0] if lines else type(e).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _is_16bit_colour_png(path: Path) -> bool:
    """Whether a PNG's header says 16 bits per sample with colour or alpha (IHDR at byte 8)."""
    with open(path, "rb") as f:
        head = f.read(26)
    return (
        len(head) == 26
        and head[:8] == _PNG_SIGNATURE
        and head[12:16] == b"IHDR"
        and head[24] == 16  # bit depth
        and head[25] in (2, 4, 6)  # colour type: RGB, grey + alpha, RGBA
    )


def _decode_16bit_png(path: Path, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit PNG at full precision (Pillow would reduce colour PNGs to 8 bits)."""
    raw = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16:
        raise InputError(name, "not a readable image (16-bit PNG could not be decoded)")
    x = raw.astype(np.float32) / 65535.0
    if x.ndim == 2:
        return np.repeat(x[..., None], 3, axis=2), None
    channels = x.shape[2]
    if channels == 2:  # grey + alpha
        return np.repeat(x[..., :1], 3, axis=2), x[..., 1]
    rgb = np.ascontiguousarray(x[..., 2::-1])  # BGR(A) -> RGB
    return rgb, (x[..., 3].copy() if channels == 4 else None)


def _pil_to_canonical(img: Image.Image, name: str) -> LoadedImage:
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        raw = np.asarray(img)
        lo, hi = int(raw.min()), int(raw.max())
        if lo < 0 or hi > 65535:
            raise InputError(name, f"integer pixel values span {lo}..{hi}, expected 0..65535")
        grey = raw.astype(np.float32) / 65535.0
        alpha = None
        if isinstance(img.info.get("transparency"), int):
            alpha = (raw != img.info["transparency"]).astype(np.float32)
        return LoadedImage(np.repeat(grey[..., None], 3, axis=2), alpha)
    if mode == "F":
        grey = np.asarray(img, dtype=np.float32)
        if not np.isfinite(grey).all():
            raise InputError(name, "float image holds NaN or inf")
        lo, hi = float(grey.min()), float(grey.max())
        if lo < 0.0 or hi > 1.0:
            raise InputError(name, f"float pixel values span [{lo:g}, {hi:g}], expected [0, 1]")
        return LoadedImage(np.repeat(grey[..., None], 3, axis=2), None)
    has_alpha = "A" in mode or "a" in mode or "transparency" in img.info
    pixels = np.asarray(img.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    if has_alpha:
        return LoadedImage(np.ascontiguousarray(pixels[..., :3]), pixels[..., 3].copy())
    return LoadedImage(pixels, None)


# --------------------------------------------------------------------------------------------
# Videos


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
        raise InputError(name, f"no decodable video frames ({_reason(e)})") from e
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
                raise InputError(name, f"no decodable video frames ({_reason(e)})") from e
            raise InputError(name, f"video breaks off after {count} frames ({_reason(e)})") from e
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
        raise InputError(name, f"no decodable video frames ({_reason(e)})") from e
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


# --------------------------------------------------------------------------------------------
# Resize and crop, with intrinsics


def resize(
    image: np.ndarray,
    size: tuple[int, int],
    K: np.ndarray | None = None,
    interpolation: str = "area",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize with OpenCV to ``size = (W', H')``; scale ``K`` to match.

    Like every function here that changes the image plane, returns ``(image, K')`` always;
    ``K'`` is None when ``K`` is None.

    Args:
        image: ``[H, W]`` or ``[H, W, C]``; uint8, uint16, float32 or float64.
        size: ``(W', H')``, positive integers (OpenCV's order).
        K: ``[..., 3, 3]`` in pixels, or None.
        interpolation: ``"area"`` (best for shrinking), ``"linear"`` or ``"nearest"``
            (samples the source pixel under each output pixel centre; use for masks/labels).

    Returns:
        ``(image [H', W'(, C)] of the input dtype, K' [..., 3, 3] or None)``.
    """
    h, w = _check_image(image)
    new_w, new_h = _check_size(size)
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"interpolation must be one of {sorted(_INTERPOLATIONS)}, got {interpolation!r}"
        )
    out = cv2.resize(image, (new_w, new_h), interpolation=_INTERPOLATIONS[interpolation])
    if image.ndim == 3 and out.ndim == 2:  # OpenCV drops a single channel axis
        out = out[..., None]
    new_K = None if K is None else scale_intrinsics(K, new_w / w, new_h / h)
    return out, new_K


def crop(
    image: np.ndarray, box: tuple[int, int, int, int], K: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cut ``box = (x0, y0, x1, y1)`` (pixels ``x0 <= x < x1``, ``y0 <= y < y1``) out of the image.

    Args:
        image: ``[H, W]`` or ``[H, W, C]``.
        box: integers with ``0 <= x0 < x1 <= W`` and ``0 <= y0 < y1 <= H``.
        K: ``[..., 3, 3]`` in pixels, or None.

    Returns:
        ``(image [y1 - y0, x1 - x0(, C)] (a copy), K' or None)``.
    """
    h, w = _check_image(image)
    if len(box) != 4 or not all(isinstance(v, numbers.Integral) for v in box):
        raise ValueError(f"box must be four integers (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"box {box} does not fit inside the {w}x{h} image")
    out = image[y0:y1, x0:x1].copy()
    return out, (None if K is None else crop_intrinsics(K, x0, y0))


def center_crop(
    image: np.ndarray, size: tuple[int, int], K: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Crop ``size = (W', H')`` from the middle (an odd surplus leaves the extra pixel at the
    right / bottom: ``x0 = (W - W') // 2``).

    Args:
        image: ``[H, W]`` or ``[H, W, C]``.
        size: ``(W', H')`` with ``W' <= W`` and ``H' <= H``.
        K: ``[..., 3, 3]`` in pixels, or None.

    Returns:
        ``(image [H', W'(, C)], K' or None)``.
    """
    h, w = _check_image(image)
    new_w, new_h = _check_size(size)
    if new_w > w or new_h > h:
        raise ValueError(f"crop size {new_w}x{new_h} is larger than the {w}x{h} image")
    x0, y0 = (w - new_w) // 2, (h - new_h) // 2
    return crop(image, (x0, y0, x0 + new_w, y0 + new_h), K)


def fit(
    image: np.ndarray,
    resolution: int,
    multiple: int = 16,
    K: np.ndarray | None = None,
    interpolation: str = "area",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize so the long side is ``resolution`` and both sides are multiples of ``multiple``.

    Each side becomes ``round(side * resolution / max(H, W) / multiple) * multiple`` (halves
    round up; at least ``multiple``), and the image is resized to exactly that size, nothing
    cropped: the aspect ratio changes by at most ``multiple / 2`` pixels per side, and ``K``
    is scaled per axis so it stays exact. When ``resolution`` is not itself a multiple, the
    long side is rounded too (e.g. 500 with 16 -> 496).

    Args:
        image: ``[H, W]`` or ``[H, W, C]``.
        resolution: the long side, > 0.
        multiple: both output sides are multiples of this, >= 1.
        K: ``[..., 3, 3]`` in pixels, or None.
        interpolation: as in :func:`resize`.

    Returns:
        ``(image [H', W'(, C)], K' or None)``.
    """
    h, w = _check_image(image)
    for value, what in ((resolution, "resolution"), (multiple, "multiple")):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{what} must be a positive integer, got {value!r}")
    new_w, new_h = fit_size((w, h), resolution, multiple)
    return resize(image, (new_w, new_h), K, interpolation)


def fit_size(size: tuple[int, int], resolution: int, multiple: int = 16) -> tuple[int, int]:
    """The ``(W', H')`` that :func:`fit` resizes a ``size = (W, H)`` image to."""
    w, h = size
    scale = resolution / max(w, h)

    def snap(side: int) -> int:
        return max(multiple, int(math.floor(side * scale / multiple + 0.5)) * multiple)

    return snap(w), snap(h)


def _check_image(image: np.ndarray) -> tuple[int, int]:
    """Check an ``[H, W]`` or ``[H, W, C]`` array OpenCV can resize; return ``(H, W)``."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ValueError(f"image must be [H, W] or [H, W, C] with H, W >= 1, got {image.shape}")
    if image.dtype not in _RESIZE_DTYPES:
        names = ", ".join(np.dtype(d).name for d in _RESIZE_DTYPES)
        raise ValueError(f"image dtype must be one of {names}, got {image.dtype}")
    return image.shape[0], image.shape[1]


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if (
        len(size) != 2
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in size)
        or min(size) < 1
    ):
        raise ValueError(f"size must be two positive integers (W, H), got {size!r}")
    return int(size[0]), int(size[1])
