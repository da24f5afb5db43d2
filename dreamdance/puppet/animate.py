"""Animating a character cut-out with a pose sequence: rig once, then pose, order and draw each
frame (:func:`animate`)."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from dreamdance.motion.poses import PoseSequence
from dreamdance.puppet.deform import deform, frame_transforms
from dreamdance.puppet.draw import draw_frame, draw_order
from dreamdance.puppet.rig import Rig, build_rig


def animate(character: np.ndarray, rest_body: np.ndarray, rest_face: np.ndarray | None,
            poses: PoseSequence, background: np.ndarray, rig: Rig | None = None,
            progress: bool = True) -> np.ndarray:
    """The character moved by the driver of ``poses``, frame by frame, over ``background``.

    Args:
        character: the cut-out, straight alpha in [0, 1], in the working frame. [H, W, 4]
        rest_body: the character's own COCO-18 pose in the working frame. [18, 3]
        rest_face: its face landmarks, or None. [68, 3]
        poses: ``T`` frames, already in the working frame (e.g. by
            :func:`~dreamdance.motion.align.align_poses`); its driver moves the puppet.
        background: the background video in [0, 1]. [T, H, W, 3]
        rig: a rig built on ``character`` and ``rest_body`` (built here when None).
        progress: show a progress bar over the frames.

    Returns:
        The frames. [T, H, W, 3] float32

    Raises:
        ValueError: shapes that do not match, no person in ``poses``, or what
            :func:`~dreamdance.puppet.rig.build_rig` raises.
    """
    background = np.asarray(background)
    if background.ndim != 4 or background.shape[-1] != 3:
        raise ValueError(f"background must be a video [T, H, W, 3], got shape {background.shape}")
    if character.shape != (*background.shape[1:3], 4):
        raise ValueError(f"character {character.shape} and background frames "
                         f"{background.shape[1:]} must have the same size, RGBA and RGB")
    if len(poses) != len(background):
        raise ValueError(f"poses has {len(poses)} frames but background {len(background)}")
    if poses.num_people == 0:
        raise ValueError("poses has no person to follow")
    if rig is None:
        rig = build_rig(character, rest_body, rest_face)
    elif rig.size != character.shape[:2]:
        raise ValueError(f"rig was built at {rig.size}, the character is {character.shape[:2]}")
    d = poses.driver
    out = np.empty(background.shape, dtype=np.float32)
    for t in tqdm(range(len(poses)), desc="puppet", leave=False, disable=not progress):
        body, face = poses.body[t, d], poses.face[t, d]
        transforms = frame_transforms(rig, body, face if (face[:, 2] > 0).any() else None)
        out[t] = draw_frame(character, rig, deform(rig, transforms), draw_order(rig, body),
                            background[t])
    return out
