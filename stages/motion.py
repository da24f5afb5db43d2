"""stage=motion: the driving poses and camera for every output frame, aligned to the art.

Poses come from ``poses=`` (ours or OpenPose JSON), or are extracted from ``driving=`` by the
``pose`` backend, or are the bundled dance; the camera from ``camera=`` (file or preset), or is
tracked in ``driving=`` by the ``camtrack`` backend, or is the bundled path. Both are fitted to
``frames`` at ``fps``; the poses are aligned to the character and drawn. Writes
``motion/poses.json`` (the driver's frame), ``motion/camera.json``,
``motion/poses_aligned.json`` (the working frame), ``animate/pose_{body,face,hand}.mp4``,
``animate/mask.mp4`` and ``motion/preview.png``.

With ``scene.source=driving`` or ``scene_image=`` the working frame is the driving video's or
the scene image's, and the character is placed into it first (``motion/placement.json``,
:mod:`dreamdance.motion.placement`): where the dancer stands, or where it stood in the art; with
``scene.source=driving`` the camera is static (the video's own).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dreamdance import assets
from dreamdance.camera.files import read_trajectory, write_trajectory
from dreamdance.errors import InputError
from dreamdance.inputs import build, check_common, input_file, plain
from dreamdance.io import read_json
from dreamdance.media import load_image, resize, save_image, to_uint8, write_video
from dreamdance.motion.align import CharacterFrame, align_poses
from dreamdance.motion.backend import PoseBackend
from dreamdance.motion.character import detect_own_pose, locate_character, placed_character
from dreamdance.motion.mask import mask_video, pose_masks
from dreamdance.motion.placement import (
    at_dancer,
    in_scene,
    placed_art,
    read_placement,
    write_placement,
)
from dreamdance.motion.poses import PARTS, PoseSequence, read_poses, write_poses
from dreamdance.motion.sources import (
    camera_source,
    check_driving,
    driving_video,
    extract_poses,
    poses_source,
    read_pose_file,
    tracked_camera,
)
from dreamdance.motion.videos import write_pose_videos
from dreamdance.preview import motion_preview
from dreamdance.rundir import RunDir
from dreamdance.scene.source import (
    DRIVING,
    IMAGE,
    art_size,
    background_source,
    load_scene_image,
    placed,
    working_size,
)

log = logging.getLogger(__name__)


def run(cfg: DictConfig, character_mask: np.ndarray | None = None) -> None:
    """``character_mask``: the art's cut-out ``[h, w]`` at its working size, when the scene
    stage has it in hand (placed modes, before it writes anything); else read from the run
    directory."""
    # --- check and read every input, build the backends, before anything is written ---
    check_common(cfg)
    check_driving(cfg)
    source = background_source(cfg)
    mo = cfg.motion
    image_path = input_file(cfg.image, "image", assets.ART)
    art = load_image(image_path, name=f"image={cfg.image or image_path}")
    own_size = art_size(cfg, art)
    width, height = working_size(cfg, source, own_size)
    if source != IMAGE and mo.character_height is not None:
        raise InputError(f"motion.character_height={mo.character_height}",
                         "applies to scene_image= only (with scene.source=driving the "
                         "character is as tall as the dancer)")
    poses = poses_source(cfg, mo.too_short)
    if source == DRIVING and poses.value is not None:
        _check_dancer(cfg, poses.value, width, height)
    extractor = build(cfg.pose) if poses.value is None else None
    tracked = cfg.driving is not None and cfg.camera is None and source != DRIVING
    tracker = build(cfg.camtrack) if tracked else None
    cams = None if tracked else camera_source(cfg, width, height, mo.camera_length,
                                               mo.preset_depth, mo.preset_amplitude,
                                               static=source == DRIVING)
    if source == DRIVING:
        log.info("scene.source=driving: the camera is the driving video's own (a static "
                 "camera over its frames); no Gaussian scene is built")
    cut_name = "scene/cutout.png" if placed(source) else "scene/character.png"
    character, own = _character(cfg, art, *own_size, extractor, cut=character_mask,
                                cut_file=Path(cfg.out) / cut_name)
    fixed = in_scene(character.box, own_size, (width, height), mo.character_height) \
        if source == IMAGE else None
    video = {}

    def frames():  # the driving video, read once and only when a step needs it
        if "v" not in video:
            video["v"] = driving_video(cfg, max_frames=cfg.frames)
        return video["v"]

    # --- write ---
    run_dir = RunDir(cfg.out, config=OmegaConf.to_container(cfg, resolve=True), force=cfg.force)
    p = run_dir.path
    driving = {"driving": input_file(cfg.driving, "driving") if cfg.driving else None}

    def write_driving_poses() -> None:
        seq = poses.value if poses.value is not None else extract_poses(
            frames(), extractor, cfg, mo.smooth)
        write_poses(p("motion/poses.json"), seq)

    run_dir.step("motion/poses", ["motion/poses.json"],
                 {**poses.deps, "poses": poses.path, **driving,
                  "pose": None if extractor is None else plain(cfg.pose),
                  "smooth": plain(mo.smooth)}, write_driving_poses)

    def write_camera() -> None:
        traj = cams.value if cams is not None else tracked_camera(
            tracker, frames().frames, read_poses(p("motion/poses.json")), cfg.fov, width, height,
            cfg.frames, mo.too_short, f"driving={cfg.driving}")
        write_trajectory(p("motion/camera.json"), traj, format="json", fps=cfg.fps)

    camera_deps = ({**cams.deps, "camera": cams.path} if cams is not None else
                   {**driving, "camtrack": plain(cfg.camtrack), "fov": cfg.fov,
                    "frames": cfg.frames, "poses": p("motion/poses.json"),
                    "size": [width, height]})
    run_dir.step("motion/camera", ["motion/camera.json"], camera_deps, write_camera)

    if placed(source):  # the character into the working frame (motion/placement.py)
        def write_placement_file() -> None:
            write_placement(p("motion/placement.json"), fixed or at_dancer(
                character.box, read_poses(p("motion/poses.json")), own_size, (width, height),
                f"driving={cfg.driving}"))

        run_dir.step("motion/place", ["motion/placement.json"],
                     {"source": source, "character": list(character.box),
                      "art_size": list(own_size), "size": [width, height],
                      "character_height": mo.character_height,
                      "poses": p("motion/poses.json") if fixed is None else None},
                     write_placement_file)
        character, own = placed_character(character, own,
                                          read_placement(p("motion/placement.json")))
    elif own is not None and (own.width, own.height) != (width, height):
        raise RuntimeError("the art's own pose is not in the working frame")

    def write_aligned() -> None:
        aligned = align_poses(read_poses(p("motion/poses.json")), character, mo.align,
                              transition=mo.transition, keep_length=True,
                              name="motion/poses.json")
        write_poses(p("motion/poses_aligned.json"), aligned)

    run_dir.step("motion/align", ["motion/poses_aligned.json"],
                 {"poses": p("motion/poses.json"), "align": mo.align,
                  "transition": mo.transition, "character": list(character.box),
                  "size": [width, height]}, write_aligned)

    def write_videos() -> None:
        aligned = read_poses(p("motion/poses_aligned.json"))
        write_pose_videos(p("animate"), aligned, fps=cfg.fps)
        m = cfg.mask
        masks = pose_masks(aligned, dilate=m.dilate, face_margin=m.face_margin,
                           hand_margin=m.hand_margin, shape=m.shape)
        write_video(p("animate/mask.mp4"), mask_video(masks), fps=cfg.fps)

    run_dir.step("motion/videos", ["animate/pose_body.mp4", "animate/pose_face.mp4",
                                   "animate/pose_hand.mp4", "animate/mask.mp4"],
                 {"aligned": p("motion/poses_aligned.json"), "mask": plain(cfg.mask),
                  "fps": cfg.fps}, write_videos)

    if own is not None:  # the art's own pose in the working frame: the puppet's rest pose
        run_dir.step("motion/character", ["motion/character_pose.json"],
                     {"own": {part: getattr(own, part).tolist() for part in PARTS},
                      "size": [width, height]},
                     lambda: write_poses(p("motion/character_pose.json"), own))

    def write_preview() -> None:
        aligned = read_poses(p("motion/poses_aligned.json"))
        traj = read_trajectory(p("motion/camera.json"), width, height, np.eye(3))
        if placed(source):  # the art where it will stand, over the new background
            ground = (frames().frames[0].astype(np.float32) / 255 if source == DRIVING
                      else load_scene_image(cfg).rgb)
            rgb = placed_art(resize(_rgba(art), own_size),
                             read_placement(p("motion/placement.json")),
                             resize(ground, (width, height)))
        else:
            rgb = resize(art.rgb, (width, height))
        save_image(p("motion/preview.png"), motion_preview(rgb, aligned, traj))

    run_dir.step("motion/preview", ["motion/preview.png"],
                 {"image": image_path, "aligned": p("motion/poses_aligned.json"),
                  "camera": p("motion/camera.json"), "source": source,
                  "placement": p("motion/placement.json") if placed(source) else None},
                 write_preview)
    n = len(read_json(p("motion/poses_aligned.json"))["frames"])
    log.info("motion: %d frames at %g fps, %dx%d, written to %s", n, cfg.fps, width, height,
             run_dir.root)


def _character(cfg: DictConfig, art, width: int, height: int,
               extractor: PoseBackend | None = None,
               cut: np.ndarray | None = None, cut_file: Path | None = None
               ) -> tuple[CharacterFrame, PoseSequence | None]:
    """Where the character stands in its own ``width × height`` working frame, and its own pose
    there when known (:func:`~dreamdance.motion.character.locate_character`), from
    ``character_pose=`` (the art's own pose), the sample's pose for the sample art, the pose
    backend run on the art (when its weights are given), the scene stage's cut-out (``cut``,
    else ``cut_file``), or the art's alpha."""
    whole = CharacterFrame((0, 0, width, height), width, height)
    pose_path = input_file(cfg.character_pose, "character_pose",
                           assets.ART_POSE if cfg.image is None else None)
    if pose_path is not None:
        name = f"character_pose={cfg.character_pose or pose_path}"
        own = align_poses(read_pose_file(pose_path, name, cfg.fps), whole, "none", name=name)
        return locate_character(width, height, own, name), own
    own = _detected_pose(cfg, art, width, height, extractor)
    if own is not None:
        return locate_character(width, height, own, "the art's detected pose"), own
    if cut is None and cut_file is not None and cut_file.is_file():
        cut = load_image(cut_file).alpha
    if cut is None and art.alpha is not None and (art.alpha < 0.99).any():
        cut = art.alpha
    return locate_character(width, height, cut=cut, align=cfg.motion.align), None


