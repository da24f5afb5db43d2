"""Top-down pose estimation's geometry: from a person's box to a model input, and from the
model's output back to keypoints in frame pixels. Shared by both pose backends.

1. **Region** (:func:`box_to_roi`): the box grows along one side to the model input's aspect
   ratio, then by 1.25 about its centre (mmpose's ``bbox_xyxy2cs`` + ``_fix_aspect_ratio``,
   transformers' ``box_to_center_and_scale``).
2. **Crop** (:func:`crop_matrix`, :func:`crop_person`): the region warped to the input size by a
   scale and a shift (no rotation), bilinear, black outside the frame. ViTPose's processor uses
   the "unbiased" warp (the region's edges land on the first and last pixel centres); RTMPose's
   (DWPose) the plain one (the region fills the input's ``w x h`` pixels edge to edge).
3. **Decoding**: heatmaps (ViTPose: argmax refined by DARK, :func:`heatmaps_to_keypoints`) or
   SimCC vectors (RTMPose: :func:`decode_simcc`).
"""

from __future__ import annotations

import cv2
import numpy as np

BOX_PADDING = 1.25  # mmpose's / box_to_center_and_scale's padding factor
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # of 0..1 values; both pose models normalise with them
IMAGENET_STD = (0.229, 0.224, 0.225)
DARK_KERNEL = 11    # post_process_pose_estimation's kernel_size
DARK_SIGMA = 0.8
SIMCC_SPLIT_RATIO = 2.0  # RTMPose's SimCC bins per input pixel


