"""Painting the person out of the driving video, so that the video can be the background.

Two pieces:

- :func:`person_masks`: per frame, every person's region. GrabCut (:class:`GrabCutPerson`, the
  default; ``person=segmenter``: :class:`CropPerson`, the configured ``segmenter=`` — BiRefNet —
  on the box's crop) seeded by each person's pose box
  (:func:`dreamdance.motion.align.pose_box`, grown by :func:`~dreamdance.scene.segment.seed_box`), the
  pose mask (:func:`dreamdance.motion.mask.pose_masks`) where GrabCut finds nothing, all
  dilated by ``dilate × long side``.
- :func:`fill_background`: per frame, the masked pixels are filled **first from other frames**
  of the same video where that background is visible, and only the rest by inpainting (OpenCV
  Telea).

**Alignment.** Each other frame ``s`` (up to ``window`` frames either side of ``t``) is aligned
to ``t`` by a homography ``H_st`` estimated on the *background only*: corners
(``cv2.goodFeaturesToTrack``) of frame ``t`` outside both masks are tracked into ``s`` with
pyramidal Lucas-Kanade, kept when the backward track returns within ``FB_ERROR`` pixels and
lands outside ``s``'s mask, and ``cv2.findHomography`` fits ``H_st`` with RANSAC. A homography
is exact for a static or rotating (pan / tilt / zoom) camera and a good approximation for a
slowly moving one whose scene is far away, and it is estimated from pixels around the hole and
*extrapolated* into it. Dense optical flow (DIS, Farneback) is not used: inside the hole it
would follow the person, not the hidden background, which is exactly what we need to see
through.

**Fill.** Frame ``s`` is warped into ``t`` (``cv2.warpPerspective``); its pixel counts for a
masked pixel of ``t`` when, warped, it lies inside frame ``s`` and outside ``s``'s mask. A
masked pixel seen by at least one other frame takes the per-channel median of those frames
(robust to a frame whose alignment or mask is a little off); ``source = 1``. The pixels no
other frame sees are inpainted in the frame so filled (``cv2.inpaint``, Telea, radius
``INPAINT_RADIUS``); ``source = 2``. Pixels outside the mask are kept, bit for bit
(``source = 0``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from dreamdance.errors import InputError
from dreamdance.motion.align import CharacterFrame, align_poses, pose_box, pose_frame
from dreamdance.motion.mask import pose_masks
from dreamdance.motion.poses import PoseSequence
from dreamdance.scene.segment import GrabCutSegmenter, seed_box

log = logging.getLogger(__name__)

KEPT, FROM_FRAMES, INPAINTED = 0, 1, 2  # the values of ``source``
MAX_CORNERS = 400      # background corners tracked per frame pair
MIN_MATCHES = 12       # fewer good tracks than this: the pair is not aligned (frame skipped)
FB_ERROR = 1.0         # forward-backward Lucas-Kanade error, pixels, for a track to count
RANSAC_THRESHOLD = 2.0  # pixels
EDGE_GUARD = 2         # features this close (pixels) to a mask are not used
INPAINT_RADIUS = 3     # cv2.inpaint radius, pixels


# --------------------------------------------------------------------------------------------
# The person's region


class GrabCutPerson:
    """A person's mask: OpenCV GrabCut seeded by their box (CPU, no weights; the default)."""

    def __call__(self, frame: np.ndarray, box: list[int], name: str) -> np.ndarray | None:
        """``frame [H, W, 3] uint8``, ``box`` (x0, y0, x1, y1) px -> ``[H, W] bool``, or None
        when GrabCut finds nothing in the box."""
        try:
            cut = GrabCutSegmenter(box=box)(frame.astype(np.float32) / 255.0, None, name=name)
        except InputError as e:
            log.debug("%s", e)
            return None
        return cut >= 0.5


