"""Aligning (retargeting) the driving poses to the reference character.

Character art rarely has the driver's proportions or stands where the driver stands, so the
driving poses are mapped into the character's working frame (the frame of the art, at the
working resolution) before they are drawn. Three modes:

- ``none``: the coordinates are only rescaled from the driving frame size to the working
  frame size, ``(x · W / w, y · H / h)``.
- ``box``: one similarity for the whole sequence (uniform scale ``s`` and translation ``t``,
  no rotation), taken from the first driving frame: ``s`` = character box height / driving
  box height, and ``t`` makes the boxes' bottom-centres (the feet) coincide. Applied to every
  frame, so the driver's motion, travel included, is kept relative to the character's
  placement.
- ``limbs``: each bone is rescaled along the kinematic tree from the neck outwards to the
  character's length (factor = character bone length / first-frame driving bone length), the
  driving directions kept; face and hands follow the nose and wrists, scaled by the head and
  forearm factors. A bone unconfident in either pose falls back to the box scale ``s``. The
  neck travels as ``s`` times the driver's, and the whole skeleton is then translated so that
  the bottom-centre of its first-frame box lands on the character's.

**The box of a pose** (:func:`pose_box`, also :meth:`CharacterFrame.from_pose`): the bounding
box of the confident keypoints of all parts (body, face, hands), extended upwards to cover
the head above the nose by ``HEAD_ABOVE_NOSE`` and downwards to cover the feet below the
ankles by ``FEET_BELOW_ANKLES``, both fractions of the keypoints' vertical extent (the
"body height" before extension). The head is extended from the nose, or without a confident
nose from the highest confident eye or ear; the feet from the lower confident ankle. A part
that is not confident is not extended.

The "first driving frame" is the first frame in which the driver has a box of non-zero height
(usually frame 0). Keypoints with confidence 0 (absent) stay at ``(0, 0, 0)``; every other
keypoint is mapped, and confidences are kept.

A transition (:func:`add_transition`) eases from the character's own pose into the first
aligned frame, so the animation starts from the art as drawn.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from dreamdance.errors import InputError
from dreamdance.motion.poses import PARTS, PoseSequence
from dreamdance.motion.render import BODY_LIMBS

MODES = ("none", "box", "limbs")
HEAD_ABOVE_NOSE = 0.10    # crown above the nose, fraction of the keypoints' vertical extent
FEET_BELOW_ANKLES = 0.05  # soles below the ankles, same unit
NOSE, NECK, R_WRIST, L_WRIST, R_ANKLE, L_ANKLE = 0, 1, 4, 7, 10, 13
HEAD_POINTS = (14, 15, 16, 17)  # eyes and ears: the head's top without a nose
HEAD_BONES = ((0, 14), (14, 16), (0, 15), (15, 17))
HAND_ANCHORS = {"right_hand": (3, R_WRIST), "left_hand": (6, L_WRIST)}  # (elbow, wrist)

Box = tuple[float, float, float, float]


def pose_box(pose: dict[str, np.ndarray], threshold: float = 0.3) -> Box | None:
    """The box ``(x0, y0, x1, y1)`` of one person's pose, in its pixels (see the module's rule).

    Args:
        pose: ``{"body": [18, 3], "face": [68, 3], "left_hand": [21, 3], "right_hand":
            [21, 3]}`` (x, y, confidence); missing parts or ``None`` count as absent.
        threshold: keypoints with confidence below it are ignored.

    Returns:
        The box, or None when no keypoint is confident.
    """
    pts = [a[a[:, 2] >= threshold, :2] for a in (pose.get(p) for p in PARTS) if a is not None]
    pts = np.concatenate(pts) if pts else np.zeros((0, 2))
    if len(pts) == 0:
        return None
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    extent = y1 - y0
    body = pose.get("body")
    if body is not None:
        ok = body[:, 2] >= threshold
        if ok[NOSE]:
            y0 = min(y0, body[NOSE, 1] - HEAD_ABOVE_NOSE * extent)
        elif ok[list(HEAD_POINTS)].any():
            y0 = min(y0, body[list(HEAD_POINTS), 1][ok[list(HEAD_POINTS)]].min()
                     - HEAD_ABOVE_NOSE * extent)
        ankles = [R_ANKLE, L_ANKLE]
        if ok[ankles].any():
            y1 = max(y1, body[ankles, 1][ok[ankles]].max() + FEET_BELOW_ANKLES * extent)
    return float(x0), float(y0), float(x1), float(y1)


def pose_frame(poses: PoseSequence, t: int, person: int | None = None) -> dict[str, np.ndarray]:
    """One person's keypoints in frame ``t`` as ``{part: [K, 3]}`` (copies); the driver unless
    ``person``."""
    p = poses.driver if person is None else person
    return {part: getattr(poses, part)[t, p].copy() for part in PARTS}


@dataclass
class CharacterFrame:
    """Where the character stands in the working frame.

    Args:
        box: ``(x0, y0, x1, y1)`` in pixels of the working frame; ``y1`` is where its feet are.
        width, height: the working frame.
        pose: the character's own keypoints in the working frame, ``{part: [K, 3]}`` in the
            pose-file layout (missing parts become absent), or None when unknown. Needed by
            ``mode="limbs"`` and by transitions.
    """

    box: Box
    width: int
    height: int
    pose: dict[str, np.ndarray] | None = None

    def __post_init__(self):
        box = tuple(float(v) for v in self.box)
        if len(box) != 4 or not np.isfinite(box).all() or box[2] < box[0] or box[3] <= box[1]:
            raise ValueError(f"box must be (x0, y0, x1, y1) with x1 >= x0 and y1 > y0, got "
                             f"{self.box}")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"bad frame size {self.width}x{self.height}")
        self.box = box
        if self.pose is not None:
            pose = {}
            for part, k in PARTS.items():
                a = self.pose.get(part)
                a = np.zeros((k, 3), np.float32) if a is None else np.asarray(a, np.float32)
                if a.shape != (k, 3):
                    raise ValueError(f"pose[{part!r}]: expected shape {(k, 3)}, got {a.shape}")
                pose[part] = a
            self.pose = pose

    @classmethod
    def from_pose(cls, pose: dict[str, np.ndarray] | PoseSequence, width: int | None = None,
                  height: int | None = None, threshold: float = 0.3,
                  name: str = "character pose") -> CharacterFrame:
        """Place the character by its own pose (box by :func:`pose_box`).

        Args:
            pose: ``{part: [K, 3]}`` in pixels of the working frame, or a
                :class:`PoseSequence` (its driver in frame 0; width and height default to
                the sequence's).
            width, height: the working frame (required for a dict).

        Raises:
            InputError: (naming ``name``) no confident keypoint, or a box of zero height.
        """
        if isinstance(pose, PoseSequence):
            width = pose.width if width is None else width
            height = pose.height if height is None else height
            if pose.num_people == 0 or len(pose) == 0:
                raise InputError(name, "no person in the pose")
            pose = pose_frame(pose, 0)
        if width is None or height is None:
            raise ValueError("width and height are required with a pose dict")
        box = pose_box(pose, threshold)
        if box is None or box[3] <= box[1]:
            raise InputError(name, "no confident keypoints spanning any height to place the "
                                   "character by")
        return cls(box, int(width), int(height), pose)

    @classmethod
    def from_mask(cls, mask: np.ndarray, pose: dict[str, np.ndarray] | None = None,
                  name: str = "character mask") -> CharacterFrame:
        """Place the character by its mask: the tight box of the pixels ``>= 0.5``.

        Pixel ``(i, j)`` covers ``[j, j + 1] × [i, i + 1]``, so a mask whose pixels span
        rows ``i0..i1`` and columns ``j0..j1`` gives the box ``(j0, i0, j1 + 1, i1 + 1)``.

        Args:
            mask: ``[H, W]`` bool or float in [0, 1]; its size is the working frame.
            pose: optional, as in :class:`CharacterFrame`.

        Raises:
            InputError: (naming ``name``) the mask is empty.
        """
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be [H, W], got shape {mask.shape}")
        on = mask >= 0.5
        rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
        if len(rows) == 0:
            raise InputError(name, "is empty (no pixel >= 0.5): nothing to place the motion on")
        box = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
        return cls(box, mask.shape[1], mask.shape[0], pose)


def box_similarity(source: Box, target: Box) -> tuple[float, np.ndarray]:
    """The similarity ``p -> s·p + t`` that maps box ``source`` onto box ``target``: ``s`` =
    ratio of heights, ``t`` makes the bottom-centres coincide.

    Returns:
        ``(s, t [2])``.
    """
    s = (target[3] - target[1]) / (source[3] - source[1])
    return s, _foot(target) - s * _foot(source)


def _foot(box: Box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, box[3]])


def align_poses(driving: PoseSequence, character: CharacterFrame, mode: str = "box",
                transition: int = 0, threshold: float = 0.3, keep_length: bool = False,
                name: str = "poses") -> PoseSequence:
    """Map the driving poses into the character's working frame.

    Args:
        driving: the driving poses ``[T, P, K, 3]`` in pixels of ``driving.width × height``.
        character: the character's placement (and own pose, for ``limbs`` and transitions).
        mode: ``"none"``, ``"box"`` or ``"limbs"`` (see the module).
        transition: prepend this many frames easing from the character's own pose into the
            first aligned frame (:func:`add_transition`); 0 for none.
        threshold: keypoints below this confidence do not define boxes or bones.
        keep_length: with a transition, drop the last ``transition`` frames so that the
            result has ``T`` frames; otherwise it has ``T + transition``.
        name: the driving poses as the user knows them, for error messages.

    Returns:
        :class:`PoseSequence` at ``character.width × character.height``, same fps and driver.
        ``box`` maps every person with the driver's similarity; ``limbs`` retargets the
        driver and moves the others with the box scale and the driver's placement.

    Raises:
        InputError: unknown mode; ``limbs`` or a transition without the character's pose; a
            negative transition; the driver has no confident keypoints in any frame.
    """
    if mode not in MODES:
        raise InputError(f"motion.align={mode}", f"must be one of {', '.join(MODES)}")
    _check_transition(transition, len(driving), keep_length, character)
    if mode == "limbs" and character.pose is None:
        raise InputError("motion.align=limbs", "needs the character's own pose (keypoints of "
                                               "the art); use motion.align=box without one")
    if mode == "none":
        scale = np.array([character.width / driving.width, character.height / driving.height])
        parts = {part: map_keypoints(getattr(driving, part), scale, np.zeros(2)) for part in PARTS}
    else:
        ref = _reference_frame(driving, threshold, name)
        s, t = box_similarity(pose_box(pose_frame(driving, ref), threshold), character.box)
        if mode == "box":
            parts = {part: map_keypoints(getattr(driving, part), s, t) for part in PARTS}
        else:
            parts = _retarget(driving, character, s, ref, threshold)
    aligned = PoseSequence(**parts, width=character.width, height=character.height,
                           fps=driving.fps, driver=driving.driver)
    if transition:
        aligned = add_transition(aligned, character.pose, transition, threshold, keep_length)
    return aligned


def _check_transition(n, frames: int, keep_length: bool, character: CharacterFrame) -> None:
    key = f"motion.transition={n}"
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise InputError(key, "must be a whole number of frames >= 0")
    if n and character.pose is None:
        raise InputError(key, "needs the character's own pose (keypoints of the art) to start "
                              "from; set motion.transition=0 without one")
    if n and keep_length and n >= frames:
        raise InputError(key, f"must be fewer than the {frames} driving frames when the frame "
                              "count is kept")


def _reference_frame(driving: PoseSequence, threshold: float, name: str) -> int:
    if driving.num_people:
        for t in range(len(driving)):
            box = pose_box(pose_frame(driving, t), threshold)
            if box is not None and box[3] > box[1]:
                return t
    raise InputError(name, "the driving person has no confident keypoints spanning any height "
                           "in any frame: nothing to align")


def map_keypoints(a: np.ndarray, scale, shift) -> np.ndarray:
    """``p -> scale·p + shift`` on keypoints present (confidence > 0); absent ones stay 0.
    [..., K, 3] -> [..., K, 3]"""
    out = np.zeros_like(a)
    present = a[..., 2:] > 0
    out[..., :2] = np.where(present, a[..., :2] * scale + shift, 0)
    out[..., 2] = a[..., 2]
    return out


def _length(pose: np.ndarray, a: int, b: int, threshold: float) -> float | None:
    if pose[a, 2] < threshold or pose[b, 2] < threshold:
        return None
    return float(np.linalg.norm(pose[b, :2] - pose[a, :2]))


def _bone_ratios(char: np.ndarray, drv: np.ndarray, s: float, threshold: float):
    """Per-bone factors character / driving (``s`` where either is missing), and the head
    factor (summed eye and ear bones, else neck–nose, else ``s``)."""
    ratios, real = {}, {}
    for a, b in BODY_LIMBS:
        lc, ld = _length(char, a, b, threshold), _length(drv, a, b, threshold)
        ok = lc is not None and ld is not None and ld > 1e-6
        ratios[a, b] = lc / ld if ok else s
        real[a, b] = (lc, ld) if ok else None
    pairs = [real[bone] for bone in HEAD_BONES if real[bone] is not None]
    if pairs:
        head = sum(c for c, _ in pairs) / sum(d for _, d in pairs)
    else:
        head = ratios[NECK, NOSE]
    return ratios, head


def _retarget(driving: PoseSequence, character: CharacterFrame, s: float, ref: int,
              threshold: float) -> dict[str, np.ndarray]:
    """``limbs`` mode: every person mapped by ``s`` first, the driver then rebuilt bone by bone;
    finally all translated so the driver's reference box stands on the character's feet."""
    d = driving.driver
    parts = {part: map_keypoints(getattr(driving, part), s, np.zeros(2)) for part in PARTS}
    ratios, head = _bone_ratios(character.pose["body"], driving.body[ref, d], s, threshold)

    body = driving.body[:, d]                        # (T, 18, 3)
    ok = body[..., 2] >= threshold                   # (T, 18)
    new = parts["body"][:, d, :, :2].copy()          # (T, 18, 2), s·p where no parent
    for a, b in BODY_LIMBS:                          # parents come before their children
        both = (ok[:, a] & ok[:, b])[:, None]
        bone = new[:, a] + ratios[a, b] * (body[:, b, :2] - body[:, a, :2])
        new[:, b] = np.where(both, bone, new[:, b])
    parts["body"][:, d, :, :2] = np.where(body[..., 2:] > 0, new, 0)

    followers = {"face": (NOSE, head)}
    followers.update({hand: (wrist, ratios[elbow, wrist])
                      for hand, (elbow, wrist) in HAND_ANCHORS.items()})
    for part, (anchor, r) in followers.items():
        src = getattr(driving, part)[:, d]           # (T, K, 3)
        moved = new[:, anchor, None] + r * (src[..., :2] - body[:, anchor, None, :2])
        use = ok[:, anchor, None, None] & (src[..., 2:] > 0)
        parts[part][:, d, :, :2] = np.where(use, moved, parts[part][:, d, :, :2])

    first = {part: parts[part][ref, d] for part in PARTS}
    shift = _foot(character.box) - _foot(pose_box(first, threshold))
    return {part: map_keypoints(a, 1.0, shift) for part, a in parts.items()}


def ease_in_out(u: np.ndarray) -> np.ndarray:
    """Smoothstep ``3u² − 2u³``: 0 → 1 on [0, 1] with zero velocity at both ends."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def add_transition(poses: PoseSequence, start: dict[str, np.ndarray], n: int,
                   threshold: float = 0.3, keep_length: bool = False) -> PoseSequence:
    """Prepend ``n`` frames that ease from ``start`` (the character's own pose) into frame 0.

    Transition frame ``k`` (``0 <= k < n``) is at ``e = ease_in_out(k / n)`` along the way,
    so frame 0 is ``start`` and the easing ends, with zero velocity, on the first pose of
    ``poses`` (output frame ``n``). Per keypoint: confidences are interpolated linearly in
    ``e``; positions too when the keypoint is confident (``>= threshold``) in both poses,
    otherwise the position of the more confident of the two is held while its confidence
    fades in or out. ``start`` is the driver; other people fade in from absent.

    Args:
        poses: ``[T, P, K, 3]`` in the working frame.
        start: ``{part: [K, 3]}`` in the same frame.
        n: number of frames to prepend, >= 0.
        keep_length: drop the last ``n`` frames so the result keeps ``T`` frames (the caller
            then loses the driving motion's last ``n`` frames); otherwise ``T + n`` frames.
    """
    if n == 0:
        return poses
    if poses.num_people == 0:
        raise ValueError("no person to transition into")
    e = ease_in_out(np.arange(n) / n)[:, None, None, None]   # (n, 1, 1, 1)
    out = {}
    for part in PARTS:
        arr = getattr(poses, part)                            # (T, P, K, 3)
        a = np.zeros(arr.shape[1:], np.float32)               # (P, K, 3)
        if start.get(part) is not None:
            a[poses.driver] = start[part]
        b = arr[0]
        both = ((a[..., 2] >= threshold) & (b[..., 2] >= threshold))[..., None]
        held = np.where((a[..., 2:] >= b[..., 2:]), a[..., :2], b[..., :2])
        xy = np.where(both, (1 - e) * a[..., :2] + e * b[..., :2], held)
        conf = (1 - e) * a[..., 2:] + e * b[..., 2:]
        frames = np.concatenate([np.where(conf > 0, xy, 0), conf], -1).astype(np.float32)
        out[part] = np.concatenate([frames, arr])
        if keep_length:
            out[part] = out[part][:len(arr)]
    return PoseSequence(**out, width=poses.width, height=poses.height, fps=poses.fps,
                        driver=poses.driver)
