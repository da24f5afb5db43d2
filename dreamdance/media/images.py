"""Images in and out: :class:`LoadedImage` (``rgb [H, W, 3]`` float32 in [0, 1], ``alpha [H, W]``
or None) read from any file Pillow decodes, EXIF orientation applied, 16-bit PNGs kept."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_ORIENTATION = 0x0112


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
    check_is_file(path, name)
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
        raise InputError(name, f"not a readable image ({reason(e)})") from e


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


def check_is_file(path: Path, name: str) -> None:
    if not path.exists():
        raise InputError(name, "file not found")
    if path.is_dir():
        raise InputError(name, "is a folder, not a file")


def reason(e: BaseException) -> str:
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
