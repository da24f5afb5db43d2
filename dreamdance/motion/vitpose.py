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

The crop and the heatmap decoding are :mod:`~dreamdance.motion.topdown`'s. The model's number
of keypoints decides what is filled in (see
:func:`~dreamdance.motion.keypoints.keypoints_to_parts`): 17 (COCO) gives the body only (face
and hands stay zeros, i.e. absent); 133 (COCO-WholeBody) gives the body, the face (68, iBUG
order) and both hands (21 each), the way DWPose maps them. COCO-17 becomes our OpenPose COCO-18
body by adding the neck, the midpoint of the shoulders.
ViTPose++ checkpoints (a mixture-of-experts backbone, ``num_experts > 1``) pick their expert
with ``dataset_index`` (0: COCO for the usyd-community/vitpose-plus-* releases).

People are ranked by box area in every frame independently: slot ``p`` of the result is the
``p``-th largest person of each frame, not a tracked identity. The extractor is a
:class:`~dreamdance.motion.backend.PoseBackend`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dreamdance.errors import InputError
from dreamdance.inputs import resolve_device, resolve_dtype
from dreamdance.motion import backend
from dreamdance.motion.keypoints import NUM_KEYPOINTS
from dreamdance.motion.poses import PoseSequence
from dreamdance.motion.topdown import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    box_to_roi,
    crop_person,
    heatmaps_to_keypoints,
)
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

# Defaults of the image processors, used where a folder has no preprocessor_config.json.
DETECTOR_SIZE = (640, 640)  # (height, width)


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
        self.det_threshold = backend.check_threshold(det_threshold, "pose.det_threshold")
        self.max_people = backend.check_int(max_people, "pose.max_people", 1)
        self.batch_size = backend.check_int(batch_size, "pose.batch_size", 1)
        dataset_index = backend.check_int(dataset_index, "pose.dataset_index", 0)
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

        frames = backend.check_frames(frames)
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

        frames = backend.check_frames(frames)
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
        frames = backend.check_frames(frames)
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
        """Poses of every frame of ``frames`` [T, H, W, 3] (uint8 RGB), ``batch_size`` frames
        at a time, as :class:`~dreamdance.motion.backend.PoseBackend` says: person ``p`` of a
        frame is its ``p``-th largest box, at most ``max_people`` of them."""
        from tqdm.auto import tqdm

        frames, fps = backend.check_frames(frames), backend.check_fps(fps)
        t, h, w = frames.shape[:3]
        per_frame: list[np.ndarray] = []
        starts = range(0, t, self.batch_size)
        for s in tqdm(starts, desc="ViTPose", leave=False, disable=not progress):
            chunk = frames[s:s + self.batch_size]
            per_frame += self.estimate(chunk, self.detect(chunk))
        return backend.to_sequence(per_frame, w, h, fps, "ViTPose", self.det_threshold)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


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
