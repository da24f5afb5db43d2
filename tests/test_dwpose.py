"""DWPose through onnxruntime, on tiny ONNX graphs whose outputs decode to known boxes and
keypoints: detection decoding, crop mapping, the 133 -> ours mapping, and refused inputs."""

import logging
import math

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from dreamdance.errors import InputError  # noqa: E402
from dreamdance.motion.backend import estimate_image  # noqa: E402
from dreamdance.motion.dwpose import MEAN, STD, DWPoseExtractor, letterbox, nms  # noqa: E402
from dreamdance.motion.poses import PARTS  # noqa: E402
from dreamdance.motion.topdown import box_to_roi, decode_simcc  # noqa: E402

N_ANCHORS = 80 * 80 + 40 * 40 + 20 * 20
W, H = 320, 160  # frame size: letterbox ratio 2 into 640x640


def constant_graph(path, input_shape, outputs):
    """An ONNX model whose outputs are constants plus 0 × mean(input) (so they depend on it)."""
    nodes = [helper.make_node("ReduceMean", ["input"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"])]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for name, value in outputs.items():
        inits.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_const"))
        nodes.append(helper.make_node("Add", [f"{name}_const", "nothing"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
        outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def anchor32(gx, gy):
    """Row of the stride-32 anchor at grid cell (gx, gy)."""
    return 80 * 80 + 40 * 40 + gy * 20 + gx


def detector(path, boxes):
    """boxes: (gx, gy, dx, dy, w, h, objectness, person score, other-class score) on stride 32."""
    pred = np.zeros((1, N_ANCHORS, 85), np.float32)
    for gx, gy, dx, dy, w, h, obj, cls0, cls1 in boxes:
        pred[0, anchor32(gx, gy), :7] = [dx, dy, math.log(w / 32), math.log(h / 32), obj, cls0,
                                         cls1]
    return constant_graph(path, [1, 3, 640, 640], {"output": pred})


def bins():
    k = np.arange(133)
    return 100 + 2 * k, 200 + 3 * k


def pose_model(path):
    bx, by = bins()
    sx = np.zeros((1, 133, 576), np.float32)
    sy = np.zeros((1, 133, 768), np.float32)
    sx[0, np.arange(133), bx] = 0.9
    sy[0, np.arange(133), by] = 0.8
    sx[0, 0, bx[0]], sy[0, 0, by[0]] = 0.6, 0.95      # score = the smaller maximum
    sx[0, 10], sy[0, 10] = -1, -1                     # COCO right wrist: not found
    return constant_graph(path, [1, 3, 384, 288], {"simcc_x": sx, "simcc_y": sy})


# Box A in letterbox pixels: centre ((5 + .5) * 32, (4 + .5) * 32) = (176, 144), 96 x 256
# -> frame (64, 8, 112, 136). Box B: centre (16 * 32, 2.5 * 32), 64 x 64 -> frame (240, 24,
# 272, 56). Crop of A: centre (88, 72), size (48, 128) * 1.25 = (60, 160) -> 3:4 -> (120, 160).
BOX_A = (5, 4, 0.5, 0.5, 96, 256, 0.9, 0.9, 0.0)
BOX_B = (15, 2, 1.0, 0.5, 64, 64, 0.8, 0.9, 0.0)


def expected_a():
    bx, by = bins()
    return np.stack([bx * 120 / 576 + 28, by * 160 / 768 - 8], -1)


@pytest.fixture
def models(tmp_path):
    return (detector(tmp_path / "yolox_l.onnx", [BOX_A, BOX_B]),
            pose_model(tmp_path / "dw-ll_ucoco_384.onnx"))


def frames(t=2):
    return np.full((t, H, W, 3), 40, np.uint8)


def test_detect_decodes_letterboxed_boxes(models):
    ex = DWPoseExtractor(*models, device="cpu")
    dets = ex.detect(frames()[0])
    np.testing.assert_allclose(dets[:, :4], [[64, 8, 112, 136], [240, 24, 272, 56]], atol=1e-3)
    np.testing.assert_allclose(dets[:, 4], [0.81, 0.72], rtol=1e-6)


def test_estimate_image_keypoints_and_mapping(models):
    ex = DWPoseExtractor(*models, device="cpu")
    poses = estimate_image(ex, frames()[0])
    assert len(poses) == 1 and poses.num_people == 2
    people = [{part: getattr(poses, part)[0, p] for part in PARTS} for p in range(2)]
    a = people[0]
    np.testing.assert_allclose(ex.detect(frames()[0])[0, :4], [64, 8, 112, 136], atol=1e-3)
    kp = expected_a()
    # the nose: bin (100, 200) -> crop (50, 100) -> frame (50/288*120 + 28, 100/384*160 - 8)
    np.testing.assert_allclose(a["body"][0], [48.833333, 33.666667, 0.6], atol=1e-3)
    # OpenPose order from COCO: neck = mean of shoulders 5, 6; r-shoulder 6; l-shoulder 5; ...
    coco = [0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]
    for i, c in enumerate(coco):
        if c is None:
            np.testing.assert_allclose(a["body"][i, :2], (kp[5] + kp[6]) / 2, atol=1e-3)
            assert a["body"][i, 2] == pytest.approx(0.8)
        elif c == 10:  # score <= 0: absent
            assert a["body"][i].tolist() == [0, 0, 0]
        else:
            np.testing.assert_allclose(a["body"][i, :2], kp[c], atol=1e-3)
    np.testing.assert_allclose(a["face"][:, :2], kp[23:91], atol=1e-3)
    np.testing.assert_allclose(a["left_hand"][:, :2], kp[91:112], atol=1e-3)
    np.testing.assert_allclose(a["right_hand"][:, :2], kp[112:133], atol=1e-3)
    np.testing.assert_allclose(a["right_hand"][:, 2], 0.8, rtol=1e-6)
    # person B: crop centre (256, 40), size (32, 32) * 1.25 -> 3:4 -> (40, 53.33)
    bx, by = bins()
    np.testing.assert_allclose(people[1]["face"][0, :2],
                               [bx[23] / 576 * 40 + 236, by[23] / 768 * 160 / 3 + 40 - 80 / 3],
                               atol=1e-3)


def test_sequence(models):
    poses = DWPoseExtractor(*models, device="cpu")(frames(3), progress=False, fps=12)
    assert (len(poses), poses.num_people, poses.width, poses.height) == (3, 2, W, H)
    assert poses.fps == 12 and poses.driver == 0
    np.testing.assert_allclose(poses.face[2, 0, :, :2], expected_a()[23:91], atol=1e-3)
    one = DWPoseExtractor(*models, device="cpu", max_people=1)(frames(1), progress=False)
    assert one.num_people == 1
    np.testing.assert_allclose(one.body[0, 0], poses.body[0, 0])


def test_nms_threshold_and_classes(tmp_path):
    same = (6, 4, -0.5, 0.5, 96, 256, 0.6, 0.9, 0.0)     # the same box as A, lower score
    weak = (12, 12, 0.5, 0.5, 64, 64, 0.5, 0.5, 0.0)     # score 0.25 < 0.3
    other = (15, 15, 0.5, 0.5, 64, 64, 0.9, 0.1, 0.9)    # a confident non-person
    path = detector(tmp_path / "det.onnx", [BOX_A, same, weak, other])
    ex = DWPoseExtractor(path, pose_model(tmp_path / "pose.onnx"), device="cpu")
    dets = ex.detect(frames()[0])
    assert len(dets) == 1 and dets[0, 4] == pytest.approx(0.81)
    ex = DWPoseExtractor(path, tmp_path / "pose.onnx", device="cpu", det_threshold=0.2)
    assert len(ex.detect(frames()[0])) == 2


def test_model_inputs_are_bgr_letterbox_and_rgb_crops(models):
    ex = DWPoseExtractor(*models, device="cpu")
    seen = {}

    class Recorder:
        def __init__(self, session, key):
            self.session, self.key = session, key

        def get_inputs(self):
            return self.session.get_inputs()

        def run(self, names, feeds):
            seen.setdefault(self.key, next(iter(feeds.values())))
            return self.session.run(names, feeds)

    ex._det = Recorder(ex.det_session, "det")
    ex._pose = Recorder(ex.pose_session, "pose")
    red = np.zeros((H, W, 3), np.uint8)
    red[..., 0] = 255
    estimate_image(ex, red)
    det = seen["det"][0]
    assert det.shape == (3, 640, 640)
    assert (det[2, :320, :] == 255).all() and (det[0, :320, :] == 0).all()  # BGR
    assert (det[:, 320:, :] == 114).all()                                   # padding below
    pose = seen["pose"][0]
    assert pose.shape == (3, 384, 288)
    inside = pose[:, 192, 144]  # crop centre: frame pixel (88, 72), red
    np.testing.assert_allclose(inside, (np.array([255, 0, 0]) - MEAN) / STD, rtol=1e-5)


def test_nobody_gives_an_empty_track(tmp_path, caplog):
    ex = DWPoseExtractor(detector(tmp_path / "det.onnx", []), pose_model(tmp_path / "p.onnx"),
                         device="cpu")
    with caplog.at_level(logging.WARNING):
        poses = ex(frames(2), progress=False)
    assert poses.num_people == 0 and len(poses) == 2 and poses.body.shape == (2, 0, 18, 3)
    assert "nobody in any of the 2 frames" in caplog.text
    assert estimate_image(ex, frames()[0]).num_people == 0


def test_missing_or_bad_models(tmp_path, models):
    det, pose = models
    with pytest.raises(InputError) as e:
        DWPoseExtractor(tmp_path / "x" / "yolox_l.onnx", pose)
    assert str(e.value).startswith(f"pose.det_model={tmp_path / 'x' / 'yolox_l.onnx'}: "
                                   "file not found")
    assert "yzd-v/DWPose" in str(e.value)
    with pytest.raises(InputError, match=r"^pose.pose_model: not set"):
        DWPoseExtractor(det, None)
    with pytest.raises(InputError, match=r"^pose.max_people=0"):
        DWPoseExtractor(det, pose, max_people=0)
    # a folder holding the file is accepted
    assert DWPoseExtractor(tmp_path, tmp_path, device="cpu").det_path == det
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    ex = DWPoseExtractor(junk, pose, device="cpu")  # checked lazily, on first use
    with pytest.raises(InputError, match=r"^pose.det_model=.*junk.onnx: not a loadable ONNX"):
        ex.detect(frames()[0])


def test_helpers():
    center, scale = box_to_roi(np.array([0, 0, 30, 10]), aspect=0.75)
    np.testing.assert_allclose(center, [15, 5])
    np.testing.assert_allclose(scale, [37.5, 50])  # 37.5 x 12.5 widened to 3:4 in height
    image, ratio = letterbox(np.zeros((100, 50, 3), np.uint8))
    assert ratio == 6.4 and image.shape == (3, 640, 640) and (image[:, :, 320:] == 114).all()
    locs, scores = decode_simcc(np.array([[0, 3, 1], [-2, -1, -3]], np.float32),
                                np.array([[5, 0, 0, 0], [1, 0, 0, 0]], np.float32))
    np.testing.assert_array_equal(locs, [[0.5, 0], [-0.5, -0.5]])
    np.testing.assert_array_equal(scores, [3, -1])
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.4])) == [1, 2]


def test_config_builds_the_extractor(models):
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from dreamdance.inputs import build

    conf = Path(__file__).resolve().parents[1] / "conf"
    det, pose = models
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("config", overrides=["pose=dwpose", "device=cpu",
                                           f"pose.det_model={det}", f"pose.pose_model={pose}"])
        ex = build(cfg.pose)
        assert isinstance(ex, DWPoseExtractor) and ex.device == "cpu"
        assert (ex.det_threshold, ex.max_people) == (0.3, 4)
        cfg = compose("config", overrides=["pose=dwpose", "device=cpu"])
        with pytest.raises(InputError, match=r"^pose.det_model: not set"):
            build(cfg.pose)
