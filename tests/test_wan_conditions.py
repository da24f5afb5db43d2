"""Wan2.2-Animate's conditions: pose drawing pinned to Wan's colours and widths, face crops."""

import colorsys

import cv2
import numpy as np
import pytest

from dreamdance.animate.wan_conditions import (
    WAN_COLOURS,
    WAN_HAND_COLOURS,
    draw_wan_pose,
    face_box,
    face_crops,
    fill_boxes,
    letterbox,
    stick_widths,
    wan_pose_video,
    wan_size,
)
from dreamdance.motion.poses import PoseSequence

# Wan2.2 wan/modules/animate/preprocess/human_visualization.py, draw_aapose_new: `colors`
WAN2_2_COLORS = [
    [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
    [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
    [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
    [200, 200, 0], [100, 100, 0],
]
BLACK = (0, 0, 0)
BLUE = (0, 0, 255)                 # Wan's hand joints
SIZE = 1024                        # body stick 4, hand stick 2

# (x, y) of a T-pose on a 1024 × 1024 canvas, COCO-18 order
T_POSE = np.array([
    (512, 200), (512, 300), (412, 300), (292, 300), (172, 300), (612, 300), (732, 300),
    (852, 300), (462, 560), (462, 720), (462, 880), (562, 560), (562, 720), (562, 880),
    (490, 180), (534, 180), (470, 190), (554, 190)], np.float64)


def t_pose() -> np.ndarray:
    return np.concatenate([T_POSE, np.ones((18, 1))], axis=1)        # [18, 3]


def hand(wrist, direction) -> np.ndarray:
    """21 keypoints: finger f's joint j at wrist + (direction * 20 j, 20 f - 40)."""
    kp = np.zeros((21, 3))
    kp[0] = (*wrist, 1.0)
    for f in range(5):
        for j in range(1, 5):
            kp[4 * f + j] = (wrist[0] + direction * 20 * j, wrist[1] - 40 + 20 * f, 1.0)
    return kp


def at(img, xy):
    return tuple(int(v) for v in img[int(xy[1]), int(xy[0])])


def dim(colour):
    return tuple(int(c * 0.6) for c in colour)


def test_constants_match_wan2_2():
    assert [list(c) for c in WAN_COLOURS] == WAN2_2_COLORS
    for i, colour in enumerate(WAN_HAND_COLOURS):   # Wan passes hsv_to_rgb(i / 20) * 255 floats
        img = np.zeros((3, 3, 3), np.uint8)
        cv2.line(img, (0, 1), (2, 1), np.array(colorsys.hsv_to_rgb(i / 20, 1, 1)) * 255, 1)
        assert at(img, (1, 1)) == colour, i
    assert stick_widths(512, 512) == (1, 1)
    assert stick_widths(1280, 720) == (2, 1)
    assert stick_widths(SIZE, SIZE) == (4, 2)
    assert stick_widths(100, 80) == (1, 1)


def test_t_pose_colours():
    img = draw_wan_pose(t_pose(), hand(T_POSE[7], +1), hand(T_POSE[4], -1), SIZE, SIZE)
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    # joints: full colour of the joint
    assert at(img, T_POSE[1]) == (255, 85, 0)        # neck
    assert at(img, T_POSE[6]) == (0, 255, 0)         # left elbow
    assert at(img, T_POSE[9]) == (0, 255, 255)       # right knee
    # limbs: the limb's colour at 60 %, at the middle of the limb
    assert at(img, (352, 300)) == (153, 102, 0)      # r_shoulder→r_elbow, limb 2
    assert at(img, (562, 800)) == (0, 51, 153)       # l_knee→l_ankle, limb 11
    assert at(img, (487, 430)) == (0, 153, 0)        # neck→r_hip, limb 6
    assert at(img, (512, 250)) == dim(WAN2_2_COLORS[12])   # neck→nose
    # limbs are ellipses with semi-minor axis 4: 4 px off the axis is in, 6 px is out
    assert at(img, (352, 303)) == (153, 102, 0) and at(img, (352, 306)) == BLACK
    # hands: bone i in hue i / 20, joints blue, line width 2
    assert at(img, (882, 280)) == WAN_HAND_COLOURS[5]     # left index finger, bone 5→6
    assert at(img, (142, 320)) == WAN_HAND_COLOURS[13]    # right ring finger, bone 13→14
    assert at(img, (932, 280)) == BLUE                    # left index tip
    assert at(img, (882, 284)) == BLACK                   # beyond the 2 px line
    # background black; the figure covers a small part of the canvas
    for corner in ((0, 0), (SIZE - 1, 0), (0, SIZE - 1), (SIZE - 1, SIZE - 1), (700, 700)):
        assert at(img, corner) == BLACK
    assert 0.005 < img.any(axis=2).mean() < 0.05


def test_absent_keypoints_draw_nothing():
    body = t_pose()
    body[12, 2] = 0.0                                # left knee absent
    body[3, 2] = 0.49                                # right elbow below Wan's 0.5
    absent = np.zeros((21, 3))
    img = draw_wan_pose(body, absent, absent, SIZE, SIZE)
    for xy in (T_POSE[12], (562, 640), (562, 800), T_POSE[3], (352, 300), (232, 300)):
        assert at(img, xy) == BLACK, xy
    assert at(img, T_POSE[13]) == (85, 0, 255)       # the left ankle itself is still drawn
    assert at(img, T_POSE[4]) == (170, 255, 0)       # right wrist: no hand drawn over it
    body[3, 2] = 0.5                                 # at the threshold: drawn
    assert at(draw_wan_pose(body, absent, absent, SIZE, SIZE), (352, 300)) == (153, 102, 0)
    nothing = draw_wan_pose(np.zeros((18, 3)), absent, absent, 64, 48)
    assert nothing.shape == (48, 64, 3) and not nothing.any()


def test_toes_pair_colours_by_position():
    body = np.concatenate([t_pose(), [(600, 940, 1.0), (424, 940, 1.0)]])     # l_toe, r_toe
    absent = np.zeros((21, 3))
    img = draw_wan_pose(body, absent, absent, SIZE, SIZE)
    assert at(img, (600, 940)) == (200, 200, 0) and at(img, (424, 940)) == (100, 100, 0)
    assert at(img, (581, 910)) == dim((255, 0, 85))      # l_ankle→l_toe takes colour 17
    assert at(img, (443, 910)) == dim((200, 200, 0))     # r_ankle→r_toe takes colour 18
    assert not draw_wan_pose(t_pose(), absent, absent, SIZE, SIZE)[900:, :].any()  # ours: none


def make_poses(face_xy: list, width=320, height=240, people=1, driver=0) -> PoseSequence:
    """T frames; frame t's driver has the face landmarks ``face_xy[t]`` ([68, 2] or None)."""
    t = len(face_xy)
    face = np.zeros((t, people, 68, 3), np.float32)
    for i, xy in enumerate(face_xy):
        if xy is not None:
            face[i, driver, :, :2], face[i, driver, :, 2] = xy, 0.9
    zeros = {k: np.zeros((t, people, n, 3), np.float32)
             for k, n in (("body", 18), ("left_hand", 21), ("right_hand", 21))}
    return PoseSequence(face=face, **zeros, width=width, height=height, fps=8.0, driver=driver)


def landmarks(dx=0.0, dy=0.0) -> np.ndarray:
    """68 points filling x in [100, 160], y in [80, 160] (plus a shift)."""
    i = np.arange(68)
    return np.stack([100 + 60 * (i % 17) / 16 + dx, 80 + 80 * (i // 17) / 3 + dy], axis=1)


def test_face_box_follows_wan_get_face_bboxes():
    face = np.concatenate([landmarks(), np.ones((68, 1))], axis=1)
    # w0, h0 = 60, 80; each side grows by sqrt(1.3) - 1 = 0.1402: x ± 4.21, y - 8.41 / + 2.80
    assert face_box(face, 320, 240) == (95, 71, 164, 162)
    moved = face.copy()
    moved[:, :2] += (7, 5)
    assert face_box(moved, 320, 240) == (102, 76, 171, 167)
    assert face_box(face, 150, 240) == (95, 71, 150, 162)    # clipped to the image
    face[:60, 2] = 0.0                                        # only the bottom row is present
    assert face_box(face, 320, 240) is None                  # no height: no box
    assert face_box(np.zeros((68, 3)), 320, 240) is None


def patch_frame(box, width=320, height=240) -> np.ndarray:
    """Black frame with a 7 × 7 red patch on the centre of ``box``."""
    frame = np.zeros((height, width, 3), np.uint8)
    cx, cy = (box[0] + box[2] - 1) // 2, (box[1] + box[3] - 1) // 2
    frame[cy - 3:cy + 4, cx - 3:cx + 4] = (255, 0, 0)
    return frame


def red_centre(img) -> np.ndarray:
    ys, xs = np.nonzero(img[..., 0] > 128)
    return np.array([xs.mean(), ys.mean()])


def test_face_crops_follow_the_face():
    n = 9
    poses = make_poses([landmarks(), landmarks(dx=n, dy=n)])
    box0, box1 = (95, 71, 164, 162), (104, 80, 173, 171)
    frames = np.stack([patch_frame(box0), patch_frame(box1)])
    crops = face_crops(frames, poses)
    assert crops.shape == (2, 512, 512, 3) and crops.dtype == np.uint8
    np.testing.assert_allclose(red_centre(crops[0]), (255.5, 255.5), atol=1.5)
    np.testing.assert_array_equal(crops[0], crops[1])         # moved by n px: same crop


def test_missing_faces_reuse_a_neighbouring_box():
    a, b = (1, 2, 3, 4), (5, 6, 7, 8)
    assert fill_boxes([None, a, None, None, b, None]) == [a, a, a, a, b, b]
    box = (95, 71, 164, 162)
    poses = make_poses([None, landmarks(), None, landmarks(dx=60)])
    frames = np.stack([patch_frame(box)] * 4)
    crops = face_crops(frames, poses, size=128)
    assert crops.shape == (4, 128, 128, 3)
    for t in (0, 2):                                          # first box, last box
        np.testing.assert_array_equal(crops[t], crops[1])
    np.testing.assert_allclose(red_centre(crops[1]), (63.5, 63.5), atol=1.0)
    assert not crops[3][48:80, 48:80].any()                   # box moved away from the patch


def test_no_face_anywhere_raises():
    poses = make_poses([None, None])
    with pytest.raises(ValueError, match="no face found in any of the 2 frames"):
        face_crops(np.zeros((2, 240, 320, 3), np.uint8), poses)
    with pytest.raises(ValueError, match="do not match"):
        face_crops(np.zeros((2, 100, 320, 3), np.uint8), make_poses([landmarks()] * 2))


def test_pose_video_draws_the_driver_and_letterboxes():
    poses = make_poses([None, None], width=SIZE, height=SIZE, people=2, driver=1)
    poses.body[:, 1] = t_pose()
    poses.body[:, 0] = t_pose() + (30, 0, 0)
    video = wan_pose_video(poses)
    assert video.shape == (2, SIZE, SIZE, 3)
    absent = np.zeros((21, 3))
    np.testing.assert_array_equal(video[1], draw_wan_pose(t_pose(), absent, absent, SIZE, SIZE))
    boxed = wan_pose_video(poses, size=(512, 256))
    assert boxed.shape == (2, 256, 512, 3)
    assert not boxed[:, :, :128].any() and not boxed[:, :, 384:].any()   # bars left and right


def test_letterbox_and_size():
    white = np.full((50, 100, 3), 255, np.uint8)                 # 100 wide, 50 high
    out = letterbox(white, 64, 64)
    assert out.shape == (64, 64, 3)
    assert not out[:16].any() and not out[48:].any() and (out[16:48] == 255).all()
    assert wan_size(1280, 720) == (1280, 720)
    assert wan_size(720, 1280) == (720, 1280)
    assert wan_size(1000, 1000) == (960, 960)
    assert wan_size(640, 480) == (1104, 816)      # floors, area <= 1280 × 720


def test_body_only_poses_crop_around_the_head():
    from dreamdance.animate.wan_conditions import head_box

    body = np.zeros((18, 3), np.float32)
    body[0] = (160, 100, 0.9)   # nose
    body[1] = (160, 140, 0.9)   # neck
    assert head_box(body, 320, 240) == (112, 52, 208, 148)  # side 2.4 x 40 px, on the nose
    poses = make_poses([None, None])
    poses.body[:, 0] = body
    frames = np.zeros((2, 240, 320, 3), np.uint8)
    frames[:, 52:148, 112:208] = (255, 0, 0)
    crops = face_crops(frames, poses, size=64)
    assert crops.shape == (2, 64, 64, 3) and (crops[..., 0] > 250).all()
    assert head_box(np.zeros((18, 3), np.float32), 320, 240) is None
