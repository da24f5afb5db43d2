"""A photo pop-up depth prior: ground, sky and upright segments (Hoiem et al. 2005, no weights).

:class:`~dreamdance.scene.depth.RampDepth` gives every pixel below the horizon the ground's
depth for its row, so anything standing on the ground (a tree, a wall, a person's legs) lies
flat on it and shears when the camera moves. The pop-up of "Automatic Photo Pop-up" (Hoiem,
Efros and Hebert, SIGGRAPH 2005) folds such things up instead: the image is cut into segments,
each segment is labelled *ground*, *sky* or *upright*, and

- a ground pixel gets the ground plane's depth for its row (exactly ``RampDepth.rows``);
- a sky pixel gets the backdrop's depth ``far``;
- an upright segment stands vertically where it meets the ground: along its contact line (the
  boundary between it and the ground below it, a straight line in the image fitted per group),
  every column of the segment gets the ground's depth at that contact, constant up the column.

Hoiem et al. learn the labels from data; here they come from a few classical cues, at a working
size (long side ``work_size``):

1. Felzenszwalb's graph-based over-segmentation (``scikit-image``) of the image.
2. Sky: segments (nearly) wholly above the horizon, with little texture (mean gradient of CIE L*) and
   blue or bright, grown from those touching the top edge through adjacent ones alike.
3. Ground: segments (nearly) wholly below the horizon, grown from those touching the bottom edge through
   adjacent ones of a similar colour (CIE Lab distance to the bottom segments' mean) and
   texture, or green ones.
4. Upright: the rest. A segment with no ground directly below it rests on the upright segment
   under it (a face on its shirt) and takes its contact; so does one overhanging an upright
   segment that stands nearer, its lower edge running level over that one's top although the
   ground shows under the overhangs and a thin outline may part the two (a crown on its
   trunk); adjacent upright segments whose contacts meet are one group (one line fit).

The depth of a contact at row ``y`` (continuous, pixel edges) is the ground's: its inverse
depth is affine in the row (see ``RampDepth``), so it is interpolated linearly in inverse depth
between the row centres of ``RampDepth.rows``; above the horizon it is ``far``. Everything is
clamped to ``[near, far]``. Deterministic; about 0.2 s at 512 x 512 on a CPU.
"""

from __future__ import annotations

import cv2
import numpy as np

from dreamdance.errors import InputError
from dreamdance.scene.depth import DepthResult, RampDepth, _check_rgb, _positive

SKY, GROUND, UPRIGHT = 0, 1, 2

# Classification cues (CIE L* in [0, 100], a*/b* in about [-100, 100]). A sky segment may reach,
# and a ground one rise, this fraction of its area past the horizon (which is only a guess):
HORIZON_SLACK = 0.15
SKY_TEXTURE = 2.0          # mean |grad L*| per working pixel below which a segment may be sky
SKY_BLUE = -4.0            # b* below this is blue
SKY_BRIGHT = 75.0          # or L* above this (overcast, haze)
GROUND_COLOUR = 18.0       # Lab distance to the bottom segments' mean that still reads as ground
GROUND_TEXTURE = 3.0       # and texture within this factor of theirs
GREEN = (-6.0, 4.0)        # a* below, b* above: vegetation, ground when below the horizon
CONTACT_TOLERANCE = 2      # working pixels: two segments' contacts meet within this (col, row)
MIN_CONTACT = 4            # columns: a segment with fewer contacts rests on the one below
SLIVER = 3                 # working rows: thinner ground or sky between uprights is an outline
OVERHANG_LEVEL = 0.25      # an overhang's lower edge beside its prop is level with it over the
                           # prop within this fraction of the smaller one's height
MAX_SLOPE = 0.5            # a steeper contact line is not a wall's foot: a constant row instead
LINE_MIN_SPAN = 6          # working columns: a narrower contact is a constant row, not a line


