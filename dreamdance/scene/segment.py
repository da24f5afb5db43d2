"""Character / background split: a soft mask of the character in the reference art.

Every segmenter is a small class built by Hydra (``conf/segmenter/``) and called as

    mask = segmenter(rgb, alpha, name="image=art.png")   # [H, W] float32 in [0, 1], 1 = character

with ``rgb [H, W, 3]`` and ``alpha [H, W]`` (or None) in the canonical form of
:mod:`dreamdance.media`. ``name`` is the image as the user gave it; it names the input in the
error raised by :func:`check_mask`, which every segmenter applies to its result: a mask that
finds no character, or one that leaves no background, is refused rather than passed on.

Backends:

- :class:`AlphaSegmenter` — the image's own alpha channel;
- :class:`MaskSegmenter` — a mask file the user drew;
- :class:`GrabCutSegmenter` — OpenCV GrabCut from a box (CPU, no weights);
- :class:`~dreamdance.scene.birefnet.BiRefNetSegmenter` — BiRefNet (ZhengPeng7/BiRefNet), the
  paper's segmenter;
- :class:`AutoSegmenter` — alpha when the image has a useful one, else GrabCut seeded by the
  art's pose, or by saliency (the default).
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dreamdance.errors import InputError
from dreamdance.media import load_image, to_uint8
from dreamdance.motion.align import map_keypoints, pose_frame
from dreamdance.scene.seeds import PoseSeeds, SaliencySeeds

log = logging.getLogger(__name__)

MIN_COVER = 0.001  # a mask over fewer pixels than this found no character
MAX_COVER = 0.99  # a mask over this many pixels or more leaves no background
MAX_ASPECT_CHANGE = 0.01  # a mask file whose aspect ratio differs more than this is refused
SNAP = 8  # px: fit_size snaps sides to multiples of 16, so each moves by up to this much
SEED_MARGIN = 0.1  # GrabCut's seed box: a pose box grown by this fraction of its size per side


# --------------------------------------------------------------------------------------------
# The shared check


def check_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Refuse a character mask that found nothing or left no background; return it as float32.

    A pixel counts as character where ``mask >= 0.5``.

    Args:
        mask: ``[H, W]``, finite, in [0, 1] (values outside are clipped).
        name: the image as the user gave it, e.g. ``"image=art.png"``.

    Returns:
        ``[H, W]`` float32 in [0, 1].

    Raises:
        InputError: fewer than 0.1 % of the pixels are character, or 99 % or more are.
    """
    mask = np.asarray(mask, dtype=np.float32)
    if mask.ndim != 2 or min(mask.shape) < 1:
        raise ValueError(f"mask must be [H, W], got shape {mask.shape}")
    if not np.isfinite(mask).all():
        raise ValueError("mask must be finite (found NaN or inf)")
    mask = np.clip(mask, 0.0, 1.0)
    cover = float((mask >= 0.5).mean())
    if cover < MIN_COVER:
        raise InputError(name, f"no character found (the character mask covers {cover:.2%} of "
                               "the image); choose another segmenter (segmenter=birefnet, "
                               "segmenter=grabcut segmenter.box=[x0,y0,x1,y1]) or draw one "
                               "(segmenter=mask segmenter.path=FILE)")
    if cover >= MAX_COVER:
        raise InputError(name, "the character mask covers the whole image; nothing is left for "
                               "the background")
    return mask


# --------------------------------------------------------------------------------------------
# Classical backends


def seed_box(box: tuple[float, float, float, float] | None, width: int,
             height: int) -> list[int] | None:
    """GrabCut's seed box from a pose box: grown by ``SEED_MARGIN`` and clipped to leave a pixel
    of background on each side; None when there is no box or it is under 2 pixels wide or
    high."""
    if box is None:
        return None
    x0, y0, x1, y1 = box
    mx, my = SEED_MARGIN * (x1 - x0), SEED_MARGIN * (y1 - y0)
    gx0, gy0 = max(1, math.floor(x0 - mx)), max(1, math.floor(y0 - my))
    gx1, gy1 = min(width - 1, math.ceil(x1 + mx)), min(height - 1, math.ceil(y1 + my))
    if gx1 - gx0 < 2 or gy1 - gy0 < 2:
        return None
    return [gx0, gy0, gx1, gy1]

