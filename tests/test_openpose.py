"""OpenPose per-frame JSON: round trips, BODY_25, normalised coordinates, refused files."""

import json

import numpy as np
import pytest

from dreamdance.errors import InputError
from dreamdance.motion.openpose import BODY25_TO_COCO18, read_openpose
from dreamdance.motion.poses import PARTS, PoseSequence


def random_poses(t=3, p=2, width=320, height=240, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, k in PARTS.items():
        a = np.zeros((t, p, k, 3), np.float32)
        a[..., 0] = rng.uniform(2, width, (t, p, k))
        a[..., 1] = rng.uniform(2, height, (t, p, k))
        a[..., 2] = rng.uniform(0.1, 1, (t, p, k))
        arrays[part] = a
    arrays["face"][1, 1] = 0  # an absent part
    return PoseSequence(**arrays, width=width, height=height, fps=12.0)


def frame(people, **extra):
    return {"version": 1.3, "people": people, **extra}


def write(path, data):
    path.write_text(json.dumps(data))
    return path


#: The OpenPose JSON key of each of our parts, as OpenPose names them.
OPENPOSE_KEYS = {"body": "pose_keypoints_2d", "face": "face_keypoints_2d",
                 "left_hand": "hand_left_keypoints_2d", "right_hand": "hand_right_keypoints_2d"}


def write_openpose(folder, poses):
    """``poses`` as OpenPose writes them: one ``frame_000000_keypoints.json``... per frame, body
    COCO-18, face 70 (our 68 and two zero pupils), hands 21 each, pixels, the canvas size."""
    folder.mkdir(parents=True)
    files = []
    for t in range(len(poses)):
        people = []
        for p in range(poses.num_people):
            person = {}
            for part, key in OPENPOSE_KEYS.items():
                arr = getattr(poses, part)[t, p].astype(np.float64)
                if part == "face":
                    arr = np.concatenate([arr, np.zeros((2, 3))])
                person[key] = arr.reshape(-1).tolist()
            people.append(person)
        files.append(write(folder / f"frame_{t:06d}_keypoints.json",
                           frame(people, canvas_width=poses.width, canvas_height=poses.height)))
    return files


def test_round_trip(tmp_path):
    poses = random_poses()
    files = write_openpose(tmp_path / "op", poses)
    assert [f.name for f in files] == [f"frame_{i:06d}_keypoints.json" for i in range(3)]
    data = json.loads(files[0].read_text())
    assert len(data["people"][0]["pose_keypoints_2d"]) == 18 * 3
    assert len(data["people"][0]["face_keypoints_2d"]) == 70 * 3  # 68 + 2 pupils
    assert data["people"][0]["face_keypoints_2d"][-6:] == [0.0] * 6
    back = read_openpose(tmp_path / "op", fps=12.0)
    assert (back.width, back.height, back.fps, back.driver) == (320, 240, 12.0, 0)
    for part in PARTS:
        np.testing.assert_array_equal(getattr(back, part), getattr(poses, part))


def test_natural_order_and_single_file(tmp_path):
    for i in (10, 2, 1):
        body = np.zeros((18, 3))
        body[0] = (i, 5, 1)
        write(tmp_path / f"frame_{i}.json", frame([{"pose_keypoints_2d": body.ravel().tolist()}]))
    poses = read_openpose(tmp_path, width=64, height=48)
    assert poses.body[:, 0, 0, 0].tolist() == [1, 2, 10]
    one = read_openpose(tmp_path / "frame_2.json", width=64, height=48)
    assert len(one) == 1 and one.body[0, 0, 0, 0] == 2
    # missing parts are absent; an empty frame gives no one
    assert not one.face.any() and not one.left_hand.any()


def test_body25_mapping(tmp_path):
    body25 = np.zeros((25, 3))
    body25[:, 0] = 100 + np.arange(25)  # x encodes the BODY_25 index
    body25[:, 1] = 50
    body25[:, 2] = 0.9
    write(tmp_path / "f.json", frame([{"pose_keypoints_2d": body25.ravel().tolist()}],
                                     canvas_width=200, canvas_height=100))
    poses = read_openpose(tmp_path / "f.json")
    got = (poses.body[0, 0, :, 0] - 100).astype(int).tolist()
    # COCO-18: nose, neck, R arm, L arm, then R hip (BODY_25 9), ..., L ear (18): no 8, no feet
    assert got == [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
    assert got == list(BODY25_TO_COCO18)
    assert (poses.width, poses.height) == (200, 100)


def test_normalised_coordinates(tmp_path):
    body = np.zeros((18, 3))
    body[:3] = [(0.5, 0.25, 0.8), (1.0, 0.0, 0.7), (0.1, 0.9, 0.3)]
    body[3] = (5.0, 7.0, 0.0)  # absent points do not count
    hand = np.tile([0.5, 0.5, 0.9], 21)
    data = frame([{"pose_keypoints_2d": body.ravel().tolist(),
                   "hand_left_keypoints_2d": hand.tolist()}],
                 canvas_width=400, canvas_height=200)
    write(tmp_path / "f.json", data)
    poses = read_openpose(tmp_path / "f.json")
    np.testing.assert_allclose(poses.body[0, 0, :3, :2], [[200, 50], [400, 0], [40, 180]])
    np.testing.assert_allclose(poses.body[0, 0, :3, 2], [0.8, 0.7, 0.3], rtol=1e-6)
    np.testing.assert_allclose(poses.left_hand[0, 0, :, :2], np.tile([200, 100], (21, 1)))
    # same file without a canvas: the arguments give the size
    del data["canvas_width"], data["canvas_height"]
    write(tmp_path / "g.json", data)
    poses = read_openpose(tmp_path / "g.json", width=100, height=10)
    np.testing.assert_allclose(poses.body[0, 0, 0, :2], [50, 2.5])
    # pixel coordinates (one confident value > 1) are left alone
    body[2] = (30, 0.5, 0.5)
    write(tmp_path / "h.json", frame([{"pose_keypoints_2d": body.ravel().tolist()}]))
    poses = read_openpose(tmp_path / "h.json", width=100, height=10)
    np.testing.assert_allclose(poses.body[0, 0, :3, :2], [[0.5, 0.25], [1, 0], [30, 0.5]])


def test_face_68_and_multiple_people(tmp_path):
    face = np.tile([10.0, 20.0, 0.5], 68)
    write(tmp_path / "a.json", frame([{"face_keypoints_2d": face.tolist()}, {}]))
    write(tmp_path / "b.json", frame([]))
    poses = read_openpose(tmp_path, width=64, height=64)
    assert poses.face.shape == (2, 2, 68, 3)
    assert poses.face[0, 0, 0].tolist() == [10, 20, 0.5] and not poses.face[1].any()


@pytest.mark.parametrize("content, problem", [
    ("{not json", "frame 0 (bad.json): not valid JSON"),
    ('[1, 2]', "not OpenPose JSON"),
    (json.dumps(frame([{"pose_keypoints_2d": [1, 2, 3, 4]}])), "not a flat list"),
    (json.dumps(frame([{"pose_keypoints_2d": [0.0] * 60}])), "20 keypoints, expected 18 or 25"),
    (json.dumps(frame([{"hand_left_keypoints_2d": [0.0] * 66}])), "22 keypoints, expected 21"),
    (json.dumps(frame([{"pose_keypoints_2d": [float("nan")] + [0.0] * 53}])),
     "frame 0 (bad.json) person 0 pose_keypoints_2d: NaN"),
    (json.dumps(frame([{"pose_keypoints_2d": ["a"] * 54}])), "not a list of numbers"),
])
def test_refused_files(tmp_path, content, problem):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(InputError) as e:
        read_openpose(tmp_path / "bad.json", width=64, height=64, name="poses=bad.json")
    assert str(e.value).startswith("poses=bad.json: ")
    assert problem in str(e.value)


def test_refused_inputs(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_openpose(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .json files"):
        read_openpose(tmp_path / "empty")
    write(tmp_path / "f.json", frame([]))
    with pytest.raises(InputError, match="give width and height"):
        read_openpose(tmp_path / "f.json")
    with pytest.raises(InputError, match="fps=0"):
        read_openpose(tmp_path / "f.json", width=8, height=8, fps=0)
    d = tmp_path / "two"
    d.mkdir()
    write(d / "1.json", frame([], canvas_width=64, canvas_height=64))
    write(d / "2.json", frame([], canvas_width=32, canvas_height=64))
    with pytest.raises(InputError, match=r"frame 1 \(2.json\): canvas 32x64 differs"):
        read_openpose(d)
