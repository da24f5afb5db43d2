"""The seam between ``stage=animate`` and its backends (the ``model`` Hydra group).

The stage reads the run directory once into :class:`AnimateInputs`, checks that sizes and frame
counts agree, and calls the backend that ``model=<name>`` builds with ``_target_``; the backend
returns an :class:`AnimateOutput` and the stage writes the video, its contact sheet and any
images the backend adds. A backend is a callable object::

    class MyBackend:
        def __init__(self, name: str, **options): ...          # options from conf/model/<name>.yaml
        def __call__(self, inputs: AnimateInputs) -> AnimateOutput: ...

Its constructor checks its options and weights folders (cheaply: it runs before anything is
written); heavy loading happens in ``__call__``. A backend that can be trained also has
``components(seed) -> dict`` (the diffusion pipeline's parts, see :mod:`.diffusion`). A
backend whose attribute ``needs_scene`` is False runs without the scene stage: its inputs then
hold the art itself as the background of every frame, an all-true mask and the art as the
character.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from dreamdance.errors import InputError
from dreamdance.media import load_image, read_video, resize
from dreamdance.motion.poses import PoseSequence, read_poses

log = logging.getLogger(__name__)

POSE_KEYS = ("face", "hand", "body")  # pose videos, in the order of the pose latents' channels
RUN_FILES = {  # run-directory file -> the stage that writes it
    "scene/background.mp4": "scene", "scene/character.png": "scene",
    "motion/poses_aligned.json": "motion", "animate/mask.mp4": "motion",
    **{f"animate/pose_{k}.mp4": "motion" for k in POSE_KEYS},
}
CHARACTER_POSE = "motion/character_pose.json"  # the art's own pose, when known (optional)
CAPTION = "scene/caption.txt"
PERSON_MASK = "scene/person_mask.mp4"  # the dancer painted out (scene.source=driving)


@dataclass(frozen=True)
class AnimateInputs:
    """Everything a backend may use, read from the run directory once.

    Args:
        background: the scene's background video in [0, 1]. [T, H, W, 3] float32
        masks: the inpainting masks (where the character may appear). [T, H, W] bool
        poses: the driving poses aligned to the character, T frames, ``W × H``.
        pose_videos: ``{"face" | "hand" | "body": [T, H, W, 3] uint8}`` rendered poses.
        character: the RGBA cut-out, straight alpha in [0, 1]. [H, W, 4] float32
        character_pose: the art's own pose, ``{part: [K, 3]}`` in the working frame, or None
            when unknown (backends that need a rest pose fall back, and say so).
        caption: the scene's caption ("" when there is none).
        driving: the driving video's frames when ``driving=`` was given. [T', H', W', 3] uint8
        driving_poses: with ``driving``, the poses found in it, in its own frame (unaligned).
        art: the reference art (``image=``) at the working size, in [0, 1]. [H, W, 3] float32
        fps: output frame rate.
        seed: the run's seed.
        device: ``"cpu"`` or ``"cuda"``.
    """

    background: np.ndarray
    masks: np.ndarray
    poses: PoseSequence
    pose_videos: dict[str, np.ndarray]
    character: np.ndarray
    character_pose: dict[str, np.ndarray] | None
    caption: str
    driving: np.ndarray | None
    driving_poses: PoseSequence | None
    art: np.ndarray
    fps: float
    seed: int
    device: str

    @property
    def num_frames(self) -> int:
        return len(self.background)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the working frame."""
        return self.background.shape[2], self.background.shape[1]


@dataclass
class AnimateOutput:
    """What a backend returns.

    Args:
        frames: the animation in [0, 1]. [T, H, W, 3] float32
        images: extra pictures for the user, written as ``animate/<name>.png``. {name: [h, w, 3]
            uint8}
    """

    frames: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)


class AnimateBackend(Protocol):
    name: str

    def __call__(self, inputs: AnimateInputs) -> AnimateOutput: ...


def missing_files(root: Path, scene: bool = True) -> dict[str, str]:
    """The run files the stage needs that ``root`` lacks: ``{file: stage that writes it}``
    (without the scene stage's when ``scene`` is False)."""
    return {rel: stage for rel, stage in RUN_FILES.items()
            if (scene or stage != "scene") and not (root / rel).is_file()}


