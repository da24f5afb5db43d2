"""Degrading a real clip's background so that it looks like a rendered Gaussian scene.

Training is "3D-Gaussian-free": the background the model is conditioned on is the clip itself
with the character removed (:func:`remove_character`) and then degraded (:func:`degrade`) the
way a Gaussian rendering is imperfect: black holes where no Gaussian covers the view
(:func:`black_blocks`), noise (:func:`add_noise`), softness (:func:`blur`) and a slightly
wrong camera (:func:`perspective_warp`, black where the warped view has no content).

**One draw per clip.** Every random choice is made once per clip and applied identically to
every frame: the blocks sit at the same place, the blur and noise have the same strength and
the homography is the same, so the defects stay fixed over the clip like a renderer's defects
on a scene and the clip's own camera motion is kept. The only exception is the noise itself,
whose per-pixel values are drawn afresh for each frame (its ``sigma`` is per clip).

Videos are ``[F, H, W, 3]`` float32 in [0, 1]; masks ``[F, H, W]`` float32 in {0, 1} (any
value >= 0.5 counts as inside). No function changes its input.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import cv2
import numpy as np

from dreamdance.settings import FromConf

MAX_PERSPECTIVE = 0.5      # corners may not move by half the frame or more (the warp folds)
FILL_SIZE = 128            # remove_character inpaints on frames downscaled to this long side
FILL_RADIUS = 3            # OpenCV inpainting radius, in pixels of the downscaled frame


def _check_video(video: np.ndarray) -> np.ndarray:
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[3] != 3 or min(video.shape[:3]) < 1:
        raise ValueError(f"video must be [F, H, W, 3] with F, H, W >= 1, got {video.shape}")
    if video.dtype != np.float32:
        raise ValueError(f"video must be float32 in [0, 1], got {video.dtype}")
    return video


def _check_masks(masks: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [F, H, W], got shape {masks.shape}")
    if shape is not None and masks.shape != shape:
        raise ValueError(f"masks must be [F, H, W] = {shape} like the video, got {masks.shape}")
    return masks >= 0.5


def _check_number(value, what: str, lo: float = 0.0, hi: float = math.inf,
                  hi_open: bool = False) -> None:
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value) and lo <= value and (value < hi if hi_open else value <= hi))
    if not ok:
        bound = f"< {hi}" if hi_open else f"<= {hi}"
        raise ValueError(f"{what} must be a number >= {lo} and {bound}, got {value!r}")


# --------------------------------------------------------------------------------------------
# The degradations


def black_blocks(video: np.ndarray, rng: np.random.Generator, count: int,
                 size: float) -> np.ndarray:
    """Black out ``count`` random rectangles, the same in every frame (holes in a rendering).

    Each rectangle's height is drawn uniformly in ``[size / 2, size] × H`` and its width in
    ``[size / 2, size] × W`` (rounded, at least one pixel), placed uniformly inside the frame.
    Rectangles may overlap.

    Args:
        video: [F, H, W, 3]
        count: number of rectangles, >= 0.
        size: the largest side as a fraction of the frame's side, in [0, 1]; 0: no change.

    Returns:
        [F, H, W, 3] float32, a copy.
    """
    video = _check_video(video)
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")
    _check_number(size, "size", 0.0, 1.0)
    out = video.copy()
    if count == 0 or size == 0:
        return out
    _, h, w, _ = video.shape
    for _ in range(count):
        bh = max(1, int(round(rng.uniform(size / 2, size) * h)))
        bw = max(1, int(round(rng.uniform(size / 2, size) * w)))
        y0 = int(rng.integers(0, h - bh + 1))
        x0 = int(rng.integers(0, w - bw + 1))
        out[:, y0:y0 + bh, x0:x0 + bw] = 0.0
    return out


def add_noise(video: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``sigma`` (fresh per pixel and frame), clipped
    to [0, 1].

    Args:
        video: [F, H, W, 3]
        sigma: >= 0, in units of the [0, 1] range; 0: no change.

    Returns:
        [F, H, W, 3] float32.
    """
    video = _check_video(video)
    _check_number(sigma, "sigma")
    if sigma == 0:
        return video.copy()
    noise = rng.standard_normal(video.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(video + noise, 0.0, 1.0, dtype=np.float32)


def blur(video: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian blur (OpenCV, reflected borders) of standard deviation ``sigma`` pixels, the
    same in every frame.

    Args:
        video: [F, H, W, 3]
        rng: unused (the blur is deterministic); kept so that every degradation has one
            signature.
        sigma: >= 0, in pixels; 0: no change.

    Returns:
        [F, H, W, 3] float32.
    """
    video = _check_video(video)
    _check_number(sigma, "sigma")
    if sigma == 0:
        return video.copy()
    return np.stack([cv2.GaussianBlur(frame, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma),
                                      borderType=cv2.BORDER_REFLECT_101) for frame in video])


def random_homography(rng: np.random.Generator, width: int, height: int,
                      strength: float) -> np.ndarray:
    """A homography moving each frame corner by up to ``strength × (W, H)``.

    Corners are the pixel centres ``(0, 0), (W-1, 0), (W-1, H-1), (0, H-1)`` in OpenCV pixel
    coordinates (x right, y down); each moves by ``(u · W, v · H)`` with ``u, v`` uniform in
    ``[-strength, strength]``.

    Args:
        strength: in [0, 0.5).

    Returns:
        [3, 3] float64 mapping source pixels to warped pixels (``H @ (x, y, 1)``).
    """
    _check_number(strength, "strength", 0.0, MAX_PERSPECTIVE, hi_open=True)
    src = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]],
                   np.float32)
    shift = rng.uniform(-strength, strength, (4, 2)) * np.array([width, height])
    dst = (src + shift).astype(np.float32)
    return cv2.getPerspectiveTransform(src, dst)


def perspective_warp(video: np.ndarray, rng: np.random.Generator,
                     strength: float) -> np.ndarray:
    """Warp every frame by one random homography (:func:`random_homography`, drawn from
    ``rng``), bilinear, black where the warped frame has no source pixel.

    Args:
        video: [F, H, W, 3]
        strength: corner displacement as a fraction of the frame size, in [0, 0.5);
            0: no change.

    Returns:
        [F, H, W, 3] float32.
    """
    video = _check_video(video)
    _check_number(strength, "strength", 0.0, MAX_PERSPECTIVE, hi_open=True)
    if strength == 0:
        return video.copy()
    _, h, w, _ = video.shape
    homography = random_homography(rng, w, h, strength)
    return np.stack([cv2.warpPerspective(frame, homography, (w, h), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                     for frame in video])


# --------------------------------------------------------------------------------------------
# The configuration and the whole chain


@dataclass
class DegradeConfig(FromConf):
    """How likely and how strong each degradation is: ``train.data.degrade`` of
    ``conf/stage/train.yaml`` (``DegradeConfig.from_conf(**changes)``).

    Args:
        blocks_p: probability of black blocks, in [0, 1].
        blocks_count: the most blocks; a clip gets 1..``blocks_count`` of them, >= 0.
        blocks_size: the largest block side as a fraction of the frame, in [0, 1].
        noise_p: probability of noise, in [0, 1].
        noise_sigma: the largest noise std (a clip draws its std uniformly up to it), >= 0.
        blur_p: probability of blur, in [0, 1].
        blur_sigma: the largest blur std in pixels of the training size (drawn uniformly up
            to it), >= 0.
        perspective_p: probability of a perspective warp, in [0, 1].
        perspective_strength: the largest corner displacement as a fraction of the frame,
            in [0, 0.5).
    """

    blocks_p: float
    blocks_count: int
    blocks_size: float
    noise_p: float
    noise_sigma: float
    blur_p: float
    blur_sigma: float
    perspective_p: float
    perspective_strength: float

    conf_file = "stage/train"
    conf_key = "train.data.degrade"

    def __post_init__(self):
        for key in ("blocks_p", "noise_p", "blur_p", "perspective_p"):
            _check_number(getattr(self, key), f"degrade.{key}", 0.0, 1.0)
        count = self.blocks_count
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
            raise ValueError(f"degrade.blocks_count must be an integer >= 0, got {count!r}")
        _check_number(self.blocks_size, "degrade.blocks_size", 0.0, 1.0)
        _check_number(self.noise_sigma, "degrade.noise_sigma")
        _check_number(self.blur_sigma, "degrade.blur_sigma")
        _check_number(self.perspective_strength, "degrade.perspective_strength", 0.0,
                      MAX_PERSPECTIVE, hi_open=True)


def degrade(video: np.ndarray, rng: np.random.Generator,
            cfg: DegradeConfig | None = None) -> np.ndarray:
    """Apply each degradation with its probability, in the order a renderer's defects arise:
    perspective warp, black blocks, blur, noise.

    Each step draws its coin and strength from ``rng`` whether or not it applies, so the
    draws of one step do not depend on another's probability. A probability or strength of 0
    makes that step the identity; all of them 0 returns a bit-exact copy.

    Args:
        video: [F, H, W, 3]
        cfg: the probabilities and strengths (the config file's when None).

    Returns:
        [F, H, W, 3] float32.
    """
    video = _check_video(video)
    cfg = DegradeConfig.from_conf() if cfg is None else cfg
    out = video.copy()
    coins = rng.random(4)
    strengths = rng.random(2)
    counts = int(rng.integers(1, max(cfg.blocks_count, 1) + 1))
    if coins[0] < cfg.perspective_p and cfg.perspective_strength > 0:
        out = perspective_warp(out, rng, cfg.perspective_strength)
    if coins[1] < cfg.blocks_p and cfg.blocks_count > 0 and cfg.blocks_size > 0:
        out = black_blocks(out, rng, counts, cfg.blocks_size)
    if coins[2] < cfg.blur_p and cfg.blur_sigma > 0:
        out = blur(out, rng, float(strengths[0]) * cfg.blur_sigma)
    if coins[3] < cfg.noise_p and cfg.noise_sigma > 0:
        out = add_noise(out, rng, float(strengths[1]) * cfg.noise_sigma)
    return out


# --------------------------------------------------------------------------------------------
# The character's region


def remove_character(video: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The clip with the character's region filled from its surroundings.

    Each frame is downscaled so that its long side is at most :data:`FILL_SIZE`, inpainted
    there (OpenCV Telea) inside the downscaled mask (grown by one pixel so that no character
    colour bleeds in), upscaled, and pasted back inside the mask only: pixels outside the mask
    are unchanged, bit for bit. A frame with an empty mask is copied as it is.

    Args:
        video: [F, H, W, 3]
        masks: the character, >= 0.5 inside.  [F, H, W]

    Returns:
        [F, H, W, 3] float32.
    """
    video = _check_video(video)
    inside = _check_masks(masks, video.shape[:3])
    out = video.copy()
    _, h, w, _ = video.shape
    scale = min(1.0, FILL_SIZE / max(h, w))
    small = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    kernel = np.ones((3, 3), np.uint8)
    for t in range(len(video)):
        if not inside[t].any():
            continue
        frame = cv2.resize(np.clip(np.rint(video[t] * 255), 0, 255).astype(np.uint8), small,
                           interpolation=cv2.INTER_AREA)
        hole = cv2.resize(inside[t].astype(np.float32), small, interpolation=cv2.INTER_AREA) > 0
        hole = cv2.dilate(hole.astype(np.uint8), kernel)
        filled = cv2.inpaint(frame, hole, FILL_RADIUS, cv2.INPAINT_TELEA)
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
        out[t][inside[t]] = filled[inside[t]].astype(np.float32) / 255.0
    return out


def character_boxes(masks: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """Per frame, 1 inside the bounding box of the character mask grown by ``margin`` × the
    box's width (left and right) and height (top and bottom), clipped to the frame.

    Args:
        masks: the character, >= 0.5 inside.  [F, H, W]
        margin: >= 0.

    Returns:
        [F, H, W] float32 in {0, 1}; all 0 in a frame with an empty mask.
    """
    inside = _check_masks(masks)
    _check_number(margin, "margin")
    f, h, w = inside.shape
    out = np.zeros((f, h, w), np.float32)
    for t in range(f):
        rows = np.flatnonzero(inside[t].any(axis=1))
        if len(rows) == 0:
            continue
        cols = np.flatnonzero(inside[t].any(axis=0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        gy, gx = margin * (y1 - y0), margin * (x1 - x0)
        y0, y1 = max(0, int(math.floor(y0 - gy))), min(h, int(math.ceil(y1 + gy)))
        x0, x1 = max(0, int(math.floor(x0 - gx))), min(w, int(math.ceil(x1 + gx)))
        out[t, y0:y1, x0:x1] = 1.0
    return out
