"""Drawing poses in the OpenPose colour conventions (the ones pose-conditioned video models see).

Body: 17 limbs as filled ellipses in OpenPose's limb colours at 60 % intensity, joints as discs
in the joint colours. Hands: 20 bones coloured by hue around the wheel, joints blue. Face:
white dots. Sizes scale with the image (OpenPose's 4 px stick at 512 px).
"""

from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

# 0-indexed COCO-18 limb pairs, OpenPose's order
BODY_LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
              (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
BODY_COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0),
                (85, 255, 0), (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255),
                (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255), (170, 0, 255),
                (255, 0, 255), (255, 0, 170), (255, 0, 85))
HAND_BONES = tuple((0 if j % 4 == 0 else j, j + 1) for j in range(20))
HAND_COLOURS = tuple(tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / 20, 1.0, 1.0))
                     for i in range(20))


def _width(canvas: np.ndarray, base: float) -> int:
    return max(1, round(base * max(canvas.shape[:2]) / 512))


def draw_body(canvas: np.ndarray, kp: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Draw COCO-18 keypoints ``kp [18, 3]`` (pixels, confidence) on ``canvas [H, W, 3]`` uint8
    RGB, in place; keypoints below ``threshold`` confidence are skipped."""
    assert kp.shape == (18, 3), kp.shape
    stick, radius = _width(canvas, 4), _width(canvas, 4)
    for (a, b), colour in zip(BODY_LIMBS, BODY_COLOURS, strict=False):
        if kp[a, 2] < threshold or kp[b, 2] < threshold:
            continue
        centre = (kp[a, :2] + kp[b, :2]) / 2
        length = float(np.linalg.norm(kp[a, :2] - kp[b, :2]))
        angle = math.degrees(math.atan2(kp[a, 1] - kp[b, 1], kp[a, 0] - kp[b, 0]))
        poly = cv2.ellipse2Poly((round(centre[0]), round(centre[1])),
                                (round(length / 2), stick), round(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, poly, tuple(int(0.6 * c) for c in colour), cv2.LINE_AA)
    for i, colour in enumerate(BODY_COLOURS):
        if kp[i, 2] >= threshold:
            cv2.circle(canvas, (round(kp[i, 0]), round(kp[i, 1])), radius, colour, -1, cv2.LINE_AA)
    return canvas


def draw_hand(canvas: np.ndarray, kp: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Draw 21 hand keypoints ``kp [21, 3]`` on ``canvas`` in place."""
    assert kp.shape == (21, 3), kp.shape
    width, radius = _width(canvas, 2), _width(canvas, 3)
    for (a, b), colour in zip(HAND_BONES, HAND_COLOURS, strict=True):
        if kp[a, 2] >= threshold and kp[b, 2] >= threshold:
            cv2.line(canvas, (round(kp[a, 0]), round(kp[a, 1])), (round(kp[b, 0]), round(kp[b, 1])),
                     colour, width, cv2.LINE_AA)
    for x, y, c in kp:
        if c >= threshold:
            cv2.circle(canvas, (round(x), round(y)), radius, (0, 0, 255), -1, cv2.LINE_AA)
    return canvas


def draw_face(canvas: np.ndarray, kp: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Draw 68 face keypoints ``kp [68, 3]`` as white dots on ``canvas`` in place."""
    assert kp.shape == (68, 3), kp.shape
    radius = _width(canvas, 2)
    for x, y, c in kp:
        if c >= threshold:
            cv2.circle(canvas, (round(x), round(y)), radius, (255, 255, 255), -1, cv2.LINE_AA)
    return canvas


def render_pose(poses, t: int, person: int | None = None, parts: tuple[str, ...] = (
        "body", "face", "left_hand", "right_hand"), threshold: float = 0.3) -> np.ndarray:
    """Frame ``t`` of a :class:`~dreamdance.motion.poses.PoseSequence` drawn on black,
    ``[height, width, 3]`` uint8 at the pose file's size (the driver unless ``person``)."""
    p = poses.driver if person is None else person
    canvas = np.zeros((poses.height, poses.width, 3), np.uint8)
    if poses.num_people == 0:
        return canvas
    draw = {"body": draw_body, "face": draw_face, "left_hand": draw_hand,
            "right_hand": draw_hand}
    for part in parts:
        draw[part](canvas, getattr(poses, part)[t, p], threshold)
    return canvas
