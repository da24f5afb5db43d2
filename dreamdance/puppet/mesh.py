"""The puppet's mesh: the figure's outline triangulated, then cut between parts that only touch.

**Outline** (:func:`outline`): the outer contours of ``alpha > ALPHA_MIN``, dilated by
``DILATE`` pixels so that the mesh covers every pixel the art draws (including its
anti-aliased rim), simplified by Ramer-Douglas-Peucker (``cv2.approxPolyDP``, tolerance
``SIMPLIFY`` pixels, less than the dilation). Every component of the alpha is kept, and so
are its holes (the gap between an arm and the body where a hand touches the hip), except
those the dilation closes or that hold no point ``HOLE_DEPTH`` pixels deep, which are filled
(their triangles are transparent).

**Part boundaries** (:func:`boundaries`): the lines between the parts' pixel regions, traced
once each and simplified, are added to the outline as constraints, so that no triangle
straddles two parts and a cut separates exactly the parts' pixels.

**Triangulation** (:func:`triangulate`): Shewchuk's Triangle through libigl, a conforming
quality mesh (``q``: angles >= ``MIN_ANGLE`` degrees, ``a``: areas <= ``max_area``) of the
outline and the part boundaries, with given inner points (the bones' handles) inserted as
vertices.

**Cut** (:func:`cut`): around each vertex, its triangles are grouped into clusters: two
triangles that share an edge at the vertex join when the caller says they stay joined across
that edge (:func:`dreamdance.puppet.skeleton.joined`: same part, or parent and child near
their joint); a vertex is duplicated once per cluster. An arm that lies against the torso is
then a separate piece of mesh there, and stays connected to the torso only around the
shoulder.

Coordinates are pixels with pixel ``(i, j)`` at ``(x, y) = (j, i)``.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import igl
import igl.triangle
import numpy as np
import scipy.sparse
from scipy.sparse.csgraph import connected_components

ALPHA_MIN = 0.01  # pixels with more alpha than this are part of the figure
DILATE = 2        # pixels the outline is pushed out
SIMPLIFY = 1.0    # pixels: the outline's largest deviation from the dilated contour
HOLE_DEPTH = 2.0  # pixels: holes (after the dilation) with no point this deep are filled
BOUNDARY_SIMPLIFY = 0.25 # pixels: the part boundaries' largest deviation (a pixel centre lies
#                          at least a quarter pixel off the traced line: none changes side)
MIN_ANGLE = 20    # degrees: Triangle's quality bound


def covered(alpha: np.ndarray) -> np.ndarray:
    """The pixels the mesh covers: ``alpha > ALPHA_MIN`` dilated by ``DILATE``.
    [H, W] -> [H, W] uint8 (0 or 1)"""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * DILATE + 1, 2 * DILATE + 1))
    return cv2.dilate((alpha > ALPHA_MIN).astype(np.uint8), kernel)


def outline(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The figure's contours, holes included, as one planar straight-line graph.

    Args:
        alpha: the character's alpha in [0, 1]. [H, W]

    Returns:
        points: the contours' vertices. [P, 2] float64
        edges: the contours' segments, as indices into ``points``. [E, 2] int64
        holes: one point inside each hole. [K, 2] float64
    """
    covered_ = covered(alpha)
    contours, hierarchy = cv2.findContours(covered_, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    points, edges, holes = [], [], []
    start = 0
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0], strict=True):
        if parent >= 0:  # a hole: kept if a point lies well inside it
            inside = cv2.drawContours(np.zeros_like(covered_), [contour], 0, 1, -1) & (1 - covered_)
            depth = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            if depth.max() < HOLE_DEPTH:
                continue
            y, x = np.unravel_index(np.argmax(depth), depth.shape)
            holes.append((float(x), float(y)))
        poly = cv2.approxPolyDP(contour, SIMPLIFY, True)[:, 0]  # [K, 2]
        if len(poly) < 3:
            poly = contour[:, 0]
        if len(poly) < 3:  # a one- or two-pixel speck: its pixels' square
            x, y = contour[:, 0].min(0) - 0.5
            x1, y1 = contour[:, 0].max(0) + 0.5
            poly = np.array([[x, y], [x1, y], [x1, y1], [x, y1]])
        k = len(poly)
        points.append(poly.astype(np.float64))
        edges.append(start + np.stack([np.arange(k), (np.arange(k) + 1) % k], 1))
        start += k
    return (np.concatenate(points), np.concatenate(edges).astype(np.int64),
            np.array(holes, dtype=np.float64).reshape(-1, 2))


