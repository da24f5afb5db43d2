"""stage=animate: the character animated over the scene (the paper's section 3.3).

Reads the scene stage's background video and character cut-out and the motion stage's aligned
poses, pose videos and mask from the run directory (the motion steps run first when their
outputs are missing), hands them to the backend ``model=<name>`` builds
(:mod:`dreamdance.animate.backend`), and writes ``animate/animation.mp4``, its contact sheet
``animate/preview.png`` and the backend's own pictures (``animate/<name>.png``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dreamdance import assets
from dreamdance.animate.backend import PERSON_MASK, RUN_FILES, missing_files, read_inputs
from dreamdance.errors import InputError
from dreamdance.inputs import build, check_common, input_file, resolve_device
from dreamdance.media import load_image, resize, save_image, write_video
from dreamdance.motion.placement import placed_art, read_placement
from dreamdance.motion.sources import check_driving, driving_video
from dreamdance.preview import animation_preview
from dreamdance.rundir import RunDir
from dreamdance.scene.source import DRIVING, art_size, background_source, placed

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> None:
    check_common(cfg)
    check_driving(cfg)
    source = background_source(cfg)
    root = Path(cfg.out)
    device = resolve_device(cfg.device)
    backend = build(cfg.model)
    needs_scene = getattr(backend, "needs_scene", True)
    scene = [rel for rel, stage in missing_files(root, needs_scene).items() if stage == "scene"]
    if scene:
        raise InputError(f"out={cfg.out}", f"{scene[0]} not found: run stage=scene with the "
                                           "same out= first")
    image_path = input_file(cfg.image, "image", assets.ART)
    art = load_image(image_path, name=f"image={cfg.image or image_path}")
    if missing_files(root, needs_scene):  # the motion steps it needs, as stage=motion runs them
        import stages.motion

        log.info("animate: motion outputs missing, running the motion steps first")
        stages.motion.run(cfg)
    run_dir = RunDir(cfg.out, config=OmegaConf.to_container(cfg, resolve=True), force=cfg.force)
    p = run_dir.path
    written: list[str] = []

    def animate() -> None:
        driving = driving_video(cfg, max_frames=cfg.frames).frames if cfg.driving else None
        rgba = art.rgb if art.alpha is None else np.concatenate([art.rgb, art.alpha[..., None]], -1)
        if placed(source):  # the art where the character stands in the working frame
            rgba = placed_art(resize(rgba, art_size(cfg, art)),
                              read_placement(p("motion/placement.json")))
        inputs = read_inputs(root, rgba, fps=cfg.fps, seed=cfg.seed, device=device, driving=driving,
                             scene=needs_scene, removed=needs_scene and source == DRIVING,
                             name=f"out={cfg.out}")
        result = backend(inputs)
        expected = (inputs.num_frames, *inputs.background.shape[1:])
        if result.frames.shape != expected:
            raise RuntimeError(f"model={backend.name} returned frames {result.frames.shape}, "
                               f"expected {expected}")
        write_video(p("animate/animation.mp4"), result.frames, fps=cfg.fps, crf=cfg.stage.crf)
        save_image(p("animate/preview.png"), animation_preview(result.frames, inputs.poses))
        for name, image in result.images.items():
            save_image(p(f"animate/{name}.png"), image)
            written.append(f"animate/{name}.png")

    outputs = ["animate/animation.mp4", "animate/preview.png"]
    run_dir.step("animate/animation", outputs,
                 {**{k: _optional(p(k)) for k in RUN_FILES}, "image": image_path,
                  "model": OmegaConf.to_container(cfg.model),
                  "character_pose": _optional(p("motion/character_pose.json")),
                  "person_mask": _optional(p(PERSON_MASK)) if source == DRIVING else None,
                  "placement": _optional(p("motion/placement.json")), "source": source,
                  "driving": cfg.driving, "fps": cfg.fps, "seed": cfg.seed,
                  "crf": cfg.stage.crf}, animate)
    log.info("animate (model=%s): %s %s", backend.name, p("animate/animation.mp4"),
             " ".join(written))


def _optional(path: Path) -> Path | None:
    return path if path.is_file() else None
