"""The pose file format, resampling and fitting to the requested frames."""

import json

import numpy as np
import pytest

from dreamdance.errors import InputError
from dreamdance.motion.poses import (
    PARTS,
    PoseSequence,
    fit_to_frames,
    read_poses,
    resample_poses,
    write_poses,
)
from dreamdance.motion.skeleton import Angles, body_keypoints, whole_body


def make_poses(t=5, people=1, fps=8.0, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, k in PARTS.items():
        a = np.concatenate([rng.uniform(0, 100, (t, people, k, 2)),
                            rng.uniform(0.1, 1, (t, people, k, 1))], -1)
        arrays[part] = a.astype(np.float32)
    return PoseSequence(**arrays, width=128, height=96, fps=fps)


def test_round_trip(tmp_path):
    poses = make_poses(t=4, people=2)
    poses.face[:, 1] = 0  # person 1 has no face: written as null, read back as zeros
    write_poses(tmp_path / "p.json", poses)
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["frames"][0]["people"][1]["face"] is None
    back = read_poses(tmp_path / "p.json")
    for part in PARTS:
        np.testing.assert_allclose(getattr(back, part), getattr(poses, part), atol=0.006)
    assert (back.width, back.height, back.fps, back.driver) == (128, 96, 8.0, 0)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(format="other"), "not a pose file"),
    (lambda d: d.update(frames=[]), "no frames"),
    (lambda d: d["frames"][1]["people"][0].update(body=[[0, 0, 1]] * 17), "frame 1 person 0 body"),
    (lambda d: d["frames"][0]["people"][0]["body"][3].__setitem__(2, float("nan")), "NaN"),
    (lambda d: d.update(width=0), "bad header"),
    (lambda d: d.update(driver=3), "driver 3"),
])
def test_bad_files(tmp_path, mutate, message):
    write_poses(tmp_path / "p.json", make_poses(t=2))
    data = json.loads((tmp_path / "p.json").read_text())
    mutate(data)
    (tmp_path / "p.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=message) as e:
        read_poses(tmp_path / "p.json", name="poses=p.json")
    assert str(e.value).startswith("poses=p.json: ")


def test_missing_and_not_json(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_poses(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_poses(tmp_path / "bad.json")


def test_resample_keeps_endpoints_and_interpolates():
    poses = make_poses(t=3)
    up = resample_poses(poses, 5)
    np.testing.assert_allclose(up.body[0], poses.body[0])
    np.testing.assert_allclose(up.body[-1], poses.body[-1])
    np.testing.assert_allclose(up.body[1, ..., :2], (poses.body[0, ..., :2] + poses.body[1, ..., :2]) / 2)
    assert up.fps == pytest.approx(16.0)


def test_resample_never_drifts_absent_points():
    poses = make_poses(t=2)
    poses.body[1, 0, 4] = 0  # wrist absent in frame 1
    mid = resample_poses(poses, 3).body[1, 0, 4]
    np.testing.assert_allclose(mid, poses.body[1, 0, 4])  # nearest (t=0.5 rounds up), not a blend


def test_fit_to_frames_policies():
    poses = make_poses(t=4, fps=8)
    assert len(fit_to_frames(poses, 3, 8)) == 3
    with pytest.raises(InputError, match="4 frames, fewer than frames=6"):
        fit_to_frames(poses, 6, 8, name="poses=x")
    held = fit_to_frames(poses, 6, 8, "hold")
    np.testing.assert_array_equal(held.body[4:], poses.body[[3, 3]])
    looped = fit_to_frames(poses, 6, 8, "loop")
    np.testing.assert_array_equal(looped.body[4:], poses.body[[0, 1]])
    faster = fit_to_frames(poses, 7, 16)  # retimed: 4 frames at 8 fps -> 7 at 16 fps
    assert len(faster) == 7 and faster.fps == 16
    np.testing.assert_allclose(faster.body[2], poses.body[1])
    with pytest.raises(InputError, match="too_short"):
        fit_to_frames(poses, 3, 8, "stretch")


def test_skeleton_limb_lengths_and_layout():
    kp = body_keypoints(np.array([50.0, 30.0]), 100.0, Angles(lean=0.0))
    assert np.linalg.norm(kp[3] - kp[2]) == pytest.approx(16.0)   # upper arm, 0.16 of height
    assert np.linalg.norm(kp[10] - kp[9]) == pytest.approx(21.0)  # shin
    assert kp[0][1] < kp[1][1] < kp[8][1] < kp[9][1] < kp[10][1]   # head above feet (y down)
    assert kp[2][0] < kp[1][0] < kp[5][0]  # the figure's right shoulder is on the image left
    parts = whole_body(np.array([50.0, 30.0]), 100.0, Angles())
    assert {k: v.shape for k, v in parts.items()} == {
        "body": (18, 3), "face": (68, 3), "left_hand": (21, 3), "right_hand": (21, 3)}
    np.testing.assert_allclose(parts["right_hand"][0, :2], parts["body"][4, :2])  # hand at wrist