def boundaries(labels: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The boundaries between the regions of a label image, each traced once, as polylines.

    Each region's contours are traced on the label image upsampled twice (so that they run
    a quarter pixel inside the region, between its pixel centres and its neighbours'); a
    contour point is kept where a region of higher label lies across it and the point is
    ``inside`` (so each boundary comes from one of its two sides, and none runs along the
    outline); runs of kept points are simplified (``BOUNDARY_SIMPLIFY``).

    Args:
        labels: region ids, -1 for none. [H, W] int
        inside: where boundaries may run. [H, W] bool

    Returns:
        points: [P, 2] float64
        edges: [E, 2] int64
    """
    up = np.repeat(np.repeat(labels, 2, 0), 2, 1)                          # [2H, 2W]
    ok = np.repeat(np.repeat(inside, 2, 0), 2, 1)
    padded = np.pad(up, 1, constant_values=-1)
    points, edges, start = [], [], 0
    for label in np.unique(labels[labels >= 0]):
        region = (up == label).astype(np.uint8)
        contours, _ = cv2.findContours(region, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        for contour in contours:
            c = contour[:, 0]                                               # [K, 2] (x, y)
            across = np.stack([padded[c[:, 1] + 1 + dy, c[:, 0] + 1 + dx]
                               for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))], 1)
            keep = (across > label).any(1) & ok[c[:, 1], c[:, 0]]           # [K]
            for run in _runs(keep):
                poly = cv2.approxPolyDP(c[run].reshape(-1, 1, 2), 2 * BOUNDARY_SIMPLIFY,
                                        closed=False)[:, 0]
                if len(poly) < 2:
                    continue
                k = len(poly)
                points.append(poly / 2.0 - 0.25)                            # back to pixels
                edges.append(start + np.stack([np.arange(k - 1), np.arange(1, k)], 1))
                start += k
    if not points:
        return np.zeros((0, 2)), np.zeros((0, 2), dtype=np.int64)
    return np.concatenate(points), np.concatenate(edges).astype(np.int64)


def merge(*graphs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One planar straight-line graph from several: repeated points merged, empty and repeated
    segments dropped.

    Args:
        graphs: ``(points [P, 2], edges [E, 2])`` each.

    Returns:
        points: distinct. [P', 2] float64
        edges: [E', 2] int64
    """
    offsets = np.cumsum([0] + [len(p) for p, _ in graphs])
    points = np.concatenate([p for p, _ in graphs]).astype(np.float64)
    edges = np.concatenate([e + o for (_, e), o in zip(graphs, offsets, strict=False)])
    points, inverse = np.unique(points, axis=0, return_inverse=True)
    edges = inverse.reshape(-1)[edges]
    edges = edges[edges[:, 0] != edges[:, 1]]
    return points, np.unique(np.sort(edges, axis=1), axis=0).astype(np.int64)


def _runs(keep: np.ndarray) -> list[np.ndarray]:
    """Index runs of True in a closed (cyclic) sequence.  [K] bool -> list of [k] int"""
    if keep.all():
        return [np.concatenate([np.arange(len(keep)), [0]])]               # a closed loop
    shift = int(np.argmin(keep))                                            # start at a False
    order = np.roll(np.arange(len(keep)), -shift)
    flags = keep[order]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return [order[a:b] for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= 2]


def triangulate(points: np.ndarray, edges: np.ndarray, holes: np.ndarray, inner: np.ndarray,
                max_area: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quality triangulation of an outline with inner points as vertices (Triangle).

    Args:
        points: the outline's vertices. [P, 2]
        edges: its segments. [E, 2] int64
        holes: a point inside each hole. [K, 2]
        inner: points to make vertices of the mesh. [N, 2]
        max_area: the largest triangle area, pixels².

    Returns:
        vertices: [V, 2] float64
        triangles: counter-clockwise in (x, y) with y down drawn as y up. [F, 3] int64
        inner_index: the vertex of each inner point, -1 for one outside the outline. [N] int64
    """
    allp = np.concatenate([points, inner]).astype(np.float64)
    flags = f"pq{MIN_ANGLE}a{max_area:.6f}Q"
    vertices, triangles, *_ = igl.triangle.triangulate(
        allp, edges.astype(np.int64), holes.astype(np.float64).reshape(-1, 2), flags=flags)
    # Triangle keeps the input points first, in order; some (outside, repeated) go unused
    used = np.zeros(len(vertices), dtype=bool)
    used[triangles] = True
    new_index = np.where(used, np.cumsum(used) - 1, -1)
    inner_index = new_index[len(points):len(allp)]
    return vertices[used], new_index[triangles].astype(np.int64), inner_index.astype(np.int64)


def cut(triangles: np.ndarray,
        joined: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray],
        ) -> tuple[np.ndarray, np.ndarray]:
    """Duplicate vertices so that neighbouring triangles that may not be joined share none.

    Args:
        triangles: [F, 3] int64
        joined: ``joined(t1, t2, u, v)`` says whether triangles ``t1`` and ``t2`` [E], which
            share the edge ``u -> v`` [E], stay joined across it. [E] bool

    Returns:
        triangles: the same triangles on the new vertices. [F, 3] int64
        source: the old vertex each new vertex copies. [V'] int64
    """
    n_tri = len(triangles)
    corner = np.arange(3 * n_tri).reshape(n_tri, 3)          # corner (t, k) -> node 3t + k
    nxt = np.roll(np.arange(3), -1)                          # k -> k + 1 mod 3
    start, end = triangles, triangles[:, nxt]                # half-edge (t, k): start -> end
    n = int(triangles.max()) + 1
    key = (start * n + end).ravel()                          # [3F]
    twin_key = (end * n + start).ravel()
    order = np.argsort(key)
    pos = np.clip(np.searchsorted(key, twin_key, sorter=order), 0, len(key) - 1)
    twin = order[pos]                                        # [3F] candidate opposite half-edge
    h = np.flatnonzero(key[twin] == twin_key)                # half-edges with a neighbour
    g = twin[h]
    t1, k1, t2, k2 = h // 3, h % 3, g // 3, g % 3
    keep = joined(t1, t2, start.ravel()[h], end.ravel()[h])
    t1, k1, t2, k2 = (x[keep] for x in (t1, k1, t2, k2))
    # h runs u -> v in t1, g runs v -> u in t2: join the corners at u, and those at v
    a = np.concatenate([corner[t1, k1], corner[t1, nxt[k1]]])
    b = np.concatenate([corner[t2, nxt[k2]], corner[t2, k2]])
    graph = scipy.sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(3 * n_tri, 3 * n_tri))
    _, cluster = connected_components(graph, directed=False)
    source = np.zeros(cluster.max() + 1, dtype=np.int64)
    source[cluster] = triangles.ravel()
    return cluster.reshape(n_tri, 3).astype(np.int64), source


def locate(points: np.ndarray, vertices: np.ndarray,
           triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The triangle holding each point (else the nearest) and the barycentric coordinates of
    the point (else of its nearest point on that triangle).

    Args:
        points: [N, 2]
        vertices: [V, 2]
        triangles: [F, 3] int64

    Returns:
        triangle: [N] int64
        barycentric: [N, 3], rows sum to 1, all >= 0.
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    _, tri, closest = igl.point_mesh_squared_distance(points, vertices, triangles)
    a, b, c = (np.ascontiguousarray(vertices[triangles[tri, k]]) for k in range(3))
    bary = igl.barycentric_coordinates(np.ascontiguousarray(closest), a, b, c)
    bary = np.clip(bary, 0.0, None)
    return tri.astype(np.int64), bary / bary.sum(1, keepdims=True)


def signed_areas(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Signed area of each triangle (positive for the orientation Triangle outputs).
    [V, 2], [F, 3] -> [F]"""
    ab = vertices[triangles[:, 1]] - vertices[triangles[:, 0]]    # [F, 2]
    ac = vertices[triangles[:, 2]] - vertices[triangles[:, 0]]
    return 0.5 * (ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0])


def rasterize(vertices: np.ndarray, triangles: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Which triangle covers each pixel centre (the last one where several do).

    A pixel's centre is inside a triangle when it lies on the inner side of (or on) its three
    edges, whatever the triangle's orientation; degenerate triangles cover nothing.

    Args:
        vertices: [V, 2] pixels, pixel ``(i, j)`` at ``(x, y) = (j, i)``.
        triangles: [F, 3] int64
        size: ``(height, width)``.

    Returns:
        Index into ``triangles``, -1 where none. [H, W] int32
    """
    h, w = size
    ids = np.full(size, -1, dtype=np.int32)
    corners = vertices[triangles]                                           # [F, 3, 2]
    area = signed_areas(vertices, triangles)                                # [F]
    lo = np.clip(np.ceil(corners.min(1) - 1e-9), 0, [w, h]).astype(np.int64)    # [F, 2]
    hi = np.clip(np.floor(corners.max(1) + 1e-9), -1, [w - 1, h - 1]).astype(np.int64)
    span = np.maximum(hi - lo + 1, 0)                                       # [F, 2]
    count = span[:, 0] * span[:, 1] * (np.abs(area) > 1e-12)               # [F]
    if count.sum() == 0:
        return ids
    tri = np.repeat(np.arange(len(triangles)), count)                       # [K] draw order
    k = np.arange(len(tri)) - np.repeat(np.cumsum(count) - count, count)    # [K] in its box
    x = lo[tri, 0] + k % span[tri, 0]
    y = lo[tri, 1] + k // span[tri, 0]
    p = np.stack([x, y], 1).astype(np.float64)                              # [K, 2]
    inside = np.ones(len(tri), dtype=bool)
    sign = np.sign(area)[tri]
    for i in range(3):
        a, b = corners[tri, i], corners[tri, (i + 1) % 3]
        edge = (b[:, 0] - a[:, 0]) * (p[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (p[:, 0] - a[:, 0])
        inside &= edge * sign >= -1e-9
    tri, key = tri[inside], (y * w + x)[inside]
    order = np.lexsort((tri, key))                                          # by pixel, then tri
    key, tri = key[order], tri[order]
    last = np.append(key[1:] != key[:-1], True)
    ids.reshape(-1)[key[last]] = tri[last]
    return ids
