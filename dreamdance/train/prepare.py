"""Making the training-data layout (:mod:`dreamdance.train.layout`) from a folder of videos.

Per source video: read it, optionally resample it to ``fps`` (nearest source frame by time),
shrink it so that its long side is at most ``max_side`` (and crop an odd last row or column, so
that the H.264 file has the size the poses refer to), cut it into clips of ``clip_frames``
frames (a tail shorter than ``min_frames`` is dropped), and per clip:

- poses: the pose file ``NAME.poses.json`` beside ``NAME.mp4`` (our format; its frame count
  must equal the video's), else the pose backend; a clip whose driver has a confident body
  keypoint in fewer than ``min_pose_frames`` of its frames is refused;
- character mask (white = character): the segmenter per frame; GrabCut is seeded with the
  driver's pose box grown by ``SEED_MARGIN``; a frame the segmenter cannot segment (no pose box,
  or a mask found empty) gets the pose mask (:func:`dreamdance.motion.mask.pose_masks`).

Scene videos (no person) become ``kind="scene"`` clips with no poses and no mask. Unreadable
or too short videos and refused clips are counted per reason, never fatal: the summary reports
them. One source video is one unit of work (:func:`prepare_video`); the run over all of them
(records of finished units, resuming, shares for several processes, the ``train``/``val``
split and ``metadata.jsonl``) is :mod:`dreamdance.train.prepare_run`.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dreamdance.errors import InputError
from dreamdance.media import read_video_sampled, write_video
from dreamdance.motion.align import pose_box, pose_frame
from dreamdance.motion.backend import PoseBackend
from dreamdance.motion.mask import mask_video, pose_masks
from dreamdance.motion.poses import PARTS, PoseSequence, read_poses, write_poses
from dreamdance.motion.smooth import fill_gaps, one_euro, sanitize
from dreamdance.scene.segment import seed_box
from dreamdance.train.layout import ClipRecord, check_clip_name

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")
POSE_SUFFIX = ".poses.json"
CONFIDENT = 0.3  # a keypoint at or above this confidence counts (as in dreamdance.motion.align)
CLIPS = "clips"

# skip reasons, as counted in the summary
UNREADABLE = "unreadable video"
TOO_SHORT = "video shorter than min_frames"
POSE_FILE = "pose file refused"
NO_POSE_SOURCE = "no pose file and pose=none"
FEW_POSES = "clip with too few posed frames"


@dataclass(frozen=True)
class PrepareOptions:
    """The tool's own settings (the pose backend and segmenter are built from the project's
    Hydra groups ``conf/pose/`` and ``conf/segmenter/``).

    Args:
        videos: folder of source videos with a person (files with a video extension).
        out: the dataset folder to write.
        clip_frames: frames per clip, >= 1.
        min_frames: the shortest clip kept (a shorter tail is dropped), 1..clip_frames.
        fps: resample every video to this rate; None keeps each video's own rate.
        max_side: shrink frames so that the long side is at most this, >= 16.
        scenes: folder of videos with no person (``kind="scene"`` clips), or None.
        val: fraction of source videos in the ``val`` split, in [0, 1).
        seed: seed of the split.
        force: rebuild over an existing dataset in ``out`` (without it, a dataset this
            tool started there is resumed).
        min_pose_frames: fraction of a clip's frames whose driver needs a confident body
            keypoint, in [0, 1].
        crf: H.264 quality of the written videos, 0..51.
    """

    videos: Path
    out: Path
    clip_frames: int = 120
    min_frames: int = 49
    fps: float | None = None
    max_side: int = 768
    scenes: Path | None = None
    val: float = 0.05
    seed: int = 0
    force: bool = False
    min_pose_frames: float = 0.5
    crf: int = 18


@dataclass(frozen=True)
class Source:
    """One source video, the unit of work: ``kind`` is ``"person"`` (from ``videos=``) or
    ``"scene"`` (from ``scenes=``); its clips are named after ``name``, the file's stem."""

    path: Path
    kind: str

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def key(self) -> str:
        """The input as the user knows it, for messages: ``videos=PATH`` or ``scenes=PATH``."""
        return f"{'videos' if self.kind == 'person' else 'scenes'}={self.path}"


@dataclass
class Unit:
    """What one source video gave: its clips (their ``split`` is decided later, from the full
    list of sources) and its skips per reason (videos or clips)."""

    clips: list[ClipRecord] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


# --------------------------------------------------------------------------------------------
# Checks and planning (nothing written)


