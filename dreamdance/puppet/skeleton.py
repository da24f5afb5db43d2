"""The puppet's parts, their bones in the COCO-18 body, and the skeleton that joins them.

Ten parts, each driven by one bone (its transform per frame, its column of skinning weights):

====  ============  ====================  ==========
id    part          bone (body joints)    parent
====  ============  ====================  ==========
0     torso         neck, shoulders, hips  -
1     head          neck -> nose -> crown  torso
2     r_upper_arm   2 -> 3                torso
3     r_forearm     3 -> 4 (hand beyond)  r_upper_arm
4     l_upper_arm   5 -> 6                torso
5     l_forearm     6 -> 7 (hand beyond)  l_upper_arm
6     r_thigh       8 -> 9                torso
7     r_shin        9 -> 10 (foot beyond) r_thigh
8     l_thigh       11 -> 12              torso
9     l_shin        12 -> 13 (foot beyond) l_thigh
====  ============  ====================  ==========

Two parts are *adjacent* when one is the other's parent. The mesh stays connected across an
edge between two triangles (see :mod:`dreamdance.puppet.mesh`) only when they are of the same
part, or of adjacent parts and the edge lies near their joint: within ``JOIN_REACH`` radii of
the child part from its proximal joint (the shoulder for an upper arm). That reach is
unlimited for the head (its contact with the torso is the neck) and for the thighs, which hang
inside the lower body's outline, and whatever it wears (a skirt, a coat) must stay whole around
them; an arm or a shin that merely lies against its parent is cut from it there.

A part is *rigged* when the rest pose has its joints (confidence >= ``CONFIDENT``) and its
parent is rigged; the torso needs the neck and a hip, the head the neck and the nose. Pixels of
a part that is not rigged go to the rigged part whose capsule reaches them, else the torso.

Each joint belongs to exactly one bone's handles, the bone that maps it exactly: a limb's
proximal and distal joints to the upper bone of the limb (shoulder and elbow to the upper arm,
hip and knee to the thigh), the wrist and ankle to the lower bone, the neck to the torso and
the nose to the head. Keypoints are in pixels, pixel ``(i, j)`` at ``(x, y) = (j, i)`` (the
pose files' convention, and OpenCV's).
"""

from __future__ import annotations

import numpy as np

PART_NAMES = ("torso", "head", "r_upper_arm", "r_forearm", "l_upper_arm", "l_forearm",
              "r_thigh", "r_shin", "l_thigh", "l_shin")
TORSO, HEAD = 0, 1
PARENT = (-1, 0, 0, 2, 0, 4, 0, 6, 0, 8)
BONE_JOINTS = (None, (1, 0), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (11, 12), (12, 13))
ARMS = (2, 3, 4, 5)
LEGS = (6, 7, 8, 9)
RIGHT = (2, 3, 6, 7)  # the figure's right side
LEFT = (4, 5, 8, 9)
NOSE, NECK, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP = 0, 1, 2, 5, 8, 11
HIP_JOINTS = (R_HIP, L_HIP)
TORSO_POLYGON = (NECK, R_SHOULDER, R_HIP, L_HIP, L_SHOULDER)  # in order around the torso
HEAD_POINTS = (NOSE, 14, 15, 16, 17)  # nose, eyes, ears

CONFIDENT = 0.3          # keypoints at or above this confidence are used
DISTAL_EXTENSION = {3: 0.3, 5: 0.3, 7: 0.3, 9: 0.3}  # hand / foot beyond the wrist / ankle,
#                          as a fraction of the bone's length
CHAIN_END_EXTENSION = 0.5  # the same for an upper bone whose lower bone is not rigged
JOIN_REACH = (np.inf, np.inf, 0.7, 0.7, 0.7, 0.7, np.inf, 0.7, np.inf, 0.7)  # per child part
#                          in its radii: how far from its joint it stays joined to its parent
CROWN_EXTENSION = 1.0    # the head's axis runs on from the nose to the crown by this fraction
#                          of the neck-to-nose length


def adjacency() -> np.ndarray:
    """Whether parts may stay connected: equal or parent and child.  [B, B] bool"""
    n = len(PART_NAMES)
    adj = np.eye(n, dtype=bool)
    for child, parent in enumerate(PARENT):
        if parent >= 0:
            adj[child, parent] = adj[parent, child] = True
    return adj


def joined(part_a: np.ndarray, part_b: np.ndarray, points: np.ndarray, rest: np.ndarray,
           radii: np.ndarray) -> np.ndarray:
    """Whether the mesh stays connected between triangles of these parts at these points.

    Args:
        part_a: the part on one side of each edge. [E] int64
        part_b: the part on the other side. [E] int64
        points: where (the edges' midpoints). [E, 2]
        rest: the rest body pose. [18, 3]
        radii: the parts' radii, from :func:`dreamdance.puppet.labels.part_radii`. [B]

    Returns:
        [E] bool
    """
    parent = np.asarray(PARENT)
    child = np.where(parent[part_a] == part_b, part_a, part_b)               # [E]
    joint = np.array([BONE_JOINTS[p][0] if BONE_JOINTS[p] else NECK for p in range(len(PARENT))])
    near = np.linalg.norm(points - rest[joint[child], :2], axis=1) <= \
        np.asarray(JOIN_REACH)[child] * radii[child]
    return (part_a == part_b) | (adjacency()[part_a, part_b] & near)


