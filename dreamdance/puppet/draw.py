"""Drawing the posed puppet: which parts go in front, and the cut-out texture-mapped onto the
posed mesh, layer by layer, over a background.

**Draw order** (:func:`draw_order`), back to front: ``[limbs of the far side], [legs],
[torso], [head], [arms]``. The far side exists when the figure has turned sideways: its
shoulders are narrower than ``TURN_WIDTH`` of their rest width and its nose lies off their
midpoint by more than ``TURN_NOSE`` of the rest width. Then the figure faces the side its nose
points to, and the limbs of the side whose rest shoulder lay that way (for art drawn facing
the viewer, the figure's right when it faces image-left) are behind the body. Within a layer,
upper limbs come before lower ones, so a forearm is drawn over its upper arm.

**Drawing** (:func:`draw_frame`): per layer, the posed triangles are rasterised into a
triangle-id image (:func:`~dreamdance.puppet.mesh.rasterize`: the triangle holding each
pixel centre, a later triangle covering an earlier one), each covered pixel is taken back to
the rest frame by its triangle's inverse affine map, the premultiplied cut-out is sampled there
(``cv2.remap``, bilinear), and the layer is composited over what is below with the sampled
alpha (``over``), within the layer's bounding box. Edges are anti-aliased by
the cut-out's own alpha. In the rest pose every pixel maps to itself, so the frame is the
cut-out composited on the background.
"""

from __future__ import annotations

import cv2
import numpy as np

from dreamdance.puppet.mesh import rasterize
from dreamdance.puppet.rig import Rig
from dreamdance.puppet.skeleton import (
    ARMS,
    HEAD,
    L_SHOULDER,
    LEFT,
    LEGS,
    NOSE,
    R_SHOULDER,
    RIGHT,
    TORSO,
    confident,
)

TURN_WIDTH = 0.6   # shoulders narrower than this fraction of their rest width: turned sideways
TURN_NOSE = 0.1    # ... and the nose off their midpoint by this fraction of the rest width


def draw_order(rig: Rig, body: np.ndarray) -> list[list[int]]:
    """Layers of parts, back to front, for a frame's pose (see the module).

    Args:
        rig: the rig.
        body: the frame's COCO-18 keypoints. [18, 3]

    Returns:
        Lists of part ids, back first; every part appears once.
    """
    body = np.asarray(body, dtype=np.float64)
    behind: tuple[int, ...] = ()
    ok, ok_rest = confident(body), confident(rig.rest)
    shoulders = (R_SHOULDER, L_SHOULDER)
    if ok[[NOSE, *shoulders]].all() and ok_rest[list(shoulders)].all():
        rest_width = np.linalg.norm(rig.rest[R_SHOULDER, :2] - rig.rest[L_SHOULDER, :2])
        width = np.linalg.norm(body[R_SHOULDER, :2] - body[L_SHOULDER, :2])
        nose = body[NOSE, 0] - body[list(shoulders), 0].mean()
        right_side = rig.rest[R_SHOULDER, 0] - rig.rest[list(shoulders), 0].mean()
        if width < TURN_WIDTH * rest_width and abs(nose) > TURN_NOSE * rest_width:
            behind = RIGHT if np.sign(nose) == np.sign(right_side) else LEFT
    layers = [list(behind), [p for p in LEGS if p not in behind], [TORSO], [HEAD],
              [p for p in ARMS if p not in behind]]
    return [layer for layer in layers if layer]


def draw_frame(character: np.ndarray, rig: Rig, vertices: np.ndarray, layers: list[list[int]],
               background: np.ndarray) -> np.ndarray:
    """The cut-out drawn on the posed mesh over a background.

    Args:
        character: the cut-out the rig was built on, straight alpha in [0, 1]. [H, W, 4]
        rig: the rig.
        vertices: the posed vertices, from :func:`~dreamdance.puppet.deform.deform`. [V, 2]
        layers: from :func:`draw_order`.
        background: in [0, 1]. [H, W, 3]

    Returns:
        The frame. [H, W, 3] float32
    """
    h, w = background.shape[:2]
    assert character.shape == (h, w, 4), (character.shape, background.shape)
    assert vertices.shape == rig.vertices.shape, (vertices.shape, rig.vertices.shape)
    premultiplied = np.asarray(character, dtype=np.float32).copy()             # [H, W, 4]
    premultiplied[..., :3] *= premultiplied[..., 3:]
    inverse, drawable = inverse_maps(rig.vertices, vertices, rig.triangles)    # [F, 2, 3], [F]
    out = np.asarray(background, dtype=np.float32).copy()                      # [H, W, 3]
    for layer in layers:
        tris = np.concatenate([np.flatnonzero((rig.parts == p) & drawable) for p in layer])
        if len(tris) == 0:
            continue
        ids = rasterize(vertices, rig.triangles[tris], (h, w))                 # [H, W]
        ys, xs = np.nonzero(ids >= 0)                                          # [K]
        if len(ys) == 0:
            continue
        m = inverse[tris[ids[ys, xs]]]                                         # [K, 2, 3]
        y0, x0 = ys.min(), xs.min()                                            # the layer's box
        box = (slice(y0, ys.max() + 1), slice(x0, xs.max() + 1))
        map_xy = np.full((box[0].stop - y0, box[1].stop - x0, 2), -4.0, np.float32)  # alpha 0
        map_xy[ys - y0, xs - x0] = m[:, :, 0] * xs[:, None] + m[:, :, 1] * ys[:, None] + m[:, :, 2]
        sample = cv2.remap(premultiplied, map_xy, None, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)      # [h, w, 4]
        out[box] = sample[..., :3] + (1.0 - sample[..., 3:]) * out[box]
    return out


def inverse_maps(rest: np.ndarray, posed: np.ndarray,
                 triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle, the affine map from its posed to its rest position.

    Args:
        rest: rest vertices. [V, 2]
        posed: posed vertices. [V, 2]
        triangles: [F, 3] int64

    Returns:
        maps: ``[M | t]`` taking posed pixels to rest pixels. [F, 2, 3]
        drawable: False for triangles posed to (nearly) zero area. [F] bool
    """
    ones = np.ones((len(triangles), 1, 3))
    src = np.concatenate([posed[triangles].transpose(0, 2, 1), ones], 1)      # [F, 3, 3]
    dst = rest[triangles].transpose(0, 2, 1)                                   # [F, 2, 3]
    det = np.linalg.det(src)                                                   # 2 x area
    drawable = np.abs(det) > 1e-6
    src[~drawable] = np.eye(3)
    return dst @ np.linalg.inv(src), drawable

