"""Pose alignment to the character: the box rule, the three modes and the eased transition."""

import numpy as np
import pytest

from dreamdance.errors import InputError
from dreamdance.motion.align import (
    CharacterFrame,
    add_transition,
    align_poses,
    ease_in_out,
    pose_box,
    pose_frame,
)
from dreamdance.motion.poses import PARTS, PoseSequence
from dreamdance.motion.render import BODY_LIMBS
from dreamdance.motion.skeleton import Angles, Proportions, whole_body


def empty_pose():
    return {part: np.zeros((k, 3), np.float32) for part, k in PARTS.items()}


def sequence(frames, width, height, fps=8.0):
    return PoseSequence(**{part: np.stack([f[part] for f in frames])[:, None].astype(np.float32)
                           for part in PARTS}, width=width, height=height, fps=fps)


def standing():
    """Nose (100, 100), ankles at y = 300, wrists at x = 70 and 130: box (70, 80, 130, 310)."""
    pose = empty_pose()
    for i, xy in {0: (100, 100), 1: (100, 130), 4: (70, 200), 7: (130, 200), 10: (80, 300),
                  13: (120, 300)}.items():
        pose["body"][i] = (*xy, 1.0)
    return pose


def test_pose_box_rule():
    pose = standing()
    pose["body"][7, 2] = 0.2                 # unconfident: ignored
    pose["face"][30] = (105, 110, 1.0)
    pose["right_hand"][0] = (50, 210, 1.0)   # hands count
    # extent 100..300 = 200: head 0.10 * 200 above the nose, feet 0.05 * 200 below the ankles
    assert pose_box(pose) == (50.0, 80.0, 120.0, 310.0)
    pose["body"][0, 2] = 0.0                 # no nose: from the highest eye
    pose["body"][14] = (95, 95, 1.0)
    assert pose_box(pose) == pytest.approx((50.0, 95 - 0.1 * 205, 120.0, 300 + 0.05 * 205))
    assert pose_box(empty_pose()) is None


def test_character_frame_constructors():
    mask = np.zeros((40, 30))
    mask[10:20, 5:15] = 0.7
    mask[25, 3] = 0.4                        # below 0.5: outside
    frame = CharacterFrame.from_mask(mask)
    assert (frame.box, frame.width, frame.height, frame.pose) == ((5, 10, 15, 20), 30, 40, None)
    with pytest.raises(InputError, match="character mask: is empty"):
        CharacterFrame.from_mask(np.zeros((8, 8)))
    frame = CharacterFrame.from_pose(standing(), 200, 400)
    assert frame.box == (70.0, 80.0, 130.0, 310.0) and frame.pose["face"].shape == (68, 3)
    seq = sequence([standing()], 200, 400)
    assert CharacterFrame.from_pose(seq).box == frame.box
    with pytest.raises(InputError, match="character pose"):
        CharacterFrame.from_pose(empty_pose(), 10, 10)


def test_box_mode_exact():
    rng = np.random.default_rng(0)
    moved = empty_pose()
    for part, k in PARTS.items():            # a second frame: anything, some points absent
        moved[part] = np.concatenate([rng.uniform(0, 400, (k, 2)),
                                      rng.choice([0.0, 0.2, 1.0], (k, 1))], 1)
    driving = sequence([standing(), moved], 200, 400)
    # driving box: height 230, feet (100, 310); character box: height 115, feet (60, 150)
    character = CharacterFrame((10, 35, 110, 150), 160, 200)
    out = align_poses(driving, character, mode="box")
    assert (out.width, out.height, len(out), out.fps) == (160, 200, 2, 8.0)
    for part in PARTS:
        src, dst = getattr(driving, part), getattr(out, part)
        present = src[..., 2] > 0
        expected = 0.5 * (src[..., :2] - (100, 310)) + (60, 150)
        np.testing.assert_allclose(dst[..., :2][present], expected[present], atol=1e-4)
        np.testing.assert_array_equal(dst[..., 2], src[..., 2])
        assert not dst[..., :2][~present].any()


