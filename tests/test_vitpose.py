"""ViTPose + RT-DETR pose extraction: tiny random models saved and reloaded through the
extractor's own loading code; detector and pose outputs replaced where exact values matter."""

import json
import logging
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from runner import config

from dreamdance.errors import InputError
from dreamdance.motion.backend import estimate_image
from dreamdance.motion.keypoints import coco_to_openpose, keypoints_to_parts
from dreamdance.motion.poses import BODY_NAMES, PoseSequence
from dreamdance.motion.topdown import box_to_roi, crop_matrix, crop_person, heatmaps_to_keypoints
from dreamdance.motion.vitpose import ViTPoseExtractor

CONF = Path(__file__).resolve().parents[1] / "conf" / "pose"
COCO_NAMES = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
              "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
              "r_ankle")
H, W = 120, 160           # test frames
HM_H, HM_W = 16, 12       # the tiny ViTPose's heatmaps (input 64 x 48, patch 16, upsampled x4)


def tiny_rtdetr(folder: Path, labels=None) -> Path:
    """A random RT-DETR with a two-stage ResNet-like backbone, 8 queries, 2 classes."""
    from transformers import RTDetrConfig, RTDetrForObjectDetection, RTDetrResNetConfig

    backbone = RTDetrResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 32, 64],
                                  depths=[1, 1, 1, 1], layer_type="basic", out_indices=[2, 3, 4])
    config = RTDetrConfig(
        backbone_config=backbone, encoder_in_channels=[16, 32, 64], encoder_hidden_dim=16,
        d_model=16, decoder_in_channels=[16, 16, 16], encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, decoder_layers=1, num_queries=8,
        num_denoising=0, id2label=labels or {0: "person", 1: "dog"})
    torch.manual_seed(0)
    RTDetrForObjectDetection(config).eval().save_pretrained(folder)
    return folder


def tiny_vitpose(folder: Path, num_keypoints: int = 17, num_experts: int = 1) -> Path:
    """A random ViTPose (hidden 32, 2 layers, input 64 x 48) whose heatmaps are positive."""
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    backbone = VitPoseBackboneConfig(image_size=[64, 48], patch_size=[16, 16], hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2,
                                     out_indices=[2], num_experts=num_experts, part_features=8)
    config = VitPoseConfig(backbone_config=backbone, num_labels=num_keypoints)
    torch.manual_seed(0)
    model = VitPoseForPoseEstimation(config).eval()
    with torch.no_grad():
        model.head.conv.bias.fill_(1.0)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vitpose")
    return SimpleNamespace(det=tiny_rtdetr(root / "rtdetr"), pose=tiny_vitpose(root / "vitpose"),
                           whole=tiny_vitpose(root / "wholebody", 133, num_experts=2))


def frames(t=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, H, W, 3), dtype=np.uint8)


def logit(p):
    return math.log(p / (1 - p))


def fake_detections(ext, per_frame, monkeypatch, num_queries=8, num_classes=2):
    """Make the loaded detector return ``per_frame[t] = [(label, score, (x0, y0, x1, y1)), ...]``
    (pixels); unused queries score ~0."""
    detector, _ = ext.load()
    t = len(per_frame)
    logits = torch.full((t, num_queries, num_classes), -20.0)
    boxes = torch.full((t, num_queries, 4), 0.1)
    for i, dets in enumerate(per_frame):
        for q, (label, score, (x0, y0, x1, y1)) in enumerate(dets):
            logits[i, q, label] = logit(score)
            boxes[i, q] = torch.tensor([(x0 + x1) / 2 / W, (y0 + y1) / 2 / H,
                                        (x1 - x0) / W, (y1 - y0) / H])

    def forward(pixel_values, **kwargs):
        assert pixel_values.shape[0] == t
        return SimpleNamespace(logits=logits, pred_boxes=boxes)

    monkeypatch.setattr(detector, "forward", forward)


