"""The keypoint layouts pose models predict, and their conversion to our parts.

Both pose backends (:mod:`~dreamdance.motion.dwpose`, :mod:`~dreamdance.motion.vitpose`) end
here: a model predicts COCO-17 (body) or COCO-WholeBody-133 keypoints (body 0-16, feet 17-22,
face 23-90, left hand 91-111, right hand 112-132, in mmpose's order), and
:func:`keypoints_to_parts` makes our ``body`` (OpenPose COCO-18), ``face`` (68, iBUG 300-W
order), ``left_hand`` and ``right_hand`` (21 each, OpenPose hand order) of them.

**The neck.** COCO has no neck; OpenPose's COCO-18 has one (its index 1). It is the midpoint of
the shoulders, present only when both shoulders are, as DWPose and mmpose's "openpose" skeleton
style define it (and as OpenPose-style trainers label it from COCO). DWPose writes the neck's
score as 1 when both shoulders score above its drawing threshold (0.3) and 0 otherwise; we keep
a confidence instead, the lower of the two shoulders', so that at *any* threshold a consumer
applies (drawing, smoothing, alignment: 0.3 by default) the neck is kept exactly when both
shoulders are, and at 0.3 it is DWPose's neck.
"""

from __future__ import annotations

import numpy as np

from dreamdance.motion.poses import PARTS

#: For each OpenPose COCO-18 body point, its index among the COCO-17 keypoints plus the neck
#: appended as 17. COCO: 0 nose, 1 l_eye, 2 r_eye, 3 l_ear, 4 r_ear, 5 l_shoulder,
#: 6 r_shoulder, 7 l_elbow, 8 r_elbow, 9 l_wrist, 10 r_wrist, 11 l_hip, 12 r_hip, 13 l_knee,
#: 14 r_knee, 15 l_ankle, 16 r_ankle (see :data:`~dreamdance.motion.poses.BODY_NAMES` for ours).
OPENPOSE_FROM_COCO = (0, 17, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
SHOULDERS = (5, 6)  # COCO l_shoulder, r_shoulder
#: COCO-WholeBody index ranges; the feet have no place in our parts and are dropped.
WHOLEBODY = {"body": slice(0, 17), "feet": slice(17, 23), "face": slice(23, 91),
             "left_hand": slice(91, 112), "right_hand": slice(112, 133)}
#: The layouts a pose model may predict: COCO (17) and COCO-WholeBody (133).
NUM_COCO, NUM_WHOLEBODY = 17, 133
NUM_KEYPOINTS = (NUM_COCO, NUM_WHOLEBODY)


def coco_to_openpose(kp: np.ndarray) -> np.ndarray:
    """COCO-17 keypoints (mmpose order) -> our OpenPose COCO-18 body.

    The neck is the midpoint of the shoulders with the lower of their confidences; it is absent
    (all zeros) unless both shoulders are present (confidence > 0).

    Args:
        kp: ``(x, y, confidence)``. [..., 17, 3]

    Returns:
        [..., 18, 3] float32
    """
    kp = np.asarray(kp, dtype=np.float32)
    assert kp.shape[-2:] == (17, 3), kp.shape
    shoulders = kp[..., list(SHOULDERS), :]  # [..., 2, 3]
    conf = shoulders[..., 2].min(axis=-1)  # [...]
    present = (conf > 0)[..., None]
    neck = np.concatenate([shoulders[..., :2].mean(axis=-2), conf[..., None]], axis=-1)
    neck = np.where(present, neck, 0.0).astype(np.float32)  # [..., 3]
    full = np.concatenate([kp, neck[..., None, :]], axis=-2)  # [..., 18, 3]
    return full[..., OPENPOSE_FROM_COCO, :]


def keypoints_to_parts(kp: np.ndarray) -> dict[str, np.ndarray]:
    """A pose model's keypoints -> our parts (``body`` 18, ``face`` 68, ``left_hand`` and
    ``right_hand`` 21 each).

    A keypoint whose confidence is not positive is absent: all zeros, wherever the model put it.
    17 keypoints (COCO) fill the body only; face and hands are zeros (absent). 133 keypoints
    (COCO-WholeBody) fill all four parts: its 68 face points follow the iBUG 300-W order of our
    face, and its hands (person's left, then right) the OpenPose hand order; its 6 foot points
    are dropped.

    Args:
        kp: ``(x, y, confidence)``. [..., K, 3] with K 17 or 133

    Returns:
        ``{part: [..., k, 3] float32}``
    """
    kp = np.asarray(kp, dtype=np.float32)
    k = kp.shape[-2]
    if k not in NUM_KEYPOINTS:
        raise ValueError(f"expected 17 (COCO) or 133 (COCO-WholeBody) keypoints, got {k}")
    kp = np.where(kp[..., 2:] > 0, kp, np.float32(0))  # [..., K, 3]
    lead = kp.shape[:-2]
    parts = {part: np.zeros((*lead, n, 3), np.float32) for part, n in PARTS.items()}
    parts["body"] = coco_to_openpose(kp[..., WHOLEBODY["body"], :])
    if k == NUM_WHOLEBODY:
        for part in ("face", "left_hand", "right_hand"):
            parts[part] = np.ascontiguousarray(kp[..., WHOLEBODY[part], :])
    return parts
