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
from dreamdance.inputs import check_common, resolve_device
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
MODELS = ("preview", "tiny", "cogvideox")


def run(cfg: DictConfig) -> None:
    check_common(cfg)
    root = Path(cfg.out)
    for rel, stage in INPUTS.items():
        if not (root / rel).is_file():
            raise InputError(f"out={cfg.out}", f"{rel} not found: run stage={stage} with the same "
                                               "out= first")
    device = resolve_device(cfg.device)
    if cfg.model.name not in MODELS:
        raise InputError(f"model={cfg.model.name}", f"not available in this version (choose "
                                                    f"{', '.join(MODELS)})")
    pipe = _pipeline(cfg, device) if cfg.model.name != "preview" else None
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
        if cfg.model.name == "preview":
            frames = composite_preview(character, background, poses, masks, cfg.model.tint)
        else:
            frames = _diffuse(cfg, pipe, character, background, masks, p)
        write_video(p("animate/animation.mp4"), frames, fps=cfg.fps, crf=cfg.stage.crf)

    run_dir.step("animate/animation", ["animate/animation.mp4"],
                 {**{k: p(k) for k in INPUTS}, "model": OmegaConf.to_container(cfg.model),
                  "fps": cfg.fps, "crf": cfg.stage.crf}, animate)
    log.info("animate (model=%s): %s", cfg.model.name, p("animate/animation.mp4"))


def _pipeline(cfg: DictConfig, device: str):
    """The diffusion pipeline for ``model=tiny`` or ``model=cogvideox`` (weights checked now,
    before anything is written)."""
    from dreamdance.animate.components import cogvideox_components, tiny_components
    from dreamdance.animate.pipeline import DreamDancePipeline

    m = cfg.model
    if m.name == "tiny":
        log.warning("model=tiny: tiny random weights; the animation is noise (a check of the "
                    "pipeline, not a result)")
        pipe = DreamDancePipeline(**tiny_components(str(m.layout), seed=cfg.seed))
    else:
        pipe = DreamDancePipeline(**cogvideox_components(m.base, m.transformer, m.clip, m.dtype))
        if m.vae_tiling:
            pipe.enable_vae_tiling()
    if m.get("cpu_offload") and device == "cuda":
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(device)
    return pipe


def _diffuse(cfg: DictConfig, pipe, character: np.ndarray, background: np.ndarray,
             masks: np.ndarray, p) -> np.ndarray:
    """Run the pipeline on the run directory's conditions; frames [T, H, W, 3] in [0, 1]."""
    import torch

    poses = {k: read_video(p(f"animate/pose_{k}.mp4")).frames for k in ("body", "face", "hand")}
    generator = torch.Generator().manual_seed(cfg.seed)
    m = cfg.model
    out = pipe(character=character, background_video=background,
               mask_video=masks.astype(np.float32),
               pose_videos=poses, num_frames=len(background), num_inference_steps=m.steps,
               guidance_scale=m.guidance, generator=generator, window=m.window,
               overlap=m.overlap, output_type="np")
    return np.asarray(out.frames[0], np.float32)
