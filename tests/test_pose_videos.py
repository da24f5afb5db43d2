"""The body, face and hand pose videos: parts drawn apart, frame counts, files written."""

import numpy as np

from dreamdance.media import read_video
from dreamdance.motion.poses import PARTS, PoseSequence
from dreamdance.motion.render import BODY_COLOURS
from dreamdance.motion.skeleton import Angles, whole_body
from dreamdance.motion.videos import pose_videos, write_pose_videos


def make_poses(n=3, width=160, height=192):
    frames = [whole_body(np.array([80.0 + 4 * t, 50.0]), 150.0, Angles(r_upper=2.6 + 0.1 * t))
              for t in range(n)]
    return PoseSequence(**{p: np.stack([f[p] for f in frames])[:, None].astype(np.float32)
                           for p in PARTS}, width=width, height=height, fps=6.0)


def pixel(xy):
    return round(xy[1]), round(xy[0])


def test_parts_drawn_apart():
    poses = make_poses()
    videos = pose_videos(poses)
    assert sorted(videos) == ["body", "face", "hand"]
    for v in videos.values():
        assert v.shape == (3, 192, 160, 3) and v.dtype == np.uint8
    body, face, hand = videos["body"], videos["face"], videos["hand"]
    for t in range(3):
        for joint in (1, 9, 13):             # neck, right knee, left ankle: joint colours
            i, j = pixel(poses.body[t, 0, joint])
            np.testing.assert_array_equal(body[t, i, j], BODY_COLOURS[joint])
            assert not face[t, i, j].any() and not hand[t, i, j].any()
        i, j = pixel(poses.face[t, 0, 8])    # chin: white dot, only in the face video
        np.testing.assert_array_equal(face[t, i, j], (255, 255, 255))
        assert not hand[t, i, j].any()
        for part in ("left_hand", "right_hand"):   # fingertips: blue joints, only in hands
            i, j = pixel(getattr(poses, part)[t, 0, 8])
            np.testing.assert_array_equal(hand[t, i, j], (0, 0, 255))
            assert not face[t, i, j].any()
    assert not (body[1] == body[0]).all()    # the arm moves
    poses.face[1] = 0                        # an absent face: a black frame
    assert not pose_videos(poses)["face"][1].any()


def test_written_and_read_back(tmp_path):
    poses = make_poses(n=4)
    paths = write_pose_videos(tmp_path / "animate", poses)
    assert {k: p.name for k, p in paths.items()} == {
        "body": "pose_body.mp4", "face": "pose_face.mp4", "hand": "pose_hand.mp4"}
    assert sorted(f.name for f in (tmp_path / "animate").iterdir()) == [
        "pose_body.mp4", "pose_face.mp4", "pose_hand.mp4"]
    videos = pose_videos(poses)
    for key, path in paths.items():
        back = read_video(path)
        assert back.frames.shape == (4, 192, 160, 3) and back.fps == 6.0
        diff = np.abs(back.frames.astype(int) - videos[key].astype(int))
        assert diff.mean() < 2.0, key          # H.264 is lossy: close, not equal
    back = read_video(paths["body"]).frames
    i, j = pixel(poses.body[0, 0, 1])
    assert np.abs(back[0, i, j].astype(int) - BODY_COLOURS[1]).max() < 40