class CropPerson:
    """A person's mask: an image segmenter (``segmenter=``, BiRefNet with
    ``segmenter=birefnet``) run on the crop of their box, pasted back into the frame.

    A pose box hugs the joints, not the clothes and flesh around them, so the crop is the box
    grown by ``margin`` × its size on every side (clipped to the frame).

    Args:
        segmenter: called as ``segmenter(rgb [h, w, 3] float32, None, name=...)`` -> ``[h, w]``
            in [0, 1] (:mod:`dreamdance.scene.segment`).
        margin: growth of the crop per side, fraction of the box's width and height, >= 0.
    """

    def __init__(self, segmenter, margin: float = 0.25):
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin >= 0:
            raise InputError(f"person.margin={margin}", "must be a number >= 0")
        self.segmenter = segmenter
        self.margin = float(margin)

    def __call__(self, frame: np.ndarray, box: list[int], name: str) -> np.ndarray | None:
        h, w = frame.shape[:2]
        gx, gy = self.margin * (box[2] - box[0]), self.margin * (box[3] - box[1])
        x0, y0 = max(0, int(box[0] - gx)), max(0, int(box[1] - gy))
        x1, y1 = min(w, int(np.ceil(box[2] + gx))), min(h, int(np.ceil(box[3] + gy)))
        crop = frame[y0:y1, x0:x1].astype(np.float32) / 255.0
        try:
            cut = self.segmenter(crop, None, name=name)
        except InputError as e:
            log.debug("%s", e)
            return None
        out = np.zeros(frame.shape[:2], bool)
        out[y0:y1, x0:x1] = np.asarray(cut) >= 0.5
        return out if out.any() else None


def person_masks(frames: np.ndarray, poses: PoseSequence, dilate: float = 0.03,
                 segment=None) -> np.ndarray:
    """Every person's region in every frame: ``segment`` seeded by each person's pose box.

    A person whose box is missing or too small, or in whose box ``segment`` finds nothing, gets
    its pose mask (:func:`dreamdance.motion.mask.pose_masks`) instead.

    Args:
        frames: the video.  [T, H, W, 3] uint8
        poses: its poses, in its pixels (``poses.width × poses.height == W × H``).  [T, P, K, 3]
        dilate: growth of the region, as a fraction of the frame's long side, >= 0.
        segment: ``segment(frame, box, name) -> [H, W] bool | None``; None:
            :class:`GrabCutPerson`.

    Returns:
        True = a person.  [T, H, W] bool (all False in a frame with no person)
    """
    frames = _check_frames(frames)
    segment = GrabCutPerson() if segment is None else segment
    t, h, w, _ = frames.shape
    if len(poses) != t or (poses.width, poses.height) != (w, h):
        raise ValueError(f"poses are {len(poses)} frames of {poses.width}x{poses.height}, the "
                         f"video {t} frames of {w}x{h}")
    if not np.isfinite(dilate) or dilate < 0:
        raise ValueError(f"dilate={dilate}: must be a number >= 0")
    out = np.zeros((t, h, w), bool)
    fell_back = 0
    for p in range(poses.num_people):
        fallback = None
        for i in range(t):
            pose = pose_box(pose_frame(poses, i, p))
            if pose is None:
                continue  # this person is not in this frame
            box = seed_box(pose, w, h)
            cut = None if box is None else segment(frames[i], box, f"frame {i} person {p}")
            if cut is not None:
                out[i] |= cut
                continue
            if fallback is None:
                fallback = pose_masks(poses, dilate=0.0, person=p)
            out[i] |= fallback[i]
            fell_back += 1
    if fell_back:
        log.warning("person masks: the segmenter found nothing in %d person box(es); their "
                    "pose masks are used", fell_back)
    grow = int(round(dilate * max(h, w)))
    if grow > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        for i in range(t):
            if out[i].any():
                out[i] = cv2.dilate(out[i].astype(np.uint8), kernel).astype(bool)
    return out


# --------------------------------------------------------------------------------------------
# Filling the region


