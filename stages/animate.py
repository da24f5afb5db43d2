"""stage=animate: pose-aware video inpainting (the paper's section 3.3).

Reads the scene stage's background video and character cut-out and the motion stage's aligned
poses, pose videos and mask from the run directory, and writes ``animate/animation.mp4``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dreamdance.animate.compose import composite_preview
from dreamdance.errors import InputError
from dreamdance.inputs import check_common
from dreamdance.media import load_image, read_video, write_video
from dreamdance.motion.poses import read_poses
from dreamdance.rundir import RunDir

log = logging.getLogger(__name__)

INPUTS = {  # run-directory file -> the stage that writes it
    "scene/background.mp4": "scene", "scene/character.png": "scene",
    "motion/poses_aligned.json": "motion", "animate/mask.mp4": "motion",
    "animate/pose_body.mp4": "motion", "animate/pose_face.mp4": "motion",
    "animate/pose_hand.mp4": "motion",
}
MODELS = ("preview",)


def run(cfg: DictConfig) -> None:
    check_common(cfg)
    root = Path(cfg.out)
    for rel, stage in INPUTS.items():
        if not (root / rel).is_file():
            raise InputError(f"out={cfg.out}", f"{rel} not found: run stage={stage} with the same "
                                               "out= first")
    if cfg.model.name not in MODELS:
        raise InputError(f"model={cfg.model.name}", f"not available in this version (choose "
                                                    f"{', '.join(MODELS)})")
    run_dir = RunDir(cfg.out, config=OmegaConf.to_container(cfg, resolve=True), force=cfg.force)
    p = run_dir.path

    def animate() -> None:
        background = read_video(p("scene/background.mp4")).frames.astype(np.float32) / 255
        masks = read_video(p("animate/mask.mp4")).frames[..., 0] > 127
        poses = read_poses(p("motion/poses_aligned.json"))
        cut = load_image(p("scene/character.png"))
        lengths = {"scene/background.mp4": len(background), "animate/mask.mp4": len(masks),
                   "motion/poses_aligned.json": len(poses)}
        if len(set(lengths.values())) != 1:
            raise InputError(f"out={cfg.out}", "frame counts disagree: " + ", ".join(
                f"{k} {v}" for k, v in lengths.items()) + " (re-run both stages with the same "
                "frames=)")
        sizes = {background.shape[1:3], masks.shape[1:3], (poses.height, poses.width),
                 cut.rgb.shape[:2]}
        if len(sizes) != 1:
            raise InputError(f"out={cfg.out}", f"frame sizes disagree: {sorted(sizes)} (re-run "
                                               "both stages with the same resolution=)")
        character = np.concatenate([cut.rgb, cut.alpha[..., None]], -1)
        frames = composite_preview(character, background, poses, masks, cfg.model.tint)
        write_video(p("animate/animation.mp4"), frames, fps=cfg.fps, crf=cfg.stage.crf)

    run_dir.step("animate/animation", ["animate/animation.mp4"],
                 {**{k: p(k) for k in INPUTS}, "model": OmegaConf.to_container(cfg.model),
                  "fps": cfg.fps, "crf": cfg.stage.crf}, animate)
    log.info("animate (model=%s): %s", cfg.model.name, p("animate/animation.mp4"))
