"""stage=motion: the driving poses and camera for every output frame.

Reads ``poses=`` (or the bundled dance) and ``camera=`` (a file, a preset, or the bundled
path), fits both to ``frames`` at ``fps`` and the working size, and writes
``motion/poses.json`` and ``motion/camera.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dreamdance import assets
from dreamdance.camera import PRESETS, intrinsics_from_fov, resample
from dreamdance.errors import InputError
from dreamdance.inputs import check_common, input_file
from dreamdance.media import fit_size, load_image, read_video, save_image
from dreamdance.motion.poses import fit_to_frames, read_poses, write_poses
from dreamdance.preview import motion_preview
from dreamdance.rundir import RunDir
from dreamdance.trajectory import load_camera, write_trajectory

log = logging.getLogger(__name__)
CAMERA_LENGTH = ("resample", "refuse")


def run(cfg: DictConfig) -> None:
    check_common(cfg)
    st = cfg.stage
    if st.camera_length not in CAMERA_LENGTH:
        raise InputError(f"stage.camera_length={st.camera_length}",
                         f"must be one of {', '.join(CAMERA_LENGTH)}")
    if cfg.driving is not None:
        read_video(input_file(cfg.driving, "driving"), name=f"driving={cfg.driving}",
                   max_frames=1)
        missing = [f"{k}=" for k in ("poses", "camera") if cfg[k] is None]
        if missing:
            raise InputError(f"driving={cfg.driving}", "extracting motion from a video is not "
                             f"available in this version; give {' and '.join(missing)} instead")

    # --- check and read every input before anything is written ---
    image_path = input_file(cfg.image, "image", assets.ART)
    art = load_image(image_path, name=f"image={cfg.image or image_path}")
    width, height = fit_size((art.rgb.shape[1], art.rgb.shape[0]), cfg.resolution)
    poses_path = input_file(cfg.poses, "poses", assets.DANCE)
    poses_name = f"poses={cfg.poses or poses_path}"
    poses = fit_to_frames(read_poses(poses_path, name=poses_name), cfg.frames, cfg.fps,
                          st.too_short, name=poses_name)
    K = intrinsics_from_fov(cfg.fov, width, height)
    camera_spec = str(cfg.camera) if cfg.camera is not None else str(assets.sample_path(
        assets.CAMERA))
    camera_path = None if camera_spec in PRESETS else Path(camera_spec)
    cams = load_camera(camera_spec, cfg.frames, width, height, K, depth=st.preset_depth,
                       amplitude=st.preset_amplitude)
    if len(cams) != cfg.frames:
        name = f"camera={cfg.camera or camera_spec}"
        if st.camera_length == "refuse":
            raise InputError(name, f"{len(cams)} cameras for frames={cfg.frames} "
                             "(set stage.camera_length=resample, or change frames)")
        log.warning("%s: %d cameras resampled to frames=%d", name, len(cams), cfg.frames)
        cams = resample(cams, cfg.frames)

    # --- write ---
    run_dir = RunDir(cfg.out, config=OmegaConf.to_container(cfg, resolve=True), force=cfg.force)
    common = {"frames": cfg.frames, "fps": cfg.fps}
    run_dir.step("motion/poses", ["motion/poses.json"],
                 {**common, "poses": poses_path, "too_short": st.too_short},
                 lambda: write_poses(run_dir.path("motion/poses.json"), poses))
    run_dir.step("motion/camera", ["motion/camera.json"],
                 {**common, "camera": camera_path or camera_spec, "size": [width, height],
                  "fov": cfg.fov, "preset_depth": st.preset_depth,
                  "preset_amplitude": st.preset_amplitude,
                  "camera_length": st.camera_length},
                 lambda: write_trajectory(run_dir.path("motion/camera.json"), cams,
                                          format="json", fps=cfg.fps))
    run_dir.step("motion/preview", ["motion/preview.png"],
                 {"image": image_path, "poses": run_dir.path("motion/poses.json"),
                  "camera": run_dir.path("motion/camera.json")},
                 lambda: save_image(run_dir.path("motion/preview.png"),
                                    motion_preview(art.rgb, poses, cams)))
    log.info("motion: %d frames at %g fps, %dx%d, written to %s", cfg.frames, cfg.fps, width,
             height, run_dir.root)

