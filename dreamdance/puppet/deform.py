"""Posing the puppet: one affine transform per bone for a frame's keypoints, and skinning of the
mesh with them.

Transforms take rest pixels to the frame's pixels, ``p' = M p + t`` stored as ``[M | t]``
(``[2, 3]``). Per bone, parents first:

- **limb** ``A -> B`` (shoulder to elbow, ...): the affine map that sends ``A`` to ``A'`` and
  ``B`` to ``B'`` exactly, rotating the bone and stretching it along its axis only, its width
  unchanged: ``M = (L'/L) u' u^T + n' n^T`` with ``u``, ``u'`` the unit bone directions,
  ``n``, ``n'`` their normals and ``L``, ``L'`` the lengths; ``t = A' - M A``.
- **torso**: the least-squares similarity (rotation, uniform scale, translation) of the
  confident ones of neck, shoulders and hips, pinned at the neck (the neck maps exactly, the
  rotation and scale fit the others), unpinned without a confident neck.
- **head**: the least-squares similarity of the face landmarks when at least
  ``FACE_LANDMARKS`` are confident in both the rest and the frame; else of nose, eyes and
  ears, pinned at the neck.

A joint that is not confident in the frame: a limb whose distal joint is missing keeps its
rest orientation relative to its parent (it takes the parent's transform); a missing
proximal joint is put where the parent's transform takes it. A torso or head without enough
points takes, respectively, the identity and the torso's transform. Parts that are not rigged
take their parent's transform.

**Skinning** (:func:`skin`): linear blend skinning, ``v' = sum_b w_vb (M_b v + t_b)``,
collapses a joint bent far (half an upper arm raised overhead and half a torso average to a
nearly singular matrix, and triangles there flip). So each bone's map is split, about its
pivot ``c_b`` (the proximal joint; the neck for torso and head), into a stretch and a rigid
motion, ``M_b = R_b S_b`` (``R_b`` the rotation of the polar decomposition): the stretches are
blended linearly, ``q = v + sum_b w_vb (S_b - I)(v - c_b)``, and the rigid motions as dual
quaternions (Kavan et al. 2007; in the plane, a rotation by ``theta`` and a translation
``tau`` are ``r = e^{i theta / 2}``, ``d = tau conj(r) / 2`` in complex numbers, blended with
the signs that keep every ``r`` on the side of the heaviest bone's, normalised by ``|r|``),
``v' = r^2 q + 2 d r``. A vertex that one bone moves, as the handles are, moves exactly by
that bone's map; rotations blended about a common joint stay rotations about it.

**Untangling** (:func:`untangle_mesh`, in :func:`deform`): a joint bent very far can still
turn over a few small triangles right next to it; those and their neighbours are relaxed
towards their neighbours' mean. :func:`deform_points` poses points by the skinning alone.
"""

from __future__ import annotations

import igl
import numpy as np

from dreamdance.puppet import mesh
from dreamdance.puppet.rig import Rig
from dreamdance.puppet.skeleton import (
    BONE_JOINTS,
    HEAD,
    HEAD_POINTS,
    NECK,
    PARENT,
    PART_NAMES,
    TORSO,
    TORSO_POLYGON,
    confident,
    pivots,
)

FACE_LANDMARKS = 10  # confident face landmarks needed (in rest and frame) to pose the head
UNTANGLE_ROUNDS = 20  # at most this many relaxation rounds for turned-over triangles
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def frame_transforms(rig: Rig, body: np.ndarray, face: np.ndarray | None = None) -> np.ndarray:
    """Per-bone affine transforms from the rest pose to a frame's keypoints.

    Args:
        rig: from :func:`~dreamdance.puppet.rig.build_rig`.
        body: the frame's COCO-18 keypoints (x, y, confidence) in the rig's pixels. [18, 3]
        face: the frame's face landmarks, or None. [68, 3]

    Returns:
        ``[M | t]`` per part, indexed as ``PART_NAMES``. [B, 2, 3]
    """
    body = np.asarray(body, dtype=np.float64)
    if body.shape != (18, 3):
        raise ValueError(f"body must be COCO-18 keypoints [18, 3], got shape {body.shape}")
    rest = rig.rest
    both = confident(rest) & confident(body)                                # [18]
    transforms = np.empty((len(PART_NAMES), 2, 3))
    torso = [j for j in TORSO_POLYGON if both[j] and j != NECK]
    transforms[TORSO] = fit_similarity(rest[torso, :2], body[torso, :2],
                                       rest[NECK, :2] if both[NECK] else None,
                                       body[NECK, :2] if both[NECK] else None)
    transforms[HEAD] = _head(rig, body, face, both, transforms[TORSO])
    for part in range(2, len(PART_NAMES)):                                  # parents first
        parent = transforms[PARENT[part]]
        a, b = BONE_JOINTS[part]
        if not (rig.rigged[part] and confident(body)[b]):
            transforms[part] = parent
            continue
        start = body[a, :2] if confident(body)[a] else apply(parent, rest[None, a, :2])[0]
        transforms[part] = bone_transform(rest[a, :2], rest[b, :2], start, body[b, :2], parent)
    return transforms