def box_to_roi(box: np.ndarray, aspect: float,
               padding: float = BOX_PADDING) -> tuple[np.ndarray, np.ndarray]:
    """The region a person box is cropped from: its centre and padded size in pixels.

    As ``box_to_center_and_scale``: the box grows along one side to the model's aspect ratio
    (``width / height`` of its input), then both sides by ``padding``.

    Args:
        box: ``(x0, y0, x1, y1)`` in pixels. [4]
        aspect: the model input's width / height (0.75 for 192 × 256).

    Returns:
        ``(center [2], size [2])``: ``(cx, cy)`` and ``(w, h)`` in pixels, float64.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    center = np.array([x0 + 0.5 * w, y0 + 0.5 * h])
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    return center, np.array([w, h]) * padding


def crop_matrix(center: np.ndarray, size: np.ndarray, out_size: tuple[int, int],
                unbiased: bool = True) -> np.ndarray:
    """The affine map from frame pixels to crop pixels (mmpose's ``get_warp_matrix`` with no
    rotation).

    Unbiased (ViTPose's processor): the region's edges land on the first and last pixel centres,
    ``crop = (frame - center + size / 2) · (out - 1) / size``. Plain (RTMPose, DWPose): one scale
    ``s = out_w / size_w`` for both axes (the region already has the input's aspect) and the
    region's centre on the input's, ``crop = s · frame + out / 2 - s · center``.

    Args:
        center, size: the region (see :func:`box_to_roi`). [2], [2]
        out_size: the crop's ``(height, width)``.
        unbiased: which of the two.

    Returns:
        [2, 3] float64: ``crop_xy = M @ (x, y, 1)``.
    """
    out_h, out_w = out_size
    if not unbiased:
        s = out_w / size[0]
        return np.array([[s, 0.0, out_w / 2 - s * center[0]],
                         [0.0, s, out_h / 2 - s * center[1]]], np.float64)
    sx, sy = (out_w - 1.0) / size[0], (out_h - 1.0) / size[1]
    return np.array([[sx, 0.0, sx * (0.5 * size[0] - center[0])],
                     [0.0, sy, sy * (0.5 * size[1] - center[1])]])


def crop_person(rgb: np.ndarray, center: np.ndarray, size: np.ndarray,
                out_size: tuple[int, int], unbiased: bool = True) -> np.ndarray:
    """Warp a person's region to the pose model's input size (bilinear; black outside).

    Args:
        rgb: the frame. [H, W, 3]
        center, size: the region (see :func:`box_to_roi`). [2], [2]
        out_size: ``(height, width)`` of the crop.
        unbiased: the warp (see :func:`crop_matrix`).

    Returns:
        [height, width, 3] of ``rgb``'s dtype
    """
    m = crop_matrix(center, size, out_size, unbiased)
    return cv2.warpAffine(rgb, m, (out_size[1], out_size[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def heatmaps_to_keypoints(heatmaps: np.ndarray, centers: np.ndarray, sizes: np.ndarray,
                          kernel: int = DARK_KERNEL) -> np.ndarray:
    """Heatmaps of cropped people -> keypoints in frame pixels, as
    ``VitPoseImageProcessor.post_process_pose_estimation``.

    Each heatmap's argmax is refined by DARK: the heatmap is blurred (Gaussian, sigma 0.8, radius
    ``(kernel - 1) // 2``, mirrored edges), clipped to ``[0.001, 50]`` and its log taken; one
    Newton step ``-H^-1 g`` from finite differences moves the peak. A step longer than one heatmap
    pixel along an axis (only a flat or saddle-shaped neighbourhood gives one) is not taken. The
    heatmap position maps back through the crop (``x = hx * w / (w_hm - 1) + cx - w / 2``). A
    keypoint whose heatmap maximum is not positive is absent: all zeros.

    Args:
        heatmaps: [N, K, h, w]
        centers: region centres in pixels. [N, 2]
        sizes: region sizes ``(w, h)`` in pixels. [N, 2]
        kernel: the blur's size (odd).

    Returns:
        ``(x, y, confidence)`` with confidence the heatmap maximum. [N, K, 3] float32
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    assert heatmaps.ndim == 4, heatmaps.shape
    n, k, h, w = heatmaps.shape
    centers = np.asarray(centers, dtype=np.float64).reshape(n, 2)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(n, 2)
    flat = heatmaps.reshape(n, k, h * w)
    idx = flat.argmax(axis=2)  # [N, K]
    scores = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]  # [N, K]
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float64)  # [N, K, 2]
    coords += _dark_step(heatmaps, idx % w, idx // w, kernel)
    scale = sizes / np.array([w - 1.0, h - 1.0])  # [N, 2]
    xy = coords * scale[:, None] + (centers - 0.5 * sizes)[:, None]  # [N, K, 2]
    out = np.concatenate([xy, scores[..., None]], axis=-1).astype(np.float32)
    out[scores <= 0] = 0.0
    return out


def _dark_step(heatmaps: np.ndarray, x: np.ndarray, y: np.ndarray, kernel: int) -> np.ndarray:
    """DARK's Newton step at integer peaks ``(x, y)`` [N, K] of ``heatmaps`` [N, K, h, w]."""
    n, k, h, w = heatmaps.shape
    radius = (kernel - 1) // 2
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * taps**2 / DARK_SIGMA**2)
    g /= g.sum()
    # separable blur with scipy.ndimage's "reflect" edges (numpy's "symmetric")
    pad = np.pad(heatmaps.astype(np.float64), ((0, 0), (0, 0), (radius, radius), (0, 0)),
                 mode="symmetric")
    blur = sum(g[i] * pad[:, :, i:i + h] for i in range(kernel))
    pad = np.pad(blur, ((0, 0), (0, 0), (0, 0), (radius, radius)), mode="symmetric")
    blur = sum(g[i] * pad[..., i:i + w] for i in range(kernel))
    logh = np.log(np.clip(blur, 0.001, 50.0))
    logh = np.pad(logh, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")  # [N, K, h+2, w+2]
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    cx, cy = x + 1, y + 1

    def at(dx: int, dy: int) -> np.ndarray:
        return logh[ni, ki, cy + dy, cx + dx]

    i0 = at(0, 0)
    gx = 0.5 * (at(1, 0) - at(-1, 0))
    gy = 0.5 * (at(0, 1) - at(0, -1))
    dxx = at(1, 0) - 2 * i0 + at(-1, 0)
    dyy = at(0, 1) - 2 * i0 + at(0, -1)
    dxy = 0.5 * (at(1, 1) - at(1, 0) - at(0, 1) + 2 * i0 - at(-1, 0) - at(0, -1) + at(-1, -1))
    hess = np.stack([np.stack([dxx, dxy], -1), np.stack([dxy, dyy], -1)], -2)  # [N, K, 2, 2]
    hess = hess + np.finfo(np.float32).eps * np.eye(2)
    grad = np.stack([gx, gy], -1)[..., None]  # [N, K, 2, 1]
    with np.errstate(all="ignore"):
        step = -(np.linalg.inv(hess) @ grad)[..., 0]  # [N, K, 2]
    ok = np.isfinite(step).all(-1, keepdims=True) & (np.abs(step) <= 1.0).all(-1, keepdims=True)
    return np.where(ok, step, 0.0)


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray,
                 split_ratio: float = SIMCC_SPLIT_RATIO) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints from SimCC vectors: location ``argmax / split_ratio``, score the smaller of the
    x and y maxima; a score <= 0 gives location -1 (absent), as RTMPose's decoder.

    Args:
        simcc_x: [K, Wx].
        simcc_y: [K, Wy].

    Returns:
        ``(locations [K, 2] in input pixels, scores [K])``.
    """
    locs = np.stack([simcc_x.argmax(1), simcc_y.argmax(1)], -1).astype(np.float32)
    scores = np.minimum(simcc_x.max(1), simcc_y.max(1)).astype(np.float32)
    locs[scores <= 0] = -1
    return locs / split_ratio, scores

