"""stage=scene: camera-aware scene inpainting (the paper's section 3.2).

One piece of art -> character cut-out, inpainted background plate, metric depth, a Gaussian
field grown by warp-and-inpaint along the spiral of eq. 5 and then along the custom camera, and
the coarse background video rendered along that camera. Every step reads its inputs from the
run directory, so a re-run skips what is unchanged and resumes after a crash.

The paper's other two uses (:mod:`dreamdance.scene.source`): with ``scene_image=`` the world is
built from that image (nothing cut out of it unless ``scene.segment=true``) and the art's
cut-out is placed into it; with ``scene.source=driving`` no world is built: the driving video,
its dancer painted out, is the background. In both the motion steps run first, for the
character's placement.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dreamdance import assets
from dreamdance.camera import rescale_intrinsics, scale_intrinsics
from dreamdance.camera.files import read_trajectory, write_trajectory
from dreamdance.inputs import (
    build,
    builds,
    check_common,
    input_file,
    limit_size,
    plain,
    resolve_device,
)
from dreamdance.io import read_json, write_array, write_json, write_text
from dreamdance.media import fit_size, load_image, read_video, resize, save_image, write_video
from dreamdance.motion.mask import mask_video
from dreamdance.motion.placement import place_image, placed_art, read_placement
from dreamdance.motion.poses import read_poses
from dreamdance.motion.sources import camera_source, check_driving, driving_frames
from dreamdance.preview import removal_preview, scene_preview
from dreamdance.rundir import RunDir
from dreamdance.scene import world
from dreamdance.scene.gaussians import load_ply, save_ply
from dreamdance.scene.removal import remove_person
from dreamdance.scene.segment import AutoSegmenter, MaskSegmenter, check_mask
from dreamdance.scene.source import (
    ART,
    DRIVING,
    IMAGE,
    art_size,
    background_source,
    load_scene_image,
)
from dreamdance.scene.warp import plate_hole

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> None:
    # --- check and read every input, build every component, before anything is written ---
    check_common(cfg)
    check_driving(cfg)
    source = background_source(cfg)
    if source == DRIVING:
        return _replacement(cfg)
    device = resolve_device(cfg.device)
    st, mo = cfg.stage, cfg.motion
    image_path = input_file(cfg.image, "image", assets.ART)
    name = f"image={cfg.image or image_path}"
    art = limit_size(load_image(image_path, name=name), name)
    scene = load_scene_image(cfg) if source == IMAGE else art  # the picture the world is built from
    h0, w0 = scene.rgb.shape[:2]
    width, height = fit_size((w0, h0), cfg.resolution)
    build_size = fit_size((w0, h0), min(st.build_resolution, cfg.resolution))
    cams = camera_source(cfg, width, height, mo.camera_length, mo.preset_depth,
                         mo.preset_amplitude, previous=_tracked_camera(cfg))
    segmenter = _segmenter(cfg)
    inpainter, captioner, depth_model = (build(cfg[k]) for k in
                                         ("inpainter", "captioner", "depth"))
    build_cfg = world.build_config(OmegaConf.to_container(st.build), seed=cfg.seed,
                                   backend=st.renderer)
    rgb = resize(scene.rgb, (width, height))
    alpha = None if scene.alpha is None else resize(scene.alpha, (width, height))
    cut_out = None
    if source == IMAGE:  # the character from the art, placed by the motion stage
        cut_out = _cut_out(cfg, art, segmenter, name)
        import stages.motion

        stages.motion.run(cfg, character_mask=cut_out[1])
        segmenter = build(cfg.segmenter) if cfg.scene.segment else None

    run_dir = RunDir(cfg.out, config=OmegaConf.to_container(cfg, resolve=True), force=cfg.force)
    p = run_dir.path
    size = {"size": [width, height], "image": image_path, "scene_image": cfg.scene_image}
    if cut_out is not None:
        _write_character(run_dir, cfg, *cut_out, image_path, rgb,
                         input_file(cfg.scene_image, "scene_image"))

    def segment() -> None:
        mask = check_mask(segmenter(rgb, alpha, name=name), name)
        save_image(p("scene/character.png"), rgb, mask)

    if source == ART:
        run_dir.step("scene/segment", ["scene/character.png"],
                     {**size, **_segmenter_deps(cfg)}, segment)

    def plate() -> None:
        prompt = captioner(rgb)
        write_text(p("scene/caption.txt"), prompt + "\n")
        if segmenter is None:  # scene_image= as it is: nothing cut out of it
            save_image(p("scene/background.png"), rgb)
            return
        if source == IMAGE:
            scene_name = f"scene_image={cfg.scene_image}"
            mask = check_mask(segmenter(rgb, alpha, name=scene_name), scene_name)
        else:
            mask = load_image(p("scene/character.png")).alpha
        hole = plate_hole(mask, st.plate_dilate)
        save_image(p("scene/background.png"), inpainter(rgb, hole, prompt))

    run_dir.step("scene/plate", ["scene/background.png", "scene/caption.txt"],
                 {**size, "character": p("scene/character.png") if source == ART else None,
                  "segment": cfg.scene.segment if source == IMAGE else None,
                  "segmenter": plain(cfg.segmenter),
                  "dilate": st.plate_dilate,
                  "inpainter": plain(cfg.inpainter), "captioner": plain(cfg.captioner)}, plate)

    def depth() -> None:
        result = depth_model(load_image(p("scene/background.png")).rgb)
        write_array(p("scene/depth.npy"), result.depth.astype(np.float32))
        write_json(p("scene/reference.json"), {
            "K": result.intrinsics(cfg.fov, width, height), "width": width, "height": height,
            "focal_from": "fov" if result.focal is None else "depth model"})

    run_dir.step("scene/depth", ["scene/depth.npy", "scene/reference.json"],
                 {"plate": p("scene/background.png"), "fov": cfg.fov,
                  "depth": plain(cfg.depth)}, depth)

    def spiral() -> None:
        plate_b, depth_b, K_b = _reference(run_dir, build_size)
        spiral_cams = world.spiral_cameras(depth_b, K_b, *build_size, st.spiral)
        g, views = world.build_spiral(plate_b, depth_b, K_b, spiral_cams, st.spiral.views,
                                      inpainter, depth_model, _prompt(run_dir), build_cfg,
                                      device)
        world.save_views(p("scene/views"), views)
        save_ply(p("scene/gaussians_spiral.ply"), g)

    run_dir.step("scene/spiral", ["scene/gaussians_spiral.ply", "scene/views/views.json"],
                 {"plate": p("scene/background.png"), "depth": p("scene/depth.npy"),
                  "build_size": list(build_size), "spiral": plain(st.spiral),
                  "build": plain(st.build), "seed": cfg.seed, "inpainter": plain(cfg.inpainter),
                  "depth_model": plain(cfg.depth)}, spiral)

    def custom() -> None:
        plate_b, depth_b, K_b = _reference(run_dir, build_size)
        traj = world.scene_trajectory(cams.value, depth_b, st.scale, st.max_translation,
                                      mo.preset_depth, cams.path is None)
        traj = world.with_reference_intrinsics(traj, read_json(p("scene/reference.json")))
        write_trajectory(p("scene/camera.json"), traj, format="json", fps=cfg.fps)
        g = load_ply(p("scene/gaussians_spiral.ply")).to(device)
        g = world.build_custom(g, rescale_intrinsics(traj, *build_size), st.custom.views,
                               inpainter, depth_model, _prompt(run_dir), build_cfg,
                               reference=world.reference_view(plate_b, depth_b, K_b))
        save_ply(p("scene/gaussians.ply"), g)

    run_dir.step("scene/field", ["scene/gaussians.ply", "scene/camera.json"],
                 {"spiral": p("scene/gaussians_spiral.ply"), "camera": cams.path or "preset",
                  **cams.deps, "scale": st.scale, "max_translation": st.max_translation,
                  "custom": plain(st.custom), "build": plain(st.build),
                  "reference": p("scene/reference.json"), "plate": p("scene/background.png"),
                  "depth": p("scene/depth.npy")}, custom)

    def video() -> None:
        g = load_ply(p("scene/gaussians.ply")).to(device)
        traj = read_trajectory(p("scene/camera.json"), width, height, np.eye(3))
        frames, depths, coverage = world.render_video(g, traj, st.renderer)
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


def _replacement(cfg: DictConfig) -> None:
    """``scene.source=driving``: the driving video, its dancer painted out, is the background
    (:mod:`dreamdance.scene.removal`); the character's cut-out is placed where the dancer
    stands. Writes scene/cutout.png, character.png, removed.mp4 (= background.mp4),
    person_mask.mp4, removal.json and preview.png."""
    st, rm = cfg.stage, cfg.scene.removal
    person = build(cfg.person)
    image_path = input_file(cfg.image, "image", assets.ART)
    name = f"image={cfg.image or image_path}"
    art = limit_size(load_image(image_path, name=name), name)
    cut_out = _cut_out(cfg, art, _segmenter(cfg), name)
    import stages.motion

    stages.motion.run(cfg, character_mask=cut_out[1])  # the dancer's poses, the placement
    run_dir = RunDir(cfg.out, config=OmegaConf.to_container(cfg, resolve=True), force=cfg.force)
    p = run_dir.path
    width, height = read_placement(p("motion/placement.json")).target
    driving = input_file(cfg.driving, "driving")
    first = read_video(driving, max_frames=1).frames[0].astype(np.float32) / 255
    _write_character(run_dir, cfg, *cut_out, image_path, resize(first, (width, height)),
                     driving)

    def remove() -> None:
        frames = driving_frames(cfg, width, height)
        result = remove_person(frames, read_poses(p("motion/poses.json")), rm.dilate,
                               rm.window, person, name=f"driving={cfg.driving}")
        for rel in ("scene/removed.mp4", "scene/background.mp4"):
            write_video(p(rel), result.filled, fps=cfg.fps, crf=st.crf)
        write_video(p("scene/person_mask.mp4"), mask_video(result.masks), fps=cfg.fps)
        write_json(p("scene/removal.json"), result.summary())
        save_image(p("scene/preview.png"), removal_preview(frames, result))
        log.info("person removed: %s", result.describe())

    run_dir.step("scene/removal", ["scene/removed.mp4", "scene/background.mp4",
                                   "scene/person_mask.mp4", "scene/removal.json",
                                   "scene/preview.png"],
                 {"driving": input_file(cfg.driving, "driving"), "poses": p("motion/poses.json"),
                  "size": [width, height], "frames": cfg.frames, "fps": cfg.fps,
                  "too_short": cfg.motion.too_short, "removal": plain(rm),
                  "person": plain(cfg.person), "crf": st.crf},
                 remove)
    log.info("scene (the driving video, dancer removed): %d frames at %dx%d, written to %s",
             cfg.frames, width, height, run_dir.root)


def _cut_out(cfg: DictConfig, art: Any, segmenter: Any, name: str
             ) -> tuple[np.ndarray, np.ndarray]:
    """The art at its own working size and its character mask (checked).
    ``([h, w, 3], [h, w])`` float32"""
    size = art_size(cfg, art)
    rgb = resize(art.rgb, size)
    alpha = None if art.alpha is None else resize(art.alpha, size)
    return rgb, check_mask(segmenter(rgb, alpha, name=name), name)


def _write_character(run_dir: RunDir, cfg: DictConfig, rgb: np.ndarray, mask: np.ndarray,
                     image: Path, ground: np.ndarray, ground_file: Path) -> None:
    """scene/cutout.png (the art's frame) and scene/character.png, the cut-out placed into the
    working frame by motion/placement.json: its alpha the placed mask, its colour the whole art
    placed over ``ground`` (the new background's first frame, [H, W, 3] in [0, 1], read from
    ``ground_file``), as the art mode's character.png carries the whole art."""
    p = run_dir.path
    run_dir.step("scene/segment", ["scene/cutout.png"],
                 {"image": image, "size": list(rgb.shape[1::-1]), **_segmenter_deps(cfg)},
                 lambda: save_image(p("scene/cutout.png"), rgb, mask))

    def place() -> None:
        cut = load_image(p("scene/cutout.png"))
        placement = read_placement(p("motion/placement.json"))
        save_image(p("scene/character.png"), placed_art(cut.rgb, placement, ground),
                   place_image(cut.alpha[..., None], placement)[..., 0])

    run_dir.step("scene/place", ["scene/character.png"],
                 {"cutout": p("scene/cutout.png"), "placement": p("motion/placement.json"),
                  "ground": ground_file, "size": list(ground.shape[1::-1])},
                 place)


def _segmenter(cfg: DictConfig) -> Any:
    """The configured segmenter; for the bundled sample art with the default (auto), its mask.
    The auto segmenter is given the art's own pose (``character_pose=``) to seed GrabCut."""
    auto = builds(cfg.segmenter, AutoSegmenter)
    if cfg.image is None and auto:
        log.info("segmenter: the bundled sample's own mask")
        return MaskSegmenter(str(assets.sample_path(assets.ART_MASK)))
    pose = input_file(cfg.character_pose, "character_pose")
    if not auto or pose is None:
        return build(cfg.segmenter)
    return build(OmegaConf.create({**plain(cfg.segmenter), "pose": str(pose)}))


def _segmenter_deps(cfg: DictConfig) -> dict[str, Any]:
    """What a cut-out depends on besides the image: the segmenter's settings and the art's
    own pose (the auto segmenter seeds GrabCut with it)."""
    return {"segmenter": plain(cfg.segmenter),
            "character_pose": input_file(cfg.character_pose, "character_pose")}


def _tracked_camera(cfg: DictConfig) -> Path | None:
    """The camera stage=motion tracked from ``driving=`` (when no ``camera=`` is given)."""
    path = Path(cfg.out) / "motion/camera.json"
    return path if cfg.driving is not None and cfg.camera is None else None


def _reference(run_dir: RunDir, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plate, depth and K of the reference camera at ``size``."""
    ref = read_json(run_dir.path("scene/reference.json"))
    plate = resize(load_image(run_dir.path("scene/background.png")).rgb, size)
    depth = resize(np.load(run_dir.path("scene/depth.npy")), size, interpolation="nearest")
    K = scale_intrinsics(np.asarray(ref["K"]), size[0] / ref["width"], size[1] / ref["height"])
    return plate, depth, K


def _prompt(run_dir: RunDir) -> str:
    return run_dir.path("scene/caption.txt").read_text().strip()