def read_inputs(root: Path, art: np.ndarray, *, fps: float, seed: int, device: str,
                driving: np.ndarray | None = None, scene: bool = True,
                removed: bool = False, name: str = "out") -> AnimateInputs:
    """Read and check the run directory ``root`` (see :data:`RUN_FILES`).

    Args:
        art: the reference art, RGB or RGBA in [0, 1], resized here to the working frame (the
            aligned poses' size). [h, w, 3 | 4]
        scene: read the scene stage's files; without them the art stands in (see the module).
        removed: the background is the driving video with its dancer painted out
            (``scene.source=driving``): the inpainting mask also covers the removed dancer
            (:data:`PERSON_MASK`), so that nothing of them is kept.

    Raises:
        InputError: (named ``name``) frame counts or frame sizes that disagree between the
            scene's and the motion stage's files.
    """
    poses = read_poses(root / "motion/poses_aligned.json")
    videos = {k: read_video(root / f"animate/pose_{k}.mp4").frames for k in POSE_KEYS}
    art = resize(np.asarray(art, np.float32), (poses.width, poses.height))
    rgb = art[..., :3]
    if scene:
        background = read_video(root / "scene/background.mp4").frames.astype(np.float32) / 255
        masks = read_video(root / "animate/mask.mp4").frames[..., 0] > 127
        if removed:
            if not (root / PERSON_MASK).is_file():
                raise InputError(name, f"{PERSON_MASK} not found: run stage=scene "
                                       "scene.source=driving first")
            person = read_video(root / PERSON_MASK).frames[..., 0] > 127
            if person.shape != masks.shape:
                raise InputError(name, f"{PERSON_MASK} is {person.shape}, animate/mask.mp4 "
                                       f"{masks.shape}: re-run stage=scene")
            masks = masks | person
        cut = load_image(root / "scene/character.png")
        if cut.alpha is None:
            raise InputError(name, "scene/character.png has no alpha: re-run stage=scene")
        character = np.concatenate([cut.rgb, cut.alpha[..., None]], -1).astype(np.float32)
    else:
        background = np.repeat(rgb[None], len(poses), 0)
        masks = np.ones(background.shape[:3], bool)
        alpha = art[..., 3] if art.shape[-1] == 4 else np.ones(rgb.shape[:2], np.float32)
        character = np.concatenate([rgb, alpha[..., None]], -1).astype(np.float32)
    lengths = {"scene/background.mp4": len(background), "animate/mask.mp4": len(masks),
               "motion/poses_aligned.json": len(poses),
               **{f"animate/pose_{k}.mp4": len(v) for k, v in videos.items()}}
    if len(set(lengths.values())) != 1:
        raise InputError(name, "frame counts disagree: " + ", ".join(
            f"{k} {v}" for k, v in lengths.items()) + " (re-run both stages with the same "
            "frames=)")
    sizes = {background.shape[1:3], masks.shape[1:3], (poses.height, poses.width),
             character.shape[:2], rgb.shape[:2], *(v.shape[1:3] for v in videos.values())}
    if len(sizes) != 1:
        raise InputError(name, f"frame sizes disagree: {sorted(sizes)} (re-run both stages "
                               "with the same resolution=)")
    own = None
    if (root / CHARACTER_POSE).is_file():
        seq = read_poses(root / CHARACTER_POSE)
        own = {part: getattr(seq, part)[0, seq.driver] for part in
               ("body", "face", "left_hand", "right_hand")}
    caption = (root / CAPTION).read_text().strip() if (root / CAPTION).is_file() else ""
    driving_poses = read_poses(root / "motion/poses.json") if driving is not None else None
    return AnimateInputs(background=background, masks=masks, poses=poses, pose_videos=videos,
                         character=character, character_pose=own, caption=caption,
                         driving=driving, driving_poses=driving_poses, art=rgb,
                         fps=float(fps), seed=int(seed), device=device)


def rest_pose(inputs: AnimateInputs, backend: str) -> dict[str, np.ndarray]:
    """The character's own pose, else the first aligned frame (logged as the fallback)."""
    if inputs.character_pose is not None:
        return inputs.character_pose
    log.warning("model=%s: the art's own pose is unknown (give character_pose=FILE); rigging "
                "from the first aligned driving frame instead", backend)
    p = inputs.poses
    return {part: getattr(p, part)[0, p.driver] for part in
            ("body", "face", "left_hand", "right_hand")}
