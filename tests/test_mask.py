"""The inpainting mask covers the person, grows with dilation and survives odd keypoints."""

import numpy as np
import pytest

from dreamdance.errors import InputError
from dreamdance.motion.mask import mask_video, pose_masks
from dreamdance.motion.poses import PARTS, PoseSequence
from dreamdance.motion.skeleton import Angles, whole_body


def sequence(frames, width=96, height=128):
    return PoseSequence(**{part: np.stack([f[part] for f in frames])[:, None].astype(np.float32)
                           for part in PARTS}, width=width, height=height, fps=8.0)


def empty_pose():
    return {part: np.zeros((k, 3), np.float32) for part, k in PARTS.items()}


def random_poses(n=6, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        angles = Angles(**{k: v + rng.uniform(-1.5, 1.5) for k, v in Angles().__dict__.items()})
        pose = whole_body(rng.uniform(30, 70, 2), rng.uniform(40, 110), angles)
        for part in PARTS:
            pose[part][:, :2] += rng.normal(0, 2, pose[part][:, :2].shape)
            pose[part][:, 2] = rng.choice([0.0, 0.1, 0.9], len(pose[part]), p=[0.2, 0.1, 0.7])
        frames.append(pose)
    return sequence(frames)


def inside(poses, t):
    """Pixels (row, col) of frame t's confident keypoints that lie in the frame."""
    pts = np.concatenate([getattr(poses, p)[t, 0] for p in PARTS])
    pts = pts[pts[:, 2] >= 0.3, :2]
    ij = np.round(pts[:, ::-1]).astype(int)
    keep = (ij >= 0).all(1) & (ij[:, 0] < poses.height) & (ij[:, 1] < poses.width)
    return ij[keep]


@pytest.mark.parametrize("shape", ["hull", "box"])
@pytest.mark.parametrize("dilate", [0.0, 0.08])
def test_contains_every_confident_keypoint(shape, dilate):
    poses = random_poses()
    masks = pose_masks(poses, dilate=dilate, shape=shape)
    assert masks.shape == (6, 128, 96) and masks.dtype == bool
    for t in range(len(poses)):
        ij = inside(poses, t)
        assert len(ij) > 20 and masks[t][ij[:, 0], ij[:, 1]].all()


def test_box_contains_hull_and_dilation_grows():
    poses = random_poses(seed=1)
    hull, box = pose_masks(poses), pose_masks(poses, shape="box")
    assert (box >= hull).all() and box.sum() > hull.sum()
    previous = None
    for dilate in (0.0, 0.02, 0.05, 0.1, 0.2):
        m = pose_masks(poses, dilate=dilate)
        if previous is not None:
            assert (m >= previous).all() and m.sum() > previous.sum()
        previous = m


def test_hull_exact_and_no_keypoints_is_empty():
    pose = empty_pose()
    for i, xy in enumerate([(10, 10), (50, 10), (50, 50), (10, 50)]):
        pose["body"][8 + i] = (*xy, 1.0)     # hips, knees: no head or hands to grow
    m = pose_masks(sequence([pose, empty_pose()]), dilate=0.0)
    assert m[0, 10:51, 10:51].all() and m[0].sum() == 41 * 41
    assert not m[1].any()
    # dilation by 0.1 x body size (40 px: box height, no head or feet) = 4 px
    m = pose_masks(sequence([pose]), dilate=0.1)[0]
    assert m[10:51, 6:55].all() and m[6:55, 10:51].all() and m.sum() < 49 * 49
    assert not m[5, 30] and not m[30, 55] and not m[6, 6]   # rounded corners
    people = PoseSequence(*(np.zeros((2, 0, k, 3), np.float32) for k in PARTS.values()),
                          width=8, height=6, fps=8.0)
    assert pose_masks(people).shape == (2, 6, 8) and not pose_masks(people).any()


def test_head_and_hand_fallbacks():
    pose = empty_pose()
    pose["body"][1] = (50, 50, 1.0)          # neck
    pose["body"][0] = (50, 30, 1.0)          # nose: head size 1.5 * 20 = 30
    pose["body"][3] = (80, 50, 1.0)          # right elbow
    pose["body"][4] = (80, 90, 1.0)          # right wrist: forearm 40
    m = pose_masks(sequence([pose], 128, 128), dilate=0.0, face_margin=0.5,
                   hand_margin=0.5)[0]
    assert m[30 - 14, 50] and not m[30 - 16, 50]   # disc of 0.5 * 30 = 15 around the nose
    assert m[90 + 19, 80] and not m[90 + 21, 80]   # disc of 0.5 * 40 = 20 around the wrist


def test_keypoints_outside_the_frame():
    pose = whole_body(np.array([48.0, 40.0]), 100.0, Angles())
    pose["body"][4, :2] = (-500, 2000)
    pose["right_hand"][:, :2] = (1e9, -1e9)
    pose["face"][:, :2] += 1e7
    poses = sequence([pose])
    m = pose_masks(poses)
    assert m.shape == (1, 128, 96) and m.any()
    ij = inside(poses, 0)
    assert m[0][ij[:, 0], ij[:, 1]].all()
    assert pose_masks(poses, shape="box").any()


def test_mask_video_and_bad_settings():
    masks = np.zeros((2, 4, 5), bool)
    masks[1, 2, 3] = True
    video = mask_video(masks)
    assert video.shape == (2, 4, 5, 3) and video.dtype == np.uint8
    assert (video[1, 2, 3] == 255).all() and video.sum() == 3 * 255
    with pytest.raises(InputError, match="mask.dilate=-0.1: must be a number >= 0"):
        pose_masks(random_poses(1), dilate=-0.1)
    with pytest.raises(InputError, match="mask.shape=disc: must be one of hull, box"):
        pose_masks(random_poses(1), shape="disc")
