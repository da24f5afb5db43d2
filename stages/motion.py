"""stage=motion: the driving poses and camera for every output frame.

Reads ``poses=`` (or the bundled dance) and ``camera=`` (a file, a preset, or the bundled
path), fits both to ``frames`` at ``fps`` and the working size, and writes
``motion/poses.json``, ``motion/camera.json`` and ``motion/preview.png``.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf

from dreamdance import assets
from dreamdance.inputs import check_common, input_file
from dreamdance.media import fit_size, load_image, save_image
from dreamdance.motion.poses import write_poses
from dreamdance.motion.sources import camera_source, check_driving, poses_source
from dreamdance.preview import motion_preview
from dreamdance.rundir import RunDir
from dreamdance.trajectory import write_trajectory

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> None:
    # --- check and read every input before anything is written ---
    check_common(cfg)
    check_driving(cfg)
    mo = cfg.motion
    image_path = input_file(cfg.image, "image", assets.ART)
    art = load_image(image_path, name=f"image={cfg.image or image_path}")
    width, height = fit_size((art.rgb.shape[1], art.rgb.shape[0]), cfg.resolution)
    poses = poses_source(cfg, mo.too_short)
    cams = camera_source(cfg, width, height, mo.camera_length, mo.preset_depth,
                         mo.preset_amplitude)

    # --- write ---
    run_dir = RunDir(cfg.out, config=OmegaConf.to_container(cfg, resolve=True), force=cfg.force)
    run_dir.step("motion/poses", ["motion/poses.json"], {**poses.deps, "poses": poses.path},
                 lambda: write_poses(run_dir.path("motion/poses.json"), poses.value))
    run_dir.step("motion/camera", ["motion/camera.json"], {**cams.deps, "camera": cams.path},
                 lambda: write_trajectory(run_dir.path("motion/camera.json"), cams.value,
                                          format="json", fps=cfg.fps))
    run_dir.step("motion/preview", ["motion/preview.png"],
                 {"image": image_path, "poses": run_dir.path("motion/poses.json"),
                  "camera": run_dir.path("motion/camera.json")},
                 lambda: save_image(run_dir.path("motion/preview.png"),
                                    motion_preview(art.rgb, poses.value, cams.value)))
    log.info("motion: %d frames at %g fps, %dx%d, written to %s", cfg.frames, cfg.fps, width,
             height, run_dir.root)