class PopupDepth:
    """Ground, sky and upright segments folded into a pop-up (see the module docstring).

    ``PopupDepth(rgb [H, W, 3] float in [0, 1]) -> DepthResult(depth [H, W] float32, None)``.

    Args:
        near: z-depth of the bottom row's ground in metres, ``> 0``.
        far: z-depth of the sky (and the farthest ground) in metres, ``>= near``.
        horizon: the horizon's row as a fraction of the image height from the top, in
            ``[0, 1)`` (as ``RampDepth``'s).
        work_size: long side in pixels of the image the segments are found on, ``>= 16``.
        segment_scale: Felzenszwalb's ``scale``: larger gives larger segments, ``> 0``.
        min_segment: the smallest segment as a fraction of the working image's area, in
            ``[0, 0.1]``.
    """

    def __init__(self, near: float = 2.0, far: float = 8.0, horizon: float = 0.45,
                 work_size: int = 256, segment_scale: float = 100.0,
                 min_segment: float = 0.001):
        self.ramp = RampDepth(near, far, horizon)  # checks depth.near, depth.far, depth.horizon
        self.near, self.far, self.horizon = self.ramp.near, self.ramp.far, self.ramp.horizon
        if isinstance(work_size, bool) or not isinstance(work_size, int) or work_size < 16:
            raise InputError(f"depth.work_size={work_size}", "must be an integer >= 16 (pixels)")
        self.work_size = work_size
        self.segment_scale = _positive(segment_scale, "depth.segment_scale")
        if isinstance(min_segment, bool) or not isinstance(min_segment, int | float) \
                or not 0.0 <= min_segment <= 0.1:
            raise InputError(f"depth.min_segment={min_segment}",
                             "must be a fraction of the image area in [0, 0.1]")
        self.min_segment = float(min_segment)

    def __call__(self, rgb: np.ndarray) -> DepthResult:
        H, W = _check_rgb(rgb)
        labels, classes, groups, lines = self.analyse(rgb)
        return DepthResult(self._compose(labels, classes, groups, lines, H, W), None)

    # -----------------------------------------------------------------------------------------

    def analyse(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The pop-up at the working size.

        Returns:
            ``labels`` segment of each working pixel [h, w] int; ``classes`` of each segment
            (:data:`SKY`, :data:`GROUND`, :data:`UPRIGHT`) [S]; ``groups`` the upright group of
            each segment (its own index otherwise) [S]; ``lines`` per segment the contact line
            ``(slope, intercept, first column, last column)`` in working pixels, the contact
            row ``y = slope * clip(x, first, last) + intercept`` (pixel edges; NaN rows for
            segments that are not upright) [S, 4].
        """
        from skimage.color import rgb2lab
        from skimage.segmentation import felzenszwalb

        H, W = _check_rgb(rgb)
        s = min(1.0, self.work_size / max(H, W))
        h, w = max(1, round(H * s)), max(1, round(W * s))
        small = np.clip(np.asarray(rgb, np.float32), 0.0, 1.0)
        if (h, w) != (H, W):
            small = cv2.resize(small, (w, h), interpolation=cv2.INTER_AREA)  # [h, w, 3]
        # 1. over-segment
        min_size = max(1, round(self.min_segment * h * w))
        labels = felzenszwalb(small, scale=self.segment_scale, sigma=0.8, min_size=min_size)
        labels = np.unique(labels, return_inverse=True)[1].reshape(h, w)  # 0..S-1, [h, w]
        n = int(labels.max()) + 1
        # 2. per-segment cues
        lab = rgb2lab(small).reshape(-1, 3)  # [h*w, 3]
        grad = np.hypot(cv2.Sobel(lab[:, 0].reshape(h, w), cv2.CV_64F, 1, 0, ksize=3),
                        cv2.Sobel(lab[:, 0].reshape(h, w), cv2.CV_64F, 0, 1, ksize=3)) / 8
        flat = labels.ravel()
        area = np.bincount(flat, minlength=n).astype(np.float64)  # [S]
        colour = np.stack([np.bincount(flat, lab[:, k], n) for k in range(3)], 1) / area[:, None]
        texture = np.bincount(flat, grad.ravel(), n) / area  # [S]
        rows = np.repeat(np.arange(h), w) + 0.5
        v_h = self.horizon * h
        above = np.bincount(flat, rows < v_h, n) / area  # fraction above the horizon [S]
        top = np.zeros(n, bool)
        top[labels[0]] = True
        bottom = np.zeros(n, bool)
        bottom[labels[-1]] = True
        pairs = _adjacent(labels)  # [P, 2]
        neighbours = [[] for _ in range(n)]
        for a, b in pairs:
            neighbours[a].append(b)
            neighbours[b].append(a)
        # 3. classify
        classes = np.full(n, UPRIGHT)
        sky_like = (above >= 1.0 - HORIZON_SLACK) & (texture < SKY_TEXTURE) & (
            (colour[:, 2] < SKY_BLUE) | (colour[:, 0] > SKY_BRIGHT))
        classes[_grow(top & sky_like, sky_like, neighbours)] = SKY
        low = above <= HORIZON_SLACK
        seeds = bottom & low
        if seeds.any():
            ref = np.average(colour[seeds], axis=0, weights=area[seeds])
            ref_tex = np.average(texture[seeds], weights=area[seeds]) + 1e-6
            ratio = (texture + 1e-6) / ref_tex
            similar = (np.linalg.norm(colour - ref, axis=1) < GROUND_COLOUR) \
                & (ratio < GROUND_TEXTURE) & (ratio > 1 / GROUND_TEXTURE)
            green = (colour[:, 1] < GREEN[0]) & (colour[:, 2] > GREEN[1])
            classes[_grow(seeds, low & (similar | green), neighbours)] = GROUND
        # 4. upright: contacts, groups, contact lines
        groups, lines = self._contacts(labels, classes, pairs)
        return labels, classes, groups, lines

    def _contacts(self, labels: np.ndarray, classes: np.ndarray, pairs: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        h, w = labels.shape
        n = len(classes)
        cls = classes[labels]  # [h, w]
        up = cls == UPRIGHT
        # contact: an upright pixel with ground right below (row edge r + 1) or on the bottom row
        below_ground = np.zeros_like(up)
        below_ground[:-1] = cls[1:] == GROUND
        below_ground[-1] = True
        r, c = np.nonzero(up & below_ground)
        contacts: dict[int, dict[int, float]] = {}
        for seg, col, row in zip(labels[r, c], c, r + 1.0, strict=True):
            cols = contacts.setdefault(int(seg), {})
            cols[int(col)] = max(cols.get(int(col), 0.0), row)  # the lowest contact per column
        parent = np.arange(n)

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        def union(a: int, b: int) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)

        lowest = np.full(n, -1.0)  # the lower edge of each segment's lowest row
        np.maximum.at(lowest, labels.ravel(), np.repeat(np.arange(h), w) + 1.0)
        # a segment with (almost) no ground below rests on the upright segment most often right
        # below it among those that reach lower (no cycles); a few own contacts are the ground
        # peeking past an edge
        xs = np.tile(np.arange(w), h)
        va, vb = labels[:-1].ravel(), labels[1:].ravel()
        keep = (va != vb) & up[:-1].ravel() & up[1:].ravel()
        stacked = np.unique(np.stack([va[keep], vb[keep], xs[:-w][keep]], 1), axis=0)  # a, b, x
        best: dict[int, tuple[int, int]] = {}
        if len(stacked):
            pairs_ab, count = np.unique(stacked[:, :2], axis=0, return_counts=True)
            for (a, b), k in zip(pairs_ab, count, strict=True):
                if lowest[b] > lowest[a] and k > best.get(int(a), (0, -1))[0]:
                    best[int(a)] = (int(k), int(b))
        resting = {a: b for a, (_, b) in best.items() if len(contacts.get(a, ())) < MIN_CONTACT}
        # a segment overhanging an upright one that stands nearer (a crown over its trunk)
        # rests on it too, although the ground shows under its overhangs (see _overhangs)
        for a, b in _overhangs(labels, up, lowest, contacts).items():
            resting.setdefault(a, b)
        for a, b in resting.items():
            contacts.pop(a, None)
            union(a, b)
        # adjacent upright segments whose contacts meet
        for a, b in pairs:
            ca, cb = contacts.get(int(a)), contacts.get(int(b))
            if ca is None or cb is None:
                continue
            if any(abs(ca[x] - cb[x + d]) <= CONTACT_TOLERANCE for x in ca
                   for d in range(-CONTACT_TOLERANCE, CONTACT_TOLERANCE + 1) if x + d in cb):
                union(int(a), int(b))
        groups = np.array([find(i) for i in range(n)])
        # one contact line per group
        lines = np.full((n, 4), np.nan)
        for g in np.unique(groups[classes == UPRIGHT]):
            members = np.nonzero(groups == g)[0]
            cols: dict[int, float] = {}
            for m in members:
                for x, y in contacts.get(int(m), {}).items():
                    cols[x] = max(cols.get(x, 0.0), y)
            if cols:
                line = _fit_line(np.array(list(cols)), np.array(list(cols.values())))
            else:  # floating: stands on its own lowest row
                line = (0.0, float(lowest[members].max()), 0.0, float(w - 1))
            lines[members] = line
        return groups, lines

    def _compose(self, labels: np.ndarray, classes: np.ndarray, groups: np.ndarray,
                 lines: np.ndarray, H: int, W: int) -> np.ndarray:
        """The depth at full size from the working-size analysis. float32 [H, W]"""
        h, w = labels.shape
        full = cv2.resize(labels.astype(np.int32), (W, H), interpolation=cv2.INTER_NEAREST)
        cls = classes[full]  # [H, W]
        ground = self.ramp.rows(H).astype(np.float64)  # [H]
        depth = np.repeat(ground[:, None], W, axis=1)  # [H, W]
        depth[cls == SKY] = self.far
        up = cls == UPRIGHT
        if up.any():
            seg = full[up]  # [U]
            x = (np.nonzero(up)[1] + 0.5) * (w / W) - 0.5  # working column of each pixel
            a, b, x0, x1 = lines[seg].T
            y = (a * np.clip(x, x0, x1) + b) * (H / h)  # contact row, full-size pixel edges
            centres = np.arange(H) + 0.5
            inverse = np.interp(y, centres, 1.0 / ground, left=1.0 / self.far)
            depth[up] = 1.0 / inverse
        return np.clip(depth, self.near, self.far).astype(np.float32)


def _adjacent(labels: np.ndarray) -> np.ndarray:
    """The pairs ``(a, b)``, ``a < b``, of 4-adjacent segments. [P, 2]"""
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:].ravel()])
    diff = a != b
    pairs = np.stack([np.minimum(a[diff], b[diff]), np.maximum(a[diff], b[diff])], 1)
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


def _grow(seeds: np.ndarray, allowed: np.ndarray, neighbours: list[list[int]]) -> np.ndarray:
    """Segments reached from ``seeds`` through adjacent ``allowed`` ones (seeds included). [S]"""
    out = seeds.copy()
    stack = list(np.nonzero(seeds)[0])
    while stack:
        i = stack.pop()
        for j in neighbours[i]:
            if allowed[j] and not out[j]:
                out[j] = True
                stack.append(j)
    return out


def _overhangs(labels: np.ndarray, up: np.ndarray, lowest: np.ndarray,
               contacts: dict[int, dict[int, float]]) -> dict[int, int]:
    """The upright segments that rest on an upright segment below them despite contacts of
    their own: ``{a: b}``.

    Segment ``a`` rests on ``b`` when

    - in at least ``MIN_CONTACT`` columns ``b`` lies right under ``a``'s lower edge, across at
      most ``SLIVER`` rows of ground or sky (an anti-aliased outline cut out as a segment of
      its own: the crown's rim, which reads as green ground);
    - ``b`` reaches lower than ``a`` and than all of ``a``'s own contacts: it stands nearer,
      and the ground seen under ``a``'s overhangs lies behind it;
    - ``a`` has at least ``MIN_CONTACT`` contacts besides those columns (ground under an
      overhang; without, its contacts are on ``b``'s outline and the usual rules decide);
    - ``a``'s lower edge in the columns beside those (as many on each side) is level with its
      edge over ``b``, within ``OVERHANG_LEVEL`` of the smaller of ``a``'s height and ``b``'s
      below it (at least ``CONTACT_TOLERANCE``): ``a``'s outline runs on over ``b`` (it
      occludes ``b``'s top, a crown over its trunk), where ``b``'s outline cutting up into
      ``a`` (``b`` in front, a person's head before a house, which keeps its own foot) or
      ``a`` lifting away beside ``b`` shows a step.
    """
    h, w = labels.shape
    rows = np.arange(h)
    # the next upright row at or below each row, per column (h where none)
    nxt = np.where(up, rows[:, None], h)
    nxt = np.minimum.accumulate(nxt[::-1], axis=0)[::-1]
    # each upright segment's lower edge per column: an upright pixel whose lower neighbour
    # is not of its segment, the lowest such per (segment, column)
    edge = up.copy()
    edge[:-1] &= labels[:-1] != labels[1:]
    r, c = np.nonzero(edge)
    seg = labels[r, c]
    order = np.lexsort((r, c, seg))  # by segment, column, then row: the last is the lowest
    r, c, seg = r[order], c[order], seg[order]
    last = np.ones(len(seg), bool)
    last[:-1] = (seg[:-1] != seg[1:]) | (c[:-1] != c[1:])
    r, c, seg = r[last], c[last], seg[last]
    below = np.full(len(r), -1)
    ok = r + 1 < h
    nb = np.where(ok, nxt[np.minimum(r + 1, h - 1), c], h)
    ok &= (nb < h) & (nb - (r + 1) <= SLIVER)
    below[ok] = labels[nb[ok], c[ok]]
    top = np.full(len(lowest), h, np.int64)
    np.minimum.at(top, labels.ravel(), np.repeat(rows, w))
    out: dict[int, int] = {}
    for a in np.unique(seg):
        a = int(a)
        own = contacts.get(a)
        if not own:
            continue  # no contacts: the rule of the fewest contacts decides
        m = seg == a
        edge_a = dict(zip(c[m].tolist(), (r[m] + 1.0).tolist(), strict=True))  # col -> row
        cands = [(int((below[m] == b).sum()), int(b)) for b in np.unique(below[m]) if b >= 0
                 and b != a and lowest[b] > lowest[a] and lowest[b] > max(own.values())
                 + CONTACT_TOLERANCE]
        cands = [(k, b) for k, b in cands if k >= MIN_CONTACT]
        if not cands:
            continue
        _, b = max(cands)
        over = c[m][below[m] == b]
        cols = set(over.tolist())
        if sum(x not in cols for x in own) < MIN_CONTACT:
            continue
        level = float(np.median([edge_a[x] for x in cols]))
        reach = max(len(over), SLIVER)
        lo, hi = int(over.min()), int(over.max())
        beside = [y for x, y in edge_a.items()
                  if x not in cols and min(abs(x - lo), abs(x - hi)) <= reach]
        step = max((abs(y - level) for y in beside), default=0.0)
        height = min(lowest[a] - top[a], lowest[b] - level)
        if step <= max(CONTACT_TOLERANCE, OVERHANG_LEVEL * height):
            out[a] = b
    return out


def _fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """A contact line ``y = a x + b`` through the contact points, refitted once without those
    more than 2 px (working) off; a constant (the median) when they span few columns or the
    line is steeper than ``MAX_SLOPE``.
    Returns ``(a, b, min x, max x)``."""
    x0, x1 = float(x.min()), float(x.max())
    if x1 - x0 < LINE_MIN_SPAN:
        return 0.0, float(np.median(y)), x0, x1
    a, b = np.polyfit(x, y, 1)
    inliers = np.abs(a * x + b - y) <= 2.0
    if inliers.sum() >= 2 and np.ptp(x[inliers]) >= LINE_MIN_SPAN:
        a, b = np.polyfit(x[inliers], y[inliers], 1)
    if abs(a) > MAX_SLOPE:
        return 0.0, float(np.median(y)), x0, x1
    return float(a), float(b), x0, x1
