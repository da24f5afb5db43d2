"""Rigging a character cut-out: mesh, parts, cut and skinning weights, done once per character.

:func:`build_rig` in numbered steps:

1. **Parts of the pixels**: capsules around the rest pose's bones, snapped to the art's
   strokes (:func:`~dreamdance.puppet.labels.label_pixels`).
2. **Handles**: points along each rigged bone every ``BONE_SPACING`` pixels: the joints
   first, each for the bone that owns it (see :mod:`dreamdance.puppet.skeleton`), then
   samples along the limbs, the head's axis and the torso's spine and outline, kept where
   they lie on their own part's pixels at least ``HANDLE_INSIDE`` pixels inside the outline,
   and for a parent at least ``JOINT_CLEARANCE`` child radii from the child's joint.
3. **Mesh**: the figure's outline and the boundaries between the parts' pixels triangulated,
   the handles inserted as vertices (:mod:`dreamdance.puppet.mesh`).
4. **Parts of the triangles**: the most common part of the pixels each covers.
5. **Cut** between parts that are not adjacent in the skeleton, and between adjacent ones away
   from their joint (:func:`~dreamdance.puppet.skeleton.joined`).
6. **Weights**: bounded biharmonic weights (Jacobson et al. 2011, ``igl.bbw``) on each
   connected piece of the cut mesh, a handle having weight 1 for its bone and 0 for the
   others; rows normalised to sum to 1. Besides the bones' handles, every vertex of one part
   farther than ``JOINT_ZONE`` median limb radii from where it meets another part is fixed to
   its part's bone: parts move rigidly, and bend only near their joints (and, for the torso
   and thighs, joined wherever they meet, near that boundary). A piece with handles of one
   bone only is that bone's; a piece with no handle (a sliver cut off by the cut, a speck of
   the alpha) is all its triangles' majority part. The cut makes weights spread from one part
   to another only through the joints.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import igl
import numpy as np
import scipy.sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from dreamdance.puppet import mesh
from dreamdance.puppet.labels import label_pixels, label_points, part_radii
from dreamdance.puppet.mesh import rasterize
from dreamdance.puppet.skeleton import (
    BONE_JOINTS,
    HEAD,
    PARENT,
    PART_NAMES,
    TORSO,
    adjacency,
    bone_axis,
    check_rest_pose,
    confident,
    joined,
    rigged_parts,
    sample_segment,
    torso_segments,
)

BONE_SPACING = 8.0      # pixels between handle points along a bone
HANDLE_GAP = 2.0        # pixels: a handle point this close to an earlier one is dropped
HANDLE_INSIDE = 2.0     # pixels: handle points lie at least this far inside the outline
JOINT_CLEARANCE = 1.2   # a parent has no handle within this many child radii of the child's
#                         joint, so that the weights blend smoothly across the joint
JOINT_ZONE = 0.5        # median limb radii: the weights blend within this of where parts meet
TRIANGLES_PER_FIGURE = 150  # the default max_area is the figure's area over this (Triangle's
#                             quality refinement and the handles bring the mesh to ~1-2k)
JOINT_OWNER = {0: 1, 1: 0, 2: 2, 3: 2, 4: 3, 5: 4, 6: 4, 7: 5, 8: 6, 9: 6, 10: 7, 11: 8,
               12: 8, 13: 9}  # body joint -> the part whose handle it is


@dataclass(frozen=True, eq=False)
class Rig:
    """A rigged character: its rest mesh in pixels of the working frame, and how it bends.

    Args:
        vertices: rest positions (cut: a vertex where parts only touch is repeated). [V, 2]
        triangles: counter-clockwise as Triangle makes them. [F, 3] int64
        parts: the part of each triangle (index into ``PART_NAMES``). [F] int64
        weights: skinning weights over the parts' bones, rows sum to 1. [V, B] float64
        rest: the rest body pose (x, y, confidence). [18, 3]
        rest_face: the rest face landmarks, or None. [68, 3]
        rigged: which parts have a bone. [B] bool
        radii: each part's capsule radius, pixels (torso: its padding ``r_T``). [B]
        handles: the handle vertices. [H] int64
        handle_parts: the bone of each handle. [H] int64
        source: the uncut vertex each vertex copies (equal for copies made by the cut). [V]
        size: ``(height, width)`` of the working frame.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    parts: np.ndarray
    weights: np.ndarray
    rest: np.ndarray
    rest_face: np.ndarray | None
    rigged: np.ndarray
    radii: np.ndarray
    handles: np.ndarray
    handle_parts: np.ndarray
    source: np.ndarray
    size: tuple[int, int]


