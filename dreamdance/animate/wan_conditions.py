"""Wan2.2-Animate's conditions: the pose video, the face video and the reference framing.

The model was trained on conditions made by Wan2.2's preprocessing
(``wan/modules/animate/preprocess/`` in Wan-Video/Wan2.2); these functions make ours the same way.

Pose video (follows ``human_visualization.py`` ``draw_aapose_by_meta_new`` → ``draw_aapose_new``
+ ``draw_handpose_new``, ``stickwidth_type='v2'``, ``threshold=0.5``): RGB on black, at the
driving frames' size. Wan's body has 20 keypoints: COCO-18 in OpenPose order (ours, index for
index) then left toe and right toe (means of the big and small toe of COCO-WholeBody, see
``pose2d_utils.py`` ``split_kp2ds_for_aa``). Our poses have no toes, so the two ankle→toe limbs
and toe joints are never drawn (a ``[20, 3]`` body that has them draws them). Order:

1. 19 limbs (the 17 OpenPose limbs, then l_ankle→l_toe, r_ankle→r_toe) as filled ellipses with
   semi-axes ``(|a - b| / 2, stick)``, in the limb colours scaled by 0.6 (``int``);
2. 20 joints as discs of radius ``stick`` in the full joint colours;
3. left hand then right hand: 20 bones as lines of thickness ``hand stick`` coloured by hue
   ``i / 20`` (rounded by cv2), then the 21 joints as blue discs of radius ``hand stick``.

A keypoint (and every limb or bone touching it) is skipped when its confidence is below 0.5;
hand keypoints are also skipped at ``x < 1`` or ``y < 1``. Coordinates are truncated to ints;
no anti-aliasing. ``stick = max(min(H, W) // 200 - 1, 1)``, ``hand stick = max(stick // 2, 1)``.
The 68 face landmarks are not drawn (the face reaches the model through the face video).

Face video (follows ``process_pipepline.py`` ``ProcessPipeline.__call__`` + ``utils.py``
``get_face_bboxes(scale=1.3)``): the box of the 68 landmarks, its area grown by 1.3 at the same
aspect, the extra width split evenly left/right, the extra height 3/4 above (forehead) and 1/4
below; clipped to the frame, truncated to ints, not square; the crop is resized (bilinear,
aspect not kept) to 512 × 512. Wan uses all 68 predicted landmarks; we use those present
(confidence > ``threshold``, default 0). Wan has no missing-face case; we reuse a neighbour's box.

Reference image and sizes (``utils.py`` ``resize_by_area`` / ``padding_resize``): the reference
is letterboxed (aspect kept, centred, black bars) to a size whose area is at most
``resolution_area`` with sides multiples of 16; a pose canvas drawn at another size is
letterboxed to the reference's size the same way. diffusers' ``WanAnimatePipeline`` does the
same to the reference (``resize_mode="fill"``, fill 0) and resizes the face video to the
transformer's ``motion_encoder_size`` (512).
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np

from dreamdance.motion.poses import PoseSequence
from dreamdance.motion.render import BODY_COLOURS, BODY_LIMBS, HAND_BONES

log = logging.getLogger(__name__)

# confidence below which Wan skips a keypoint (draw_aapose_by_meta_new's default threshold)
WAN_THRESHOLD = 0.5
# 0-indexed limbs of Wan's 20-keypoint body: OpenPose's 17, then l_ankle→l_toe, r_ankle→r_toe
L_TOE, R_TOE = 18, 19
WAN_LIMBS = BODY_LIMBS + ((13, L_TOE), (10, R_TOE))
# joint colours (RGB) of the 20 keypoints; limb i takes colour i too (so l_ankle→l_toe is
# (255, 0, 85) and r_ankle→r_toe is (200, 200, 0): Wan pairs limbs and colours by position)
WAN_COLOURS = BODY_COLOURS + ((200, 200, 0), (100, 100, 0))
# limbs are filled with their colour scaled by this (and truncated to int)
LIMB_DIM = 0.6
# hand bone i: hsv(i / 20, 1, 1) * 255 as cv2 rounds it (HAND_BONES order: thumb, index, ...)
WAN_HAND_COLOURS = (
    (255, 0, 0), (255, 77, 0), (255, 153, 0), (255, 229, 0), (204, 255, 0),
    (128, 255, 0), (51, 255, 0), (0, 255, 25), (0, 255, 102), (0, 255, 179),
    (0, 255, 255), (0, 178, 255), (0, 102, 255), (0, 25, 255), (51, 0, 255),
    (128, 0, 255), (204, 0, 255), (255, 0, 230), (255, 0, 153), (255, 0, 77),
)
# hand joints (RGB)
HAND_JOINT_COLOUR = (0, 0, 255)
# get_face_bboxes: area growth of the landmark box, and the share of the extra height above it
FACE_AREA_SCALE = 1.3
FACE_ABOVE = 0.75
# side of the face video's frames (WanAnimateTransformer3DModel's motion_encoder_size)
FACE_SIZE = 512
# without face landmarks: the head crop's side, in neck-nose distances
HEAD_SIDE = 2.4
# resize_by_area: pixel area of the generation (Wan's default 1280 × 720) and the side divisor
WAN_AREA = 1280 * 720
WAN_DIVISOR = 16


def stick_widths(width: int, height: int) -> tuple[int, int]:
    """Wan's ``'v2'`` widths: (body stick = limb semi-minor axis = joint radius, hand stick =
    bone thickness = hand joint radius) for an image of ``width`` × ``height``."""
    body = max(int(min(width, height) / 200) - 1, 1)
    return body, max(body // 2, 1)


def _limb(canvas: np.ndarray, a: np.ndarray, b: np.ndarray, colour, stick: int) -> None:
    """Fill the ellipse spanning points ``a``, ``b`` ([2] each) with semi-minor axis ``stick``."""
    centre = (int((a[0] + b[0]) / 2), int((a[1] + b[1]) / 2))
    length = math.hypot(a[0] - b[0], a[1] - b[1])
    angle = int(math.degrees(math.atan2(a[1] - b[1], a[0] - b[0])))
    poly = cv2.ellipse2Poly(centre, (int(length / 2), stick), angle, 0, 360, 1)
    cv2.fillConvexPoly(canvas, poly, [int(c * LIMB_DIM) for c in colour])


def _hand(canvas: np.ndarray, kp: np.ndarray, stick: int, threshold: float) -> None:
    """Draw hand keypoints ``kp [21, 3]`` on ``canvas`` in place, bones then joints."""
    ok = (kp[:, 2] >= threshold) & (kp[:, 0].astype(int) >= 1) & (kp[:, 1].astype(int) >= 1)
    xy = [(int(x), int(y)) for x, y in kp[:, :2]]
    for (a, b), colour in zip(HAND_BONES, WAN_HAND_COLOURS, strict=True):
        if ok[a] and ok[b]:
            cv2.line(canvas, xy[a], xy[b], colour, thickness=stick)
    for i in np.flatnonzero(ok):
        cv2.circle(canvas, xy[i], stick, HAND_JOINT_COLOUR, thickness=-1)


def draw_wan_pose(body: np.ndarray, left_hand: np.ndarray, right_hand: np.ndarray,
                  width: int, height: int, threshold: float = WAN_THRESHOLD) -> np.ndarray:
    """One frame of Wan-Animate's pose video (see the module docstring for the convention).

    Args:
        body: [18, 3] COCO-18 (x, y, confidence) in pixels, or [20, 3] with l_toe, r_toe.
        left_hand, right_hand: [21, 3] OpenPose hand keypoints.
        width, height: canvas size in pixels.
        threshold: keypoints with confidence below it are skipped.

    Returns:
        [height, width, 3] uint8 RGB on black.
    """
    assert body.shape in ((18, 3), (20, 3)), body.shape
    assert left_hand.shape == (21, 3) and right_hand.shape == (21, 3), (
        left_hand.shape, right_hand.shape)
    kp = np.zeros((20, 3), np.float64)
    kp[: len(body)] = body
    canvas = np.zeros((height, width, 3), np.uint8)
    stick, hand_stick = stick_widths(width, height)
    ok = kp[:, 2] >= threshold
    for (a, b), colour in zip(WAN_LIMBS, WAN_COLOURS, strict=False):
        if ok[a] and ok[b]:
            _limb(canvas, kp[a, :2], kp[b, :2], colour, stick)
    for i in np.flatnonzero(ok):
        cv2.circle(canvas, (int(kp[i, 0]), int(kp[i, 1])), stick, WAN_COLOURS[i], thickness=-1)
    _hand(canvas, left_hand, hand_stick, threshold)
    _hand(canvas, right_hand, hand_stick, threshold)
    return canvas


def wan_size(width: int, height: int, area: int = WAN_AREA,
             divisor: int = WAN_DIVISOR) -> tuple[int, int]:
    """(width, height) Wan's ``resize_by_area`` gives an image of ``width`` × ``height``: the
    same aspect at pixel ``area``, each side floored to a multiple of ``divisor``. (Wan's exact
    search ``calculate_new_size`` always raises on a wrong call, so this fallback is what runs.)"""
    new_h = math.sqrt(area / (width / height))
    new_w = area / new_h
    return int(new_w // divisor) * divisor, int(new_h // divisor) * divisor


def letterbox(image: np.ndarray, width: int, height: int,
              interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resize ``image [H, W, C]`` keeping its aspect to fit ``width`` × ``height`` and centre it
    on black, as Wan's ``padding_resize``. Returns [height, width, C] uint8."""
    h, w = image.shape[:2]
    out = np.zeros((height, width, image.shape[2]), np.uint8)
    if h / w > height / width:          # taller: full height, bars left and right
        new_w = int(height / h * w)
        x0 = int((width - new_w) / 2)
        out[:, x0:x0 + new_w] = cv2.resize(image, (new_w, height), interpolation=interpolation)
    else:                               # wider: full width, bars above and below
        new_h = int(width / w * h)
        y0 = int((height - new_h) / 2)
        out[y0:y0 + new_h] = cv2.resize(image, (width, new_h), interpolation=interpolation)
    return out


