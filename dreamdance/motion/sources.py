"""Where a run's motion comes from: the config's ``poses=`` / ``camera=`` (or the bundled
sample), read, checked and fitted to ``frames`` at ``fps``. Every stage that needs the motion
resolves it here, so the same config always gives the same poses and cameras."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dreamdance import assets
from dreamdance.camera import PRESETS, Trajectory, intrinsics_from_fov, resample
from dreamdance.errors import InputError
from dreamdance.inputs import input_file
from dreamdance.media import read_video
from dreamdance.motion.poses import PoseSequence, fit_to_frames, read_poses
from dreamdance.trajectory import load_camera

log = logging.getLogger(__name__)
CAMERA_LENGTH = ("resample", "refuse")


@dataclass
class Source:
    """A resolved input: its value, the file it came from (None for a preset), and the config
    values it depends on (for the run directory's step hashes)."""

    value: Any
    path: Path | None
    deps: dict[str, Any]


def check_driving(cfg: Any) -> None:
    """A driving video must be readable; extracting motion from it is not available yet, so
    ``poses=`` and ``camera=`` must be given with it."""
    if cfg.driving is None:
        return
    read_video(input_file(cfg.driving, "driving"), name=f"driving={cfg.driving}", max_frames=1)
    missing = [f"{k}=" for k in ("poses", "camera") if cfg[k] is None]
    if missing:
        raise InputError(f"driving={cfg.driving}", "extracting motion from a video is not "
                         f"available in this version; give {' and '.join(missing)} instead")


def poses_source(cfg: Any, too_short: str) -> Source:
    """``poses=`` (or the sample dance) retimed to ``fps`` and fitted to ``frames``."""
    path = input_file(cfg.poses, "poses", assets.DANCE)
    name = f"poses={cfg.poses or path}"
    poses: PoseSequence = fit_to_frames(read_poses(path, name=name), cfg.frames, cfg.fps,
                                        too_short, name=name)
    return Source(poses, path, {"frames": cfg.frames, "fps": cfg.fps, "too_short": too_short})


def camera_source(cfg: Any, width: int, height: int, length: str = "resample",
                  preset_depth: float = 4.0, preset_amplitude: float = 1.0,
                  previous: Path | None = None) -> Source:
    """``camera=`` (file or preset) at ``width``×``height`` with ``frames`` cameras,
    standardised to its first camera. With no ``camera=``: ``previous`` (the run directory's
    ``motion/camera.json``) when it exists, else the sample's path.

    A file of another length is resampled over the frames (logged) or refused (``length``).
    """
    if length not in CAMERA_LENGTH:
        raise InputError(f"motion.camera_length={length}",
                         f"must be one of {', '.join(CAMERA_LENGTH)}")
    if cfg.camera is not None:
        spec = str(cfg.camera)
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