def test_none_mode_rescales():
    rng = np.random.default_rng(1)
    pose = {part: np.concatenate([rng.uniform(0, 100, (k, 2)), np.ones((k, 1))], 1)
            for part, k in PARTS.items()}
    driving = sequence([pose], 200, 100)
    out = align_poses(driving, CharacterFrame((0, 0, 10, 10), 400, 300), mode="none")
    for part in PARTS:
        np.testing.assert_allclose(getattr(out, part)[0, 0, :, :2],
                                   pose[part][:, :2] * (2, 3), rtol=1e-6)
    assert (out.width, out.height) == (400, 300)


def bone(a, p, q):
    v = a[q, :2] - a[p, :2]
    return np.linalg.norm(v), v / np.linalg.norm(v)


def test_limbs_bone_lengths_and_directions():
    char_prop = Proportions(neck=0.12, upper_arm=0.2, forearm=0.1, thigh=0.3, shin=0.15,
                            shoulder=0.08, head=0.09)
    char = whole_body(np.array([80.0, 50.0]), 120.0, Angles(), char_prop)
    pose0 = whole_body(np.array([200.0, 150.0]), 300.0, Angles(r_upper=2.5, l_fore=0.3,
                                                               lean=0.1))
    pose1 = whole_body(np.array([230.0, 150.0]), 300.0, Angles(r_thigh=1.2, head_turn=0.3))
    driving = sequence([pose0, pose1], 400, 500)
    character = CharacterFrame.from_pose(char, 160, 200)
    out = align_poses(driving, character, mode="limbs")
    for t, drv in enumerate((pose0, pose1)):
        got = pose_frame(out, t)["body"]
        for p, q in BODY_LIMBS:
            (length, direction), (char_len, _) = bone(got, p, q), bone(char["body"], p, q)
            assert length == pytest.approx(char_len, rel=1e-4)
            np.testing.assert_allclose(direction, bone(drv["body"], p, q)[1], atol=1e-5)
    # placed by the box rule: the first frame's feet stand on the character's
    box, target = pose_box(pose_frame(out, 0)), character.box
    assert ((box[0] + box[2]) / 2, box[3]) == pytest.approx(((target[0] + target[2]) / 2,
                                                            target[3]), abs=1e-4)
    # the neck travels by the box scale
    s = (target[3] - target[1]) / (lambda b: b[3] - b[1])(pose_box(pose0))
    np.testing.assert_allclose(out.body[1, 0, 1, :2] - out.body[0, 0, 1, :2], (30 * s, 0),
                               atol=1e-4)
    # hands follow the wrists (forearm factor), the face the nose (eye and ear bones factor)
    got = pose_frame(out, 0)
    r = bone(char["body"], 3, 4)[0] / bone(pose0["body"], 3, 4)[0]
    np.testing.assert_allclose(got["right_hand"][:, :2] - got["body"][4, :2],
                               r * (pose0["right_hand"][:, :2] - pose0["body"][4, :2]),
                               atol=1e-4)
    head = [(0, 14), (14, 16), (0, 15), (15, 17)]
    r = (sum(bone(char["body"], p, q)[0] for p, q in head)
         / sum(bone(pose0["body"], p, q)[0] for p, q in head))
    np.testing.assert_allclose(got["face"][:, :2] - got["body"][0, :2],
                               r * (pose0["face"][:, :2] - pose0["body"][0, :2]), atol=1e-4)


def test_limbs_missing_bone_uses_box_scale():
    char = whole_body(np.array([80.0, 50.0]), 120.0, Angles())
    char["body"][6, 2] = 0.0                 # the character's left elbow is unknown
    pose0 = whole_body(np.array([200.0, 150.0]), 300.0, Angles())
    character = CharacterFrame.from_pose(char, 160, 200)
    out = align_poses(sequence([pose0], 400, 500), character, mode="limbs")
    s = (character.box[3] - character.box[1]) / (lambda b: b[3] - b[1])(pose_box(pose0))
    got = out.body[0, 0]
    for p, q in ((5, 6), (6, 7)):
        assert bone(got, p, q)[0] == pytest.approx(s * bone(pose0["body"], p, q)[0], rel=1e-4)
    assert bone(got, 2, 3)[0] == pytest.approx(bone(char["body"], 2, 3)[0], rel=1e-4)


