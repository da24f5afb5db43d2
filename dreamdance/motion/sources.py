"""Where a run's motion comes from: the config's ``poses=`` / ``camera=`` (or the bundled
sample), read, checked and fitted to ``frames`` at ``fps``. Every stage that needs the motion
resolves it here, so the same config always gives the same poses and cameras."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dreamdance import assets
from dreamdance.camera import (
    PRESETS,
    Trajectory,
    intrinsics_from_fov,
    resample,
    rescale_intrinsics,
)
from dreamdance.camera.files import load_camera
from dreamdance.errors import InputError
from dreamdance.inputs import input_file
from dreamdance.media import Video, probe_video, read_video, read_video_sampled, resize
from dreamdance.motion.align import CharacterFrame, align_poses
from dreamdance.motion.backend import PoseBackend
from dreamdance.motion.mask import pose_masks
from dreamdance.motion.openpose import read_openpose
from dreamdance.motion.poses import PoseSequence, fit_to_frames, frame_index, read_poses
from dreamdance.motion.smooth import fill_gaps, one_euro, sanitize

log = logging.getLogger(__name__)
CAMERA_LENGTH = ("resample", "refuse")


@dataclass
class Source:
    """A resolved input: its value, the file it came from (None for a preset), and the config
    values it depends on (for the run directory's step hashes)."""

    value: Any
    path: Path | None
    deps: dict[str, Any]


def driving_video(cfg: Any, max_frames: int | None = None) -> Video | None:
    """``driving=`` read and sampled at ``fps`` (nearest source frame by time, from the
    container's nominal rate; a variable-frame-rate file is sampled by that nominal rate), at
    most ``max_frames`` frames, decoding the video only as far as those need (a long clip is
    not decoded whole). None without ``driving=``."""
    if cfg.driving is None:
        return None
    path = input_file(cfg.driving, "driving")
    video, _, _ = read_video_sampled(path, cfg.fps, name=f"driving={cfg.driving}",
                                     max_frames=max_frames)
    return video


def driving_frames(cfg: Any, width: int, height: int) -> np.ndarray:
    """``driving=`` frame for frame with its poses (sampled at ``fps`` as
    :func:`driving_video`, fitted to ``frames`` as :func:`~dreamdance.motion.poses.fit_to_frames`
    does, ``motion.too_short``) at ``width × height``. [frames, H, W, 3] uint8"""
    video = driving_video(cfg, max_frames=cfg.frames)
    index = frame_index(len(video.frames), cfg.frames, cfg.motion.too_short,
                        f"driving={cfg.driving}")
    return np.stack([resize(video.frames[i], (width, height)) for i in index])


def check_driving(cfg: Any) -> None:
    """A driving video must exist, hold decodable frames (checked on its first frame), be long
    enough for ``frames`` at ``fps`` unless ``motion.too_short`` allows it, and have two
    frames at least when the camera is to be tracked in it — all before anything is written.
    (A video file's frame count is estimated from its container; a count one short of the
    estimate is still caught, later, by the motion stage.)"""
    if cfg.driving is None:
        return
    path, name = input_file(cfg.driving, "driving"), f"driving={cfg.driving}"
    read_video(path, name=name, max_frames=1)
    info = probe_video(path, name=name)
    n_out = int(np.floor((info.n_frames - 1) * cfg.fps / info.fps)) + 1
    if cfg.camera is None and cfg.scene.source != "driving" and info.n_frames < 2:
        raise InputError(name, "has one frame: a camera cannot be tracked in it (give camera=, "
                               "e.g. camera=static)")
    if cfg.motion.too_short == "refuse" and n_out + 1 < cfg.frames:
        raise InputError(name, f"about {n_out} frames at fps={cfg.fps:g}, fewer than "
                               f"frames={cfg.frames} (lower frames, or set "
                               "motion.too_short=hold or loop)")


def read_pose_file(path: Path, name: str, fps: float) -> PoseSequence:
    """Our pose file, or OpenPose/DWPose per-frame JSON (a file or a folder of them)."""
    if path.is_dir():
        return read_openpose(path, fps=fps, name=name)
    try:
        with open(path, "rb") as f:  # the format is told by the start; the reader checks size
            head = f.read(4096).decode("utf-8", errors="replace")
    except OSError as e:
        raise InputError(name, f"cannot be read ({e.strerror})") from None
    if '"people"' in head and "dreamdance-poses" not in head:
        return read_openpose(path, fps=fps, name=name)
    return read_poses(path, name=name)


def poses_source(cfg: Any, too_short: str) -> Source:
    """``poses=`` (ours or OpenPose JSON; the sample dance when null and there is no
    ``driving=``) retimed to ``fps`` and fitted to ``frames``. Poses extracted from a driving
    video are made by :func:`extract_poses`, not here."""
    path = input_file(cfg.poses, "poses", None if cfg.driving is not None else assets.DANCE)
    deps = {"frames": cfg.frames, "fps": cfg.fps, "too_short": too_short}
    if path is None:
        return Source(None, None, deps)
    name = f"poses={cfg.poses or path}"
    poses = fit_to_frames(read_pose_file(path, name, cfg.fps), cfg.frames, cfg.fps, too_short,
                          name=name)
    return Source(sanitize(poses, name), path, deps)


def extract_poses(video: Video, extractor: PoseBackend, cfg: Any, smooth: Any) -> PoseSequence:
    """Poses of ``video`` by ``extractor`` (a pose backend), gaps filled and smoothed, fitted
    to ``frames``. No person anywhere is an error naming ``driving=``."""
    name = f"driving={cfg.driving}"
    poses = extractor(video.frames, fps=video.fps)
    if poses.num_people == 0:
        raise InputError(name, "no person found in the video (check the pose backend's "
                               "weights, or give poses=)")
    poses = sanitize(poses, name)
    if smooth.enabled:
        poses = fill_gaps(poses, max_gap=smooth.max_gap)
        poses = one_euro(poses, min_cutoff=smooth.min_cutoff, beta=smooth.beta)
    return fit_to_frames(poses, cfg.frames, cfg.fps, cfg.motion.too_short, name=name)


def camera_source(cfg: Any, width: int, height: int, length: str = "resample",
                  preset_depth: float = 4.0, preset_amplitude: float = 1.0,
                  previous: Path | None = None, static: bool = False) -> Source:
    """``camera=`` (file or preset) at ``width``×``height`` with ``frames`` cameras,
    standardised to its first camera. With no ``camera=``: the ``static`` preset when
    ``static``, else ``previous`` (the run directory's ``motion/camera.json``) when it exists,
    else the sample's path.

    A file of another length is resampled over the frames (logged) or refused (``length``).
    """
    if length not in CAMERA_LENGTH:
        raise InputError(f"motion.camera_length={length}",
                         f"must be one of {', '.join(CAMERA_LENGTH)}")
    if cfg.camera is not None:
        spec = str(cfg.camera)
    elif static:
        spec = "static"
    elif previous is not None and previous.is_file():
        log.info("camera: %s (written by stage=motion)", previous)
        spec = str(previous)
    else:
        spec = str(assets.sample_path(assets.CAMERA))
    K = intrinsics_from_fov(cfg.fov, width, height)
    cams: Trajectory = load_camera(spec, cfg.frames, width, height, K, depth=preset_depth,
                                   amplitude=preset_amplitude)
    if len(cams) != cfg.frames:
        name = f"camera={cfg.camera or spec}"
        if length == "refuse":
            raise InputError(name, f"{len(cams)} cameras for frames={cfg.frames} "
                             "(set motion.camera_length=resample, or change frames)")
        log.warning("%s: %d cameras resampled to frames=%d", name, len(cams), cfg.frames)
        cams = resample(cams, cfg.frames)
    path = None if spec in PRESETS else Path(spec)
    deps = {"frames": cfg.frames, "size": [width, height], "fov": cfg.fov,
            "camera_length": length, "preset": spec if path is None else None,
            "preset_depth": preset_depth, "preset_amplitude": preset_amplitude}
    return Source(cams, path, deps)


def tracked_camera(tracker: Any, frames: np.ndarray, poses: PoseSequence, fov: float,
                   width: int, height: int, n_frames: int, too_short: str,
                   name: str) -> Trajectory:
    """The camera path of a driving video, tracked on its background (the dancer, from its
    poses, masked out), at the working size and fitted to ``n_frames`` frames.

    Args:
        tracker: a camera tracker (``conf/camtrack/``),
            ``tracker(frames, K, masks) -> TrackResult``; its warnings are logged.
        frames: the video. [T, H, W, 3] uint8
        poses: the dancer's poses in the video's pixels (at least T frames).
        fov: horizontal field of view of the video, degrees.
        width, height: the working size.
        n_frames, too_short: as :func:`~dreamdance.motion.poses.frame_index`.
        name: the video as the user knows it, for errors.
    """
    h, w = frames.shape[1:3]
    masks = pose_masks(align_poses(poses, CharacterFrame((0, 0, w, h), w, h), "none"))
    result = tracker(frames, intrinsics_from_fov(fov, w, h), masks[:len(frames)])
    for warning in result.warnings:
        log.warning("camera tracking: %s", warning)
    traj = rescale_intrinsics(result.trajectory, width, height)
    index = frame_index(len(traj), n_frames, too_short, name)
    return Trajectory(traj.w2c[index], traj.K[index], width, height)