def fake_heatmaps(ext, heatmaps, monkeypatch):
    """Make the loaded pose model return ``heatmaps [K, h, w]`` for every person."""
    _, pose = ext.load()

    def forward(pixel_values, dataset_index=None, **kwargs):
        n = pixel_values.shape[0]
        return SimpleNamespace(heatmaps=torch.as_tensor(heatmaps)[None].repeat(n, 1, 1, 1))

    monkeypatch.setattr(pose, "forward", forward)


def hf_vitpose_processing():
    """transformers' VitPose processing helpers (the module imports without scipy; only its
    DARK step needs scipy)."""
    from transformers.models.vitpose import image_processing_pil_vitpose as m

    return m


# ---------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------


def test_detector_input_matches_the_image_processor(dirs):
    from transformers.models.rt_detr.image_processing_pil_rt_detr import RTDetrImageProcessorPil

    ext = ViTPoseExtractor(dirs.pose, dirs.det, device="cpu")
    clip = frames(2)
    ours = ext.detector_inputs(clip)
    ref = RTDetrImageProcessorPil()(images=list(clip), return_tensors="np")["pixel_values"]
    assert ours.shape == (2, 3, 640, 640) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_detector_processor_config_is_followed(dirs, tmp_path):
    det = shutil.copytree(dirs.det, tmp_path / "det")
    (det / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"height": 320, "width": 256}, "do_normalize": True, "image_mean": 0.5,
         "image_std": 0.5}))
    x = ViTPoseExtractor(dirs.pose, det, device="cpu").detector_inputs(
        np.full((1, H, W, 3), 255, np.uint8))
    assert x.shape == (1, 3, 320, 256)
    np.testing.assert_allclose(x, 1.0, atol=1e-6)  # (1 - 0.5) / 0.5
    (det / "preprocessor_config.json").write_text(json.dumps({"size": {"height": 320}}))
    with pytest.raises(InputError, match="weights.rtdetr.*size"):
        ViTPoseExtractor(dirs.pose, det, device="cpu")


def test_detect_keeps_people_above_threshold_largest_first(dirs, monkeypatch):
    ext = ViTPoseExtractor(dirs.pose, dirs.det, device="cpu", det_threshold=0.5, max_people=2)
    fake_detections(ext, [
        [(0, 0.9, (10, 10, 50, 60)),      # person, area 2000
         (1, 0.99, (0, 0, 150, 110)),     # a dog: ignored
         (0, 0.6, (60, 0, 200, 100)),     # person, clipped to x1 = 160: area 10000
         (0, 0.4, (0, 0, 159, 119)),      # person below the threshold
         (0, 0.8, (100, 100, 110, 110))],  # person, smallest: beyond max_people
        []], monkeypatch)
    boxes = ext.detect(frames(2))
    assert len(boxes) == 2 and boxes[1].shape == (0, 5)
    np.testing.assert_allclose(boxes[0][:, :4], [[60, 0, 160, 100], [10, 10, 50, 60]], atol=1e-3)
    np.testing.assert_allclose(boxes[0][:, 4], [0.6, 0.9], atol=1e-5)


def test_the_tiny_detector_runs_unpatched(dirs):
    ext = ViTPoseExtractor(dirs.pose, dirs.det, device="cpu", det_threshold=0.0, max_people=3)
    boxes = ext.detect(frames(1))
    assert len(boxes) == 1 and boxes[0].shape[1] == 5 and len(boxes[0]) <= 3
    b = boxes[0]
    assert ((b[:, 0] >= 0) & (b[:, 2] <= W) & (b[:, 1] >= 0) & (b[:, 3] <= H)).all()


# ---------------------------------------------------------------------------------------------
# Crops and heatmaps
# ---------------------------------------------------------------------------------------------


def test_region_and_warp_follow_the_image_processor():
    m = hf_vitpose_processing()
    for box in ([40.0, 20.0, 100.0, 110.0], [5.0, 30.0, 150.0, 60.0]):
        center, size = box_to_roi(np.array(box), 48 / 64)
        ref_c, ref_s = m.box_to_center_and_scale(
            [box[0], box[1], box[2] - box[0], box[3] - box[1]], image_width=48, image_height=64)
        np.testing.assert_allclose(center, ref_c, rtol=1e-6)
        np.testing.assert_allclose(size, ref_s * 200.0, rtol=1e-6)
        ref_m = m.get_warp_matrix(0.0, ref_c * 2.0, np.array([47.0, 63.0]), ref_s * 200.0)
        np.testing.assert_allclose(crop_matrix(center, size, (64, 48)), ref_m, rtol=1e-5,
                                   atol=1e-4)


