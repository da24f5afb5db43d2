"""Trajectory files: JSON, TUM and RealEstate10K round trips, bad files, the camera= input."""

import json

import numpy as np
import pytest

from dreamdance.camera import (
    Trajectory,
    intrinsics_from_fov,
    invert_rigid,
    quaternion_to_rotation,
    rotation_to_quaternion,
)
from dreamdance.camera.files import load_camera, read_trajectory, write_trajectory
from dreamdance.errors import InputError

W, H = 640, 360
K0 = intrinsics_from_fov(55.0, W, H)


def make_trajectory(n=5, seed=0):
    rng = np.random.default_rng(seed)
    R = quaternion_to_rotation(rng.normal(size=(n, 4)))
    c = rng.normal(size=(n, 3)) * 3
    w2c = np.zeros((n, 4, 4))
    w2c[:, :3, :3] = R
    w2c[:, :3, 3] = -np.einsum("nij,nj->ni", R, c)
    w2c[:, 3, 3] = 1
    K = np.repeat(K0[None], n, 0)
    K[:, 0, 0] *= np.linspace(1, 1.3, n)
    K[:, 1, 1] *= np.linspace(1, 1.2, n)
    K[:, 0, 2] += np.arange(n)
    return Trajectory(w2c, K, W, H)


def read(path, **kw):
    return read_trajectory(path, W, H, K0, **kw)


def assert_same(a, b, K=True):
    np.testing.assert_allclose(a.w2c, b.w2c, atol=1e-6)
    if K:
        np.testing.assert_allclose(a.K, b.K, atol=1e-6)
    assert (a.width, a.height) == (b.width, b.height)


def re10k_line(t, K, T, width=W, height=H):
    nums = [K[0, 0] / width, K[1, 1] / height, K[0, 2] / width, K[1, 2] / height, 0, 0,
            *T[:3].ravel()]
    return " ".join([str(t)] + [repr(float(v)) for v in nums])


# --- round trips ------------------------------------------------------------------------------


def test_json_roundtrip(tmp_path):
    traj = make_trajectory()
    path = write_trajectory(tmp_path / "cam.json", traj, fps=24)
    doc = json.loads(path.read_text())
    assert doc["format"] == "dreamdance-camera" and doc["version"] == 1 and doc["fps"] == 24
    assert len(doc["frames"]) == 5 and doc["frames"][0]["width"] == W
    assert_same(read(path), traj)


def test_tum_roundtrip(tmp_path):
    traj = make_trajectory()
    path = write_trajectory(tmp_path / "cam.txt", traj, format="tum", fps=10)
    lines = [x for x in path.read_text().splitlines() if not x.startswith("#")]
    assert len(lines) == 5 and all(len(x.split()) == 8 for x in lines)
    assert float(lines[3].split()[0]) == pytest.approx(0.3)
    np.testing.assert_allclose([float(v) for v in lines[2].split()[1:4]], traj.centers[2],
                               atol=1e-9)
    out = read(path)
    assert_same(out, traj, K=False)
    np.testing.assert_allclose(out.K, np.broadcast_to(K0, (5, 3, 3)))


def test_tum_reads_a_hand_written_file(tmp_path):
    # camera at (1, 2, 3), turned 90 degrees about +y (camera-to-world): optical axis = world +x
    s = np.sqrt(0.5)
    path = tmp_path / "dpvo.txt"
    path.write_text(f"# DPVO\n\n0.0 1 2 3 0 {s} 0 {s}\n")
    out = read(path)
    np.testing.assert_allclose(out.centers[0], [1, 2, 3], atol=1e-12)
    np.testing.assert_allclose(out.c2w[0, :3, 2], [1, 0, 0], atol=1e-12)


def test_re10k_roundtrip_with_and_without_url_line(tmp_path):
    traj = make_trajectory()
    path = write_trajectory(tmp_path / "cam.txt", traj, format="re10k", fps=30)
    lines = path.read_text().splitlines()
    assert lines[0] == "dreamdance"
    first = lines[1].split(" ")  # CameraCtrl splits on single spaces
    assert len(first) == 19 and first[5:7] == ["0", "0"]
    assert lines[2].split(" ")[0] == "33333"  # microseconds
    assert float(first[1]) == pytest.approx(traj.K[0, 0, 0] / W)
    assert float(first[4]) == pytest.approx(traj.K[0, 1, 2] / H)
    assert_same(read(path), traj)
    bare = tmp_path / "bare.txt"
    bare.write_text("\n".join(lines[1:]) + "\n")
    assert_same(read(bare), traj)
    url = tmp_path / "url.txt"
    url.write_text("https://www.youtube.com/watch?v=abc\n" + "\n".join(lines[1:]) + "\n")
    assert_same(read(url), traj)


