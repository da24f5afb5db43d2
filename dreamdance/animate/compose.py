"""The ``model=preview`` animator: no diffusion, a layout check that runs anywhere.

The character cut-out is pasted onto each background frame, scaled and moved so that its box
follows the aligned pose's box (same height, feet on the pose's feet), over a tint of the
inpainting mask — so a user sees where the real model will paint the character, how large,
and whether the mask covers it, before spending GPU hours.
"""

from __future__ import annotations

import cv2
import numpy as np

from dreamdance.animate.backend import AnimateInputs, AnimateOutput
from dreamdance.errors import InputError
from dreamdance.motion.align import pose_box, pose_frame
from dreamdance.motion.poses import PoseSequence


def alpha_box(alpha: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int, int]:
    """Pixel-edge box ``(x0, y0, x1, y1)`` of ``alpha [H, W] >= threshold``."""
    ys, xs = np.nonzero(alpha >= threshold)
    if len(xs) == 0:
        raise ValueError("the character cut-out is empty")
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def paste_matrix(source: tuple[float, ...], target: tuple[float, ...]) -> np.ndarray:
    """The 2×3 similarity (no rotation) taking ``source``'s box onto ``target``'s: equal
    heights, bottom-centres (the feet) on each other."""
    s = (target[3] - target[1]) / max(source[3] - source[1], 1e-6)
    tx = (target[0] + target[2]) / 2 - s * (source[0] + source[2]) / 2
    ty = target[3] - s * source[3]
    return np.array([[s, 0.0, tx], [0.0, s, ty]])


def composite_preview(character: np.ndarray, background: np.ndarray, poses: PoseSequence,
                      masks: np.ndarray, tint: float = 0.25) -> np.ndarray:
    """Frames of the layout check.

    Args:
        character: RGBA cut-out in [0, 1], in the working frame. [H, W, 4]
        background: the background video in [0, 1]. [T, H, W, 3]
        poses: the aligned poses (working frame), T frames.
        masks: inpainting masks, bool. [T, H, W]
        tint: strength of the mask's tint.

    Returns:
        [T, H, W, 3] float in [0, 1].
    """
    t, h, w = background.shape[:3]
    assert character.shape == (h, w, 4), (character.shape, (h, w))
    assert len(poses) == t and masks.shape == (t, h, w), (len(poses), masks.shape, t)
    source = alpha_box(character[..., 3])
    out = np.empty_like(background, dtype=np.float32)
    for i in range(t):
        frame = background[i].astype(np.float32)
        frame = np.where(masks[i][..., None], (1 - tint) * frame + tint * np.array(
            [1.0, 0.3, 0.8]), frame)
        target = pose_box(pose_frame(poses, i))
        if target is not None and target[3] > target[1]:
            M = paste_matrix(source, target)
            warped = cv2.warpAffine(character.astype(np.float32), M, (w, h),
                                    flags=cv2.INTER_LINEAR, borderValue=0)
            a = warped[..., 3:4]
            frame = a * warped[..., :3] + (1 - a) * frame
        out[i] = np.clip(frame, 0, 1)
    return out


class Preview:
    """``model=preview``: the layout check as an animate backend (no weights, seconds).

    Args:
        name: the option's name, for messages.
        tint: strength of the inpainting mask's tint.
    """

    def __init__(self, name: str = "preview", tint: float = 0.25):
        if not 0 <= tint <= 1:
            raise InputError(f"model.tint={tint}", "must lie in [0, 1]")
        self.name, self.tint = name, float(tint)

    def __call__(self, inputs: AnimateInputs) -> AnimateOutput:
        return AnimateOutput(composite_preview(inputs.character, inputs.background, inputs.poses,
                                               inputs.masks, self.tint))
