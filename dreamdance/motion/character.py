"""Where the character stands in the working frame, and its own pose there: what the poses are
aligned to (:class:`~dreamdance.motion.align.CharacterFrame`).

The stage gathers what is known of the art (its pose file, the pose backend, its cut-out or
alpha); these functions decide from it.
"""

from __future__ import annotations

import logging

import numpy as np

from dreamdance.errors import InputError
from dreamdance.media import resize
from dreamdance.motion.align import CharacterFrame, pose_frame
from dreamdance.motion.backend import PoseBackend, estimate_image
from dreamdance.motion.placement import Placement, place_poses
from dreamdance.motion.poses import PoseSequence

log = logging.getLogger(__name__)

MIN_CLEAR_KEYPOINTS = 8  # a detected body with fewer confident keypoints is not used
CONFIDENT = 0.3


def locate_character(width: int, height: int, own: PoseSequence | None = None,
                     own_name: str = "the art's pose", cut: np.ndarray | None = None,
                     align: str = "box") -> CharacterFrame:
    """The character's place in its own ``width × height`` working frame: from its own pose,
    else from its cut-out, else the whole frame when ``align`` is ``"none"``.

    Args:
        own: the art's own pose in the working frame (one frame), or None.
        own_name: that pose as the user knows it, for errors.
        cut: the character's soft mask at any size, 1 on the character, or None. [h, w]
        align: ``motion.align``; ``"none"`` needs no placement.

    Raises:
        InputError: nothing tells where the character is and ``align`` needs it.
    """
    if own is not None:
        return CharacterFrame.from_pose(own, name=own_name)
    if cut is not None:
        return CharacterFrame.from_mask(resize(cut, (width, height)) >= 0.5,
                                        name="the character's mask")
    if align == "none":
        return CharacterFrame((0, 0, width, height), width, height)
    raise InputError(f"motion.align={align}",
                     "needs the character's placement: give character_pose=FILE (the art's own "
                     "pose), an image with alpha, or run stage=scene first; or set "
                     "motion.align=none")


def detect_own_pose(extractor: PoseBackend, rgb: np.ndarray, fps: float) -> PoseSequence | None:
    """The art's own pose found by a pose backend, one frame; None (logged) when it finds no
    clear body (fewer than :data:`MIN_CLEAR_KEYPOINTS` confident body keypoints).

    Args:
        extractor: a pose backend (:class:`~dreamdance.motion.backend.PoseBackend`).
        rgb: the art at the working size. [H, W, 3] uint8
    """
    seq = estimate_image(extractor, rgb, fps=fps)
    if seq.num_people == 0 or (seq.body[0, seq.driver, :, 2] >= CONFIDENT).sum() \
            < MIN_CLEAR_KEYPOINTS:
        log.warning("the art's own pose: the pose backend found no clear body on the art; give "
                    "character_pose=FILE for it")
        return None
    log.info("the art's own pose: detected by the pose backend")
    return seq


def placed_character(character: CharacterFrame, own: PoseSequence | None,
                     placement: Placement) -> tuple[CharacterFrame, PoseSequence | None]:
    """The character and its own pose moved by ``placement`` into the target frame."""
    own = None if own is None else place_poses(own, placement)
    width, height = placement.target
    return (CharacterFrame(placement.box(character.box), width, height,
                           None if own is None else pose_frame(own, 0)), own)