def test_re10k_denormalises_with_given_size(tmp_path):
    path = tmp_path / "re.txt"
    path.write_text("https://x\n0 0.5 0.8 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 2\n")
    out = read_trajectory(path, 100, 50, K0)
    np.testing.assert_allclose(out.K[0], [[50, 0, 50], [0, 40, 25], [0, 0, 1]])
    np.testing.assert_allclose(out.centers[0], [0, 0, -2])


def test_small_rounding_in_rotation_is_projected(tmp_path):
    traj = make_trajectory(2)
    path = tmp_path / "re.txt"
    T = traj.w2c[1].copy()
    T[0, 0] += 5e-4
    path.write_text(re10k_line(0, K0, traj.w2c[0]) + "\n" + re10k_line(1, K0, T) + "\n")
    R = read(path).w2c[1, :3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(R, traj.w2c[1, :3, :3], atol=1e-3)


# --- bad files --------------------------------------------------------------------------------


def tum_lines(n=3):
    q = rotation_to_quaternion(np.eye(3))
    return [" ".join(map(str, [i, 0.1 * i, 0, 0, *q])) for i in range(n)]


def expect_error(path, *fragments):
    with pytest.raises(InputError) as e:
        read(path)
    message = str(e.value)
    assert message.startswith(f"camera={path}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_tum(tmp_path, value):
    lines = tum_lines()
    lines[1] = lines[1].replace(" 0.1 ", f" {value} ")
    path = tmp_path / "t.txt"
    path.write_text("# header\n" + "\n".join(lines) + "\n")
    expect_error(path, "line 3:", "non-finite")


def test_non_finite_re10k(tmp_path):
    traj = make_trajectory(2)
    bad = re10k_line(1, K0, traj.w2c[1]).split()
    bad[9] = "nan"
    path = tmp_path / "r.txt"
    path.write_text("url\n" + re10k_line(0, K0, traj.w2c[0]) + "\n" + " ".join(bad) + "\n")
    expect_error(path, "line 3:", "non-finite")


def test_wrong_column_count(tmp_path):
    lines = tum_lines(4)
    lines[2] = " ".join(lines[2].split()[:7])
    path = tmp_path / "t.txt"
    path.write_text("\n".join(lines) + "\n")
    expect_error(path, "line 3: expected 8 columns (t tx ty tz qx qy qz qw), got 7")
    path.write_text("0 1 2 3 4 5\n")
    expect_error(path, "line 1: expected 8 columns", "or 19", "got 6")


def test_non_numeric_token(tmp_path):
    lines = tum_lines()
    lines[2] = lines[2].replace("0.2", "abc")
    path = tmp_path / "t.txt"
    path.write_text("\n".join(lines) + "\n")
    expect_error(path, "line 3: not a number: 'abc'")
    path.write_text("timestamp x y z\n" + "\n".join(tum_lines()) + "\n")  # header only in RE10K
    expect_error(path, "line 1: not a number: 'timestamp'")


def test_non_rotation_re10k(tmp_path):
    traj = make_trajectory(3)
    T = traj.w2c[2].copy()
    T[:3, :3] *= 2.0
    path = tmp_path / "r.txt"
    path.write_text("url\n" + "\n".join(re10k_line(i, K0, M) for i, M in
                                        enumerate([traj.w2c[0], traj.w2c[1], T])) + "\n")
    expect_error(path, "line 4:", "is not a rotation matrix", "det=8")
    R = np.diag([1.0, 1.0, -1.0])  # a reflection is orthonormal but not a rotation
    T[:3, :3] = R
    path.write_text(re10k_line(0, K0, T) + "\n")
    expect_error(path, "line 1:", "not a rotation matrix (det=-1")


def test_non_positive_focal_re10k(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("0 0 0.8 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n")
    expect_error(path, "line 1:", "focal")


def test_non_rotation_json(tmp_path):
    traj = make_trajectory(2)
    path = write_trajectory(tmp_path / "c.json", traj)
    doc = json.loads(path.read_text())
    doc["frames"][1]["w2c"][0][0] += 0.1
    path.write_text(json.dumps(doc))
    expect_error(path, "frames[1].w2c", "not a rotation matrix")


@pytest.mark.parametrize("edit, fragment", [
    (lambda d: d.update(format="nerfstudio"), "format tag 'nerfstudio'"),
    (lambda d: d.pop("format"), "format tag None"),
    (lambda d: d.update(version=2), "unsupported version 2"),
    (lambda d: d.update(frames=[]), "non-empty list"),
    (lambda d: d["frames"][0].pop("K"), "frames[0]: missing K"),
    (lambda d: d["frames"][1].update(K=[[1, 0], [0, 1]]), "frames[1].K: expected a 3x3"),
    (lambda d: d["frames"][1].update(width=W + 1), "frames[1]: size 641x360 differs"),
    (lambda d: d["frames"][0].update(height="360"), "must be positive integers"),
    (lambda d: d["frames"][0]["w2c"][1].__setitem__(3, float("nan")), "non-finite"),
    (lambda d: d["frames"][0]["w2c"][3].__setitem__(0, 1.0), "last row"),
    (lambda d: d.update(fps=-1), "fps"),
])
def test_bad_json(tmp_path, edit, fragment):
    path = write_trajectory(tmp_path / "c.json", make_trajectory(2))
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    expect_error(path, fragment)


def test_invalid_json_text(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"format": ')
    expect_error(path, "not valid JSON")


def test_zero_quaternion(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("0 0 0 0 0 0 0 1\n1 0 0 0 0 0 0 0\n")
    expect_error(path, "line 2:", "quaternion", "norm 0")
    path.write_text("0 0 0 0 0 0 0 1.01\n")
    expect_error(path, "line 1:", "norm 1.01")


def test_quaternion_rounding_is_normalised(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("0 0 0 0 0 0 0 1.0005\n")
    np.testing.assert_allclose(read(path).w2c[0], np.eye(4), atol=1e-15)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    expect_error(empty, "empty")
    comments = tmp_path / "comments.txt"
    comments.write_text("# nothing\n\n")
    expect_error(comments, "empty")
    url_only = tmp_path / "url.txt"
    url_only.write_text("https://example.com\n")
    expect_error(url_only, "empty")
    expect_error(tmp_path / "missing.txt", "file not found")
    expect_error(tmp_path, "not a file")
    with pytest.raises(InputError, match="^camera=traj.txt: file not found$"):
        read_trajectory(tmp_path / "nope.txt", W, H, K0, name="camera=traj.txt")


# --- writer options and load_camera -----------------------------------------------------------


def test_write_unknown_format(tmp_path):
    with pytest.raises(InputError, match="format=colmap"):
        write_trajectory(tmp_path / "x", make_trajectory(2), format="colmap")
    assert not list(tmp_path.iterdir())


def test_load_camera_preset_and_file(tmp_path):
    traj = load_camera("orbit", 7, W, H, K0, depth=2.0)
    assert len(traj) == 7
    np.testing.assert_allclose(traj.w2c[0], np.eye(4), atol=1e-15)

    source = make_trajectory(6, seed=3)
    path = write_trajectory(tmp_path / "t.txt", source, format="tum")
    out = load_camera(str(path), 50, W, H, K0, depth=2.0)
    assert len(out) == 6  # files keep their length
    np.testing.assert_allclose(out.w2c[0], np.eye(4), atol=1e-12)
    rel = source.w2c[4] @ invert_rigid(source.w2c[1])
    np.testing.assert_allclose(out.w2c[4] @ invert_rigid(out.w2c[1]), rel, atol=1e-6)


def test_load_camera_rescales_json_to_requested_size(tmp_path):
    source = make_trajectory(3)
    path = write_trajectory(tmp_path / "c.json", source)
    out = load_camera(str(path), 3, W // 2, H // 2, K0, depth=1.0)
    assert (out.width, out.height) == (W // 2, H // 2)
    np.testing.assert_allclose(out.K[:, :2], source.K[:, :2] / 2, atol=1e-9)


def test_load_camera_unknown_spec(tmp_path):
    spec = str(tmp_path / "nope.txt")
    with pytest.raises(InputError) as e:
        load_camera(spec, 4, W, H, K0, depth=1.0)
    assert str(e.value) == (f"camera={spec}: no such file, and not a preset "
                            "(static, orbit, dolly, pan, zoom, spiral)")
    with pytest.raises(InputError, match="^camera=Orbit: no such file, and not a preset"):
        load_camera("Orbit", 4, W, H, K0, depth=1.0)