def wan_pose_video(poses: PoseSequence, size: tuple[int, int] | None = None,
                   threshold: float = WAN_THRESHOLD) -> np.ndarray:
    """The driver's pose video in Wan's convention.

    Drawn at the pose file's ``width`` × ``height``; with ``size = (width, height)`` each frame is
    then letterboxed to it (as Wan fits the pose canvas to the reference image).

    Returns:
        [T, H, W, 3] uint8 RGB.
    """
    width, height = poses.width, poses.height
    frames = []
    for t in range(len(poses)):
        if poses.num_people == 0:
            frame = np.zeros((height, width, 3), np.uint8)
        else:
            p = poses.driver
            frame = draw_wan_pose(poses.body[t, p], poses.left_hand[t, p], poses.right_hand[t, p],
                                  width, height, threshold)
        frames.append(frame if size is None else letterbox(frame, *size))
    out_h, out_w = (height, width) if size is None else (size[1], size[0])
    return np.stack(frames) if frames else np.zeros((0, out_h, out_w, 3), np.uint8)


def face_box(face: np.ndarray, width: int, height: int,
             threshold: float = 0.0) -> tuple[int, int, int, int] | None:
    """Wan's face crop box from 68 face landmarks (``get_face_bboxes`` with scale 1.3).

    The landmarks' box (``w0`` × ``h0``) grows to ``sqrt(1.3)`` times each side: half the extra
    width each side, 3/4 of the extra height above and 1/4 below; clipped to the image.

    Args:
        face: [68, 3] (x, y, confidence) in pixels; landmarks with confidence <= ``threshold``
            are ignored.
        width, height: the image size the box is clipped to.

    Returns:
        (x0, y0, x1, y1) ints, the crop being ``image[y0:y1, x0:x1]``; None when fewer than two
        landmarks are present, they span no area, or the box lies outside the image.
    """
    assert face.shape == (68, 3), face.shape
    xy = face[face[:, 2] > threshold, :2].astype(np.float64)
    if len(xy) < 2:
        return None
    (min_x, min_y), (max_x, max_y) = xy.min(axis=0), xy.max(axis=0)
    w0, h0 = max_x - min_x, max_y - min_y
    if w0 <= 0 or h0 <= 0:
        return None
    grow = math.sqrt(FACE_AREA_SCALE) - 1
    dx, dy = grow * w0 / 2, grow * h0
    x0, x1 = int(max(min_x - dx, 0)), int(min(max_x + dx, width))
    y0, y1 = int(max(min_y - FACE_ABOVE * dy, 0)), int(min(max_y + (1 - FACE_ABOVE) * dy, height))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def head_box(body: np.ndarray, width: int, height: int,
             threshold: float = 0.3) -> tuple[int, int, int, int] | None:
    """A face crop box from the body's head keypoints, for poses without face landmarks
    (OpenPose body-only files): a square centred on the nose (else the middle of the confident
    eyes and ears), its side ``HEAD_SIDE`` × the neck–nose distance, else the eye/ear span ×
    ``HEAD_SIDE`` / 1.4; clipped to the image.

    Args:
        body: [18, 3] COCO-18 keypoints in pixels.

    Returns:
        (x0, y0, x1, y1) ints, or None without a confident nose, eye or ear.
    """
    assert body.shape == (18, 3), body.shape
    ok = body[:, 2] >= threshold
    head = [k for k in (0, 14, 15, 16, 17) if ok[k]]
    if not head:
        return None
    centre = body[0, :2] if ok[0] else body[head, :2].mean(0)
    if ok[0] and ok[1] and np.linalg.norm(body[0, :2] - body[1, :2]) > 0:
        side = HEAD_SIDE * float(np.linalg.norm(body[0, :2] - body[1, :2]))
    elif len(head) >= 2:
        span = body[head, :2].max(0) - body[head, :2].min(0)
        side = HEAD_SIDE / 1.4 * float(span.max())
    else:
        return None
    x0, x1 = int(max(centre[0] - side / 2, 0)), int(min(centre[0] + side / 2, width))
    y0, y1 = int(max(centre[1] - side / 2, 0)), int(min(centre[1] + side / 2, height))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def fill_boxes(boxes: list) -> list[tuple[int, int, int, int]]:
    """Replace each None in ``boxes`` by the last box before it (leading Nones: the first box).
    Raises ValueError when every entry is None."""
    first = next((b for b in boxes if b is not None), None)
    if first is None:
        raise ValueError(f"no face found in any of the {len(boxes)} frames: Wan-Animate needs "
                         "the driver's face landmarks in at least one frame for the face video")
    out, last = [], first
    for b in boxes:
        last = b if b is not None else last
        out.append(last)
    return out


