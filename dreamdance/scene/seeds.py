"""GrabCut seeds: where the character surely is, probably is, and surely is not.

A seed map is ``[H, W] uint8`` of OpenCV's GrabCut labels, for ``cv2.GC_INIT_WITH_MASK``:
``GC_FGD`` (sure character), ``GC_PR_FGD`` (probably character), ``GC_PR_BGD`` (probably
background), ``GC_BGD`` (sure background). GrabCut may relabel only the probable pixels, so
the sure ones must be right; the probable ones only start its colour models.

Two sources, each a small callable built by Hydra (``conf/segmenter/auto.yaml``):

- :class:`PoseSeeds`, from the art's own pose (keypoints ``(x, y, confidence)`` in the
  image's pixels). With ``s`` the body size (the long side of the pose's box,
  :func:`dreamdance.motion.align.pose_box`, which reaches above the nose towards the crown and
  below the ankles to the soles):

  - sure character: each confident bone drawn ``core · s`` wide, the torso quadrilateral
    (shoulders, hips), a disc of radius ``core · s`` on every confident keypoint;
  - probably character: the bones drawn ``limb · s`` wide; the head, a disc around the face's
    keypoints of radius ``HEAD_RADIUS`` x their width (ear to ear), the box grown to hold it
    (a portrait's crown is above :func:`pose_box`'s); the hands and the face, their keypoints'
    hull grown by the core width (not sure: drawn hands are often smaller than posed ones);
    the feet (ankles to soles). Not the body's hull: the ground between the legs would start
    as character, and GrabCut then tends to keep it;
  - sure background: everything outside the pose's box grown by ``margin · s`` per side;
  - probably background: the rest.

- :class:`SaliencySeeds`, when there is no pose: OpenCV's static saliency map
  (``fine``: ``StaticSaliencyFineGrained``, ``spectral``: ``StaticSaliencySpectralResidual``),
  smoothed and thresholded by Otsu's method, a band of ``border`` x the short side along the
  image's edges left out. Its 8-connected blobs are ranked by saliency mass (the sum of the
  map over the blob); the top one, and any other with at least ``min_part`` of its mass, is
  probably character; their core (pixels deeper inside than ``core`` x the deepest, by
  distance transform) is sure character; each blob's box grown by ``margin`` x its long side
  per side is probably background; the rest, and the edge band, sure background. No blob, or
  blobs over more than 90 % of the image, give no seeds.
"""

from __future__ import annotations

import numbers
from typing import Any

import cv2
import numpy as np

from dreamdance.errors import InputError
from dreamdance.motion.align import pose_box
from dreamdance.motion.render import BODY_LIMBS

R_SHOULDER, L_SHOULDER, R_HIP, L_HIP = 2, 5, 8, 11
R_ANKLE, L_ANKLE = 10, 13
HEAD_POINTS = (0, 14, 15, 16, 17)  # nose, eyes, ears
HEAD_RADIUS = 0.75  # the head disc's radius, x the width of those points (ear to ear)
SALIENCY = ("fine", "spectral")
POSE_KEY, SALIENCY_KEY = "segmenter.pose_seeds", "segmenter.saliency_seeds"  # for errors
MAX_BLOB_COVER = 0.9  # a salient blob over this much of the image found no figure
MIN_BLOB_COVER = 0.002  # nor one under this much