def check_options(opt: PrepareOptions) -> None:
    """Refuse bad settings with an :class:`InputError` naming the key."""
    for key, low in (("clip_frames", 1), ("min_frames", 1), ("max_side", 16)):
        value = getattr(opt, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{key}={value}", f"must be an integer >= {low}")
    if opt.min_frames > opt.clip_frames:
        raise InputError(f"min_frames={opt.min_frames}",
                         f"must be at most clip_frames={opt.clip_frames}")
    if opt.fps is not None and not (math.isfinite(opt.fps) and opt.fps > 0):
        raise InputError(f"fps={opt.fps}", "must be a positive number or null")
    if not 0 <= opt.val < 1:
        raise InputError(f"val={opt.val}", "must be a fraction in [0, 1)")
    if not 0 <= opt.min_pose_frames <= 1:
        raise InputError(f"min_pose_frames={opt.min_pose_frames}", "must be a fraction in [0, 1]")
    if not 0 <= opt.crf <= 51:
        raise InputError(f"crf={opt.crf}", "must be an integer in 0..51")


def list_videos(folder: Path, key: str) -> list[Path]:
    """The video files directly in ``folder`` (by extension, hidden files skipped), by name.

    Raises:
        InputError: ``folder`` is not a folder, or holds no video file.
    """
    name = f"{key}={folder}"
    if not folder.is_dir():
        raise InputError(name, "not a folder" if folder.exists() else "folder not found")
    found = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not found:
        raise InputError(name, f"no video files ({', '.join(VIDEO_EXTENSIONS)})")
    return found


def check_names(sources: Iterable[Path]) -> None:
    """Clip names come from file stems: a stem that is not a clip name
    (:func:`~dreamdance.train.layout.check_clip_name`) and two sources with one stem are
    refused."""
    seen: dict[str, Path] = {}
    for path in sources:
        check_clip_name(path.stem, str(path))
        if path.stem in seen:
            raise InputError(str(path), f"has the same name stem as {seen[path.stem]} (clip "
                                        "names come from the stem); rename one of them")
        seen[path.stem] = path


# --------------------------------------------------------------------------------------------
# Frames and poses


def resample_index(n: int, src_fps: float, fps: float | None) -> np.ndarray:
    """Source frames of a video of ``n`` frames at ``src_fps`` sampled at ``fps`` (nearest by
    time; None: all of them).  [n_out] int"""
    if fps is None:
        return np.arange(n)
    n_out = int(np.floor((n - 1) * fps / src_fps + 1e-9)) + 1
    return np.minimum(np.round(np.arange(n_out) * src_fps / fps).astype(int), n - 1)


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """``(w', h')``: ``width x height`` scaled by one factor so that the long side is at most
    ``max_side`` (unchanged when it already is)."""
    s = min(1.0, max_side / max(width, height))
    return max(2, round(width * s)), max(2, round(height * s))


def fit_frames(frames: np.ndarray, max_side: int) -> np.ndarray:
    """Frames area-resized to :func:`scaled_size`, then cut to even sides (an odd last row or
    column dropped: H.264 in yuv420p needs even sizes).  [T, H, W, 3] -> [T, H', W', 3]"""
    t, h, w, _ = frames.shape
    sw, sh = scaled_size(w, h, max_side)
    if (sw, sh) != (w, h):
        frames = np.stack([cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA)
                           for f in frames])
    return frames[:, :sh - sh % 2, :sw - sw % 2]


def scale_poses(poses: PoseSequence, sx: float, sy: float, width: int, height: int,
                fps: float) -> PoseSequence:
    """Keypoints scaled by ``(sx, sy)`` into a ``width x height`` frame at ``fps``; absent
    keypoints (confidence 0) stay all zero.  [T, P, K, 3] -> [T, P, K, 3]"""
    arrays = {}
    for part in PARTS:
        a = getattr(poses, part).copy()
        on = a[..., 2] > 0
        a[..., 0] = np.where(on, a[..., 0] * sx, 0)
        a[..., 1] = np.where(on, a[..., 1] * sy, 0)
        arrays[part] = a
    return PoseSequence(**arrays, width=width, height=height, fps=fps, driver=poses.driver)


def slice_poses(poses: PoseSequence, index: np.ndarray) -> PoseSequence:
    """The frames ``index [n]`` of ``poses``."""
    return replace(poses, **{part: getattr(poses, part)[index] for part in PARTS})


def posed_frames(poses: PoseSequence, threshold: float = CONFIDENT) -> np.ndarray:
    """Frames whose driver has at least one body keypoint at or above ``threshold``.  [T] bool"""
    if poses.num_people == 0:
        return np.zeros(len(poses), bool)
    return (poses.body[:, poses.driver, :, 2] >= threshold).any(axis=1)