def bone_transform(a: np.ndarray, b: np.ndarray, a2: np.ndarray, b2: np.ndarray,
                   fallback: np.ndarray = IDENTITY) -> np.ndarray:
    """The affine map sending ``a -> a2`` and ``b -> b2`` that only rotates the bone and
    stretches it along its axis.

    Args:
        a, b: rest joints. [2] each
        a2, b2: their targets. [2] each
        fallback: whose linear part is kept if the target bone has no length. [2, 3]

    Returns:
        ``[M | t]``. [2, 3]
    """
    a, b, a2, b2 = (np.asarray(p, dtype=np.float64) for p in (a, b, a2, b2))
    length, length2 = np.linalg.norm(b - a), np.linalg.norm(b2 - a2)
    if length < 1e-9 or length2 < 1e-9 * max(length, 1.0):
        linear = fallback[:, :2]
    else:
        u, u2 = (b - a) / length, (b2 - a2) / length2
        n, n2 = np.array([-u[1], u[0]]), np.array([-u2[1], u2[0]])
        linear = (length2 / length) * np.outer(u2, u) + np.outer(n2, n)     # [2, 2]
    return np.concatenate([linear, (a2 - linear @ a)[:, None]], 1)


def fit_similarity(src: np.ndarray, dst: np.ndarray, pin: np.ndarray | None = None,
                   pin2: np.ndarray | None = None) -> np.ndarray:
    """Least-squares similarity ``src -> dst``, optionally pinned (``pin -> pin2`` exactly).

    Unpinned, the centroids are matched and the rotation-scale fits the rest (Umeyama without
    reflection); pinned, the rotation-scale about ``pin`` fits ``src - pin -> dst - pin2``.
    With nothing to fit the rotation-scale is the identity (a translation, or the identity
    without points).

    Args:
        src: [N, 2]
        dst: [N, 2]
        pin: optional extra point that maps exactly. [2]
        pin2: its target. [2]

    Returns:
        ``[M | t]``. [2, 3]
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if pin is not None:
        centre, centre2 = np.asarray(pin, np.float64), np.asarray(pin2, np.float64)
    elif len(src):
        centre, centre2 = src.mean(0), dst.mean(0)
    else:
        return IDENTITY.copy()
    u = (src[:, 0] - centre[0]) + 1j * (src[:, 1] - centre[1])             # [N]
    v = (dst[:, 0] - centre2[0]) + 1j * (dst[:, 1] - centre2[1])
    norm = float(np.sum(np.abs(u) ** 2))
    z = complex(np.sum(np.conj(u) * v) / norm) if norm > 1e-12 else 1.0 + 0.0j
    linear = np.array([[z.real, -z.imag], [z.imag, z.real]])
    return np.concatenate([linear, (centre2 - linear @ centre)[:, None]], 1)


def apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``M p + t`` for each point.  [2, 3], [N, 2] -> [N, 2]"""
    return points @ transform[:, :2].T + transform[:, 2]


def deform(rig: Rig, transforms: np.ndarray, untangle: bool = True) -> np.ndarray:
    """The mesh's vertices posed by the bones' transforms (:func:`skin`), with the triangles
    that a joint bent very far turns over relaxed (:func:`untangle_mesh`).

    Args:
        rig: the rig.
        transforms: from :func:`frame_transforms`. [B, 2, 3]
        untangle: relax turned-over triangles.

    Returns:
        The posed vertices. [V, 2]
    """
    posed = skin(rig.vertices, rig.weights, transforms, pivots(rig.rest))
    return untangle_mesh(rig, posed) if untangle else posed


