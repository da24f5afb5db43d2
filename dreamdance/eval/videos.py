"""Predicted, reference and mask videos: find them, match them by name, load them as tensors.

Each of ``pred=``, ``ref=`` and ``mask=`` is one of

- a video file (anything ffmpeg reads) or a folder of frame images: one video;
- a folder of videos (video files and/or sub-folders of frames): videos are matched across the
  three inputs by name without extension (``pred/a.mp4`` ↔ ``ref/a/`` ↔ ``mask/a.mp4``); every
  predicted video needs a reference (and a mask, when masks are given).

Matched videos must have the same frame count and size. Mask videos are read as grey
(the channel mean); a pixel is foreground where the mask is > 0.5.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from dreamdance.errors import InputError
from dreamdance.media import FRAME_SUFFIXES, read_video

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif", ".m4v")


class VideoPair(NamedTuple):
    """One predicted video, its reference and optional mask (paths)."""

    name: str
    pred: Path
    ref: Path
    mask: Path | None


def _is_frame_folder(folder: Path) -> bool:
    return any(p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".")
               for p in folder.iterdir() if p.is_file())


def list_videos(path: str | Path, key: str) -> dict[str, Path]:
    """The videos an input names, by name: ``{stem: path}``.

    Raises:
        InputError: the path is missing, or a folder holds neither frames nor videos.
    """
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise InputError(f"{key}={path}", "no such file or folder")
    if p.is_file() or _is_frame_folder(p):
        return {p.stem if p.is_file() else p.name: p}
    found = {}
    for child in sorted(p.iterdir()):
        if child.name.startswith("."):
            continue
        if (child.is_file() and child.suffix.lower() in VIDEO_SUFFIXES) or (
                child.is_dir() and _is_frame_folder(child)):
            found[child.stem if child.is_file() else child.name] = child
    if not found:
        raise InputError(f"{key}={path}", "folder holds no frame images and no videos")
    return found


def match_videos(pred: str | Path, ref: str | Path, mask: str | Path | None = None) -> list[VideoPair]:
    """Pair every predicted video with its reference (and mask) by name.

    A single predicted video is paired with a single reference (and mask) whatever their names.

    Raises:
        InputError: an input is missing, or a predicted video has no reference or mask.
    """
    preds, refs = list_videos(pred, "pred"), list_videos(ref, "ref")
    masks = None if mask is None else list_videos(mask, "mask")
    single = len(preds) == 1 and len(refs) == 1 and (masks is None or len(masks) == 1)
    pairs = []
    for name, p in preds.items():
        r = next(iter(refs.values())) if single else refs.get(name)
        if r is None:
            raise InputError(f"ref={ref}", f"no video named {name!r} (to match pred {p.name})")
        m = None
        if masks is not None:
            m = next(iter(masks.values())) if single else masks.get(name)
            if m is None:
                raise InputError(f"mask={mask}", f"no video named {name!r} (to match pred {p.name})")
        pairs.append(VideoPair(name, p, r, m))
    return pairs


def to_frames(frames_uint8) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float32 ``[T, 3, H, W]`` in [0, 1]."""
    return torch.from_numpy(frames_uint8).permute(0, 3, 1, 2).float() / 255


def load_pair(pair: VideoPair) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Decode a pair.

    Returns:
        ``(pred [T, 3, H, W], ref [T, 3, H, W], mask [T, 1, H, W] or None)``, float32 in [0, 1].

    Raises:
        InputError: a video does not decode, or frame counts or sizes differ.
    """
    pred = to_frames(read_video(pair.pred, name=f"pred={pair.pred}").frames)
    ref = to_frames(read_video(pair.ref, name=f"ref={pair.ref}").frames)
    mask = None
    if pair.mask is not None:
        mask = to_frames(read_video(pair.mask, name=f"mask={pair.mask}").frames).mean(1, keepdim=True)
    for key, path, other in (("ref", pair.ref, ref), ("mask", pair.mask, mask)):
        if other is None:
            continue
        if other.shape[0] != pred.shape[0]:
            raise InputError(f"{key}={path}", f"{other.shape[0]} frames, but pred {pair.pred.name} "
                             f"has {pred.shape[0]}")
        if other.shape[2:] != pred.shape[2:]:
            raise InputError(f"{key}={path}", f"frames are {other.shape[3]}x{other.shape[2]}, but "
                             f"pred {pair.pred.name} is {pred.shape[3]}x{pred.shape[2]}")
    return pred, ref, mask
