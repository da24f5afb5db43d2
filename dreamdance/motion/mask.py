"""The inpainting-mask video: per frame, where the character may appear.

The animate stage repaints the background video inside this mask. Per frame, for one person
(the driver by default), the mask is the union of

- the **body**: the convex hull (``shape="hull"``) of the confident body keypoints;
- the **face**: the convex hull of the confident face landmarks grown by
  ``face_margin × face size`` (face size = the landmarks' box, longer side); without
  landmarks, the hull of the confident nose, eyes and ears grown by ``face_margin × head
  size``, the head size estimated from the body (ear to ear, or ``HEAD_PER_NECK`` × neck to
  nose, whichever is larger; else ``HEAD_PER_BODY`` × body size);
- each **hand**: the convex hull of its confident keypoints grown by ``hand_margin × hand
  span`` (the keypoints' box, longer side); without hand keypoints, a disc around the
  confident wrist of radius ``hand_margin × forearm length`` (elbow to wrist, else
  ``FOREARM_PER_BODY`` × body size),

all dilated by ``dilate × body size``. The **body size** is the longer side of the pose's box
(:func:`dreamdance.motion.align.pose_box`: all confident keypoints, head and feet extended),
so that a person lying down or doing a cartwheel is dilated as much as one standing; when that
box is a single point it is ``FALLBACK_BODY × frame height``. With ``shape="box"`` the
union (before dilation) is replaced by its bounding box and the box is grown by the same
amount on each side, so the box mask always contains the hull mask.

Keypoints are in pixels with pixel ``(i, j)`` at ``(x, y) = (j, i)``, as the pose renderer
draws them; keypoints outside the frame take part (their regions are clipped to the frame),
those more than one frame size outside it are clamped to that margin.
"""

from __future__ import annotations

import cv2
import numpy as np

from dreamdance.errors import InputError
from dreamdance.motion.align import pose_box, pose_frame
from dreamdance.motion.poses import PoseSequence
from dreamdance.settings import conf_values

SHAPES = ("hull", "box")
HEAD_PER_NECK = 1.5       # head size / neck-to-nose length
HEAD_PER_BODY = 0.13      # head size / body size
FOREARM_PER_BODY = 0.15   # forearm length / body size
FALLBACK_BODY = 0.25      # body size / frame height, when the pose's box is a point
HEAD_POINTS = (0, 14, 15, 16, 17)   # nose, eyes, ears
HAND_JOINTS = {"right_hand": (3, 4), "left_hand": (6, 7)}  # (elbow, wrist)


def pose_masks(poses: PoseSequence, dilate: float | None = None,
               face_margin: float | None = None, hand_margin: float | None = None,
               threshold: float = 0.3, shape: str | None = None,
               person: int | None = None) -> np.ndarray:
    """The region where the character may appear, per frame (see the module for the rule).

    ``dilate``, ``face_margin``, ``hand_margin`` and ``shape`` left None take the run config's
    ``mask`` settings (``conf/config.yaml``, their one source).

    Args:
        poses: ``[T, P, K, 3]`` keypoints in pixels of ``poses.width × poses.height``.
        dilate: growth of the whole region, as a fraction of the body size, >= 0.
        face_margin: growth of the face region, as a fraction of the face size, >= 0.
        hand_margin: growth of each hand region, as a fraction of the hand span, >= 0.
        threshold: keypoints below this confidence are ignored.
        shape: ``"hull"`` or ``"box"``.
        person: whose keypoints; the driver when None.

    Returns:
        ``[T, H, W]`` bool, True where the character may appear; all False in a frame with
        no confident keypoint.
    """
    given = {"dilate": dilate, "face_margin": face_margin, "hand_margin": hand_margin,
             "shape": shape}
    settings = {**(conf_values("config", "mask") if None in given.values() else {}),
                **{k: v for k, v in given.items() if v is not None}}
    dilate, face_margin, hand_margin, shape = (settings[k] for k in given)
    for key, value in (("dilate", dilate), ("face_margin", face_margin),
                       ("hand_margin", hand_margin)):
        if not np.isfinite(value) or value < 0:
            raise InputError(f"mask.{key}={value}", "must be a number >= 0")
    if shape not in SHAPES:
        raise InputError(f"mask.shape={shape}", f"must be one of {', '.join(SHAPES)}")
    out = np.zeros((len(poses), poses.height, poses.width), bool)
    if poses.num_people == 0:
        return out
    p = poses.driver if person is None else person
    if not 0 <= p < poses.num_people:
        raise ValueError(f"person {p} out of range for {poses.num_people} people")
    for t in range(len(poses)):
        out[t] = _frame_mask(pose_frame(poses, t, p), poses.width, poses.height, dilate,
                             face_margin, hand_margin, threshold, shape)
    return out