def face_crops(frames: np.ndarray, poses: PoseSequence, size: int = FACE_SIZE,
               threshold: float = 0.0) -> np.ndarray:
    """Wan-Animate's face video: the driver's face cropped from each frame and resized (bilinear,
    aspect not kept) to ``size`` × ``size``. A frame without a face uses the nearest earlier box
    (leading frames: the first box found). Poses with no face landmarks at all (body-only
    OpenPose files) are cropped around the body's head keypoints instead (:func:`head_box`,
    logged).

    Args:
        frames: [T, H, W, 3] uint8 driving frames, H × W the pose file's height × width.
        poses: the driving video's poses, T frames.

    Returns:
        [T, size, size, 3] uint8.
    """
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"frames: expected shape [T, H, W, 3], got {frames.shape}")
    t, h, w = frames.shape[:3]
    if t != len(poses) or (h, w) != (poses.height, poses.width):
        raise ValueError(f"frames {t} × {h} × {w} do not match the poses {len(poses)} × "
                         f"{poses.height} × {poses.width} (frames × height × width)")
    if poses.num_people == 0:
        raise ValueError("no face found: the pose file has no people")
    faces = poses.face[:, poses.driver]
    boxes = [face_box(f, w, h, threshold) for f in faces]
    if all(b is None for b in boxes):
        boxes = [head_box(b, w, h) for b in poses.body[:, poses.driver]]
        if any(b is not None for b in boxes):
            log.warning("face video: the poses have no face landmarks; the face is cropped "
                        "around the body's head keypoints instead")
    boxes = fill_boxes(boxes)
    crops = [cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_LINEAR)
             for frame, (x0, y0, x1, y1) in zip(frames, boxes, strict=True)]
    return np.stack(crops)