class PoseSeeds:
    """Seeds from the character's own pose (see the module's rule).

    Args:
        threshold: keypoints with confidence below it are ignored.
        core: sure-character bone width, a fraction of the body size.
        limb: probable-character bone width, a fraction of the body size.
        margin: the pose's box grown by this fraction of the body size per side; beyond it is
            sure background.
    """

    def __init__(self, threshold: float = 0.3, core: float = 0.03, limb: float = 0.08,
                 margin: float = 0.15):
        key = POSE_KEY
        _check_fraction(threshold, f"{key}.threshold", high=1.0)
        _check_fraction(core, f"{key}.core", high=0.5)
        _check_fraction(limb, f"{key}.limb", high=1.0)
        _check_fraction(margin, f"{key}.margin", high=2.0)
        if core > limb:
            raise InputError(f"{key}.core={core}", f"must be <= {key}.limb={limb} (the sure "
                                                   "core lies inside the probable limb)")
        self.threshold, self.core, self.limb, self.margin = (float(threshold), float(core),
                                                             float(limb), float(margin))

    def __call__(self, pose: dict[str, np.ndarray], width: int, height: int
                 ) -> np.ndarray | None:
        """Seeds for a ``width x height`` image; None when the pose has no confident body.

        Args:
            pose: ``{"body": [18, 3], "face": [68, 3], "left_hand": [21, 3], "right_hand":
                [21, 3]}``, ``(x, y, confidence)`` in the image's pixels.

        Returns:
            ``[height, width]`` uint8 GrabCut labels.
        """
        body = np.asarray(pose["body"], np.float32)
        assert body.shape == (18, 3), body.shape
        ok = body[:, 2] >= self.threshold
        box = pose_box(pose, self.threshold)
        if box is None or ok.sum() < 2:
            return None
        x0, y0, x1, y1 = box
        size = max(x1 - x0, y1 - y0)
        if size < 4:
            return None
        core = max(1, round(self.core * size))
        limb = max(core + 1, round(self.limb * size))
        head = [i for i in HEAD_POINTS if ok[i]]
        if head:  # the head: a disc around the face's points, radius from its width (ears)
            cx, cy = body[head, :2].mean(0)
            radius = max(HEAD_RADIUS * float(np.ptp(body[head, 0])), core)
            y0 = min(y0, cy - radius)  # a portrait's crown lies above pose_box's
        m = self.margin * size
        labels = np.full((height, width), cv2.GC_BGD, np.uint8)
        gx0, gy0 = max(0, int(x0 - m)), max(0, int(y0 - m))
        gx1, gy1 = min(width, int(np.ceil(x1 + m))), min(height, int(np.ceil(y1 + m)))
        labels[gy0:gy1, gx0:gx1] = cv2.GC_PR_BGD

        probable = np.zeros((height, width), np.uint8)
        sure = np.zeros((height, width), np.uint8)
        pts = body[ok, :2]
        for a, b in BODY_LIMBS:
            if ok[a] and ok[b]:
                cv2.line(probable, _pt(body[a]), _pt(body[b]), 1, limb)
                cv2.line(sure, _pt(body[a]), _pt(body[b]), 1, core)
        for p in pts:
            cv2.circle(sure, _pt(p), core, 1, -1)
        torso = [R_SHOULDER, L_SHOULDER, L_HIP, R_HIP]
        if ok[torso].all():
            cv2.fillConvexPoly(sure, cv2.convexHull(_px(body[torso, :2])), 1)
        if head:
            cv2.circle(probable, _pt((cx, cy)), round(radius), 1, -1)
        for part in ("left_hand", "right_hand", "face"):
            kp = pose.get(part)
            if kp is None:
                continue
            kp = np.asarray(kp, np.float32)
            good = kp[:, 2] >= self.threshold
            if good.sum() >= 3:  # probable only: drawn hands are often smaller than posed ones
                region = np.zeros_like(probable)
                cv2.fillConvexPoly(region, cv2.convexHull(_px(kp[good, :2])), 1)
                probable |= cv2.dilate(region, _disc(core))
        for ankle in (R_ANKLE, L_ANKLE):  # the feet, ankle to sole
            if ok[ankle]:
                cv2.line(probable, _pt(body[ankle]), _pt((body[ankle, 0], y1)), 1, limb)

        labels[(probable > 0) & (labels == cv2.GC_PR_BGD)] = cv2.GC_PR_FGD
        labels[sure > 0] = cv2.GC_FGD
        return labels