def build_rig(character: np.ndarray, rest_body: np.ndarray, rest_face: np.ndarray | None = None,
              *, max_area: float | None = None) -> Rig:
    """Rig a character cut-out on its own pose (see the module for the steps).

    Args:
        character: the cut-out, straight alpha, in [0, 1]. [H, W, 4]
        rest_body: the character's COCO-18 pose in the same pixels. [18, 3]
        rest_face: its 68 face landmarks, or None. [68, 3]
        max_area: the largest triangle area in pixels²; None: the figure's area over
            ``TRIANGLES_PER_FIGURE``.

    Raises:
        ValueError: a character that is not RGBA, an empty alpha, a rest pose without a
            neck and a hip, or a bad ``max_area``.
    """
    alpha = check_character(character)
    rest = np.asarray(rest_body, dtype=np.float64)
    check_rest_pose(rest)
    if rest_face is not None:
        rest_face = np.asarray(rest_face, dtype=np.float64)
        if rest_face.shape != (68, 3):
            raise ValueError(f"rest_face must be [68, 3] landmarks, got shape {rest_face.shape}")
    rigged = rigged_parts(rest)
    radii = part_radii(alpha > 0.5, rest, rigged)

    # 1. parts of the pixels, 2. handles, 3. mesh
    inside = mesh.covered(alpha) > 0                                        # [H, W]
    pixel_parts = label_pixels(character, inside, rest, radii, rigged)      # [H, W]
    *outline, holes = mesh.outline(alpha)
    depth = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    points, edges = mesh.merge(outline, mesh.boundaries(pixel_parts, depth >= HANDLE_INSIDE))
    if max_area is None:
        max_area = max(np.count_nonzero(alpha > mesh.ALPHA_MIN) / TRIANGLES_PER_FIGURE, 2.0)
    if not np.isfinite(max_area) or max_area <= 0:
        raise ValueError(f"max_area must be a positive number of pixels², got {max_area}")
    handle_xy, handle_parts = bone_handles(depth, pixel_parts, rest, rigged, radii)
    vertices, triangles, index = mesh.triangulate(points, edges, holes, handle_xy, max_area)
    kept = index >= 0
    handles, handle_parts = index[kept], handle_parts[kept]

    # 4. parts of the triangles, 5. cut
    ids = rasterize(vertices, triangles, alpha.shape)                       # [H, W]
    parts = triangle_parts(vertices, triangles, ids, pixel_parts, rest, radii, rigged)  # [F]
    adjacent = adjacency()

    def stay_joined(t1, t2, u, v):
        return joined(parts[t1], parts[t2], (vertices[u] + vertices[v]) / 2, rest, radii)

    triangles, source = mesh.cut(triangles, stay_joined)
    vertices = vertices[source]
    handles, handle_parts = _handle_copies(handles, handle_parts, triangles, parts, source,
                                           adjacent)

    # 6. weights
    limbs = radii[2:][rigged[2:]]
    zone = JOINT_ZONE * (np.median(limbs) if len(limbs) else radii[TORSO])
    weights = skinning_weights(vertices, triangles, parts, handles, handle_parts, zone)
    return Rig(vertices=vertices, triangles=triangles, parts=parts, weights=weights, rest=rest,
               rest_face=rest_face, rigged=rigged, radii=radii, handles=handles,
               handle_parts=handle_parts, source=source, size=alpha.shape)