def _detected_pose(cfg: DictConfig, art, width: int, height: int,
                   extractor: PoseBackend | None = None) -> PoseSequence | None:
    """The art's own pose found by the ``pose`` backend, in the working frame; None (logged)
    when the backend's weights are not given or it finds no clear body on the art."""
    if extractor is None:
        try:
            extractor = build(cfg.pose)
        except InputError as e:
            log.info("the art's own pose: not detected (pose backend unavailable: %s); give "
                     "character_pose=FILE for it", e)
            return None
    return detect_own_pose(extractor, to_uint8(resize(art.rgb, (width, height))), cfg.fps)


def _check_dancer(cfg: DictConfig, poses: PoseSequence, width: int, height: int) -> None:
    """``poses=`` given with ``scene.source=driving`` must hold the dancer, in a frame of the
    driving video's shape (they are read in its pixels)."""
    name = f"poses={cfg.poses}"
    if poses.num_people == 0 or not (poses.body[..., 2] > 0).any():
        raise InputError(f"driving={cfg.driving}", f"no person to replace ({name} has none)")
    if abs(poses.width / poses.height - width / height) > 0.02 * width / height:
        raise InputError(name, f"are for a {poses.width}x{poses.height} frame, not the driving "
                               f"video's shape ({width}x{height} at the working size)")


def _rgba(art) -> np.ndarray:
    """A loaded image as RGB or RGBA float32 in [0, 1]. [H, W, 3 | 4]"""
    if art.alpha is None:
        return art.rgb
    return np.concatenate([art.rgb, art.alpha[..., None]], -1)

