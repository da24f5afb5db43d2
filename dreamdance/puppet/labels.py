"""Which part each pixel of the figure belongs to: capsules around the bones, a polygon for
the torso, then the boundaries moved onto the art's strokes.

**Capsules.** Each limb ``b`` is a capsule around its axis
(:func:`~dreamdance.puppet.skeleton.bone_axis`: proximal to distal joint, the hand or foot
beyond) of radius ``r_b``: the ``RADIUS_QUANTILE`` quantile, over points along the bone, of
the mask's distance to the background (``cv2.distanceTransform``), capped at
``MAX_RADIUS_FRACTION`` of the bone's length. A low quantile rather than the median, because
that distance overestimates a limb's radius wherever the limb is merged with something wider
(a thigh inside a skirt); ``LIMB_REACH`` makes up for where the limb really is wider. The head
is a capsule from the nose to the crown whose radius is the largest such distance along it
(the head's inscribed disc), capped at ``MAX_HEAD_RADIUS`` neck-to-nose lengths. The torso is
the polygon neck, shoulders, hips, with a "radius" ``r_T = TORSO_PADDING`` × the spine (neck
to hip centre) for how far the figure reaches beyond that polygon.

A point's *score* for a part is its distance to the part's axis over the part's radius (for
the torso: its distance to the polygon, 0 inside, over ``r_T``). The point's part is
(:func:`label_points`)

1. the limb or head of lowest score if that score is <= 1: a point inside a limb's own
   capsule is that limb's, even inside the torso polygon (an arm lying across the chest);
2. otherwise the part of lowest score among the torso and the limbs that reach the point
   (score <= ``LIMB_REACH``): a torso pixel just beside an arm that hangs against it stays
   torso;
3. the torso when no limb reaches the point.

Ties go to the torso (rule 2) or the earlier part in ``PART_NAMES``. Parts that are not rigged
claim nothing, so their pixels fall to the capsule of the rigged bone above them (extended by
``CHAIN_END_EXTENSION``) or to the torso.

**Snapping to the art's strokes** (:func:`label_pixels`). Capsules are only near the drawn
shapes: a sleeve drawn wider on the body's side than its keypoints say would leave a strip of
sleeve on the torso. So, after the rule above, the pixels within ``SNAP`` × the median limb
radius of another part's pixels are unlabelled (but those within ``CORE`` radii of a limb's
bone) and each goes to the labelled pixel nearest to it along paths inside the figure, a step
between neighbouring pixels costing ``1 + EDGE_COST × relief`` (Dijkstra from all labelled
pixels at once, ``scipy.sparse.csgraph.dijkstra``): a boundary between two parts settles on
the strongest edge near the capsules' boundary, the art's own outline where there is one, and
midway across flat colour. The relief (in [0, 1]) is the art's morphological gradient
(``EDGE_RADIUS``) less its median over ``TEXTURE_WINDOW`` pixels, so that a pattern (stripes
or checks on a shirt) is flat and only edges stronger than their surroundings count; it is
computed on the straight colours, the transparent pixels taking their nearest opaque pixel's
colour, so that the figure's own edge is no edge. Transparent pixels take the part of the
nearest labelled pixel.

The snapping moves only boundaries with the torso: a pixel goes from the torso to a limb whose
score there is at most ``SNAP_REACH`` (so that across flat colour, a skirt say, two limbs
cannot cross the torso between them and meet), and from a limb to the torso; a pixel of one
limb reached first from another keeps its part if the two are adjacent, else goes to the torso
(a skirt's edge that a hand's capsule reached but that lies nearer a thigh).
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.ndimage
import scipy.sparse
from scipy.sparse.csgraph import dijkstra

from dreamdance.puppet.mesh import ALPHA_MIN
from dreamdance.puppet.skeleton import (
    BONE_JOINTS,
    HEAD,
    HIP_JOINTS,
    NECK,
    PART_NAMES,
    TORSO,
    adjacency,
    bone_axis,
    confident,
    point_segment_distance,
    sample_segment,
    torso_outline,
)

RADIUS_QUANTILE = 0.25      # a limb's radius: this quantile of the distance along its bone
MAX_RADIUS_FRACTION = 0.35  # a limb's radius is at most this fraction of its bone's length
MAX_HEAD_RADIUS = 1.5       # the head's radius is at most this many neck-to-nose lengths
MIN_RADIUS = 1.5            # pixels: the smallest radius of any part
TORSO_PADDING = 0.15        # r_T, as a fraction of the spine (neck to hip centre)
LIMB_REACH = 1.6            # a limb claims points up to this many radii from its axis
RADIUS_SPACING = 2.0        # pixels between the points where the distance is sampled
SNAP = 1.0                  # half-width of the band where boundaries snap, in median limb radii
CORE = 0.5                  # a limb's pixels this many radii from its axis are never re-labelled
SNAP_REACH = 2.0            # snapping gives a pixel to a limb up to this many radii away
EDGE_RADIUS = 2             # pixels: the relief is the art's morphological gradient this wide
TEXTURE_WINDOW = 21         # pixels: less its median over this window
EDGE_COST = 10.0            # extra cost, in pixels, of a step over the strongest edge


def part_radii(inside: np.ndarray, rest: np.ndarray, rigged: np.ndarray) -> np.ndarray:
    """Radius of each part's capsule (the torso's ``r_T``), in pixels; 0 where not rigged.

    Args:
        inside: the figure's mask (alpha > 0.5). [H, W] bool
        rest: the rest body pose (x, y, confidence). [18, 3]
        rigged: which parts are rigged. [B] bool

    Returns:
        The radii. [B]
    """
    dist = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    radii = np.zeros(len(PART_NAMES))
    hips = [rest[j, :2] for j in HIP_JOINTS if confident(rest)[j]]
    spine = float(np.linalg.norm(np.mean(hips, 0) - rest[NECK, :2]))
    radii[TORSO] = max(TORSO_PADDING * spine, MIN_RADIUS)
    for part in range(1, len(PART_NAMES)):
        if not rigged[part]:
            continue
        a, b = (rest[j, :2].astype(np.float64) for j in BONE_JOINTS[part])
        length = float(np.linalg.norm(b - a))
        if part == HEAD:
            values = _sample(dist, sample_segment(bone_axis(rest, part, rigged), RADIUS_SPACING))
            radius = min(values.max(), MAX_HEAD_RADIUS * length)
        else:
            values = _sample(dist, sample_segment(np.stack([a, b]), RADIUS_SPACING))
            values = values[values > 0]
            radius = min(np.quantile(values, RADIUS_QUANTILE) if len(values) else 0.0,
                         MAX_RADIUS_FRACTION * length)
        radii[part] = max(radius, MIN_RADIUS)
    return radii


def part_scores(points: np.ndarray, rest: np.ndarray, radii: np.ndarray,
                rigged: np.ndarray) -> np.ndarray:
    """Distance of each point to each part's axis (torso: polygon) over its radius.

    Args:
        points: where, in pixels. [N, 2]
        rest: the rest body pose. [18, 3]
        radii: from :func:`part_radii`. [B]
        rigged: which parts are rigged. [B] bool

    Returns:
        The scores, ``inf`` for parts that are not rigged. [N, B]
    """
    points = np.asarray(points, dtype=np.float64)
    scores = np.full((len(points), len(PART_NAMES)), np.inf)
    scores[:, TORSO] = _polygon_distance(points, torso_outline(rest)) / radii[TORSO]
    for part in range(1, len(PART_NAMES)):
        if rigged[part]:
            axis = bone_axis(rest, part, rigged)
            scores[:, part] = point_segment_distance(points, axis) / radii[part]
    return scores


def label_points(points: np.ndarray, rest: np.ndarray, radii: np.ndarray,
                 rigged: np.ndarray) -> np.ndarray:
    """The part of each point, by the module's rule; arguments as :func:`part_scores`.

    Returns:
        Part ids (indices into ``PART_NAMES``). [N] int64
    """
    return _rule(part_scores(points, rest, radii, rigged))


def label_pixels(character: np.ndarray, figure: np.ndarray, rest: np.ndarray, radii: np.ndarray,
                 rigged: np.ndarray) -> np.ndarray:
    """The part of each pixel of the figure, snapped to the art's strokes (see the module).

    Args:
        character: the cut-out, straight alpha. [H, W, 4]
        figure: the pixels to label. [H, W] bool
        rest: the rest body pose. [18, 3]
        radii: from :func:`part_radii`. [B]
        rigged: which parts are rigged. [B] bool

    Returns:
        Part ids, -1 outside ``figure``. [H, W] int64
    """
    n_parts = len(PART_NAMES)
    ys, xs = np.nonzero(figure)
    pixels = np.stack([xs, ys], 1).astype(np.float64)                      # [N, 2]
    scores = part_scores(pixels, rest, radii, rigged)                       # [N, B]
    rule = np.full(figure.shape, -1, dtype=np.int64)
    rule[ys, xs] = _rule(scores)
    limbs = radii[2:][rigged[2:]]
    band = SNAP * (np.median(limbs) if len(limbs) else radii[TORSO])
    alpha = character[..., 3]
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(np.ceil(band)) + 1,) * 2)
    near = sum(cv2.dilate((rule == part).astype(np.uint8), disc)
               for part in np.flatnonzero(rigged))                          # [H, W] parts near
    markers = np.where(figure & (near <= 1), rule + 1, 0).astype(np.int32)  # far from others
    for part in np.flatnonzero(rigged[1:]) + 1:                             # limbs' cores
        core = np.zeros(figure.shape, dtype=bool)
        bone = rest[list(BONE_JOINTS[part]), :2].astype(np.float64)         # no extension
        core[ys, xs] = point_segment_distance(pixels, bone) <= CORE * radii[part]
        markers[core & (rule == part)] = part + 1
    flooded = _nearest_marker(markers, figure & (alpha > ALPHA_MIN), _relief(character))
    flooded = flooded[ys, xs] - 1                                           # [N] -1: none

    old = rule[ys, xs]                                                      # [N]
    part = np.clip(flooded, 0, n_parts - 1)
    reach = scores[np.arange(len(ys)), part]                                # [N]
    torso_move = ((old == TORSO) & (reach <= SNAP_REACH)) | (part == TORSO)
    other_limb = np.where(adjacency()[old, part], old, TORSO)
    new = np.where((part == old) | torso_move, part, np.where(old == TORSO, TORSO, other_limb))
    decided = np.zeros(figure.shape, dtype=bool)
    decided[ys, xs] = flooded >= 0
    rule[ys, xs] = np.where(flooded >= 0, new, old)
    if decided.any():  # transparent pixels: as the nearest decided pixel
        _, (iy, ix) = scipy.ndimage.distance_transform_edt(~decided, return_indices=True)
        rule[ys, xs] = rule[iy[ys, xs], ix[ys, xs]]
    return rule


def _nearest_marker(markers: np.ndarray, nodes: np.ndarray, relief: np.ndarray) -> np.ndarray:
    """The marker nearest to each pixel along paths through ``nodes``, a step between
    4-neighbours costing ``1 + EDGE_COST * max(relief) / 255`` (Dijkstra from all markers).

    Args:
        markers: 0 unmarked, > 0 a label. [H, W] int
        nodes: the pixels paths may go through. [H, W] bool
        relief: [H, W] uint8

    Returns:
        The nearest marker's label, 0 for pixels no marker reaches or outside ``nodes``.
        [H, W] int
    """
    index = np.full(nodes.shape, -1, dtype=np.int64)
    index[nodes] = np.arange(np.count_nonzero(nodes))
    cost = relief.astype(np.float64) / 255.0
    rows, cols, weights = [], [], []
    for a, b, ca, cb in ((index[:, :-1], index[:, 1:], cost[:, :-1], cost[:, 1:]),
                         (index[:-1], index[1:], cost[:-1], cost[1:])):
        ok = (a >= 0) & (b >= 0)
        rows.append(a[ok])
        cols.append(b[ok])
        weights.append(1.0 + EDGE_COST * np.maximum(ca[ok], cb[ok]))
    n = int(index.max()) + 1
    graph = scipy.sparse.csr_matrix((np.concatenate(weights),
                                     (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    seeds = index[(markers > 0) & nodes]
    out = np.zeros(markers.shape, dtype=markers.dtype)
    if len(seeds) == 0:
        return out
    _, _, source = dijkstra(graph, directed=False, indices=seeds, min_only=True,
                            return_predecessors=True)
    label = np.zeros(n, dtype=markers.dtype)
    reached = source >= 0
    label[reached] = markers[nodes][source[reached]]
    out[nodes] = label
    return out


def _relief(character: np.ndarray) -> np.ndarray:
    """The snapping's relief (see the module).  [H, W, 4] -> [H, W] uint8"""
    opaque = character[..., 3] >= 0.5
    colour = character[..., :3]
    if opaque.any() and not opaque.all():
        _, (iy, ix) = scipy.ndimage.distance_transform_edt(~opaque, return_indices=True)
        colour = colour[iy, ix]                                             # [H, W, 3]
    colour = np.round(np.clip(colour, 0.0, 1.0) * 255).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * EDGE_RADIUS + 1,) * 2)
    edges = cv2.morphologyEx(colour, cv2.MORPH_GRADIENT, kernel).max(2)     # [H, W]
    texture = cv2.medianBlur(edges, TEXTURE_WINDOW)
    return cv2.subtract(edges, texture)


