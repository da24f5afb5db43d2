"""DWPose: whole-body pose estimation (body, face, hands) from video frames, via onnxruntime.

Two ONNX models, run top-down as DWPose does (Yang et al., "Effective Whole-body Pose
Estimation with Two-stages Distillation", ICCV 2023 workshops):

1. ``yolox_l.onnx``, a YOLOX-L person detector. Input ``[1, 3, 640, 640]`` float32, BGR,
   0-255 (no normalisation), the frame resized to fit and pasted top-left on a canvas of 114
   (:func:`letterbox`). Output ``[1, N, 85]``, per anchor ``(dx, dy, log w, log h, objectness,
   80 class scores)`` on strides 8/16/32 (:func:`decode_yolox`); person score = objectness ×
   class-0 score; boxes above the score threshold (0.3), non-maximum suppression at IoU 0.45
   (:func:`nms`), then back to frame pixels by the letterbox ratio.
2. ``dw-ll_ucoco_384.onnx``, an RTMPose-L whole-body model on SimCC heads. Input
   ``[1, 3, 384, 288]`` (h × w): each box is enlarged 1.25× about its centre, widened or
   heightened to the 3:4 aspect of the input, and warped to it (:func:`crop`); RGB normalised
   with the ImageNet mean/std in 0-255. Outputs ``simcc_x [1, 133, 576]`` and
   ``simcc_y [1, 133, 768]`` (split ratio 2): a keypoint is at ``argmax / 2`` in crop pixels,
   its score the smaller of the two maxima (:func:`decode_simcc`), then mapped back to the frame.

The 133 COCO-WholeBody keypoints become ours as in DWPose (:func:`wholebody_to_parts`): the 17
COCO body points plus a neck (the mean of the shoulders) reordered to OpenPose's COCO-18, face
points 23-90, left hand 91-111, right hand 112-132 (the six foot points 17-22 are dropped).

Get the models (never downloaded by DreamDance) from the ``yzd-v/DWPose`` hub repository::

    huggingface-cli download yzd-v/DWPose yolox_l.onnx dw-ll_ucoco_384.onnx --local-dir DIR

and pass ``pose.det_model=DIR/yolox_l.onnx pose.pose_model=DIR/dw-ll_ucoco_384.onnx``.
"""

from __future__ import annotations

import logging
import numbers
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from dreamdance.errors import InputError
from dreamdance.inputs import resolve_device
from dreamdance.motion.poses import PARTS, PoseSequence

log = logging.getLogger(__name__)

HUB = "yzd-v/DWPose"
DET_SIZE = (640, 640)            # detector input (h, w) when the model does not state it
POSE_SIZE = (288, 384)           # pose input (w, h) when the model does not state it
STRIDES = (8, 16, 32)
PAD_VALUE = 114
NMS_THRESHOLD = 0.45
PERSON = 0                       # COCO class id of "person"
BOX_PADDING = 1.25
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)
SIMCC_SPLIT_RATIO = 2.0
NECK_THRESHOLD = 0.3             # both shoulders above this for a neck, as in DWPose
NUM_WHOLEBODY = 133
#: For each OpenPose COCO-18 body point, its index among COCO-17 + the neck appended as 17.
OPENPOSE_FROM_COCO = (0, 17, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
#: COCO-WholeBody index ranges of the other parts.
WHOLEBODY_PARTS = {"face": slice(23, 91), "left_hand": slice(91, 112),
                   "right_hand": slice(112, 133)}


# --- detector -------------------------------------------------------------------------------

def letterbox(bgr: np.ndarray, size: tuple[int, int] = DET_SIZE) -> tuple[np.ndarray, float]:
    """The detector's input: ``bgr`` resized by ``ratio`` to fit ``size`` (h, w), pasted at the
    top-left of a canvas filled with 114.

    Args:
        bgr: [H, W, 3] uint8.
        size: (h, w) of the model input.

    Returns:
        ``(image [3, h, w] float32 in 0-255, ratio)``; frame pixel = input pixel / ratio.
    """
    h, w = bgr.shape[:2]
    ratio = min(size[0] / h, size[1] / w)
    rw, rh = int(w * ratio), int(h * ratio)
    canvas = np.full((size[0], size[1], 3), PAD_VALUE, np.uint8)
    canvas[:rh, :rw] = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32), ratio


