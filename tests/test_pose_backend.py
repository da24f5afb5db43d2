"""The pose backends' one contract: the same call, and one conversion to our parts."""

import inspect

import numpy as np
import pytest

from dreamdance.motion.backend import PoseBackend, check_frames, to_sequence
from dreamdance.motion.dwpose import DWPoseExtractor
from dreamdance.motion.keypoints import coco_to_openpose
from dreamdance.motion.poses import BODY_NAMES
from dreamdance.motion.vitpose import ViTPoseExtractor


@pytest.mark.parametrize("backend", [DWPoseExtractor, ViTPoseExtractor])
def test_backends_take_the_protocols_arguments_in_its_order(backend):
    def params(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]

    assert params(backend.__call__) == params(PoseBackend.__call__)


def test_the_neck_is_kept_exactly_when_both_shoulders_are():
    # at any threshold a consumer applies, as DWPose keeps it at its 0.3
    rng = np.random.default_rng(0)
    coco = np.zeros((500, 17, 3), np.float32)
    coco[..., :2] = rng.uniform(0, 100, (500, 17, 2))
    coco[..., 2] = rng.choice([0.0, 0.05, 0.2, 0.3, 0.31, 0.6, 0.9], (500, 17))
    neck = coco_to_openpose(coco)[:, BODY_NAMES.index("neck")]  # [500, 3]
    shoulders = coco[:, [5, 6], 2]
    for threshold in (1e-6, 0.1, 0.3, 0.5):
        np.testing.assert_array_equal(neck[:, 2] >= threshold,
                                      (shoulders >= threshold).all(1), err_msg=str(threshold))
    present = (shoulders > 0).all(1)
    np.testing.assert_allclose(neck[present, :2], coco[present][:, [5, 6], :2].mean(1))
    assert (neck[~present] == 0).all()


def test_frames_are_padded_to_the_most_people_and_absent_points_zeroed():
    kp = np.ones((2, 133, 3), np.float32)
    kp[0, 10] = (-0.5, -0.5, -0.2)  # a keypoint the model did not find: zeros, not (-0.5, -0.5)
    poses = to_sequence([kp, kp[:0], kp[1:]], 64, 48, 12.0, "test", 0.3)
    assert (len(poses), poses.num_people, poses.width, poses.height, poses.fps) == (
        3, 2, 64, 48, 12.0)
    assert (poses.body[1] == 0).all() and (poses.face[2, 1] == 0).all()
    assert (poses.body[0, 0, BODY_NAMES.index("r_wrist")] == 0).all()
    assert (poses.body[2, 0, :, 2] == 1).all()
    with pytest.raises(ValueError, match="uint8"):
        check_frames(np.zeros((1, 4, 4, 3), np.float32))