def check_character(character: np.ndarray) -> np.ndarray:
    """Raise ValueError unless ``character`` is RGBA ``[H, W, 4]`` with some alpha; its alpha.
    [H, W, 4] -> [H, W] float64"""
    character = np.asarray(character)
    if character.ndim != 3 or character.shape[2] != 4:
        raise ValueError(f"character must be an RGBA cut-out [H, W, 4], got shape "
                         f"{character.shape}")
    alpha = character[..., 3].astype(np.float64)
    if not (alpha > mesh.ALPHA_MIN).any():
        raise ValueError(f"character alpha is empty (no pixel above {mesh.ALPHA_MIN}): there is "
                         "no figure to rig")
    return alpha


def bone_handles(depth: np.ndarray, pixel_parts: np.ndarray, rest: np.ndarray,
                 rigged: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Handle points of the rigged bones, joints first (step 2 of :func:`build_rig`).

    Args:
        depth: each pixel's distance to the outside of the mesh's outline. [H, W]
        pixel_parts: each pixel's part, from step 1. [H, W]
        rest: the rest body pose. [18, 3]
        rigged: which parts are rigged. [B] bool
        radii: the parts' radii. [B]

    Returns:
        points: [N, 2]
        parts: the bone of each point. [N] int64
    """
    ok = confident(rest)
    candidates, owners, is_joint = [], [], []
    for joint, part in JOINT_OWNER.items():
        if ok[joint] and rigged[part]:
            candidates.append(rest[None, joint, :2])
            owners.append(part)
            is_joint.append(True)
    for part in np.flatnonzero(rigged):
        if part == TORSO:
            segments = torso_segments(rest)
        elif part == HEAD:
            a, b = (rest[j, :2] for j in BONE_JOINTS[HEAD])
            segments = [np.stack([a, b]), bone_axis(rest, HEAD, rigged)]
        else:
            segments = [bone_axis(rest, part, rigged)]
        for segment in segments:
            candidates.append(sample_segment(segment, BONE_SPACING)[1:-1])
            owners.append(part)
            is_joint.append(False)
    counts = [len(c) for c in candidates]
    points = np.concatenate(candidates)                                     # [N, 2]
    parts = np.repeat(owners, counts).astype(np.int64)                      # [N]
    joint = np.repeat(is_joint, counts)                                     # [N]

    h, w = depth.shape
    ij = np.round(points).astype(np.int64)
    in_frame = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
    inside = np.zeros(len(points), dtype=bool)
    inside[in_frame] = depth[ij[in_frame, 1], ij[in_frame, 0]] >= HANDLE_INSIDE
    own = joint.copy()
    own[in_frame] |= pixel_parts[ij[in_frame, 1], ij[in_frame, 0]] == parts[in_frame]
    for child in np.flatnonzero(rigged[2:]) + 2:  # limbs: leave room for the joints to bend
        pivot = rest[BONE_JOINTS[child][0], :2]
        near = np.linalg.norm(points - pivot, axis=1) < JOINT_CLEARANCE * radii[child]
        own &= ~(near & ~joint & (parts == PARENT[child]))
    keep = []
    for i in np.flatnonzero(inside & own):
        if all(np.linalg.norm(points[i] - points[j]) >= HANDLE_GAP for j in keep):
            keep.append(i)
    return points[keep], parts[keep]


def skinning_weights(vertices: np.ndarray, triangles: np.ndarray, parts: np.ndarray,
                     handles: np.ndarray, handle_parts: np.ndarray, zone: float) -> np.ndarray:
    """Bounded biharmonic weights per connected piece of the mesh (step 6 of :func:`build_rig`).

    Args:
        vertices: [V, 2]
        triangles: [F, 3] int64
        parts: the part of each triangle. [F] int64
        handles: handle vertices. [H] int64
        handle_parts: their bones. [H] int64
        zone: pixels; vertices of one part at least this far from any vertex where two parts
            meet (joined) are fixed to their part's bone.

    Returns:
        Weights over the bones, rows sum to 1. [V, B]
    """
    n_parts = len(PART_NAMES)
    lowest = np.full(len(vertices), n_parts, dtype=np.int64)                # [V] parts around
    highest = np.full(len(vertices), -1, dtype=np.int64)
    np.minimum.at(lowest, triangles.ravel(), np.repeat(parts, 3))
    np.maximum.at(highest, triangles.ravel(), np.repeat(parts, 3))
    meeting = np.flatnonzero(lowest != highest)                             # joined parts meet
    far = np.ones(len(vertices), dtype=bool)
    if len(meeting):
        far = cKDTree(vertices[meeting]).query(vertices)[0] >= zone
    interior = np.flatnonzero(far & (lowest == highest))
    interior = interior[~np.isin(interior, handles)]
    handles = np.concatenate([handles, interior])
    handle_parts = np.concatenate([handle_parts, lowest[interior]])
    weights = np.zeros((len(vertices), n_parts))
    piece = _vertex_pieces(len(vertices), triangles)                        # [V]
    tri_piece = piece[triangles[:, 0]]                                      # [F]
    for p in range(piece.max() + 1):
        verts = np.flatnonzero(piece == p)
        mine = piece[handles] == p
        bones = np.unique(handle_parts[mine])
        if len(bones) <= 1:
            part = bones[0] if len(bones) else np.bincount(parts[tri_piece == p]).argmax()
            weights[verts, part] = 1.0
            continue
        local = np.full(len(vertices), -1, dtype=np.int64)
        local[verts] = np.arange(len(verts))
        tris = local[triangles[tri_piece == p]]
        b = local[handles[mine]]
        bc = (handle_parts[mine, None] == bones[None]).astype(np.float64)   # [h, k] one-hot
        w = igl.bbw(np.ascontiguousarray(vertices[verts]), tris, b, bc, partition_unity=False)
        w = np.clip(w, 0.0, 1.0)
        weights[np.ix_(verts, bones)] = w / np.maximum(w.sum(1, keepdims=True), 1e-12)
    return weights


def triangle_parts(vertices: np.ndarray, triangles: np.ndarray, ids: np.ndarray,
                   pixel_parts: np.ndarray, rest: np.ndarray, radii: np.ndarray,
                   rigged: np.ndarray) -> np.ndarray:
    """Each triangle's part: the most common part of the pixels it covers (the part of its
    centroid for a triangle that covers no pixel centre).

    Args:
        vertices: [V, 2]
        triangles: [F, 3] int64
        ids: the triangle covering each pixel, -1 for none (``draw.rasterize``). [H, W]
        pixel_parts: from :func:`~dreamdance.puppet.labels.label_pixels`. [H, W]
        rest, radii, rigged: as for :func:`~dreamdance.puppet.labels.label_points`.

    Returns:
        [F] int64
    """
    n_parts = len(PART_NAMES)
    centroids = vertices[triangles].mean(1)                                 # [F, 2]
    parts = label_points(centroids, rest, radii, rigged)                    # [F]
    ok = (ids >= 0) & (pixel_parts >= 0)
    counts = np.bincount(ids[ok].astype(np.int64) * n_parts + pixel_parts[ok],
                         minlength=len(triangles) * n_parts).reshape(-1, n_parts)  # [F, B]
    has = counts.sum(1) > 0
    parts[has] = counts[has].argmax(1)
    return parts


def _handle_copies(handles: np.ndarray, handle_parts: np.ndarray, triangles: np.ndarray,
                   parts: np.ndarray, source: np.ndarray,
                   adjacent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """After the cut, the copies of each handle vertex that touch its bone's part or a part
    adjacent to it.  -> handles [H'], handle_parts [H']"""
    touches = np.zeros((len(source), len(PART_NAMES)), dtype=bool)         # [V', B]
    touches[triangles.ravel(), np.repeat(parts, 3)] = True
    is_handle = np.full(source.max() + 1, -1, dtype=np.int64)
    is_handle[handles] = handle_parts
    bone = is_handle[source]                                                # [V'] or -1
    copies = np.flatnonzero(bone >= 0)
    ok = (touches[copies] & adjacent[bone[copies]]).any(1)
    return copies[ok], bone[copies[ok]]


def _vertex_pieces(n: int, triangles: np.ndarray) -> np.ndarray:
    """Connected piece of each vertex.  -> [V] int"""
    a = triangles.ravel()
    b = triangles[:, [1, 2, 0]].ravel()
    graph = scipy.sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]