def _rule(scores: np.ndarray) -> np.ndarray:
    """The module's rule on part scores.  [N, B] -> [N] int64"""
    limbs = scores.copy()
    limbs[:, TORSO] = np.inf
    best = np.argmin(limbs, axis=1)                            # [N] the nearest limb or head
    best_score = limbs[np.arange(len(scores)), best]           # [N]
    own = best_score <= 1.0                                    # rule 1
    reaches = (best_score <= LIMB_REACH) & (best_score < scores[:, TORSO])  # rule 2
    return np.where(own | reaches, best, TORSO).astype(np.int64)


def _polygon_distance(points: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Distance of each point to a polygon, 0 inside (to a segment for two vertices).
    [N, 2], [K, 2] -> [N]"""
    if len(outline) == 2:
        return point_segment_distance(points, outline)
    contour = outline.astype(np.float32).reshape(-1, 1, 2)
    signed = np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), True)
                       for x, y in points])
    return np.maximum(-signed, 0.0)


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Values of ``image`` [H, W] at the pixels nearest to ``points`` [N, 2] (0 outside)."""
    h, w = image.shape
    ij = np.round(points).astype(np.int64)
    ok = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
    out = np.zeros(len(points))
    out[ok] = image[ij[ok, 1], ij[ok, 0]]
    return out

