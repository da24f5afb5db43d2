"""Whole-body keypoints from video frames: an RT-DETR person detector, then ViTPose on each person.

Top-down pose estimation with two ``transformers`` models loaded from local folders:

1. **Detection** — ``RTDetrForObjectDetection`` (e.g. PekingU/rtdetr_r50vd_coco_o365) finds the
   people of each frame: the frame is resized to the detector's input (640 × 640, bilinear, as
   ``RTDetrImageProcessor`` does with PIL), rescaled by 1/255 and not normalised; a query's
   person score is the sigmoid of its "person" logit, and its box (``cx, cy, w, h`` relative to
   the frame) becomes pixels. Boxes scoring above ``det_threshold`` are kept, largest area first,
   at most ``max_people``. A ``preprocessor_config.json`` in the folder overrides the input
   size, rescaling and normalisation, as it would for the image processor.
2. **Keypoints** — ``VitPoseForPoseEstimation`` (e.g. usyd-community/vitpose-base-simple) sees
   each person through an affine crop of the frame, as ``VitPoseImageProcessor`` prepares it:
   the box is widened or heightened to the model's aspect ratio (192 × 256 for the released
   models), padded by 1.25 and warped (bilinear, black outside the frame) to the model's input,
   rescaled by 1/255 and normalised with the ImageNet mean and std. The heatmaps (``[K, 64, 48]``)
   are decoded as ``post_process_pose_estimation`` does: the argmax of each heatmap, refined by
   DARK (a Newton step on the log of the Gaussian-blurred heatmap), mapped back to frame pixels;
   the keypoint's confidence is its heatmap's maximum.

The model's number of keypoints decides what is filled in (see :func:`keypoints_to_parts`):
17 (COCO) gives the body only (face and hands stay zeros, i.e. absent); 133 (COCO-WholeBody)
gives the body, the face (68, iBUG order) and both hands (21 each), the way DWPose maps them.
COCO-17 becomes our OpenPose COCO-18 body by adding the neck, the midpoint of the shoulders.
ViTPose++ checkpoints (a mixture-of-experts backbone, ``num_experts > 1``) pick their expert
with ``dataset_index`` (0: COCO for the usyd-community/vitpose-plus-* releases).

People are ranked by box area in every frame independently: slot ``p`` of the result is the
``p``-th largest person of each frame, not a tracked identity.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dreamdance.errors import InputError
from dreamdance.inputs import resolve_device, resolve_dtype
from dreamdance.motion.poses import PARTS, PoseSequence
from dreamdance.weights import ModelSpec, require_dir

log = logging.getLogger(__name__)

VITPOSE = ModelSpec(
    key="weights.vitpose",
    name="ViTPose (usyd-community/vitpose-base-simple, or a vitpose-plus-* model)",
    repo="usyd-community/vitpose-base-simple",
    marker="config.json",
    accept=("vitpose",),
)
RTDETR = ModelSpec(
    key="weights.rtdetr",
    name="RT-DETR person detector (PekingU/rtdetr_r50vd_coco_o365)",
    repo="PekingU/rtdetr_r50vd_coco_o365",
    marker="config.json",
    accept=("rt_detr",),
)

# COCO-17 (mmpose order) plus the neck appended as index 17 -> OpenPose COCO-18: OpenPose slot i
# takes keypoint OPENPOSE_FROM_COCO[i]. COCO: 0 nose, 1 l_eye, 2 r_eye, 3 l_ear, 4 r_ear,
# 5 l_shoulder, 6 r_shoulder, 7 l_elbow, 8 r_elbow, 9 l_wrist, 10 r_wrist, 11 l_hip, 12 r_hip,
# 13 l_knee, 14 r_knee, 15 l_ankle, 16 r_ankle.
OPENPOSE_FROM_COCO = (0, 17, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
# COCO-WholeBody (133 keypoints): body 17, feet 6 (unused here), face 68, left hand, right hand.
WHOLEBODY = {"body": slice(0, 17), "feet": slice(17, 23), "face": slice(23, 91),
             "left_hand": slice(91, 112), "right_hand": slice(112, 133)}
NUM_KEYPOINTS = (17, 133)

# Defaults of the image processors, used where a folder has no preprocessor_config.json.
DETECTOR_SIZE = (640, 640)  # (height, width)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BOX_PADDING = 1.25  # box_to_center_and_scale's padding_factor
DARK_KERNEL = 11    # post_process_pose_estimation's kernel_size
DARK_SIGMA = 0.8


# ---------------------------------------------------------------------------------------------
# Keypoint layouts
# ---------------------------------------------------------------------------------------------


def coco_to_openpose(kp: np.ndarray) -> np.ndarray:
    """COCO-17 keypoints (mmpose order) -> our OpenPose COCO-18 body.

    The neck is the midpoint of the shoulders, with the lower of their confidences; it is
    absent (all zeros) unless both shoulders are present.

    Args:
        kp: ``(x, y, confidence)``. [..., 17, 3]

    Returns:
        [..., 18, 3] float32
    """
    kp = np.asarray(kp, dtype=np.float32)
    assert kp.shape[-2:] == (17, 3), kp.shape
    shoulders = kp[..., [5, 6], :]  # [..., 2, 3]
    conf = shoulders[..., 2].min(axis=-1)  # [...]
    present = (conf > 0)[..., None]
    neck = np.concatenate([shoulders[..., :2].mean(axis=-2), conf[..., None]], axis=-1)
    neck = np.where(present, neck, 0.0).astype(np.float32)  # [..., 3]
    full = np.concatenate([kp, neck[..., None, :]], axis=-2)  # [..., 18, 3]
    return full[..., OPENPOSE_FROM_COCO, :]


def keypoints_to_parts(kp: np.ndarray) -> dict[str, np.ndarray]:
    """A pose model's keypoints -> our parts (``body`` 18, ``face`` 68, ``left_hand`` and
    ``right_hand`` 21 each).

    17 keypoints (COCO) fill the body only; face and hands are zeros (absent). 133 keypoints
    (COCO-WholeBody) fill all four parts: its 68 face points follow the iBUG 300-W order of our
    face, and its hands (person's left, then right) the OpenPose hand order; its 6 foot points
    have no place in our format and are dropped.

    Args:
        kp: ``(x, y, confidence)``. [..., K, 3] with K 17 or 133

    Returns:
        ``{part: [..., k, 3] float32}``
    """
    kp = np.asarray(kp, dtype=np.float32)
    k = kp.shape[-2]
    if k not in NUM_KEYPOINTS:
        raise ValueError(f"expected 17 (COCO) or 133 (COCO-WholeBody) keypoints, got {k}")
    lead = kp.shape[:-2]
    parts = {part: np.zeros((*lead, n, 3), np.float32) for part, n in PARTS.items()}
    parts["body"] = coco_to_openpose(kp[..., WHOLEBODY["body"], :])
    if k == 133:
        for part in ("face", "left_hand", "right_hand"):
            parts[part] = np.ascontiguousarray(kp[..., WHOLEBODY[part], :])
    return parts


# ---------------------------------------------------------------------------------------------
# Person crops and heatmap decoding (VitPoseImageProcessor's maths)
# ---------------------------------------------------------------------------------------------


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


def crop_matrix(center: np.ndarray, size: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """The affine map from frame pixels to crop pixels (``get_warp_matrix`` without rotation,
    the "unbiased" form: the region's edges land on the first and last pixel centres).

    Args:
        center, size: the region (see :func:`box_to_roi`). [2], [2]
        out_size: the crop's ``(height, width)``.

    Returns:
        [2, 3] float64: ``crop_xy = M @ (x, y, 1)``.
    """
    out_h, out_w = out_size
    sx, sy = (out_w - 1.0) / size[0], (out_h - 1.0) / size[1]
    return np.array([[sx, 0.0, sx * (0.5 * size[0] - center[0])],
                     [0.0, sy, sy * (0.5 * size[1] - center[1])]])


def crop_person(rgb: np.ndarray, center: np.ndarray, size: np.ndarray,
                out_size: tuple[int, int]) -> np.ndarray:
    """Warp a person's region to the pose model's input size (bilinear; black outside).

    Args:
        rgb: the frame, uint8. [H, W, 3]
        center, size: the region (see :func:`box_to_roi`). [2], [2]
        out_size: ``(height, width)`` of the crop.

    Returns:
        uint8 [height, width, 3]
    """
    m = crop_matrix(center, size, out_size)
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


# ---------------------------------------------------------------------------------------------
# The extractor
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Normalisation:
    """How an image becomes a model's input after resizing or cropping: ``(v * rescale - mean)
    / std`` per channel, ``v`` in 0..255.

    Attributes:
        rescale: factor on 0..255 values.
        mean, std: per channel. [3], [3]
    """

    rescale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


class ViTPoseExtractor:
    """Whole-body poses of the people in video frames: RT-DETR detection, then ViTPose.

    Both folders are checked here (the models' configs too: the pose model must have 17 or 133
    keypoints, the detector a "person" class); the weights load on first use.

    Args:
        pose_path: the ViTPose weights folder (``weights.vitpose``).
        detector_path: the RT-DETR weights folder (``weights.rtdetr``).
        device: ``auto``, ``cpu`` or ``cuda``.
        dtype: ``auto`` (float16 on CUDA, float32 on CPU), ``float32``, ``float16`` or
            ``bfloat16``: both models' weights and activations.
        det_threshold: person score a box must exceed, in ``[0, 1)``.
        max_people: the most people kept per frame (largest boxes first), ``>= 1``.
        dataset_index: the expert of a ViTPose++ backbone (``num_experts > 1``); unused by
            plain ViTPose.
        batch_size: frames per detector batch (their people go through ViTPose together).
    """

    def __init__(self, pose_path: str | Path | None, detector_path: str | Path | None,
                 device: str = "auto", dtype: str = "auto", det_threshold: float = 0.5,
                 max_people: int = 4, dataset_index: int = 0, batch_size: int = 8):
        self.pose_path = require_dir(pose_path, VITPOSE)
        self.detector_path = require_dir(detector_path, RTDETR)
        if isinstance(det_threshold, bool) or not isinstance(det_threshold, int | float) \
                or not 0.0 <= det_threshold < 1.0:
            raise InputError(f"pose.det_threshold={det_threshold}", "must be a number in [0, 1)")
        self.det_threshold = float(det_threshold)
        self.max_people = _check_int(max_people, "pose.max_people", 1)
        self.batch_size = _check_int(batch_size, "pose.batch_size", 1)
        dataset_index = _check_int(dataset_index, "pose.dataset_index", 0)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device, "pose.dtype")

        pose_cfg = _read_config(self.pose_path, VITPOSE, "vitpose")
        self.num_keypoints = int(pose_cfg.num_labels)
        if self.num_keypoints not in NUM_KEYPOINTS:
            raise InputError(f"{VITPOSE.key}={self.pose_path}",
                             f"the model predicts {self.num_keypoints} keypoints; supported are "
                             "17 (COCO body) and 133 (COCO-WholeBody)")
        backbone = pose_cfg.backbone_config
        self.num_experts = int(getattr(backbone, "num_experts", 1))
        if self.num_experts > 1 and dataset_index >= self.num_experts:
            raise InputError(f"pose.dataset_index={dataset_index}",
                             f"the model has {self.num_experts} experts (0..{self.num_experts - 1})")
        self.dataset_index = dataset_index
        size = backbone.image_size
        self.input_size = (int(size[0]), int(size[1])) if isinstance(size, list | tuple) \
            else (int(size), int(size))  # (height, width)
        self.pose_norm = _normalisation(self.pose_path, VITPOSE, default_normalize=True)

        det_cfg = _read_config(self.detector_path, RTDETR, "rt_detr")
        labels = {int(i): str(name) for i, name in det_cfg.id2label.items()}
        persons = [i for i, name in labels.items() if name.strip().lower() == "person"]
        if not persons:
            raise InputError(f"{RTDETR.key}={self.detector_path}",
                             "the detector has no \"person\" class in its id2label "
                             f"({', '.join(sorted(set(labels.values()))[:8]) or 'none'})")
        self.person_label = persons[0]
        self.focal_scores = bool(det_cfg.use_focal_loss)
        self.detector_size, self.detector_resample = _detector_size(self.detector_path)
        self.detector_norm = _normalisation(self.detector_path, RTDETR, default_normalize=False)
        self._pose: Any = None
        self._detector: Any = None

    # -- loading -------------------------------------------------------------------------------

    def load(self) -> tuple[Any, Any]:
        """Load both models (once); return ``(detector, pose_model)`` in eval mode on
        ``device``."""
        if self._pose is None:
            from transformers import RTDetrForObjectDetection, VitPoseForPoseEstimation

            self._detector = RTDetrForObjectDetection.from_pretrained(
                self.detector_path, local_files_only=True, trust_remote_code=False, dtype=self.dtype
            ).to(self.device).eval()
            self._pose = VitPoseForPoseEstimation.from_pretrained(
                self.pose_path, local_files_only=True, trust_remote_code=False, dtype=self.dtype
            ).to(self.device).eval()
            log.info("RT-DETR from %s and ViTPose (%d keypoints) from %s loaded (%s, %s)",
                     self.detector_path, self.num_keypoints, self.pose_path, self.device,
                     self.dtype)
        return self._detector, self._pose

    # -- the two stages ------------------------------------------------------------------------

    def detector_inputs(self, frames: np.ndarray) -> np.ndarray:
        """The detector's ``pixel_values`` for ``frames``, as ``RTDetrImageProcessor`` makes
        them: PIL resize of the uint8 frame (bilinear) to the input size, then rescale (and
        normalise only where the folder's processor config asks for it).

        Args:
            frames: uint8 RGB. [T, H, W, 3]

        Returns:
            float32. [T, 3, h_in, w_in]
        """
        from PIL import Image

        frames = _check_frames(frames)
        size_h, size_w = self.detector_size
        norm = self.detector_norm
        x = np.stack([np.asarray(Image.fromarray(f).resize((size_w, size_h),
                                                           self.detector_resample))
                      for f in frames])  # [T, h_in, w_in, 3] uint8
        return _normalise(x, norm).transpose(0, 3, 1, 2)

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """Person boxes of each frame, largest area first, at most ``max_people``.

        Args:
            frames: uint8 RGB. [T, H, W, 3]

        Returns:
            per frame, ``(x0, y0, x1, y1, score)`` in pixels, clipped to the frame. [n_t, 5]
        """
        import torch

        frames = _check_frames(frames)
        detector, _ = self.load()
        t, h, w = frames.shape[:3]
        pixel_values = torch.from_numpy(self.detector_inputs(frames))
        with torch.inference_mode():
            out = detector(pixel_values=pixel_values.to(self.device, self.dtype))
        logits = out.logits.float()  # [T, Q, C]
        probs = logits.sigmoid() if self.focal_scores else logits.softmax(-1)
        scores = probs[..., self.person_label].cpu().numpy()  # [T, Q]
        cx, cy, bw, bh = out.pred_boxes.float().cpu().numpy().transpose(2, 0, 1)  # [T, Q] each
        boxes = np.stack([(cx - 0.5 * bw) * w, (cy - 0.5 * bh) * h,
                          (cx + 0.5 * bw) * w, (cy + 0.5 * bh) * h], axis=-1)  # [T, Q, 4]
        boxes = np.clip(boxes, 0.0, [w, h, w, h])
        area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])  # [T, Q]
        result = []
        for i in range(t):
            keep = np.flatnonzero((scores[i] > self.det_threshold) & (area[i] > 0))
            keep = keep[np.argsort(-area[i, keep], kind="stable")][: self.max_people]
            result.append(np.concatenate([boxes[i, keep], scores[i, keep, None]], axis=1)
                          .astype(np.float32))
        return result

    def pose_inputs(self, frames: np.ndarray, boxes: list[np.ndarray]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ViTPose's ``pixel_values`` for the people in ``boxes`` (see :func:`box_to_roi` and
        :func:`crop_person`), frame by frame, and the regions they were cropped from.

        Args:
            frames: uint8 RGB. [T, H, W, 3]
            boxes: per frame, ``(x0, y0, x1, y1, ...)`` in pixels. [n_t, >=4]

        Returns:
            ``(pixel_values [N, 3, h_in, w_in] float32, centers [N, 2], sizes [N, 2])`` with
            ``N`` the number of boxes.
        """
        frames = _check_frames(frames)
        if len(boxes) != len(frames):
            raise ValueError(f"{len(boxes)} box lists for {len(frames)} frames")
        h_in, w_in = self.input_size
        crops, centers, sizes = [], [], []
        for frame, frame_boxes in zip(frames, boxes, strict=True):
            for box in _check_boxes(frame_boxes):
                center, size = box_to_roi(box, w_in / h_in)
                crops.append(crop_person(frame, center, size, self.input_size))
                centers.append(center)
                sizes.append(size)
        if not crops:
            return (np.zeros((0, 3, h_in, w_in), np.float32), np.zeros((0, 2)),
                    np.zeros((0, 2)))
        x = _normalise(np.stack(crops), self.pose_norm).transpose(0, 3, 1, 2)
        return x, np.stack(centers), np.stack(sizes)

    def estimate(self, frames: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        """The keypoints of the people in ``boxes``, in frame pixels.

        Args:
            frames: uint8 RGB. [T, H, W, 3]
            boxes: per frame, ``(x0, y0, x1, y1, ...)`` in pixels. [n_t, >=4]

        Returns:
            per frame, ``(x, y, confidence)`` in the model's layout (17 or 133). [n_t, K, 3]
        """
        import torch

        x, centers, sizes = self.pose_inputs(frames, boxes)
        counts = [len(_check_boxes(b)) for b in boxes]
        n, k = len(x), self.num_keypoints
        if n == 0:
            return [np.zeros((0, k, 3), np.float32) for _ in boxes]
        _, pose = self.load()
        kwargs = {}
        if self.num_experts > 1:
            kwargs["dataset_index"] = torch.full((n,), self.dataset_index, dtype=torch.long,
                                                 device=self.device)
        with torch.inference_mode():
            heatmaps = pose(pixel_values=torch.from_numpy(x).to(self.device, self.dtype),
                            **kwargs).heatmaps  # [N, K, h, w]
        heatmaps = heatmaps.float().cpu().numpy()
        if heatmaps.shape[:2] != (n, k):
            raise RuntimeError(f"ViTPose returned heatmaps of shape {heatmaps.shape}, expected "
                               f"({n}, {k}, h, w)")
        kp = heatmaps_to_keypoints(heatmaps, centers, sizes)  # [N, K, 3]
        return np.split(kp, np.cumsum(counts)[:-1])

    # -- public entry points -------------------------------------------------------------------

    def __call__(self, frames: np.ndarray, fps: float = 8.0, progress: bool = True
                 ) -> PoseSequence:
        """The poses of every frame.

        Args:
            frames: uint8 RGB. [T, H, W, 3]
            fps: the frames' rate, stored in the result.
            progress: show a progress bar.

        Returns:
            A :class:`PoseSequence` in the frames' pixels, with as many people as the most
            crowded frame (up to ``max_people``); a frame with fewer people has zeros in the
            remaining slots. With no person in any frame it holds no people (a warning is
            logged).
        """
        from tqdm.auto import tqdm

        frames = _check_frames(frames)
        if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps}")
        t, h, w = frames.shape[:3]
        per_frame: list[np.ndarray] = []
        starts = range(0, t, self.batch_size)
        for s in tqdm(starts, desc="ViTPose", leave=False, disable=not progress):
            chunk = frames[s:s + self.batch_size]
            per_frame += self.estimate(chunk, self.detect(chunk))
        people = max(len(kp) for kp in per_frame)
        if people == 0:
            log.warning("no person found in any of the %d frames (detector threshold %.2f)",
                        t, self.det_threshold)
        kp_all = np.zeros((t, people, self.num_keypoints, 3), np.float32)
        for i, kp in enumerate(per_frame):
            kp_all[i, :len(kp)] = kp
        return PoseSequence(**keypoints_to_parts(kp_all), width=w, height=h, fps=float(fps))

    def estimate_image(self, rgb: np.ndarray) -> PoseSequence:
        """The poses in one image (uint8 RGB ``[H, W, 3]``), as a one-frame sequence."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3:
            raise ValueError(f"rgb must be [H, W, 3], got shape {rgb.shape}")
        return self(rgb[None], progress=False)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1 \
            or frames.shape[1] < 1 or frames.shape[2] < 1:
        raise ValueError(f"frames must be [T, H, W, 3] with T >= 1, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
    return np.ascontiguousarray(frames)


def _normalise(x: np.ndarray, norm: Normalisation) -> np.ndarray:
    """``(x * rescale - mean) / std`` of uint8 images ``[..., 3]``, in float32."""
    mean = np.asarray(norm.mean, np.float32)
    std = np.asarray(norm.std, np.float32)
    return ((x.astype(np.float32) * np.float32(norm.rescale) - mean) / std).astype(np.float32)


def _check_boxes(boxes: Any) -> np.ndarray:
    """``(x0, y0, x1, y1)`` of one frame's boxes (extra columns, e.g. scores, dropped). [n, 4]"""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] < 4:
        raise ValueError(f"boxes must be [n, 4] (x0, y0, x1, y1), got shape {boxes.shape}")
    return boxes[:, :4]


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{name}={value}", f"must be an integer >= {low}")
    return value


def _read_config(folder: Path, spec: ModelSpec, model_type: str) -> Any:
    """The folder's model config, which must be of ``model_type`` exactly (read with
    ``transformers``, no weights)."""
    from transformers import AutoConfig

    found = json.loads((folder / spec.marker).read_text()).get("model_type")
    if found != model_type:
        raise InputError(f"{spec.key}={folder}", f"holds a {found} model, not {spec.name}")
    try:
        return AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise InputError(f"{spec.key}={folder}",
                         f"config.json is not a valid {model_type} config ({e})") from None


def _processor_meta(folder: Path, spec: ModelSpec) -> dict:
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{spec.key}={folder}",
                         f"preprocessor_config.json is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{spec.key}={folder}", "preprocessor_config.json is not an object")
    return meta


def _normalisation(folder: Path, spec: ModelSpec, default_normalize: bool) -> Normalisation:
    """Rescale, mean and std from the folder's preprocessor_config.json, or the processor's
    defaults (1/255; ImageNet mean/std where it normalises by default)."""
    meta = _processor_meta(folder, spec)
    try:
        rescale = float(meta.get("rescale_factor", 1 / 255)) if meta.get("do_rescale", True) \
            else 1.0
        if meta.get("do_normalize", default_normalize):
            mean = _triple(meta.get("image_mean", IMAGENET_MEAN))
            std = _triple(meta.get("image_std", IMAGENET_STD))
        else:
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    except (TypeError, ValueError) as e:
        raise InputError(f"{spec.key}={folder}",
                         f"preprocessor_config.json has a malformed value ({e})") from None
    if not math.isfinite(rescale) or rescale <= 0 or min(std) <= 0:
        raise InputError(f"{spec.key}={folder}",
                         "preprocessor_config.json: rescale_factor and image_std must be > 0")
    return Normalisation(rescale, mean, std)


def _detector_size(folder: Path) -> tuple[tuple[int, int], int]:
    """The detector's input ``(height, width)`` and PIL resampling filter."""
    from PIL import Image

    meta = _processor_meta(folder, RTDETR)
    size = meta.get("size") or {}
    try:
        hw = (int(size["height"]), int(size["width"])) if size else DETECTOR_SIZE
        resample = int(meta.get("resample", Image.Resampling.BILINEAR))
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{RTDETR.key}={folder}",
                         f"preprocessor_config.json: size must be {{height, width}}, got {size}"
                         ) from None
    if min(hw) < 1:
        raise InputError(f"{RTDETR.key}={folder}", f"preprocessor_config.json: bad size {size}")
    return hw, resample


def _triple(values: Any) -> tuple[float, float, float]:
    if isinstance(values, int | float):
        values = [values] * 3
    values = [float(v) for v in values]
    if len(values) != 3:
        raise ValueError(f"expected 3 channel values, got {len(values)}")
    return values[0], values[1], values[2]