def untangle_mesh(rig: Rig, posed: np.ndarray) -> np.ndarray:
    """Relax the triangles the skinning turned over.

    Even blended as dual quaternions, a rotation of ~150° across a joint (an arm raised
    overhead, an elbow folded shut) can fold a few small triangles right next to the joint, where
    the weights change over a small angle around it. Up to ``UNTANGLE_ROUNDS`` times, each
    vertex of a turned-over triangle and of its neighbours, but the handles, moves to the mean
    of its neighbours.

    Args:
        rig: the rig.
        posed: skinned vertices. [V, 2]

    Returns:
        The vertices, untangled where it could. [V, 2]
    """
    rest_area = mesh.signed_areas(rig.vertices, rig.triangles)              # [F]
    flipped = mesh.signed_areas(posed, rig.triangles) * rest_area <= 0      # [F]
    if not flipped.any():
        return posed
    posed = posed.copy()
    adjacency = igl.adjacency_matrix(rig.triangles).tocsr().astype(np.float64)  # [V, V]
    degree = np.asarray(adjacency.sum(1)).ravel()
    fixed = np.zeros(len(posed), dtype=bool)
    fixed[rig.handles] = True
    for _ in range(UNTANGLE_ROUNDS):
        moving = np.zeros(len(posed), dtype=bool)
        moving[rig.triangles[flipped].ravel()] = True
        moving |= (adjacency @ moving.astype(np.float64)) > 0               # and their 1-ring
        moving &= ~fixed
        rows = np.flatnonzero(moving)
        posed[rows] = (adjacency[rows] @ posed) / degree[rows, None]
        flipped = mesh.signed_areas(posed, rig.triangles) * rest_area <= 0
        if not flipped.any():
            break
    return posed


def deform_points(rig: Rig, transforms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pose arbitrary rest points: their weights are interpolated barycentrically in the rest
    triangle that holds them (for a point outside the mesh, at its nearest point on the mesh).

    Args:
        rig: the rig.
        transforms: from :func:`frame_transforms`. [B, 2, 3]
        points: rest positions in pixels. [N, 2]

    Returns:
        The posed points. [N, 2]
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    tri, bary = mesh.locate(points, rig.vertices, rig.triangles)            # [N], [N, 3]
    weights = np.einsum("nk,nkb->nb", bary, rig.weights[rig.triangles[tri]])  # [N, B]
    return skin(points, weights, transforms, pivots(rig.rest))


def skin(points: np.ndarray, weights: np.ndarray, transforms: np.ndarray,
         pivots: np.ndarray) -> np.ndarray:
    """Blend the bones' maps at each point (see the module): stretches linearly, rigid motions
    as dual quaternions.

    Args:
        points: rest positions. [N, 2]
        weights: per point and bone, rows sum to 1. [N, B]
        transforms: ``[M | t]`` per bone. [B, 2, 3]
        pivots: the point each bone's stretch keeps fixed. [B, 2]

    Returns:
        The posed points. [N, 2]
    """
    assert transforms.shape == (weights.shape[1], 2, 3), transforms.shape
    m, t = transforms[:, :, :2], transforms[:, :, 2]                        # [B, 2, 2], [B, 2]
    theta = np.arctan2(m[:, 1, 0] - m[:, 0, 1], m[:, 0, 0] + m[:, 1, 1])    # [B] polar rotation
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # [B, 2, 2]
    stretch = rot.transpose(0, 2, 1) @ m - np.eye(2)                        # [B, 2, 2] S - I
    # stretches, blended linearly about the pivots
    offsets = np.einsum("bij,nbj->nbi", stretch, points[:, None, :] - pivots[None])  # [N, B, 2]
    q = points + np.einsum("nb,nbi->ni", weights, offsets)                  # [N, 2]
    # rigid parts x -> R x + tau, tau = M c + t - R c, as dual complex numbers
    tau = np.einsum("bij,bj->bi", m - rot, pivots) + t                      # [B, 2]
    r = np.exp(0.5j * theta)                                                # [B]
    d = 0.5 * (tau[:, 0] + 1j * tau[:, 1]) * np.conj(r)                     # [B]
    heaviest = np.argmax(weights, axis=1)                                   # [N]
    sign = np.where((r[None] * np.conj(r[heaviest])[:, None]).real < 0, -1.0, 1.0)  # [N, B]
    r_blend = (weights * sign) @ r                                          # [N]
    d_blend = (weights * sign) @ d
    norm = np.abs(r_blend)
    r_blend, d_blend = r_blend / norm, d_blend / norm
    x = r_blend ** 2 * (q[:, 0] + 1j * q[:, 1]) + 2.0 * d_blend * r_blend   # [N]
    return np.stack([x.real, x.imag], 1)


def _head(rig: Rig, body: np.ndarray, face: np.ndarray | None, both: np.ndarray,
          torso: np.ndarray) -> np.ndarray:
    """The head's transform (see the module).  -> [2, 3]"""
    if rig.rest_face is not None and face is not None:
        face = np.asarray(face, dtype=np.float64)
        common = confident(rig.rest_face) & confident(face)
        if common.sum() >= FACE_LANDMARKS:
            return fit_similarity(rig.rest_face[common, :2], face[common, :2])
    points = [j for j in HEAD_POINTS if both[j]]
    if not points or not rig.rigged[HEAD]:
        return torso
    if both[NECK]:
        return fit_similarity(rig.rest[points, :2], body[points, :2], rig.rest[NECK, :2],
                              body[NECK, :2])
    if len(points) >= 2:
        return fit_similarity(rig.rest[points, :2], body[points, :2])
    return torso
