"""Pose drawing puts OpenPose's colours at the right pixels; previews have the right layout."""

import numpy as np

from dreamdance.camera import intrinsics_from_fov, preset
from dreamdance.motion.render import BODY_COLOURS, HAND_COLOURS, draw_body, draw_face, draw_hand
from dreamdance.preview import contact_sheet, trajectory_plot


def test_body_limb_and_joint_colours():
    canvas = np.zeros((512, 512, 3), np.uint8)
    kp = np.zeros((18, 3))
    kp[1] = (300, 200, 1.0)   # neck
    kp[2] = (200, 200, 1.0)   # right shoulder
    kp[3] = (200, 300, 0.1)   # right elbow, below the threshold: no limb 2-3
    draw_body(canvas, kp)
    np.testing.assert_array_equal(canvas[200, 250], [153, 0, 0])  # limb 1-2 at 60 % of red
    np.testing.assert_array_equal(canvas[200, 300], BODY_COLOURS[1])  # neck joint
    np.testing.assert_array_equal(canvas[200, 200], BODY_COLOURS[2])  # shoulder joint
    assert canvas[250:, :].max() == 0  # nothing drawn towards the unconfident elbow
    assert canvas[:150].max() == 0 and canvas[:, :180].max() == 0


def test_hand_and_face():
    canvas = np.zeros((512, 512, 3), np.uint8)
    kp = np.zeros((21, 3))
    kp[0] = (50, 100, 1)
    kp[1] = (150, 100, 1)
    draw_hand(canvas, kp)
    column = canvas[95:106, 100]  # across bone 0-1, red hue (anti-aliased at its edges)
    assert (column == HAND_COLOURS[0]).all(-1).any() and column[:, 1:].max() == 0
    np.testing.assert_array_equal(canvas[100, 50], [0, 0, 255])       # joints are blue
    face = np.zeros((68, 3))
    face[10] = (20, 30, 1)
    draw_face(canvas, face)
    np.testing.assert_array_equal(canvas[30, 20], [255, 255, 255])


def test_contact_sheet_and_trajectory_plot():
    tiles = [np.full((10, 20, 3), v, np.uint8) for v in (50, 100, 150)]
    sheet = contact_sheet(tiles, ["a", "b", "c"], cols=2, tile=40, pad=2)
    assert sheet.shape == (2 * 42 + 2, 2 * 42 + 2, 3)
    assert sheet[2 + 20, 2 + 20, 0] == 50 and sheet[2 + 20, 44 + 20, 0] == 100
    K = intrinsics_from_fov(50, 64, 64)
    for name in ("orbit", "pan"):  # a translating and a purely rotating camera
        img = trajectory_plot(preset(name, 9, K, 64, 64, depth=2.0), size=64)
        assert img.shape == (64, 64, 3) and (img < 200).any()