def fill_background(frames: np.ndarray, masks: np.ndarray, window: int = 12,
                    progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Paint the masked pixels out: from aligned other frames first, the rest by inpainting.

    Args:
        frames: the video.  [T, H, W, 3] uint8
        masks: True = remove.  [T, H, W] bool
        window: other frames considered, up to this many either side, >= 0.
        progress: show a progress bar (tqdm).

    Returns:
        ``(filled, source)``: the video with the masked pixels replaced, [T, H, W, 3] uint8;
        where each pixel comes from (0 kept, 1 other frames, 2 inpainted), [T, H, W] uint8.
    """
    frames = _check_frames(frames)
    masks = np.asarray(masks)
    if masks.shape != frames.shape[:3] or masks.dtype != bool:
        raise ValueError(f"masks must be bool [T, H, W] = {frames.shape[:3]}, got "
                         f"{masks.dtype} {masks.shape}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise ValueError(f"window={window}: must be an integer >= 0")
    t_len, h, w, _ = frames.shape
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])  # (T, H, W)
    filled = frames.copy()
    source = np.zeros((t_len, h, w), np.uint8)
    steps = range(t_len)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="painting out the person", unit="frame")
    for t in steps:
        hole = masks[t]
        if not hole.any():
            continue
        seen = _from_other_frames(frames, gray, masks, t, window)  # (H, W, 3), (H, W)
        filled[t][seen[1]] = seen[0][seen[1]]
        source[t][seen[1]] = FROM_FRAMES
        rest = hole & ~seen[1]
        if rest.any():
            if rest.all():
                raise InputError(f"frame {t}", "the mask covers the whole frame; nothing is "
                                               "left to fill it from")
            painted = cv2.inpaint(filled[t], rest.astype(np.uint8), INPAINT_RADIUS,
                                  cv2.INPAINT_TELEA)
            filled[t][rest] = painted[rest]
            source[t][rest] = INPAINTED
    return filled, source


def _from_other_frames(frames: np.ndarray, gray: np.ndarray, masks: np.ndarray, t: int,
                       window: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``t``'s masked pixels as the median of the aligned frames that see them.

    Args:
        frames: [T, H, W, 3] uint8
        gray: the frames in grey.  [T, H, W] uint8
        masks: [T, H, W] bool
        t: the frame to fill.
        window: frames either side.

    Returns:
        ``(values [H, W, 3] uint8, seen [H, W] bool)``; ``values`` is meaningful where ``seen``.
    """
    t_len, h, w, _ = frames.shape
    hole = masks[t]
    ys, xs = np.nonzero(hole)
    samples, valid = [], []
    for s in _neighbours(t, t_len, window):
        homography = _background_homography(gray[t], gray[s], masks[t], masks[s])
        if homography is None:
            continue
        warped = cv2.warpPerspective(frames[s], homography, (w, h), flags=cv2.INTER_LINEAR)
        # visible in s: inside frame s, outside its (edge-guarded) mask
        visible = (~masks[s]).astype(np.uint8)
        visible = cv2.erode(visible, np.ones((3, 3), np.uint8), borderValue=1)
        visible = cv2.warpPerspective(visible, homography, (w, h), flags=cv2.INTER_NEAREST,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        samples.append(warped[ys, xs])           # (N, 3)
        valid.append(visible[ys, xs].astype(bool))  # (N,)
    values = np.zeros((h, w, 3), np.uint8)
    seen = np.zeros((h, w), bool)
    if not samples:
        return values, seen
    stack = np.stack(samples).astype(np.float32)   # (S, N, 3)
    ok = np.stack(valid)                           # (S, N)
    stack[~ok] = np.nan
    any_ok = ok.any(0)                             # (N,)
    med = np.zeros((len(ys), 3), np.float32)
    if any_ok.any():
        med[any_ok] = np.nanmedian(stack[:, any_ok], axis=0)
    values[ys, xs] = np.clip(np.rint(med), 0, 255).astype(np.uint8)
    seen[ys, xs] = any_ok
    return values, seen


def _neighbours(t: int, n: int, window: int) -> list[int]:
    """The frames within ``window`` of ``t`` (not ``t``), nearest first."""
    order = sorted(range(max(0, t - window), min(n, t + window + 1)), key=lambda s: abs(s - t))
    return [s for s in order if s != t]


def _background_homography(target: np.ndarray, other: np.ndarray, target_mask: np.ndarray,
                           other_mask: np.ndarray) -> np.ndarray | None:
    """The homography taking pixels of ``other`` to ``target``, from background tracks.

    Args:
        target: [H, W] uint8
        other: [H, W] uint8
        target_mask: [H, W] bool
        other_mask: [H, W] bool

    Returns:
        [3, 3] float64, or None when too few background tracks agree.
    """
    guard = np.ones((2 * EDGE_GUARD + 1,) * 2, np.uint8)
    background = cv2.erode((~(target_mask | other_mask)).astype(np.uint8), guard)
    corners = cv2.goodFeaturesToTrack(target, MAX_CORNERS, 0.01, 4, mask=background)
    if corners is None or len(corners) < MIN_MATCHES:
        return None
    lk = dict(winSize=(15, 15), maxLevel=3,
              criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    ahead, ok1, _ = cv2.calcOpticalFlowPyrLK(target, other, corners, None, **lk)
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(other, target, ahead, None, **lk)
    h, w = target.shape
    good = (ok1.ravel() == 1) & (ok2.ravel() == 1)
    good &= np.linalg.norm((back - corners).reshape(-1, 2), axis=1) < FB_ERROR
    xy = np.rint(ahead.reshape(-1, 2)).astype(int)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    good &= inside
    good[inside] &= ~other_mask[xy[inside, 1], xy[inside, 0]]
    if good.sum() < MIN_MATCHES:
        return None
    homography, inliers = cv2.findHomography(ahead[good], corners[good], cv2.RANSAC,
                                             RANSAC_THRESHOLD)
    if homography is None or inliers is None or int(inliers.sum()) < MIN_MATCHES:
        return None
    return homography


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} "
                         f"{frames.shape}")
    return frames


# --------------------------------------------------------------------------------------------
# The whole removal


@dataclass(frozen=True)
class Removal:
    """The person painted out of a video.

    Args:
        filled: the person-free video.  [T, H, W, 3] uint8
        masks: the removed region.  [T, H, W] bool
        source: where each pixel comes from (KEPT, FROM_FRAMES, INPAINTED).  [T, H, W] uint8
    """

    filled: np.ndarray
    masks: np.ndarray
    source: np.ndarray

    def summary(self) -> dict:
        """Fractions of the removed pixels filled from other frames and inpainted."""
        n = max(int(self.masks.sum()), 1)
        return {"frames": len(self.masks), "removed_fraction": float(self.masks.mean()),
                "from_frames": float((self.source == FROM_FRAMES).sum() / n),
                "inpainted": float((self.source == INPAINTED).sum() / n)}

    def describe(self) -> str:
        s = self.summary()
        return (f"{100 * s['removed_fraction']:.1f}% of the pixels masked; of them "
                f"{100 * s['from_frames']:.1f}% seen in other frames, {100 * s['inpainted']:.1f}% "
                f"inpainted")


def remove_person(frames: np.ndarray, poses: PoseSequence, dilate: float, window: int,
                  segment=None, name: str = "driving") -> Removal:
    """Every person of ``poses`` painted out of ``frames``: :func:`person_masks` then
    :func:`fill_background` (with a progress bar).

    Args:
        frames: the video.  [T, H, W, 3] uint8
        poses: its poses in any frame of the same shape (rescaled to ``W × H`` here).
        segment: the person segmenter (see :func:`person_masks`).
        name: the video as the user gave it, for the error.

    Raises:
        InputError: (naming ``name``) no person in any frame.
    """
    t, h, w, _ = frames.shape
    if len(poses) != t:
        raise ValueError(f"{len(poses)} poses for {t} frames")
    poses = align_poses(poses, CharacterFrame((0, 0, w, h), w, h), "none")
    masks = person_masks(frames, poses, dilate, segment)
    if not masks.any():
        raise InputError(name, "no person to replace in any frame")
    filled, source = fill_background(frames, masks, window, progress=True)
    return Removal(filled, masks, source)