def mask_video(masks: np.ndarray) -> np.ndarray:
    """Masks ``[T, H, W]`` (bool, or float with 0.5 as the cut) as video frames
    ``[T, H, W, 3]`` uint8: white (255) inside, black outside."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [T, H, W], got shape {masks.shape}")
    on = masks if masks.dtype == bool else masks >= 0.5
    return np.repeat((on * np.uint8(255))[..., None], 3, axis=-1)


def _frame_mask(pose: dict[str, np.ndarray], width: int, height: int, dilate: float,
                face_margin: float, hand_margin: float, threshold: float,
                shape: str) -> np.ndarray:
    box = pose_box(pose, threshold)
    if box is None:
        return np.zeros((height, width), bool)
    size = max(box[2] - box[0], box[3] - box[1])
    size = size if size > 0 else FALLBACK_BODY * height
    margin = max(width, height)
    size = min(size, 3 * margin)  # clamped keypoints span at most three frame sizes
    grow = int(round(dilate * size))
    pad = grow
    canvas = np.zeros((height + 2 * pad, width + 2 * pad), np.uint8)

    def confident(a: np.ndarray) -> np.ndarray:
        xy = a[a[:, 2] >= threshold, :2]
        lo = np.array([-margin, -margin])
        hi = np.array([width + margin, height + margin])
        return np.clip(xy, lo, hi) + pad

    body = pose["body"]
    ok = body[:, 2] >= threshold
    pts = confident(body)
    _grown_hull(canvas, pts, 0)

    face = confident(pose["face"])
    if len(face) and _extent(face) > 0:
        _grown_hull(canvas, face, face_margin * _extent(face))
    else:
        head = confident(body[list(HEAD_POINTS)])
        head = np.concatenate([head, face])
        if len(head):
            _grown_hull(canvas, head, face_margin * _head_size(body, ok, size))

    for part, (elbow, wrist) in HAND_JOINTS.items():
        hand = confident(pose[part])
        if len(hand) and _extent(hand) > 0:
            _grown_hull(canvas, hand, hand_margin * _extent(hand))
            continue
        forearm = (np.linalg.norm(body[wrist, :2] - body[elbow, :2]) if ok[elbow] and ok[wrist]
                   else FOREARM_PER_BODY * size)
        anchor = np.concatenate([hand, confident(body[[wrist]])])
        if len(anchor):
            _grown_hull(canvas, anchor, hand_margin * min(forearm, 3 * margin))

    if shape == "box":
        rows, cols = np.flatnonzero(canvas.any(1)), np.flatnonzero(canvas.any(0))
        if len(rows):
            canvas[max(rows[0] - grow, 0):rows[-1] + grow + 1,
                   max(cols[0] - grow, 0):cols[-1] + grow + 1] = 1
    elif grow > 0 and canvas.any():
        outside = cv2.distanceTransform((canvas == 0).astype(np.uint8), cv2.DIST_L2,
                                        cv2.DIST_MASK_PRECISE)
        canvas = (outside <= grow).astype(np.uint8)
    return canvas[pad:pad + height, pad:pad + width].astype(bool)


def _extent(pts: np.ndarray) -> float:
    """Longer side of the points' box."""
    return float((pts.max(0) - pts.min(0)).max()) if len(pts) else 0.0


def _head_size(body: np.ndarray, ok: np.ndarray, size: float) -> float:
    """The head's size from the body: ear to ear, or HEAD_PER_NECK × neck to nose (the larger
    of those known), else HEAD_PER_BODY × body size."""
    known = []
    if ok[16] and ok[17]:
        known.append(np.linalg.norm(body[16, :2] - body[17, :2]))
    if ok[0] and ok[1]:
        known.append(HEAD_PER_NECK * np.linalg.norm(body[0, :2] - body[1, :2]))
    known = [k for k in known if k > 0]
    return float(max(known)) if known else HEAD_PER_BODY * size


def _grown_hull(canvas: np.ndarray, pts: np.ndarray, radius: float) -> None:
    """Fill the convex hull of ``pts [N, 2]`` grown by ``radius`` pixels into ``canvas``."""
    if len(pts) == 0:
        return
    ipts = np.round(pts).astype(np.int32)
    hull = cv2.convexHull(ipts.reshape(-1, 1, 2)).reshape(-1, 2)
    cv2.fillConvexPoly(canvas, hull, 1)
    r = int(round(min(radius, 4 * max(canvas.shape))))
    if r > 0:
        for x, y in hull:
            cv2.circle(canvas, (int(x), int(y)), r, 1, -1)
        if len(hull) > 1:
            cv2.polylines(canvas, [hull], True, 1, thickness=2 * r + 1)