class AlphaSegmenter:
    """The image's alpha channel is the character mask (art exported as a cut-out)."""

    def __call__(self, rgb: np.ndarray, alpha: np.ndarray | None = None,
                 name: str = "image") -> np.ndarray:
        """Args: rgb ``[H, W, 3]``; alpha ``[H, W]`` or None. Returns ``[H, W]`` float32."""
        check_image(rgb, alpha)
        if alpha is None:
            raise InputError(name, "has no alpha channel; choose segmenter=auto, "
                                   "segmenter=grabcut, segmenter=birefnet or segmenter=mask")
        return check_mask(alpha, name)


class MaskSegmenter:
    """A mask file drawn by the user: white (or opaque) = character, black (or clear) = background.

    Any image file works. When the file has an alpha channel that is not opaque everywhere,
    its alpha is the mask (a cut-out of the character); otherwise its luminance
    (``0.299 R + 0.587 G + 0.114 B``) is, kept soft (no threshold). A file of another size is
    resized to the image, as the image itself was resized to the working size: that resize
    snaps each side to a multiple of 16 (:func:`dreamdance.media.fit_size`), which changes the
    aspect ratio by up to ``8 / W + 8 / H``, so a mask drawn at the image's own size is
    accepted. One whose aspect ratio differs by more than that plus 1 % is refused.

    Args:
        path: the mask file (config key ``segmenter.path``).
    """

    def __init__(self, path: str | Path | None):
        if path is None or str(path) == "":
            raise InputError("segmenter.path", "not set; give the mask file "
                                               "(segmenter=mask segmenter.path=FILE)")
        self.name = f"segmenter.path={path}"
        image = load_image(Path(str(path)).expanduser(), name=self.name)
        if image.alpha is not None and float(image.alpha.min()) < 1.0:
            self.mask = image.alpha
        else:
            weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
            self.mask = np.clip(image.rgb @ weights, 0.0, 1.0).astype(np.float32)

    def __call__(self, rgb: np.ndarray, alpha: np.ndarray | None = None,
                 name: str = "image") -> np.ndarray:
        """Args: rgb ``[H, W, 3]``; alpha ignored. Returns ``[H, W]`` float32."""
        h, w = check_image(rgb, alpha)
        mh, mw = self.mask.shape
        mask = self.mask
        if (mh, mw) != (h, w):
            check_aspect((mw, mh), (w, h), self.name, f"is {mw}x{mh} but the image is {w}x{h} "
                         "at the working size", "give a mask of the image's size")
            log.info("%s is %dx%d, the image %dx%d at the working size: mask resized to it",
                     self.name, mw, mh, w, h)
            shrink = mw * mh > w * h
            mask = cv2.resize(mask, (w, h),
                              interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return check_mask(mask, name)


class GrabCutSegmenter:
    """OpenCV GrabCut seeded by a box around the character; a binary mask, no weights needed.

    Args:
        box: ``[x0, y0, x1, y1]`` in pixels (pixels ``x0 <= x < x1``, ``y0 <= y < y1``) around
            the character, inside the image; None: a centred box over the middle 60 % of the
            width and 90 % of the height (a standing character).
        iterations: GrabCut iterations, >= 1.
        max_side: images whose long side exceeds this are segmented at this size and the mask
            is scaled back (GrabCut's cost grows with the pixel count).
        feather: blur the mask edge over about this many pixels (0: a hard 0/1 mask).
        min_part: drop connected pieces of the mask smaller than this fraction of the largest
            (stray bits of background GrabCut keeps inside the box); 0 keeps every piece.
    """

    def __init__(self, box: Sequence[float] | None = None, iterations: int = 5,
                 max_side: int = 1024, feather: int = 0, min_part: float = 0.1):
        self.box = None if box is None else _check_box(box)
        check_int(iterations, "segmenter.iterations", low=1)
        check_int(max_side, "segmenter.max_side", low=16)
        check_int(feather, "segmenter.feather", low=0)
        if (isinstance(min_part, bool) or not isinstance(min_part, numbers.Real)
                or not 0 <= min_part <= 1):
            raise InputError(f"segmenter.min_part={min_part}", "must be a number in [0, 1]")
        self.iterations, self.max_side, self.feather = int(iterations), int(max_side), int(feather)
        self.min_part = float(min_part)

    def __call__(self, rgb: np.ndarray, alpha: np.ndarray | None = None,
                 name: str = "image") -> np.ndarray:
        """Args: rgb ``[H, W, 3]``; alpha ignored. Returns ``[H, W]`` float32."""
        h, w = check_image(rgb, alpha)
        return self.segment(rgb, self.box_for(w, h), name=name)

    def segment(self, rgb: np.ndarray, seeds: tuple[int, int, int, int] | np.ndarray,
                name: str = "image") -> np.ndarray:
        """GrabCut from a box ``(x0, y0, x1, y1)`` or from seeds (``[H, W]`` uint8 GrabCut
        labels, :mod:`dreamdance.scene.seeds`), then ``min_part``, ``feather`` and the check.

        Args:
            rgb: ``[H, W, 3]``.
            seeds: the box (inside: probably character, outside: background), or the labels;
                these need some background (sure or probable) and some character.

        Returns:
            ``[H, W]`` float32.
        """
        h, w = check_image(rgb, None)
        scale = min(1.0, self.max_side / max(h, w))
        image = to_uint8(rgb)
        sw, sh = w, h
        if scale < 1.0:
            sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
            image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # GrabCut's k-means starts from OpenCV's global RNG: same seeds, same cut
        if isinstance(seeds, np.ndarray):
            assert seeds.shape == (h, w) and seeds.dtype == np.uint8, (seeds.shape, seeds.dtype)
            labels = seeds if scale == 1.0 else cv2.resize(seeds, (sw, sh),
                                                           interpolation=cv2.INTER_NEAREST)
            labels = np.ascontiguousarray(labels).copy()
            if not (np.isin(labels, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
                    and np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()):
                raise ValueError("GrabCut seeds need both background and character pixels")
            cv2.grabCut(np.ascontiguousarray(image), labels, None, bgd, fgd, self.iterations,
                        cv2.GC_INIT_WITH_MASK)
        else:
            x0, y0, x1, y1 = seeds
            if scale < 1.0:
                x0, x1 = _scale_span(x0, x1, w, sw)
                y0, y1 = _scale_span(y0, y1, h, sh)
            labels = np.zeros(image.shape[:2], np.uint8)
            cv2.grabCut(np.ascontiguousarray(image), labels, (x0, y0, x1 - x0, y1 - y0), bgd,
                        fgd, self.iterations, cv2.GC_INIT_WITH_RECT)
        mask = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
        if isinstance(seeds, np.ndarray):  # only the pieces holding a sure-character seed
            mask = _keep_seeded_parts(mask, labels == cv2.GC_FGD)
        if self.min_part > 0:
            mask = _drop_small_parts(mask, self.min_part)
        if scale < 1.0:
            mask = (cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5)
            mask = mask.astype(np.float32)
        if self.feather > 0:
            mask = cv2.GaussianBlur(mask, (2 * self.feather + 1,) * 2, self.feather / 2.0)
        return check_mask(mask, name)

    def box_for(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box ``(x0, y0, x1, y1)`` used on a ``width x height`` image (checked to fit)."""
        if self.box is None:
            bw, bh = max(1, round(0.6 * width)), max(1, round(0.9 * height))
            x0, y0 = (width - bw) // 2, (height - bh) // 2
            return x0, y0, x0 + bw, y0 + bh
        x0, y0, x1, y1 = self.box
        key = f"segmenter.box={_format_list(self.box)}"
        if x1 > width or y1 > height:
            raise InputError(key, f"does not fit inside the {width}x{height} image "
                                  f"(need x1 <= {width}, y1 <= {height})")
        if (x0, y0, x1, y1) == (0, 0, width, height):
            raise InputError(key, "covers the whole image; GrabCut needs background pixels "
                                  "outside the box")
        return x0, y0, x1, y1


def _scale_span(lo: int, hi: int, n: int, m: int) -> tuple[int, int]:
    """Pixels ``lo <= i < hi`` of ``n`` -> of ``m``, covering them, and leaving a pixel free on
    a side where the original span left one (GrabCut needs background outside its box)."""
    a, b = math.floor(lo * m / n), math.ceil(hi * m / n)
    if lo > 0:
        a = max(a, 1)
    if hi < n:
        b = min(b, m - 1)
    return a, max(b, a + 1)


def _keep_seeded_parts(mask: np.ndarray, sure: np.ndarray) -> np.ndarray:
    """The 8-connected pieces of a 0/1 mask that hold a pixel of ``sure`` (all when none does)."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    keep = np.unique(labels[sure & (labels > 0)])
    return np.isin(labels, keep).astype(np.float32) if len(keep) else mask


def _drop_small_parts(mask: np.ndarray, min_part: float) -> np.ndarray:
    """Keep the 8-connected pieces of a 0/1 mask with at least ``min_part`` x the largest area."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:  # background and at most one piece
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= min_part * areas.max()) + 1
    return np.isin(labels, keep).astype(np.float32)


class AutoSegmenter:
    """The image's alpha when it has a useful one, else GrabCut, seeded by the best guide at
    hand (the choice is logged):

    1. the alpha channel, when more than 1 % of its pixels are transparent (alpha < 0.5); an
       opaque one (a flat JPEG saved as PNG) says nothing about the character;
    2. ``box``, when given: GrabCut from that box;
    3. the art's own pose (``pose``), when given and confident: GrabCut from
       :class:`~dreamdance.scene.seeds.PoseSeeds`;
    4. saliency: GrabCut from :class:`~dreamdance.scene.seeds.SaliencySeeds`;
    5. when saliency finds no figure: GrabCut from the default box (the middle 60 % x 90 %).

    Args:
        box, iterations, max_side, feather, min_part: as in :class:`GrabCutSegmenter`.
        pose_seeds: how the pose seeds GrabCut (default: :class:`PoseSeeds`'s defaults).
        saliency_seeds: how saliency seeds GrabCut (default: :class:`SaliencySeeds`'s).
        pose: the art's own pose file (ours or OpenPose JSON; its first frame's driver), in
            the pixels of the frame the file states; scaled to the image it is called on, whose
            aspect ratio must match. Given by the scene stage from ``character_pose=``.
    """

    def __init__(self, box: Sequence[float] | None = None, iterations: int = 5,
                 max_side: int = 1024, feather: int = 0, min_part: float = 0.1,
                 pose_seeds: PoseSeeds | None = None,
                 saliency_seeds: SaliencySeeds | None = None,
                 pose: str | Path | None = None):
        self.grabcut = GrabCutSegmenter(box, iterations, max_side, feather, min_part)
        self.pose_seeds = pose_seeds or PoseSeeds()
        self.saliency_seeds = saliency_seeds or SaliencySeeds()
        self.pose, self.pose_name, self.pose_size = None, None, None
        if pose is not None:
            from dreamdance.motion.sources import read_pose_file

            self.pose_name = f"character_pose={pose}"
            poses = read_pose_file(Path(str(pose)).expanduser(), self.pose_name, fps=8.0)
            if len(poses) and poses.num_people:
                self.pose, self.pose_size = pose_frame(poses, 0), (poses.width, poses.height)
            else:
                log.warning("segmenter=auto: %s has no person; not used", self.pose_name)

    def __call__(self, rgb: np.ndarray, alpha: np.ndarray | None = None,
                 name: str = "image") -> np.ndarray:
        """Args: rgb ``[H, W, 3]``; alpha ``[H, W]`` or None. Returns ``[H, W]`` float32."""
        h, w = check_image(rgb, alpha)
        if alpha is not None and float((np.asarray(alpha) >= 0.5).mean()) < MAX_COVER:
            log.info("segmenter=auto: %s has a transparent background, using its alpha", name)
            return check_mask(alpha, name)
        why = "no alpha channel" if alpha is None else "an opaque alpha channel"
        if self.grabcut.box is not None:
            log.info("segmenter=auto: %s has %s, using GrabCut from segmenter.box=%s", name,
                     why, _format_list(self.grabcut.box))
            return self.grabcut(rgb, None, name=name)
        if self.pose is not None:
            seeds = self.pose_seeds(self._scaled_pose(w, h), w, h)
            if seeds is not None:
                log.info("segmenter=auto: %s has %s, using GrabCut seeded by its pose (%s)",
                         name, why, self.pose_name)
                return self.grabcut.segment(rgb, seeds, name=name)
            log.info("segmenter=auto: %s has no confident body; not used", self.pose_name)
        seeds = self.saliency_seeds(to_uint8(rgb))
        if seeds is not None:
            log.info("segmenter=auto: %s has %s and no pose, using GrabCut seeded by saliency "
                     "(%s)", name, why, self.saliency_seeds.method)
            return self.grabcut.segment(rgb, seeds, name=name)
        log.info("segmenter=auto: %s has %s and no pose, and saliency found no figure: using "
                 "GrabCut from the middle 60 %% x 90 %% of the image", name, why)
        return self.grabcut(rgb, None, name=name)

    def _scaled_pose(self, width: int, height: int) -> dict[str, np.ndarray]:
        """The pose in the pixels of a ``width x height`` image (aspect ratio checked)."""
        pw, ph = self.pose_size
        check_aspect((pw, ph), (width, height), self.pose_name, f"is for a {pw}x{ph} frame but "
                     f"the image is {width}x{height}", "give the pose of this image")
        scale = np.array([width / pw, height / ph], np.float32)
        return {part: map_keypoints(np.asarray(kp, np.float32), scale, 0.0)
                for part, kp in self.pose.items() if kp is not None}


# --------------------------------------------------------------------------------------------
# Helpers


def check_aspect(size: tuple[int, int], image: tuple[int, int], name: str, what: str,
                 fix: str) -> None:
    """A mask's or pose's ``size (w, h)`` must have the aspect ratio of the ``image (W, H)``
    up to :data:`MAX_ASPECT_CHANGE` and the working size's snapping; else an
    :class:`InputError` naming ``name``: ``what``, by how much, and ``fix``."""
    change = abs((size[0] / size[1]) / (image[0] / image[1]) - 1.0)
    allowed = MAX_ASPECT_CHANGE + SNAP / image[0] + SNAP / image[1]
    if change > allowed:
        raise InputError(name, f"{what}: their aspect ratios differ by {change:.1%} (more than "
                               f"{allowed:.1%}); {fix}")


def check_image(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[int, int]:
    """Check canonical ``rgb [H, W, 3]`` and ``alpha [H, W]`` (or None); return ``(H, W)``."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"rgb must be [H, W, 3], got shape {rgb.shape}")
    if alpha is not None and np.shape(alpha) != rgb.shape[:2]:
        raise ValueError(f"alpha must be [H, W] = {rgb.shape[:2]}, got {np.shape(alpha)}")
    return rgb.shape[0], rgb.shape[1]


def _check_box(box: Any) -> tuple[int, int, int, int]:
    """``[x0, y0, x1, y1]``: four whole numbers with ``0 <= x0 < x1`` and ``0 <= y0 < y1``."""
    values = list(box) if isinstance(box, Sequence) and not isinstance(box, str) else [box]
    key = f"segmenter.box={_format_list(values)}"
    if len(values) != 4:
        raise InputError(key, "must be four pixel coordinates [x0,y0,x1,y1]")
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v).is_integer()
               for v in values):
        raise InputError(key, "must be four whole pixel coordinates [x0,y0,x1,y1]")
    x0, y0, x1, y1 = (int(v) for v in values)
    if min(x0, y0) < 0:
        raise InputError(key, "x0 and y0 must be >= 0 (the box must lie inside the image)")
    if not (x0 < x1 and y0 < y1):
        raise InputError(key, "needs x0 < x1 and y0 < y1")
    return x0, y0, x1, y1


def check_int(value: Any, key: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InputError(f"{key}={value}", f"must be an integer >= {low}")


def _format_list(values: Any) -> str:
    """``[1, 2, 3]`` as a user writes it on the command line: ``[1,2,3]``."""
    if isinstance(values, Sequence) and not isinstance(values, str):
        return "[" + ",".join(_format_list(v) for v in values) + "]"
    if isinstance(values, float) and values.is_integer():
        return str(int(values))
    return str(values)


