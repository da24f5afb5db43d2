"""A picture of a rig to check it at a glance (:func:`rig_preview`).

Over the dimmed art: the skinning weights as a colour per part (``PART_COLOURS``, mixed by
weight and interpolated across each triangle), the mesh's edges in grey, the cuts (where
parts that only touch were separated) in white, and the bones with their joints.
"""

from __future__ import annotations

import cv2
import numpy as np

from dreamdance.puppet.mesh import rasterize
from dreamdance.puppet.rig import Rig
from dreamdance.puppet.skeleton import BONE_JOINTS, HEAD, bone_axis

PART_COLOURS = np.array([  # torso, head, arms (upper, fore) r then l, legs (thigh, shin) r then l
    (0.55, 0.55, 0.55), (1.0, 0.85, 0.2), (0.9, 0.2, 0.2), (1.0, 0.55, 0.5),
    (0.2, 0.4, 0.95), (0.55, 0.75, 1.0), (0.8, 0.3, 0.8), (0.95, 0.6, 0.95),
    (0.15, 0.7, 0.3), (0.55, 0.9, 0.55)])
DIM = 0.45        # the art's brightness under the overlay
WEIGHT_MIX = 0.55  # how much of the weight colour covers the art inside the mesh


def rig_preview(character: np.ndarray, rig: Rig) -> np.ndarray:
    """The rig drawn over its art (see the module).

    Args:
        character: the cut-out the rig was built on, straight alpha in [0, 1]. [H, W, 4]
        rig: the rig.

    Returns:
        The picture. [H, W, 3] uint8
    """
    h, w = rig.size
    assert character.shape == (h, w, 4), (character.shape, rig.size)
    rgb, alpha = character[..., :3], character[..., 3:]
    art = DIM * (alpha * rgb + (1.0 - alpha) * 0.5)                           # [H, W, 3]

    # weight colours, interpolated barycentrically across each rest triangle
    ids = rasterize(rig.vertices, rig.triangles, (h, w))                      # [H, W]
    ys, xs = np.nonzero(ids >= 0)
    tri = ids[ys, xs]
    ones = np.ones((len(rig.triangles), 1, 3))
    corners = np.concatenate([rig.vertices[rig.triangles].transpose(0, 2, 1), ones], 1)
    to_bary = np.linalg.pinv(corners)                                         # [F, 3, 3]
    bary = np.einsum("kij,kj->ki", to_bary[tri], np.stack([xs, ys, np.ones_like(xs)], 1))
    bary = np.clip(bary, 0.0, 1.0)
    vertex_colour = rig.weights @ PART_COLOURS                                # [V, 3]
    colour = np.einsum("kc,kcj->kj", bary / bary.sum(1, keepdims=True),
                       vertex_colour[rig.triangles[tri]])                     # [K, 3]
    art[ys, xs] = (1.0 - WEIGHT_MIX) * art[ys, xs] + WEIGHT_MIX * colour
    out = np.ascontiguousarray(np.clip(art * 255.0 + 0.5, 0, 255).astype(np.uint8))

    # mesh edges, cuts, bones and joints
    scale = 1 << 4
    edges = _edges(rig.triangles)
    for (a, b) in edges:
        _line(out, rig.vertices[a], rig.vertices[b], (70, 70, 70), scale)
    for (a, b) in _cut_edges(rig.triangles, rig.source):
        _line(out, rig.vertices[a], rig.vertices[b], (255, 255, 255), scale)
    for part in np.flatnonzero(rig.rigged[1:]) + 1:
        axis = bone_axis(rig.rest, part, rig.rigged) if part == HEAD else \
            rig.rest[list(BONE_JOINTS[part]), :2]
        colour = tuple(int(c) for c in PART_COLOURS[part] * 255)
        _line(out, axis[0], axis[1], (0, 0, 0), scale, 3)
        _line(out, axis[0], axis[1], colour, scale, 1)
    for v, part in zip(rig.handles, rig.handle_parts, strict=True):
        colour = tuple(int(c) for c in PART_COLOURS[part] * 255)
        centre = tuple(int(c) for c in np.round(rig.vertices[v] * scale))
        cv2.circle(out, centre, 2 * scale, colour, -1, cv2.LINE_AA, 4)
    return out


def _edges(triangles: np.ndarray) -> np.ndarray:
    """The mesh's distinct edges.  [F, 3] -> [E, 2]"""
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def _cut_edges(triangles: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Edges on the boundary of the cut mesh that were inside the mesh before the cut.
    -> [C, 2]"""
    e = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]],
                                triangles[:, [2, 0]]]), axis=1)
    _, inverse, count = np.unique(e, axis=0, return_inverse=True, return_counts=True)
    boundary = e[count[inverse.reshape(-1)] == 1]                             # [K, 2]
    src = np.sort(source[boundary], axis=1)
    _, inverse, count = np.unique(src, axis=0, return_inverse=True, return_counts=True)
    return boundary[count[inverse.reshape(-1)] == 2]


def _line(image: np.ndarray, a: np.ndarray, b: np.ndarray, colour: tuple, scale: int,
          thickness: int = 1) -> None:
    pa = tuple(int(c) for c in np.round(np.asarray(a) * scale))
    pb = tuple(int(c) for c in np.round(np.asarray(b) * scale))
    cv2.line(image, pa, pb, colour, thickness, cv2.LINE_AA, 4)