def test_crop_samples_the_frame_at_the_mapped_points():
    yy, xx = np.mgrid[0:200, 0:250]
    rgb = np.stack([xx, yy, np.zeros_like(xx)], -1).clip(0, 255).astype(np.uint8)
    center, size = np.array([120.0, 90.0]), np.array([90.0, 120.0])
    crop = crop_person(rgb, center, size, (64, 48))
    assert crop.shape == (64, 48, 3) and crop.dtype == np.uint8
    v, u = np.mgrid[0:64, 0:48]
    x = u * size[0] / 47 + center[0] - size[0] / 2   # crop pixel -> frame point
    y = v * size[1] / 63 + center[1] - size[1] / 2
    np.testing.assert_allclose(crop[..., 0], x, atol=0.6)
    np.testing.assert_allclose(crop[..., 1], y, atol=0.6)
    # outside the frame is black
    assert (crop_person(rgb, np.array([-100.0, -100.0]), size, (64, 48)) == 0).all()


def test_dark_refines_a_gaussian_peak_to_subpixel():
    # a rotated, elongated Gaussian: its blur is Gaussian, whose log is quadratic, so one
    # Newton step (cross term included) lands on the true peak, not the argmax (21, 31)
    cx, cy, angle = 20.3, 30.6, math.radians(30)
    yy, xx = np.mgrid[0:64, 0:48]
    u = math.cos(angle) * (xx - cx) + math.sin(angle) * (yy - cy)
    v = -math.sin(angle) * (xx - cx) + math.cos(angle) * (yy - cy)
    hm = np.exp(-u**2 / (2 * 3.0**2) - v**2 / (2 * 1.5**2)).astype(np.float32)
    size = np.array([[47.0, 63.0]])  # one heatmap pixel = one frame pixel, origin at 0
    kp = heatmaps_to_keypoints(hm[None, None], size / 2, size)
    assert kp.shape == (1, 1, 3)
    np.testing.assert_allclose(kp[0, 0, :2], [cx, cy], atol=1e-3)
    assert kp[0, 0, 2] == pytest.approx(hm.max())
    # a heatmap with no positive value is an absent keypoint
    assert (heatmaps_to_keypoints(-np.ones((1, 1, 8, 6)), size / 2, size) == 0).all()


def test_dark_matches_the_image_processor(monkeypatch):
    """Against transformers' own DARK step, its scipy blur stood in for by OpenCV's Gaussian
    blur with scipy's "reflect" edges; peaks near the borders included."""
    import cv2

    m = hf_vitpose_processing()

    def gaussian_filter(heatmap, sigma, radius, axes):
        k = 2 * radius[0] + 1
        return cv2.GaussianBlur(np.asarray(heatmap, np.float64), (k, k), sigma,
                                borderType=cv2.BORDER_REFLECT)

    monkeypatch.setattr(m, "gaussian_filter", gaussian_filter, raising=False)
    yy, xx = np.mgrid[0:HM_H, 0:HM_W]
    peaks = [(1.2, 14.4), (0.4, 0.3), (10.7, 2.2), (5.5, 8.3), (11.0, 15.0), (6.2, 0.6)]
    hm = np.stack([np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
                   for x, y in peaks]).astype(np.float32)[None]  # [1, 6, 16, 12]
    coords, _ = m.get_keypoint_predictions(hm)
    ref = m.post_dark_unbiased_data_processing(coords.copy(), hm, kernel=11)
    size = np.array([[HM_W - 1.0, HM_H - 1.0]])  # heatmap pixels = frame pixels
    ours = heatmaps_to_keypoints(hm, size / 2, size)
    np.testing.assert_allclose(ours[0, :, :2], ref[0], atol=1e-4)


