"""Placing the character art into a working frame that is not its own.

In the paper's main use the working frame *is* the art's frame (at the working resolution). Its
two other uses put the character into another picture:

- **character replacement** (``scene.source=driving``): the working frame is the driving
  video's; the character stands where the dancer stands, as tall as the dancer in the first
  frame the dancer is seen (:func:`at_person`);
- **another scene** (``scene_image=``): the working frame is the scene image's; the character
  keeps its place relative to the frame (the bottom-centre of its box at the same fractions of
  the width and height as in the art) and its height, a fraction of the frame's
  (``motion.character_height``), defaults to its height in the art (:func:`in_scene`).

Either way the placement is one similarity without rotation, ``p -> s·p + t`` from pixels of
the art's working frame to pixels of the target frame, written to ``motion/placement.json`` by
the motion stage and applied by the scene stage to the character's cut-out
(:func:`place_image`) and by the motion stage to the art's own pose (:func:`place_poses`), so
the cut-out, its pose and the aligned dance agree.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dreamdance.errors import InputError
from dreamdance.io import read_json, write_json
from dreamdance.motion.align import (
    Box,
    CharacterFrame,
    align_poses,
    box_similarity,
    map_keypoints,
    pose_box,
    pose_frame,
)
from dreamdance.motion.poses import PARTS, PoseSequence


@dataclass(frozen=True)
class Placement:
    """``p -> scale·p + shift``, art working frame (``source`` = (w, h)) to the target frame
    (``target`` = (W, H)).

    Args:
        scale: > 0.
        shift: [2] pixels.
        source: (w, h) of the art's working frame.
        target: (W, H) of the working frame.
    """

    scale: float
    shift: tuple[float, float]
    source: tuple[int, int]
    target: tuple[int, int]

    def box(self, box: Box) -> Box:
        """``box`` mapped (x0, y0, x1, y1)."""
        s, (tx, ty) = self.scale, self.shift
        return (s * box[0] + tx, s * box[1] + ty, s * box[2] + tx, s * box[3] + ty)

    def matrix(self) -> np.ndarray:
        """The 2 × 3 affine matrix, for ``cv2.warpAffine``. [2, 3] float64"""
        s, (tx, ty) = self.scale, self.shift
        return np.array([[s, 0.0, tx], [0.0, s, ty]])


def at_person(character: Box, person: Box, source: tuple[int, int],
              target: tuple[int, int]) -> Placement:
    """The character's box onto the person's: same height, bottom-centres together."""
    s, t = box_similarity(character, person)
    return _checked(s, t, source, target)


def at_dancer(character: Box, dancer: PoseSequence, source: tuple[int, int],
              target: tuple[int, int], name: str) -> Placement:
    """The character onto the dancer of a driving video (``dancer``: its poses in the video's
    own pixels, the video at the ``target`` size), as :func:`at_person`.

    Raises:
        InputError: the dancer has no confident keypoints in any frame (``name``: the video).
    """
    width, height = target
    box = person_box(align_poses(dancer, CharacterFrame((0, 0, width, height), width, height),
                                 "none"))
    if box is None:
        raise InputError(name, "no person to replace: the dancer has no confident keypoints")
    return at_person(character, box, source, target)


def in_scene(character: Box, source: tuple[int, int], target: tuple[int, int],
             height: float | None = None) -> Placement:
    """The character at the same relative place in the target frame, ``height`` × the frame
    height tall (None: as tall, relative to the frame, as in the art).

    Raises:
        InputError: ``height`` not a number in (0, 2].
    """
    (w, h), (W, H) = source, target
    rel_h = (character[3] - character[1]) / h
    if height is not None:
        if (isinstance(height, bool) or not isinstance(height, numbers.Real)
                or not 0 < float(height) <= 2):
            raise InputError(f"motion.character_height={height}",
                             "must be a fraction of the frame height in (0, 2], or null")
        rel_h = float(height)
    foot_x = (character[0] + character[2]) / 2 / w * W
    foot_y = character[3] / h * H
    half_w = (character[2] - character[0]) / 2 * (rel_h * H) / (character[3] - character[1])
    box = (foot_x - half_w, foot_y - rel_h * H, foot_x + half_w, foot_y)
    s, t = box_similarity(character, box)
    return _checked(s, t, source, target)


def _checked(s: float, t: np.ndarray, source: tuple[int, int],
             target: tuple[int, int]) -> Placement:
    if not np.isfinite(s) or s <= 0 or not np.isfinite(t).all():
        raise ValueError(f"degenerate placement: scale {s}, shift {t}")
    return Placement(float(s), (float(t[0]), float(t[1])), tuple(map(int, source)),
                     tuple(map(int, target)))


def place_poses(poses: PoseSequence, placement: Placement) -> PoseSequence:
    """Poses in the art's working frame moved into the target frame (absent keypoints stay
    at (0, 0, 0); confidences kept).

    Args:
        poses: at ``placement.source``.  [T, P, K, 3]
    """
    if (poses.width, poses.height) != placement.source:
        raise ValueError(f"poses are {poses.width}x{poses.height}, the placement is from "
                         f"{placement.source[0]}x{placement.source[1]}")
    shift = np.asarray(placement.shift, np.float32)
    parts = {part: map_keypoints(getattr(poses, part), placement.scale, shift) for part in PARTS}
    return PoseSequence(**parts, width=placement.target[0], height=placement.target[1],
                        fps=poses.fps, driver=poses.driver)


def place_image(image: np.ndarray, placement: Placement) -> np.ndarray:
    """An image of the art's working frame moved into the target frame; outside it, zeros
    (an alpha channel there: transparent).

    Args:
        image: float32 at ``placement.source``.  [h, w, C]

    Returns:
        [H, W, C] float32
    """
    image = np.asarray(image, np.float32)
    if image.shape[1::-1] != placement.source:
        raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, the placement is from "
                         f"{placement.source[0]}x{placement.source[1]}")
    flags = cv2.INTER_AREA if placement.scale < 1 else cv2.INTER_LINEAR
    out = cv2.warpAffine(image, placement.matrix(), placement.target, flags=flags,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape(placement.target[1], placement.target[0], -1)


def write_placement(path: Path, placement: Placement) -> None:
    write_json(path, {"scale": placement.scale, "shift": list(placement.shift),
                      "source": list(placement.source), "target": list(placement.target)})


def read_placement(path: Path) -> Placement:
    d = read_json(path)
    return Placement(float(d["scale"]), tuple(d["shift"]), tuple(d["source"]), tuple(d["target"]))


def person_box(poses: PoseSequence, threshold: float = 0.3) -> Box | None:
    """The driver's box (:func:`~dreamdance.motion.align.pose_box`) in the first frame that
    has one of non-zero height; None when no frame has."""
    for t in range(len(poses) if poses.num_people else 0):
        box = pose_box(pose_frame(poses, t), threshold)
        if box is not None and box[3] > box[1]:
            return box
    return None


def placed_art(art: np.ndarray, placement: Placement, ground: np.ndarray | None = None
               ) -> np.ndarray:
    """The whole art (its own background included, its alpha respected) placed over
    ``ground`` (None: mid grey): what the character's placement looks like.

    Args:
        art: RGB or RGBA in [0, 1] at ``placement.source``.  [h, w, 3 | 4]
        ground: [H, W, 3] in [0, 1], or None.

    Returns:
        [H, W, 3] float32
    """
    art = np.asarray(art, np.float32)
    alpha = art[..., 3:] if art.shape[-1] == 4 else np.ones((*art.shape[:2], 1), np.float32)
    moved = place_image(np.concatenate([art[..., :3] * alpha, alpha], -1), placement)
    W, H = placement.target
    ground = np.full((H, W, 3), 0.5, np.float32) if ground is None else ground
    return moved[..., :3] + ground * (1 - moved[..., 3:])