def test_transition_eases_from_the_character():
    char = whole_body(np.array([80.0, 50.0]), 120.0, Angles(r_upper=3.0, l_upper=0.0))
    char["right_hand"][:, 2] = 0.0           # absent in the art: fades in
    drv = [whole_body(np.array([200.0, 150.0 + 5 * t]), 300.0, Angles()) for t in range(5)]
    driving = sequence(drv, 400, 500)
    character = CharacterFrame.from_pose(char, 160, 200)
    n = 8
    aligned = align_poses(driving, character, mode="box")
    out = align_poses(driving, character, mode="box", transition=n)
    assert len(out) == 5 + n
    for part in PARTS:
        first, on = getattr(out, part)[0, 0], char[part][:, 2] > 0
        np.testing.assert_array_equal(first[:, 2], char[part][:, 2])
        np.testing.assert_allclose(first[on], char[part][on], atol=1e-5)
        np.testing.assert_array_equal(getattr(out, part)[n:], getattr(aligned, part))
    a, b = char["body"][:, :2], aligned.body[0, 0, :, :2]
    ab = b - a
    steps = []
    for k in range(n + 1):
        p = out.body[k, 0, :, :2] - a
        u = (p * ab).sum(1) / (ab * ab).sum(1)
        np.testing.assert_allclose(p, u[:, None] * ab, atol=1e-3)  # on the straight line
        np.testing.assert_allclose(u, ease_in_out(k / n), atol=1e-5)
        steps.append(u[0])
    v = np.diff(steps)
    assert (v > 0).all() and v[0] < 0.5 / n and v[-1] < 0.5 / n and v.max() > 1 / n
    conf = out.right_hand[:n + 1, 0, 5, 2]   # fades in, in place
    np.testing.assert_allclose(conf, ease_in_out(np.arange(n + 1) / n), atol=1e-6)
    np.testing.assert_allclose(out.right_hand[1:n + 1, 0, 5, :2],
                               np.repeat(aligned.right_hand[:1, 0, 5, :2], n, 0), atol=1e-5)
    kept = align_poses(driving, character, mode="box", transition=n - 4, keep_length=True)
    assert len(kept) == 5
    np.testing.assert_array_equal(kept.body[4:], aligned.body[:1])
    direct = add_transition(aligned, char, n, keep_length=True)
    assert len(direct) == 5 and np.array_equal(direct.body, out.body[:5])


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "warp"}, "motion.align=warp: must be one of none, box, limbs"),
    ({"mode": "limbs"}, "motion.align=limbs: needs the character's own pose"),
    ({"transition": 3}, "motion.transition=3: needs the character's own pose"),
    ({"transition": -1}, "motion.transition=-1: must be"),
])
def test_bad_settings(kwargs, message):
    driving = sequence([standing()], 200, 400)
    with pytest.raises(InputError, match=message):
        align_poses(driving, CharacterFrame((0, 0, 10, 10), 40, 40), **kwargs)


def test_reference_is_first_frame_with_a_driver():
    driving = sequence([empty_pose(), standing()], 200, 400)
    out = align_poses(driving, CharacterFrame((10, 35, 110, 150), 160, 200))
    np.testing.assert_allclose(out.body[1, 0, 0, :2], 0.5 * (np.array([100, 100]) - (100, 310))
                               + (60, 150))
    with pytest.raises(InputError, match="poses=x.json: the driving person has no confident"):
        align_poses(sequence([empty_pose()], 20, 20), CharacterFrame((0, 0, 10, 10), 40, 40),
                    name="poses=x.json")