def pivots(rest: np.ndarray) -> np.ndarray:
    """Each part's pivot: its proximal joint, the neck for torso and head (and where the
    joint is not confident).  [18, 3] -> [B, 2]"""
    ok = confident(rest)
    joints = [BONE_JOINTS[p][0] if p > HEAD and ok[BONE_JOINTS[p][0]] else NECK
              for p in range(len(PART_NAMES))]
    return rest[joints, :2].astype(np.float64)


def confident(body: np.ndarray) -> np.ndarray:
    """Which keypoints are confident.  [18, 3] -> [18] bool"""
    return body[:, 2] >= CONFIDENT


def rigged_parts(rest: np.ndarray) -> np.ndarray:
    """Which parts the rest pose can rig (see the module).  [18, 3] -> [B] bool"""
    ok = confident(rest)
    rigged = np.zeros(len(PART_NAMES), dtype=bool)
    rigged[TORSO] = ok[NECK] and (ok[R_HIP] or ok[L_HIP])
    for part in range(1, len(PART_NAMES)):
        a, b = BONE_JOINTS[part]
        rigged[part] = rigged[PARENT[part]] and ok[a] and ok[b]
    return rigged


def check_rest_pose(rest: np.ndarray) -> None:
    """Raise ValueError unless ``rest`` is ``[18, 3]``, finite, with a neck and a hip."""
    if rest.shape != (18, 3):
        raise ValueError(f"rest_body must be COCO-18 keypoints [18, 3], got shape {rest.shape}")
    if not np.isfinite(rest).all():
        raise ValueError("rest_body has NaN or infinite values")
    ok = confident(rest)
    if not ok[NECK] or not (ok[R_HIP] or ok[L_HIP]):
        missing = [name for name, i in (("neck", NECK), ("right hip", R_HIP), ("left hip", L_HIP))
                   if not ok[i]]
        raise ValueError(f"rest_body cannot be rigged: it needs a confident neck and at least one "
                         f"hip (confidence >= {CONFIDENT}); missing: {', '.join(missing)}")


def bone_axis(rest: np.ndarray, part: int, rigged: np.ndarray) -> np.ndarray:
    """The segment along which a limb or the head lies, distal extension included.  [2, 2]

    Limbs run from the proximal to the distal joint, extended past it by
    ``DISTAL_EXTENSION`` (hands, feet) or ``CHAIN_END_EXTENSION`` when the lower bone is not
    rigged; the head runs from the nose to the crown (``CROWN_EXTENSION``).
    """
    a, b = (rest[j, :2].astype(np.float64) for j in BONE_JOINTS[part])
    if part == HEAD:
        return np.stack([b, b + CROWN_EXTENSION * (b - a)])
    child = part + 1 if part in (2, 4, 6, 8) else None
    ext = DISTAL_EXTENSION.get(part, 0.0)
    if child is not None and not rigged[child]:
        ext = CHAIN_END_EXTENSION
    return np.stack([a, b + ext * (b - a)])


def torso_outline(rest: np.ndarray) -> np.ndarray:
    """The confident ones of neck, right shoulder, right hip, left hip, left shoulder, in order
    around the torso.  [18, 3] -> [K, 2], K >= 2 for a rest pose that passed the check"""
    ok = confident(rest)
    return np.array([rest[j, :2] for j in TORSO_POLYGON if ok[j]], dtype=np.float64)


def torso_segments(rest: np.ndarray) -> list[np.ndarray]:
    """Segments along which the torso's handles lie: neck to hip centre and the outline's sides.
    list of [2, 2]"""
    ok = confident(rest)
    neck = rest[NECK, :2].astype(np.float64)
    hips = [rest[j, :2] for j in HIP_JOINTS if ok[j]]
    outline = torso_outline(rest)
    segments = [np.stack([neck, np.mean(hips, 0)])]
    segments += [np.stack([outline[i], outline[(i + 1) % len(outline)]])
                 for i in range(len(outline)) if len(outline) > 2 or i == 0]
    return segments


def sample_segment(segment: np.ndarray, spacing: float, start: bool = True) -> np.ndarray:
    """Points every ~``spacing`` along a segment, its end included (its start if ``start``).

    Args:
        segment: the end points. [2, 2]
        spacing: the largest gap between points, in pixels.
        start: include the first end point.

    Returns:
        The points. [N, 2]
    """
    length = float(np.linalg.norm(segment[1] - segment[0]))
    n = max(1, int(np.ceil(length / spacing)))
    t = np.linspace(0.0, 1.0, n + 1)[(0 if start else 1):]
    return segment[0] + t[:, None] * (segment[1] - segment[0])


def point_segment_distance(points: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Euclidean distance of each point to a segment.  [N, 2], [2, 2] -> [N]"""
    a, b = segment
    ab = b - a
    t = np.clip((points - a) @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)
