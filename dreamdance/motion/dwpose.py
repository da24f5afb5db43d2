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
   heightened to the 3:4 aspect of the input, and warped to it (the plain warp of
   :func:`~dreamdance.motion.topdown.crop_person`); RGB normalised with the ImageNet mean/std
   in 0-255. Outputs ``simcc_x [1, 133, 576]`` and ``simcc_y [1, 133, 768]`` (split ratio 2):
   a keypoint is at ``argmax / 2`` in crop pixels, its score the smaller of the two maxima
   (:func:`~dreamdance.motion.topdown.decode_simcc`), then mapped back to the frame.

The 133 COCO-WholeBody keypoints become ours as in DWPose
(:func:`~dreamdance.motion.keypoints.keypoints_to_parts`): the 17 COCO body points plus a neck
(the midpoint of the shoulders) reordered to OpenPose's COCO-18, face points 23-90, left hand
91-111, right hand 112-132 (the six foot points 17-22 are dropped). The extractor is a
:class:`~dreamdance.motion.backend.PoseBackend`.

Get the models (never downloaded by DreamDance) from the ``yzd-v/DWPose`` hub repository::

    huggingface-cli download yzd-v/DWPose yolox_l.onnx dw-ll_ucoco_384.onnx --local-dir DIR

and pass ``pose.det_model=DIR/yolox_l.onnx pose.pose_model=DIR/dw-ll_ucoco_384.onnx``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from dreamdance.errors import InputError
from dreamdance.inputs import resolve_device
from dreamdance.motion import backend
from dreamdance.motion.keypoints import NUM_WHOLEBODY
from dreamdance.motion.poses import PoseSequence
from dreamdance.motion.topdown import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    box_to_roi,
    crop_person,
    decode_simcc,
)

log = logging.getLogger(__name__)

HUB = "yzd-v/DWPose"
DET_SIZE = (640, 640)            # detector input (h, w) when the model does not state it
POSE_SIZE = (288, 384)           # pose input (w, h) when the model does not state it
STRIDES = (8, 16, 32)
PAD_VALUE = 114
NMS_THRESHOLD = 0.45
PERSON = 0                       # COCO class id of "person"
MEAN = (np.array(IMAGENET_MEAN) * 255).astype(np.float32)  # the pose input's, in 0-255
STD = (np.array(IMAGENET_STD) * 255).astype(np.float32)


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
        self.det_threshold = backend.check_threshold(det_threshold, "pose.det_threshold")
        self.max_people = backend.check_int(max_people, "pose.max_people", 1)
        self.device_name = device
        self.device = resolve_device(device)
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

    def keypoints(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """COCO-WholeBody keypoints in ``boxes`` [P, >=4] (xyxy) of ``rgb`` [H, W, 3] uint8.

        Returns:
            ``(x, y, score)`` in frame pixels. [P, 133, 3] float32
        """
        session = self.pose_session
        name = session.get_inputs()[0].name
        w, h = self.pose_size
        kps = []
        for box in boxes:
            center, size = box_to_roi(box[:4], aspect=w / h)
            patch = crop_person(rgb, center, size, (h, w), unbiased=False)
            patch = (patch.astype(np.float32) - MEAN) / STD                 # [h, w, 3]
            simcc_x, simcc_y = session.run(
                None, {name: np.ascontiguousarray(patch.transpose(2, 0, 1)[None])})
            if simcc_x.shape[1] != NUM_WHOLEBODY or simcc_y.shape[1] != NUM_WHOLEBODY:
                raise InputError(f"pose.pose_model={self.pose_path}",
                                 f"outputs {list(simcc_x.shape)}, {list(simcc_y.shape)}, "
                                 f"expected {NUM_WHOLEBODY} COCO-WholeBody keypoints")
            locs, score = decode_simcc(simcc_x[0], simcc_y[0])               # [133, 2], [133]
            xy = locs / np.array([w, h]) * size + center - size / 2          # frame pixels
            kps.append(np.concatenate([xy.astype(np.float32), score[:, None]], -1))
        return np.stack(kps) if kps else np.zeros((0, NUM_WHOLEBODY, 3), np.float32)

    def __call__(self, frames: np.ndarray, fps: float = 8.0,
                 progress: bool = True) -> PoseSequence:
        """Poses of every frame of ``frames`` [T, H, W, 3] (uint8 RGB), one frame at a time, as
        :class:`~dreamdance.motion.backend.PoseBackend` says: person ``p`` of a frame is its
        ``p``-th largest box, at most ``max_people`` of them."""
        frames, fps = backend.check_frames(frames), backend.check_fps(fps)
        t, h, w = frames.shape[:3]
        per_frame = [self.keypoints(f, self.detect(f))
                     for f in tqdm(frames, desc="DWPose", leave=False, disable=not progress)]
        return backend.to_sequence(per_frame, w, h, fps, "DWPose", self.det_threshold)


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
