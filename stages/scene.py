"""stage=scene: camera-aware scene inpainting (the paper's section 3.2).

One piece of art -> character cut-out, inpainted background plate, metric depth, a Gaussian
field grown by warp-and-inpaint along the spiral of eq. 5 and then along the custom camera, and
the coarse background video rendered along that camera. Every step reads its inputs from the
run directory, so a re-run skips what is unchanged and resumes after a crash.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dreamdance import assets
from dreamdance.camera import intrinsics_from_fov, rescale_intrinsics, scale_intrinsics
from dreamdance.inputs import build, check_common, input_file, limit_size, resolve_device
from dreamdance.io import read_json, write_array, write_json, write_text
from dreamdance.media import fit_size, load_image, resize, save_image, write_video
from dreamdance.motion.sources import camera_source, check_driving
from dreamdance.preview import scene_preview
from dreamdance.rundir import RunDir
from dreamdance.scene import build as field
from dreamdance.scene.gaussians import load_ply, save_ply
from dreamdance.scene.segment import MaskSegmenter, check_mask
from dreamdance.scene.warp import plate_hole
from dreamdance.trajectory import read_trajectory, write_trajectory

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> None:
    # --- check and read every input, build every component, before anything is written ---
    check_common(cfg)
    check_driving(cfg)
    device = resolve_device(cfg.device)
    st, mo = cfg.stage, cfg.motion
    image_path = input_file(cfg.image, "image", assets.ART)
    name = f"image={cfg.image or image_path}"
    art = limit_size(load_image(image_path, name=name), name)
    h0, w0 = art.rgb.shape[:2]
    width, height = fit_size((w0, h0), cfg.resolution)
    build_size = fit_size((w0, h0), min(st.build_resolution, cfg.resolution))
    cams = camera_source(cfg, width, height, mo.camera_length, mo.preset_depth,
                         mo.preset_amplitude, previous=_tracked_camera(cfg))
    segmenter = _segmenter(cfg)
    inpainter, captioner, depth_model = (build(cfg[k]) for k in
                                         ("inpainter", "captioner", "depth"))
    build_cfg = field.build_config(OmegaConf.to_container(st.build), seed=cfg.seed,
                                   backend=st.renderer)
    rgb = resize(art.rgb, (width, height))[0]
    alpha = None if art.alpha is None else resize(art.alpha, (width, height))[0]

    run_dir = RunDir(cfg.out, config=OmegaConf.to_container(cfg, resolve=True), force=cfg.force)
    p = run_dir.path
    size = {"size": [width, height], "image": image_path}

    def segment() -> None:
        mask = check_mask(segmenter(rgb, alpha, name=name), name)
        save_image(p("scene/character.png"), rgb, mask)

    run_dir.step("scene/segment", ["scene/character.png"],
                 {**size, "segmenter": _plain(cfg.segmenter)}, segment)

    def plate() -> None:
        mask = load_image(p("scene/character.png")).alpha
        hole = plate_hole(mask, st.plate_dilate)
        prompt = captioner(rgb)
        write_text(p("scene/caption.txt"), prompt + "\n")
        save_image(p("scene/background.png"), inpainter(rgb, hole, prompt))

    run_dir.step("scene/plate", ["scene/background.png", "scene/caption.txt"],
                 {**size, "character": p("scene/character.png"), "dilate": st.plate_dilate,
                  "inpainter": _plain(cfg.inpainter), "captioner": _plain(cfg.captioner)}, plate)

    def depth() -> None:
        result = depth_model(load_image(p("scene/background.png")).rgb)
        focal = result.focal
        K = intrinsics_from_fov(cfg.fov, width, height)
        if focal is not None:
            K[0, 0] = K[1, 1] = focal
        write_array(p("scene/depth.npy"), result.depth.astype(np.float32))
        write_json(p("scene/reference.json"), {"K": K, "width": width, "height": height,
                                               "focal_from": "depth model" if focal else "fov"})

    run_dir.step("scene/depth", ["scene/depth.npy", "scene/reference.json"],
                 {"plate": p("scene/background.png"), "fov": cfg.fov,
                  "depth": _plain(cfg.depth)}, depth)

    def spiral() -> None:
        plate_b, depth_b, K_b = _reference(run_dir, build_size)
        spiral_cams = field.spiral_cameras(depth_b, K_b, *build_size, st.spiral)
        g, views = field.build_spiral(plate_b, depth_b, K_b, spiral_cams, st.spiral.views,
                                      inpainter, depth_model, _prompt(run_dir), build_cfg,
                                      device)
        field.save_views(p("scene/views"), views)
        save_ply(p("scene/gaussians_spiral.ply"), g)

    run_dir.step("scene/spiral", ["scene/gaussians_spiral.ply", "scene/views/views.json"],
                 {"plate": p("scene/background.png"), "depth": p("scene/depth.npy"),
                  "build_size": list(build_size), "spiral": _plain(st.spiral),
                  "build": _plain(st.build), "seed": cfg.seed, "inpainter": _plain(cfg.inpainter),
                  "depth_model": _plain(cfg.depth)}, spiral)

    def custom() -> None:
        _, depth_b, K_b = _reference(run_dir, build_size)
        traj = field.scene_trajectory(cams.value, depth_b, st.scale, st.max_translation,
                                      mo.preset_depth, cams.path is None)
        traj = field.with_reference_intrinsics(traj, read_json(p("scene/reference.json")))
        write_trajectory(p("scene/camera.json"), traj, format="json", fps=cfg.fps)
        g = load_ply(p("scene/gaussians_spiral.ply")).to(device)
        g = field.build_custom(g, rescale_intrinsics(traj, *build_size), st.custom.views,
                               inpainter, depth_model, _prompt(run_dir), build_cfg)
        save_ply(p("scene/gaussians.ply"), g)

    run_dir.step("scene/field", ["scene/gaussians.ply", "scene/camera.json"],
                 {"spiral": p("scene/gaussians_spiral.ply"), "camera": cams.path or "preset",
                  **cams.deps, "scale": st.scale, "max_translation": st.max_translation,
                  "custom": _plain(st.custom), "build": _plain(st.build),
                  "reference": p("scene/reference.json")}, custom)

    def video() -> None:
        g = load_ply(p("scene/gaussians.ply")).to(device)
        traj = read_trajectory(p("scene/camera.json"), width, height, np.eye(3))
        frames, depths, coverage = field.render_video(g, traj, st.renderer)
        write_video(p("scene/background.mp4"), frames, fps=cfg.fps, crf=st.crf)
        write_array(p("scene/background_depth.npy"), depths.astype(np.float16))
        write_json(p("scene/coverage.json"), {"uncovered_fraction": coverage})
        worst = max(coverage)
        (log.warning if worst > 0.01 else log.info)(
            "background video: worst frame has %.2f%% of pixels with alpha < 0.5", 100 * worst)

    run_dir.step("scene/video", ["scene/background.mp4", "scene/background_depth.npy",
                                 "scene/coverage.json"],
                 {"field": p("scene/gaussians.ply"), "camera": p("scene/camera.json"),
                  "crf": st.crf, "fps": cfg.fps}, video)

    run_dir.step("scene/preview", ["scene/preview.png"],
                 {k: p(f"scene/{k}") for k in ("character.png", "background.png", "depth.npy",
                                               "views/views.json", "background.mp4")},
                 lambda: save_image(p("scene/preview.png"), scene_preview(run_dir.root / "scene")))
    log.info("scene: %d frames at %dx%d (field built at %dx%d), written to %s", cfg.frames,
             width, height, *build_size, run_dir.root)


def _segmenter(cfg: DictConfig) -> Any:
    """The configured segmenter; for the bundled sample art with the default (auto), its mask."""
    if cfg.image is None and str(cfg.segmenter._target_).endswith("AutoSegmenter"):
        log.info("segmenter: the bundled sample's own mask")
        return MaskSegmenter(str(assets.sample_path(assets.ART_MASK)))
    return build(cfg.segmenter)


def _tracked_camera(cfg: DictConfig) -> Path | None:
    """The camera stage=motion tracked from ``driving=`` (when no ``camera=`` is given)."""
    path = Path(cfg.out) / "motion/camera.json"
    return path if cfg.driving is not None and cfg.camera is None else None


def _reference(run_dir: RunDir, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plate, depth and K of the reference camera at ``size``."""
    ref = read_json(run_dir.path("scene/reference.json"))
    plate = resize(load_image(run_dir.path("scene/background.png")).rgb, size)[0]
    depth = resize(np.load(run_dir.path("scene/depth.npy")), size, interpolation="nearest")[0]
    K = scale_intrinsics(np.asarray(ref["K"]), size[0] / ref["width"], size[1] / ref["height"])
    return plate, depth, K


def _prompt(run_dir: RunDir) -> str:
    return run_dir.path("scene/caption.txt").read_text().strip()


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True)