def clip_spans(n: int, clip_frames: int, min_frames: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of consecutive clips of ``clip_frames`` over ``n`` frames; a last clip
    shorter than ``min_frames`` is dropped."""
    spans = [(s, min(s + clip_frames, n)) for s in range(0, n, clip_frames)]
    return [(a, b) for a, b in spans if b - a >= min_frames]


# --------------------------------------------------------------------------------------------
# Masks


def clip_masks(frames: np.ndarray, poses: PoseSequence, segmenter: Callable,
               grabcut_box: Callable | None, name: str) -> np.ndarray:
    """The character mask of every frame (True = character).

    Args:
        frames: the clip.  [T, H, W, 3] uint8
        poses: its poses, in its pixels.  [T, P, K, 3]
        segmenter: ``segmenter(rgb, alpha, name=...) -> [H, W]`` (dreamdance.scene.segment).
        grabcut_box: for GrabCut, ``grabcut_box(box) -> segmenter`` seeded by that box; each
            frame is segmented from its driver's pose box (grown by ``SEED_MARGIN``).
        name: the clip, for messages.

    Returns:
        [T, H, W] bool; a frame the segmenter cannot do has its pose mask instead (counted in
        one logged warning).
    """
    t, h, w, _ = frames.shape
    fallback = pose_masks(poses)
    out = np.zeros((t, h, w), bool)
    failed = 0
    for i in range(t):
        rgb = frames[i].astype(np.float32) / 255.0
        seg = segmenter
        if grabcut_box is not None:
            box = seed_box(pose_box(pose_frame(poses, i), CONFIDENT) if poses.num_people
                           else None, w, h)
            if box is None:
                out[i], failed = fallback[i], failed + 1
                continue
            seg = grabcut_box(box)
        try:
            out[i] = seg(rgb, None, name=f"{name} frame {i}") >= 0.5
        except InputError:  # the segmenter found no character, or no background
            out[i], failed = fallback[i], failed + 1
    if failed:
        log.warning("%s: %d of %d frames could not be segmented; their pose masks are used",
                    name, failed, t)
    return out


# --------------------------------------------------------------------------------------------
# The run


@dataclass
class Components:
    """What the tool builds from the config.

    Args:
        pose: the pose backend (a :class:`~dreamdance.motion.backend.PoseBackend`), or None
            (only pose files are used).
        segmenter: ``segmenter(rgb, alpha, name=) -> [H, W]``, or None (no masks written).
        grabcut_box: ``grabcut_box(box) -> segmenter`` when the segmenter is GrabCut.
        smooth: the ``motion.smooth`` settings (enabled, max_gap, min_cutoff, beta) applied to
            extracted poses.
        settings: the settings of all three as flat keys (``segmenter.iterations``…), recorded
            with the dataset: a resumed run must have the same
            (:func:`dreamdance.train.prepare_units.flat_settings`).
    """

    pose: PoseBackend | None = None
    segmenter: Callable | None = None
    grabcut_box: Callable | None = None
    smooth: Any = None
    settings: dict[str, Any] = field(default_factory=dict)


def pose_file(video: Path) -> Path:
    """``NAME.poses.json`` beside ``NAME.mp4``."""
    return video.with_name(video.stem + POSE_SUFFIX)


def prepare_video(src: Source, opt: PrepareOptions, comp: Components) -> Unit:
    """Write the clips of one source video to ``opt.out/clips/``; returns them and the skips.

    Folders ``clips/NAME-k`` left by an earlier attempt at this video (a run stopped halfway)
    are removed before its clips are written, so that only what this attempt writes is there.
    """
    path, kind, name = src.path, src.kind, src.key
    unit = Unit()
    source = {}

    def fit(frame: np.ndarray) -> np.ndarray:  # each frame shrunk as soon as it is decoded
        source.setdefault("size", frame.shape[:2])
        return fit_frames(frame[None], opt.max_side)[0]

    try:  # one streaming pass: only the sampled frames, already shrunk, are kept
        video, index, n_src = read_video_sampled(path, opt.fps, name=name, transform=fit)
    except InputError as e:
        log.warning("skipped: %s", e)
        unit.skipped[UNREADABLE] += 1
        return unit
    fps = video.fps
    if len(index) < opt.min_frames:
        log.warning("skipped: %s: %d frames at %g fps, fewer than min_frames=%d", name,
                    len(index), fps, opt.min_frames)
        unit.skipped[TOO_SHORT] += 1
        return unit
    src_h, src_w = source["size"]
    sw, sh = scaled_size(src_w, src_h, opt.max_side)
    frames = video.frames  # [T, H', W', 3]

    poses = None
    if kind == "person":
        side = pose_file(path)
        if side.is_file():
            try:
                poses = _side_poses(side, n_src, (src_w, src_h))
            except InputError as e:
                log.warning("skipped: %s", e)
                unit.skipped[POSE_FILE] += 1
                return unit
            poses = scale_poses(slice_poses(poses, index), sw / src_w, sh / src_h,
                                frames.shape[2], frames.shape[1], fps)
        elif comp.pose is None:
            log.warning("skipped: %s: no %s beside it and pose=none", name, side.name)
            unit.skipped[NO_POSE_SOURCE] += 1
            return unit

    spans = clip_spans(len(frames), opt.clip_frames, opt.min_frames)
    clear_clips(opt.out, [clip_name(src.name, k) for k in range(len(spans))])
    for k, (a, b) in enumerate(spans):
        clip = clip_name(src.name, k)
        clip_poses = None
        if kind == "person":
            clip_poses = (slice_poses(poses, np.arange(a, b)) if poses is not None
                          else _extract(frames[a:b], fps, comp, f"{name} clip {clip}"))
            posed = posed_frames(clip_poses)
            if posed.mean() < opt.min_pose_frames:
                log.warning("skipped clip %s of %s: a confident body in %d of %d frames "
                            "(min_pose_frames=%g)", clip, name, posed.sum(), b - a,
                            opt.min_pose_frames)
                unit.skipped[FEW_POSES] += 1
                continue
        unit.clips.append(_write_clip(opt, comp, clip, frames[a:b], fps, clip_poses, kind,
                                      path.name))
    return unit


def clip_name(stem: str, k: int) -> str:
    """The name of clip ``k`` of the source video named ``stem``: ``STEM-000``, ``STEM-001``…
    (the stem is all before the last ``-``, so no two sources share a clip name)."""
    return f"{stem}-{k:03d}"


def clear_clips(out: Path, names: Iterable[str]) -> None:
    """Remove the clip folders ``out/clips/NAME`` that exist (a symlink as a link)."""
    for name in names:
        folder = out / CLIPS / name
        if folder.is_symlink() or folder.is_file():
            folder.unlink()
        elif folder.is_dir():
            shutil.rmtree(folder)


def _side_poses(side: Path, n_frames: int, src_size: tuple[int, int]) -> PoseSequence:
    """The pose file beside a video, checked against the video's ``n_frames``."""
    name = f"poses {side}"
    poses = read_poses(side, name=name)
    if len(poses) != n_frames:
        raise InputError(name, f"{len(poses)} frames, but the video has {n_frames}")
    poses = sanitize(poses, name)
    w, h = src_size
    if (poses.width, poses.height) != (w, h):  # e.g. found at another resolution
        poses = scale_poses(poses, w / poses.width, h / poses.height, w, h, poses.fps)
    return poses


def _extract(frames: np.ndarray, fps: float, comp: Components, name: str) -> PoseSequence:
    """Poses of a clip by the backend, sanitised and (per ``motion.smooth``) smoothed."""
    poses = comp.pose(frames, fps=fps)
    if poses.num_people == 0:
        return poses
    poses = sanitize(poses, name)
    sm = comp.smooth
    if sm is not None and sm.enabled:
        poses = fill_gaps(poses, max_gap=sm.max_gap)
        poses = one_euro(poses, min_cutoff=sm.min_cutoff, beta=sm.beta)
    return poses


def _write_clip(opt: PrepareOptions, comp: Components, clip: str, frames: np.ndarray,
                fps: float, poses: PoseSequence | None, kind: str, source: str) -> ClipRecord:
    """Write ``clips/CLIP/{video.mp4, poses.json, mask.mp4}``; returns its record (split
    ``train`` until the run decides it)."""
    folder = f"{CLIPS}/{clip}"
    root = opt.out
    write_video(root / folder / "video.mp4", frames, fps=fps, crf=opt.crf)
    pose_rel = mask_rel = None
    if poses is not None:
        pose_rel = f"{folder}/poses.json"
        write_poses(root / pose_rel, poses)
        if comp.segmenter is not None:
            masks = clip_masks(frames, poses, comp.segmenter, comp.grabcut_box,
                               f"clip {clip}")
            mask_rel = f"{folder}/mask.mp4"
            write_video(root / mask_rel, mask_video(masks), fps=fps, crf=opt.crf)
    t, h, w, _ = frames.shape
    return ClipRecord(name=clip, video=f"{folder}/video.mp4", poses=pose_rel, mask=mask_rel,
                      frames=t, fps=fps, width=w, height=h, kind=kind, split="train",
                      source=source)