def peaks_17():
    """Heatmaps [17, 16, 12] with a one-pixel peak per keypoint at distinct interior points
    (DARK leaves a symmetric peak where it is), heights 0.5 + k / 100."""
    hm = np.zeros((17, HM_H, HM_W), np.float32)
    pos = [(3 + k % 6, 3 + k // 6 * 4) for k in range(17)]  # (x, y)
    for k, (x, y) in enumerate(pos):
        hm[k, y, x] = 0.5 + k / 100
    return hm, pos


def test_heatmaps_map_to_frame_pixels_exactly():
    m = hf_vitpose_processing()
    hm, pos = peaks_17()
    center, size = box_to_roi(np.array([40.0, 20.0, 100.0, 110.0]), 48 / 64)
    kp = heatmaps_to_keypoints(hm[None], center[None], size[None])[0]
    ref = m.transform_preds(np.array(pos, np.float64), center, size / 200.0, [HM_H, HM_W])
    np.testing.assert_allclose(kp[:, :2], ref, rtol=1e-5)
    np.testing.assert_allclose(kp[:, 2], 0.5 + np.arange(17) / 100, rtol=1e-6)


def test_coco_17_to_openpose_18_order():
    coco = np.zeros((17, 3), np.float32)
    coco[:, 0] = np.arange(17) * 10
    coco[:, 1] = np.arange(17) + 0.5
    coco[:, 2] = 0.5 + np.arange(17) / 100
    body = coco_to_openpose(coco)
    assert body.shape == (18, 3)
    for i, name in enumerate(BODY_NAMES):
        if name == "neck":
            shoulders = coco[[COCO_NAMES.index("l_shoulder"), COCO_NAMES.index("r_shoulder")]]
            np.testing.assert_allclose(body[i, :2], shoulders[:, :2].mean(0))
            assert body[i, 2] == pytest.approx(shoulders[:, 2].min())
        else:
            np.testing.assert_array_equal(body[i], coco[COCO_NAMES.index(name)], err_msg=name)
    coco[COCO_NAMES.index("l_shoulder")] = 0  # one shoulder missing: no neck
    assert (coco_to_openpose(coco)[BODY_NAMES.index("neck")] == 0).all()


def test_wholebody_133_parts():
    kp = np.zeros((2, 133, 3), np.float32)
    kp[..., 2] = 0.2 + np.arange(133) / 1000
    parts = keypoints_to_parts(kp)
    np.testing.assert_allclose(parts["face"][..., 2], kp[:, 23:91, 2])
    np.testing.assert_allclose(parts["left_hand"][..., 2], kp[:, 91:112, 2])
    np.testing.assert_allclose(parts["right_hand"][..., 2], kp[:, 112:133, 2])
    np.testing.assert_allclose(parts["body"], coco_to_openpose(kp[:, :17]))
    body_only = keypoints_to_parts(kp[:, :17])
    assert all((body_only[p] == 0).all() for p in ("face", "left_hand", "right_hand"))
    assert body_only["face"].shape == (2, 68, 3)
    with pytest.raises(ValueError, match="17 .* or 133"):
        keypoints_to_parts(np.zeros((5, 3)))


# ---------------------------------------------------------------------------------------------
# The extractor end to end
# ---------------------------------------------------------------------------------------------


def test_extractor_maps_heatmaps_to_openpose_body_in_pixels(dirs, monkeypatch):
    m = hf_vitpose_processing()
    ext = ViTPoseExtractor(dirs.pose, dirs.det, device="cpu")
    box = (40.0, 20.0, 100.0, 110.0)
    fake_detections(ext, [[(0, 0.9, box)], []], monkeypatch)
    hm, pos = peaks_17()
    fake_heatmaps(ext, hm, monkeypatch)
    poses = ext(frames(2), fps=12.0, progress=False)
    assert isinstance(poses, PoseSequence)
    assert poses.body.shape == (2, 1, 18, 3) and (poses.width, poses.height) == (W, H)
    assert poses.fps == 12.0
    center, size = box_to_roi(np.array(box), 48 / 64)
    coco = m.transform_preds(np.array(pos, np.float64), center, size / 200.0, [HM_H, HM_W])
    body = poses.body[0, 0]
    for i, name in enumerate(BODY_NAMES):
        if name == "neck":
            continue
        k = COCO_NAMES.index(name)
        np.testing.assert_allclose(body[i, :2], coco[k], rtol=1e-5, err_msg=name)
        assert body[i, 2] == pytest.approx(0.5 + k / 100)
    # no face or hands from a COCO-17 model, and nobody in the second frame
    for part in ("face", "left_hand", "right_hand"):
        assert (getattr(poses, part) == 0).all()
    assert (poses.body[1] == 0).all()


def test_random_model_keypoints_fall_in_the_person_region(dirs, monkeypatch):
    ext = ViTPoseExtractor(dirs.pose, dirs.det, device="cpu")
    boxes = [(40.0, 20.0, 100.0, 110.0), (110.0, 60.0, 150.0, 100.0)]
    fake_detections(ext, [[(0, 0.9, b) for b in boxes]], monkeypatch)
    poses = ext(frames(1), progress=False)
    assert poses.num_people == 2
    for p, box in enumerate(boxes):
        center, size = box_to_roi(np.array(box), 48 / 64)
        cell = size / np.array([HM_W - 1, HM_H - 1])  # one heatmap pixel, in frame pixels
        body = poses.body[0, p]
        present = body[:, 2] > 0
        assert present.sum() >= 17  # positive heatmaps: every keypoint, and the neck
        lo, hi = center - size / 2 - cell, center + size / 2 + cell
        assert ((body[present, :2] >= lo) & (body[present, :2] <= hi)).all()


def test_people_are_ordered_by_area_and_missing_ones_are_zero(dirs, monkeypatch):
    ext = ViTPoseExtractor(dirs.pose, dirs.det, device="cpu", max_people=4)
    small, large = (10.0, 10.0, 30.0, 40.0), (50.0, 10.0, 140.0, 115.0)
    fake_detections(ext, [[(0, 0.9, small), (0, 0.8, large)], [(0, 0.9, small)]], monkeypatch)
    hm, _ = peaks_17()
    fake_heatmaps(ext, hm, monkeypatch)
    poses = ext(frames(2), progress=False)
    assert poses.num_people == 2
    nose = BODY_NAMES.index("nose")
    assert large[0] - 40 < poses.body[0, 0, nose, 0] < large[2] + 40   # the larger box first
    assert small[0] - 15 < poses.body[0, 1, nose, 0] < small[2] + 15
    np.testing.assert_allclose(poses.body[1, 0], poses.body[0, 1])    # same small box
    assert (poses.body[1, 1] == 0).all()


def test_no_person_anywhere_gives_an_empty_track(dirs, monkeypatch, caplog):
    ext = ViTPoseExtractor(dirs.pose, dirs.det, device="cpu")
    fake_detections(ext, [[(0, 0.3, (0, 0, 50, 50))], []], monkeypatch)
    with caplog.at_level(logging.WARNING, logger="dreamdance.motion.vitpose"):
        poses = ext(frames(2), progress=False)
    assert poses.body.shape == (2, 0, 18, 3) and poses.face.shape == (2, 0, 68, 3)
    assert "no person" in caplog.text


def test_wholebody_model_fills_face_and_hands(dirs, monkeypatch):
    ext = ViTPoseExtractor(dirs.whole, dirs.det, device="cpu", dataset_index=1)
    assert ext.num_keypoints == 133 and ext.num_experts == 2
    fake_detections(ext, [[(0, 0.9, (40.0, 20.0, 100.0, 110.0))]], monkeypatch)
    poses = ext(frames(1), progress=False)  # the real tiny MoE model, with its dataset index
    assert all((getattr(poses, p)[0, 0, :, 2] > 0).all()
               for p in ("face", "left_hand", "right_hand"))
    hm = np.zeros((133, HM_H, HM_W), np.float32)
    hm[:, 7, 5] = 0.2 + np.arange(133) / 1000
    fake_heatmaps(ext, hm, monkeypatch)
    poses = estimate_image(ext, frames(1)[0])
    assert len(poses) == 1 and poses.num_people == 1
    conf = 0.2 + np.arange(133) / 1000
    np.testing.assert_allclose(poses.face[0, 0, :, 2], conf[23:91], rtol=1e-6)
    np.testing.assert_allclose(poses.left_hand[0, 0, :, 2], conf[91:112], rtol=1e-6)
    np.testing.assert_allclose(poses.right_hand[0, 0, :, 2], conf[112:133], rtol=1e-6)
    r_wrist = BODY_NAMES.index("r_wrist")
    assert poses.body[0, 0, r_wrist, 2] == pytest.approx(conf[COCO_NAMES.index("r_wrist")])


# ---------------------------------------------------------------------------------------------
# Folders and settings
# ---------------------------------------------------------------------------------------------


def test_loads_lazily_and_checks_folders_first(dirs, tmp_path):
    ext = ViTPoseExtractor(dirs.pose, dirs.det, device="cpu")
    assert ext._pose is None and ext._detector is None
    with pytest.raises(InputError, match="weights.vitpose: not set"):
        ViTPoseExtractor(None, dirs.det, device="cpu")
    with pytest.raises(InputError, match="weights.rtdetr=.*no such folder"):
        ViTPoseExtractor(dirs.pose, tmp_path / "missing", device="cpu")
    with pytest.raises(InputError, match="weights.vitpose=.*not ViTPose"):
        ViTPoseExtractor(dirs.det, dirs.det, device="cpu")
    with pytest.raises(InputError, match="weights.rtdetr=.*not RT-DETR"):
        ViTPoseExtractor(dirs.pose, dirs.pose, device="cpu")
    backbone = tmp_path / "backbone"
    backbone.mkdir()
    (backbone / "config.json").write_text(json.dumps({"model_type": "vitpose_backbone"}))
    with pytest.raises(InputError, match="holds a vitpose_backbone model"):
        ViTPoseExtractor(backbone, dirs.det, device="cpu")


def test_unsupported_models_are_refused(dirs, tmp_path):
    with pytest.raises(InputError, match="predicts 5 keypoints"):
        ViTPoseExtractor(tiny_vitpose(tmp_path / "five", 5), dirs.det, device="cpu")
    with pytest.raises(InputError, match="no \"person\" class"):
        ViTPoseExtractor(dirs.pose, tiny_rtdetr(tmp_path / "cats", {0: "cat", 1: "dog"}),
                         device="cpu")
    with pytest.raises(InputError, match="pose.dataset_index=2"):
        ViTPoseExtractor(dirs.whole, dirs.det, device="cpu", dataset_index=2)


@pytest.mark.parametrize("kwargs, key", [
    ({"det_threshold": 1.0}, "pose.det_threshold=1.0"),
    ({"det_threshold": "high"}, "pose.det_threshold=high"),
    ({"max_people": 0}, "pose.max_people=0"),
    ({"batch_size": 2.5}, "pose.batch_size=2.5"),
    ({"dtype": "float64"}, "pose.dtype=float64"),
])
def test_bad_settings_are_input_errors(dirs, kwargs, key):
    with pytest.raises(InputError, match=key):
        ViTPoseExtractor(dirs.pose, dirs.det, **{"device": "cpu", **kwargs})


def test_bad_frames_are_refused(dirs):
    ext = ViTPoseExtractor(dirs.pose, dirs.det, device="cpu")
    with pytest.raises(ValueError, match="uint8"):
        ext(frames(1).astype(np.float32), progress=False)
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        ext(frames(1)[0], progress=False)


def test_config_file_builds_the_extractor(dirs):
    from hydra.utils import instantiate

    cfg = config("pose=vitpose", "device=cpu", f"weights.vitpose={dirs.pose}",
                 f"weights.rtdetr={dirs.det}")
    ext = instantiate(cfg.pose)
    assert type(ext) is ViTPoseExtractor and ext.device == "cpu"
    poses = ext(frames(1), progress=False)
    assert isinstance(poses, PoseSequence) and len(poses) == 1