def decode_yolox(pred: np.ndarray, size: tuple[int, int] = DET_SIZE,
                 strides: tuple[int, ...] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Decode raw YOLOX anchors: ``(x + grid_x) · stride``, ``exp(log w) · stride``, …

    Args:
        pred: [N, 5 + C] rows ``(dx, dy, log w, log h, objectness, class scores…)`` over the
            grids of ``strides`` in order (each grid row-major, x fastest).
        size: (h, w) of the detector input.

    Returns:
        ``(boxes [N, 4] xyxy in input pixels, scores [N, C] = objectness × class score)``.
    """
    grids, step = [], []
    for s in strides:
        xv, yv = np.meshgrid(np.arange(size[1] // s), np.arange(size[0] // s))
        grids.append(np.stack([xv, yv], -1).reshape(-1, 2))
        step.append(np.full((grids[-1].shape[0], 1), s))
    grid, step = np.concatenate(grids).astype(np.float32), np.concatenate(step)
    assert pred.shape[0] == grid.shape[0], (pred.shape, grid.shape)
    pred = pred.astype(np.float32)
    center = (pred[:, :2] + grid) * step
    wh = np.exp(pred[:, 2:4]) * step
    boxes = np.concatenate([center - wh / 2, center + wh / 2], axis=1)
    return boxes, pred[:, 4:5] * pred[:, 5:]


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = NMS_THRESHOLD) -> list[int]:
    """Greedy non-maximum suppression; indices kept, best score first.

    Areas count pixels inclusively (``x2 - x1 + 1``), as in YOLOX's and DWPose's NumPy NMS.

    Args:
        boxes: [N, 4] xyxy.
        scores: [N].
        threshold: a box overlapping a kept one by IoU above this is dropped.
    """
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = iw * ih
        order = rest[inter / (areas[i] + areas[rest] - inter) <= threshold]
    return keep


# --- pose -----------------------------------------------------------------------------------

def box_to_center_scale(box: np.ndarray, aspect: float,
                        padding: float = BOX_PADDING) -> tuple[np.ndarray, np.ndarray]:
    """Centre and size of the crop for ``box`` (xyxy): the box × ``padding``, then widened or
    heightened to ``aspect`` (w / h).

    Returns:
        ``(center [2], scale [2])`` (x, y) and (w, h) in frame pixels.
    """
    box = np.asarray(box, np.float64)
    center = (box[:2] + box[2:]) / 2
    w, h = (box[2:] - box[:2]) * padding
    scale = np.array([w, w / aspect] if w > h * aspect else [h * aspect, h])
    return center, scale


def crop(rgb: np.ndarray, center: np.ndarray, scale: np.ndarray,
         size: tuple[int, int] = POSE_SIZE) -> np.ndarray:
    """Warp the region ``center ± scale / 2`` of ``rgb`` to ``size`` (w, h) by a uniform scale
    ``size[0] / scale[0]`` (bilinear, zeros outside), as mmpose's top-down affine with no
    rotation. Crop pixel ``u`` is frame pixel ``u · scale / size + center - scale / 2``.

    Returns:
        [h, w, 3] of ``rgb``'s dtype.
    """
    s = size[0] / scale[0]
    warp = np.array([[s, 0, size[0] / 2 - s * center[0]],
                     [0, s, size[1] / 2 - s * center[1]]], np.float64)
    return cv2.warpAffine(rgb, warp, size, flags=cv2.INTER_LINEAR)


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


def wholebody_to_parts(keypoints: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """COCO-WholeBody 133 keypoints -> our parts, following DWPose's mapping.

    The neck is the mean of the shoulders (COCO 5, 6) when both score above 0.3, with the mean
    of their scores as its confidence (DWPose draws it then, and writes a score of 1); else it
    is absent. A keypoint scoring <= 0 is absent (all zeros).

    Args:
        keypoints: [P, 133, 2] frame pixels.
        scores: [P, 133].

    Returns:
        ``{"body": [P, 18, 3], "face": [P, 68, 3], "left_hand": [P, 21, 3],
        "right_hand": [P, 21, 3]}`` float32.
    """
    assert keypoints.shape[1:] == (NUM_WHOLEBODY, 2), keypoints.shape
    kp = np.concatenate([keypoints, scores[..., None]], -1).astype(np.float32)  # [P, 133, 3]
    kp[kp[..., 2] <= 0] = 0
    shoulders = kp[:, [5, 6]]                                                   # [P, 2, 3]
    neck = shoulders.mean(1)                                                    # [P, 3]
    neck[(shoulders[..., 2] <= NECK_THRESHOLD).any(1)] = 0
    coco = np.concatenate([kp[:, :17], neck[:, None]], 1)                       # [P, 18, 3]
    parts = {"body": coco[:, list(OPENPOSE_FROM_COCO)]}
    parts.update({part: kp[:, idx] for part, idx in WHOLEBODY_PARTS.items()})
    return parts


# --- the estimator --------------------------------------------------------------------------

def _cuda_index() -> int:
    """The CUDA device of this process: torch's current one where torch has chosen one (each
    process of ``accelerate launch`` is given its own), else 0."""
    import torch

    return torch.cuda.current_device() if torch.cuda.is_initialized() else 0


class DWPoseExtractor:
    """DWPose on frames: people detected by YOLOX, their whole-body keypoints by RTMPose.

    Args:
        det_model: path of ``yolox_l.onnx`` (config ``pose.det_model``).
        pose_model: path of ``dw-ll_ucoco_384.onnx`` (config ``pose.pose_model``).
        device: ``auto`` | ``cpu`` | ``cuda`` (onnxruntime's CUDA provider on ``cuda``).
        det_threshold: person score (objectness × class) a box needs.
        max_people: the largest boxes kept per frame.

    The paths are checked here; the models are loaded on first use.
    """

    def __init__(self, det_model: str | Path | None, pose_model: str | Path | None,
                 device: str = "auto", det_threshold: float = 0.3, max_people: int = 4):
        self.det_path = _model_file(det_model, "pose.det_model", "yolox_l.onnx")
        self.pose_path = _model_file(pose_model, "pose.pose_model", "dw-ll_ucoco_384.onnx")
        if not isinstance(det_threshold, numbers.Real) or not 0 <= det_threshold < 1:
            raise InputError(f"pose.det_threshold={det_threshold}", "must be in [0, 1)")
        if isinstance(max_people, bool) or not isinstance(max_people, numbers.Integral) \
                or max_people < 1:
            raise InputError(f"pose.max_people={max_people}", "must be a positive integer")
        self.device_name = device
        self.device = resolve_device(device)
        self.det_threshold = float(det_threshold)
        self.max_people = int(max_people)
        self._det = self._pose = None

    # sessions ----------------------------------------------------------------------------
    def _providers(self) -> list[str | tuple[str, dict]]:
        import onnxruntime as ort

        if self.device != "cuda":
            return ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" in ort.get_available_providers():
            return [("CUDAExecutionProvider", {"device_id": _cuda_index()}), "CPUExecutionProvider"]
        if self.device_name == "cuda":
            raise InputError("device=cuda", "onnxruntime has no CUDAExecutionProvider here "
                             "(install onnxruntime-gpu, or use device=cpu)")
        log.warning("onnxruntime has no CUDAExecutionProvider; DWPose runs on the CPU")
        return ["CPUExecutionProvider"]

    def _session(self, path: Path, key: str) -> Any:
        import onnxruntime as ort
        from onnxruntime.capi.onnxruntime_pybind11_state import (
            Fail,
            InvalidGraph,
            InvalidProtobuf,
        )

        try:
            return ort.InferenceSession(str(path), providers=self._providers())
        except (InvalidProtobuf, InvalidGraph, Fail) as e:
            raise InputError(f"{key}={path}", f"not a loadable ONNX model ({e})") from None

    @property
    def det_session(self) -> Any:
        if self._det is None:
            self._det = self._session(self.det_path, "pose.det_model")
            shape = self._det.get_inputs()[0].shape
            self.det_size = _static_hw(shape, DET_SIZE)
        return self._det

    @property
    def pose_session(self) -> Any:
        if self._pose is None:
            self._pose = self._session(self.pose_path, "pose.pose_model")
            outputs = self._pose.get_outputs()
            if len(outputs) != 2:
                raise InputError(f"pose.pose_model={self.pose_path}",
                                 f"{len(outputs)} outputs, expected SimCC x and y (2)")
            h, w = _static_hw(self._pose.get_inputs()[0].shape, POSE_SIZE[::-1])
            self.pose_size = (w, h)
        return self._pose

    # inference ---------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> np.ndarray:
        """People in ``rgb`` [H, W, 3] uint8: boxes [P, 5] (x1, y1, x2, y2, score) in frame
        pixels, largest area first, at most ``max_people``."""
        session = self.det_session
        image, ratio = letterbox(np.ascontiguousarray(rgb[..., ::-1]), self.det_size)
        pred = session.run(None, {session.get_inputs()[0].name: image[None]})[0][0]
        n = sum((self.det_size[0] // s) * (self.det_size[1] // s) for s in STRIDES)
        if pred.ndim != 2 or pred.shape[0] != n or pred.shape[1] <= 5:
            raise InputError(f"pose.det_model={self.det_path}",
                             f"output {list(pred.shape)} per image, expected [{n}, 5 + classes]"
                             " (a YOLOX model with strides 8/16/32)")
        boxes, scores = decode_yolox(pred, self.det_size)
        score = scores[:, PERSON]
        mask = score > self.det_threshold
        boxes, score = boxes[mask] / ratio, score[mask]
        keep = nms(boxes, score)
        dets = np.concatenate([boxes[keep], score[keep, None]], 1).reshape(-1, 5)
        area = (dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1])
        return dets[np.argsort(-area, kind="stable")][: self.max_people]

    def keypoints(self, rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """COCO-WholeBody keypoints in ``boxes`` [P, >=4] (xyxy) of ``rgb``.

        Returns:
            ``(keypoints [P, 133, 2] frame pixels, scores [P, 133])``.
        """
        session = self.pose_session
        name = session.get_inputs()[0].name
        w, h = self.pose_size
        kps, scs = [], []
        for box in boxes:
            center, scale = box_to_center_scale(box[:4], aspect=w / h)
            patch = (crop(rgb, center, scale, (w, h)).astype(np.float32) - MEAN) / STD
            simcc_x, simcc_y = session.run(
                None, {name: np.ascontiguousarray(patch.transpose(2, 0, 1)[None])})
            if simcc_x.shape[1] != NUM_WHOLEBODY or simcc_y.shape[1] != NUM_WHOLEBODY:
                raise InputError(f"pose.pose_model={self.pose_path}",
                                 f"outputs {list(simcc_x.shape)}, {list(simcc_y.shape)}, "
                                 f"expected {NUM_WHOLEBODY} COCO-WholeBody keypoints")
            locs, score = decode_simcc(simcc_x[0], simcc_y[0])
            kps.append(locs / np.array([w, h]) * scale + center - scale / 2)
            scs.append(score)
        if not kps:
            return np.zeros((0, NUM_WHOLEBODY, 2), np.float32), np.zeros((0, NUM_WHOLEBODY),
                                                                        np.float32)
        return np.stack(kps).astype(np.float32), np.stack(scs)

    def estimate_image(self, rgb: np.ndarray) -> list[dict[str, Any]]:
        """Everyone in one image, largest box first.

        Args:
            rgb: [H, W, 3] uint8.

        Returns:
            one dict per person: ``body`` [18, 3], ``face`` [68, 3], ``left_hand`` [21, 3],
            ``right_hand`` [21, 3] (x, y, confidence in pixels), ``box`` [4] xyxy and
            ``score``.
        """
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an [H, W, 3] uint8 RGB image, got {rgb.dtype} "
                             f"{rgb.shape}")
        dets = self.detect(rgb)
        parts = wholebody_to_parts(*self.keypoints(rgb, dets))
        return [{**{part: parts[part][i] for part in PARTS},
                 "box": dets[i, :4].astype(np.float32), "score": float(dets[i, 4])}
                for i in range(len(dets))]

    def __call__(self, frames: np.ndarray, progress: bool = True,
                 fps: float = 8.0) -> PoseSequence:
        """Poses of every frame; person ``p`` of a frame is its ``p``-th largest box.

        Args:
            frames: [T, H, W, 3] uint8 RGB.
            progress: show a progress bar.
            fps: the frame rate to record in the sequence.

        Returns:
            a :class:`PoseSequence` at ``W`` × ``H`` with as many people as the most crowded
            frame (at most ``max_people``; none when nobody was found, logged), ``driver=0``.
        """
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected [T, H, W, 3] uint8 RGB frames, got {frames.dtype} "
                             f"{frames.shape}")
        t, h, w = frames.shape[:3]
        people = [self.estimate_image(f)
                  for f in tqdm(frames, desc="DWPose", leave=False, disable=not progress)]
        num = max((len(p) for p in people), default=0)
        arrays = {part: np.zeros((t, num, k, 3), np.float32) for part, k in PARTS.items()}
        for i, frame in enumerate(people):
            for j, person in enumerate(frame):
                for part in PARTS:
                    arrays[part][i, j] = person[part]
        empty = sum(not p for p in people)
        if num == 0:
            log.warning("DWPose found nobody in any of the %d frames: the pose track is empty",
                        t)
        elif empty:
            log.warning("DWPose found nobody in %d of %d frames (left empty)", empty, t)
        return PoseSequence(**arrays, width=w, height=h, fps=float(fps), driver=0)


def _model_file(path: str | Path | None, key: str, filename: str) -> Path:
    how = (f"download it yourself (`huggingface-cli download {HUB} {filename} --local-dir DIR`)"
           f" and pass {key}=DIR/{filename}")
    if path is None or str(path) == "":
        raise InputError(key, f"not set; {how}")
    file = Path(str(path)).expanduser()
    if file.is_dir() and (file / filename).is_file():
        return file / filename
    if not file.is_file():
        raise InputError(f"{key}={path}", f"file not found; {how}")
    return file


def _static_hw(shape: list, default: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of an NCHW input shape, ``default`` where the model leaves them symbolic."""
    h, w = shape[2:4] if len(shape) == 4 else (None, None)
    return (h, w) if isinstance(h, int) and isinstance(w, int) else default