class SaliencySeeds:
    """Seeds from a static saliency map (see the module's rule).

    Args:
        method: ``fine`` (StaticSaliencyFineGrained) or ``spectral``
            (StaticSaliencySpectralResidual).
        border: the sure-background band along the image's edges, a fraction of its short side.
        core: the sure-character core: blob pixels deeper than this fraction of the deepest.
        min_part: other blobs with at least this fraction of the top blob's saliency mass are
            kept too (1: the top blob only).
        margin: each kept blob's box grown by this fraction of its long side per side; beyond
            it is sure background.
        side: the resolution of the saliency map: ``spectral`` works on a ``side x side``
            square (OpenCV's default is 64), ``fine`` at most at this long side.
    """

    def __init__(self, method: str = "spectral", border: float = 0.03, core: float = 0.5,
                 min_part: float = 1.0, margin: float = 0.25, side: int = 96):
        key = SALIENCY_KEY
        if method not in SALIENCY:
            raise InputError(f"{key}.method={method}", f"must be one of {', '.join(SALIENCY)}")
        _check_fraction(border, f"{key}.border", high=0.45)
        _check_fraction(core, f"{key}.core", high=1.0)
        _check_fraction(min_part, f"{key}.min_part", high=1.0)
        _check_fraction(margin, f"{key}.margin", high=2.0)
        if isinstance(side, bool) or not isinstance(side, numbers.Integral) or side < 16:
            raise InputError(f"{key}.side={side}", "must be an integer >= 16")
        self.method, self.border, self.core = method, float(border), float(core)
        self.min_part, self.margin, self.side = float(min_part), float(margin), int(side)

    def saliency(self, image: np.ndarray) -> np.ndarray:
        """The saliency map of a ``[H, W, 3]`` uint8 RGB image: ``[H, W]`` float32 in [0, 1]."""
        h, w = image.shape[:2]
        small = image
        if self.method == "spectral":
            model: Any = cv2.saliency.StaticSaliencySpectralResidual_create()
            model.setImageWidth(self.side)  # it works on a side x side square
            model.setImageHeight(self.side)
        else:
            model = cv2.saliency.StaticSaliencyFineGrained_create()
            scale = min(1.0, self.side / max(h, w))
            if scale < 1.0:
                small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                                   interpolation=cv2.INTER_AREA)
        ok, sal = model.computeSaliency(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        if not ok:
            return np.zeros((h, w), np.float32)
        sal = np.asarray(sal, np.float32)
        sal = cv2.GaussianBlur(sal, (0, 0), max(1.0, 0.01 * max(sal.shape)))
        sal = cv2.resize(sal, (w, h), interpolation=cv2.INTER_LINEAR)
        lo, hi = float(sal.min()), float(sal.max())
        return (sal - lo) / (hi - lo) if hi > lo else np.zeros((h, w), np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """Seeds for a ``[H, W, 3]`` uint8 RGB image; None when no salient blob is found.

        Returns:
            ``[H, W]`` uint8 GrabCut labels.
        """
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8, image.shape
        h, w = image.shape[:2]
        sal = (self.saliency(image) * 255).astype(np.uint8)
        if sal.max() == 0:
            return None
        _, blob = cv2.threshold(sal, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        band = max(1, round(self.border * min(h, w)))
        blob[:band], blob[-band:], blob[:, :band], blob[:, -band:] = 0, 0, 0, 0
        n, comp, stats, _ = cv2.connectedComponentsWithStats(blob, connectivity=8)
        if n <= 1:
            return None
        mass = np.bincount(comp.ravel(), weights=sal.ravel().astype(np.float64), minlength=n)[1:]
        keep = np.flatnonzero(mass >= self.min_part * mass.max()) + 1
        blob = np.isin(comp, keep).astype(np.uint8)
        cover = float(blob.mean())
        if not MIN_BLOB_COVER <= cover <= MAX_BLOB_COVER:
            return None
        labels = np.full((h, w), cv2.GC_BGD, np.uint8)
        for i in keep:  # each blob's box grown by `margin` x its long side: probably background
            x, y, bw, bh = stats[i, :4]
            m = round(self.margin * max(bw, bh))
            labels[max(0, y - m):y + bh + m, max(0, x - m):x + bw + m] = cv2.GC_PR_BGD
        depth = cv2.distanceTransform(blob, cv2.DIST_L2, 5)
        labels[blob > 0] = cv2.GC_PR_FGD
        labels[depth > self.core * float(depth.max())] = cv2.GC_FGD
        labels[:band], labels[-band:], labels[:, :band], labels[:, -band:] = (cv2.GC_BGD,) * 4
        return labels


def _check_fraction(value: Any, key: str, high: float) -> None:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not 0 <= value <= high):
        shown = str(value).lower() if isinstance(value, bool) else value
        raise InputError(f"{key}={shown}", f"must be a number in [0, {high:g}]")


def _px(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, np.float32)).astype(np.int32).reshape(-1, 1, 2)


def _pt(p: Any) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def _disc(radius: int) -> np.ndarray:
    r = max(1, int(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
