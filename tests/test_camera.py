"""Camera maths: look-at, eq. 5 spiral, presets, standardisation, scale, resampling."""

import numpy as np
import pytest

from dreamdance.camera import (
    PRESETS,
    Trajectory,
    check_rotation,
    intrinsics_from_fov,
    invert_rigid,
    look_at,
    normalise_scale,
    preset,
    quaternion_to_rotation,
    resample,
    rescale_intrinsics,
    rotation_to_quaternion,
    spiral,
    spiral_defaults,
    spiral_positions,
    standardise,
)
from dreamdance.errors import InputError

W, H = 64, 48
K0 = intrinsics_from_fov(60.0, W, H)


def random_rotation(rng, n=None):
    q = rng.normal(size=(4,) if n is None else (n, 4))
    return quaternion_to_rotation(q)


def random_trajectory(rng, n=6):
    R = random_rotation(rng, n)
    c = rng.normal(size=(n, 3))
    w2c = np.zeros((n, 4, 4))
    w2c[:, :3, :3] = R
    w2c[:, :3, 3] = -np.einsum("nij,nj->ni", R, c)
    w2c[:, 3, 3] = 1
    K = np.repeat(K0[None], n, 0) * rng.uniform(0.9, 1.1, size=(n, 1, 1))
    K[:, 2] = [0, 0, 1]
    return Trajectory(w2c, K, W, H)


def assert_rotations(w2c):
    R = w2c[:, :3, :3]
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)


# --- Trajectory -------------------------------------------------------------------------------


def test_trajectory_centers_and_c2w():
    rng = np.random.default_rng(0)
    traj = random_trajectory(rng)
    np.testing.assert_allclose(traj.c2w @ traj.w2c, np.broadcast_to(np.eye(4), (6, 4, 4)),
                               atol=1e-12)
    # The centre maps to the camera origin.
    c = traj.centers
    cam = np.einsum("nij,nj->ni", traj.w2c[:, :3, :3], c) + traj.w2c[:, :3, 3]
    np.testing.assert_allclose(cam, 0, atol=1e-12)
    assert len(traj) == 6


def test_trajectory_rejects_bad_shapes():
    with pytest.raises(ValueError, match="w2c"):
        Trajectory(np.zeros((2, 3, 4)), np.zeros((2, 3, 3)), W, H)
    with pytest.raises(ValueError, match="K"):
        Trajectory(np.repeat(np.eye(4)[None], 2, 0), np.zeros((3, 3, 3)), W, H)
    with pytest.raises(ValueError, match="width"):
        Trajectory(np.eye(4)[None], K0[None], 0, H)


# --- look_at and intrinsics -------------------------------------------------------------------


def test_look_at_puts_target_on_the_optical_axis():
    rng = np.random.default_rng(1)
    for _ in range(20):
        eye, target = rng.normal(size=3), rng.normal(size=3) * 3
        T = look_at(eye, target)
        p = T[:3, :3] @ target + T[:3, 3]
        np.testing.assert_allclose(p[:2], 0, atol=1e-12)
        np.testing.assert_allclose(p[2], np.linalg.norm(target - eye), rtol=1e-12)
        assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(T[3], [0, 0, 0, 1])
        # Image up (-y of the camera, in world) leans towards world up (0, -1, 0).
        assert (-T[1, :3]) @ np.array([0, -1, 0]) >= 0


def test_look_at_forward_is_identity_and_sideways_turns_right():
    np.testing.assert_allclose(look_at([0, 0, 0], [0, 0, 5]), np.eye(4), atol=1e-15)
    T = look_at([0, 0, 0], [1, 0, 0])  # looking along +x: camera z = world x, camera y = down
    np.testing.assert_allclose(T[:3, :3], [[0, 0, -1], [0, 1, 0], [1, 0, 0]], atol=1e-15)


def test_look_at_degenerate():
    with pytest.raises(ValueError, match="coincide"):
        look_at([1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="parallel"):
        look_at([0, 0, 0], [0, 2, 0])  # looking straight down the up axis
    with pytest.raises(ValueError, match="parallel"):
        look_at([0, 0, 0], [0, 0, 1], up=(0, 0, 1))


def test_intrinsics_from_fov():
    K = intrinsics_from_fov(90.0, 200, 100)
    np.testing.assert_allclose(K, [[100, 0, 100], [0, 100, 50], [0, 0, 1]], atol=1e-12)
    Ky = intrinsics_from_fov(90.0, 200, 100, axis="y")
    np.testing.assert_allclose(Ky, [[50, 0, 100], [0, 50, 50], [0, 0, 1]], atol=1e-12)


# --- spiral (eq. 5) ---------------------------------------------------------------------------


def test_spiral_positions_match_eq5():
    r, s = 0.3, 0.7
    t = np.array([0.0, 0.125, 0.25, 0.6, 0.875])
    # By hand, paper frame (y up) then y flipped: sin/cos of 2*pi*t.
    # t=0.125: sin=cos=1/sqrt2 -> paper [r/2, r/2, -s/sqrt2] -> ours [r/2, -r/2, -s/sqrt2]
    # t=0.25: sin=1, cos=0 -> paper [0, r, -s] -> ours [0, -r, -s]
    # t=0.875: sin=-1/sqrt2, cos=1/sqrt2 -> paper [-r/2, r/2, s/sqrt2] -> ours [-r/2, -r/2, ...]
    a, b = np.sin(2 * np.pi * 0.6), np.cos(2 * np.pi * 0.6)
    expected = np.array([
        [0, 0, 0],
        [r / 2, -r / 2, -s / np.sqrt(2)],
        [0, -r, -s],
        [r * a * b, -r * a * a, -s * a],
        [-r / 2, -r / 2, s / np.sqrt(2)],
    ])
    np.testing.assert_allclose(spiral_positions(t, r, s), expected, atol=1e-12)


def test_spiral_cameras_look_at_o_and_start_at_identity():
    d = 4.0
    o = np.array([0.0, 0.0, d])
    traj = spiral(12, 0.5, 0.8, o, K0, W, H)
    assert len(traj) == 12 and traj.K.shape == (12, 3, 3)
    np.testing.assert_allclose(traj.w2c[0], np.eye(4), atol=1e-15)
    np.testing.assert_allclose(traj.centers, spiral_positions(np.arange(12) / 12, 0.5, 0.8),
                               atol=1e-12)
    c2w = traj.c2w
    for T in c2w:
        center, axis = T[:3, 3], T[:3, 2]
        v = o - center
        dist = np.linalg.norm(v - (v @ axis) * axis)  # o's distance from the optical axis line
        assert dist < 1e-9
        assert v @ axis > 0  # in front of the camera
    assert_rotations(traj.w2c)


def test_spiral_off_axis_look_at_point():
    o = np.array([0.3, -0.2, 3.0])
    traj = spiral(5, 0.4, 0.4, o, K0, W, H, t=np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    cam = np.einsum("nij,j->ni", traj.w2c[:, :3, :3], o) + traj.w2c[:, :3, 3]
    np.testing.assert_allclose(cam[:, :2], 0, atol=1e-12)
    assert (cam[:, 2] > 0).all()


def test_spiral_defaults_from_depth():
    depth = np.arange(1, 101, dtype=np.float64).reshape(10, 10)
    depth[0, 0] = np.nan
    depth[0, 1] = np.inf
    depth[0, 2] = 0.0
    depth[0, 3] = -5.0
    # valid: 5..100 (96 values); 10th percentile at index 9.5 -> 14.5; median 52.5
    out = spiral_defaults(depth)
    assert out["r"] == pytest.approx(1.45, rel=1e-12)
    assert out["s"] == out["r"]
    np.testing.assert_allclose(out["look_at"], [0, 0, 52.5], rtol=1e-12)
    traj = spiral(4, K=K0, width=W, height=H, **out)
    np.testing.assert_allclose(traj.w2c[0], np.eye(4), atol=1e-15)
    with pytest.raises(ValueError, match="no finite positive"):
        spiral_defaults(np.full((4, 4), np.nan))


# --- presets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PRESETS)
def test_preset_shape_identity_and_rotations(name):
    n = 9
    traj = preset(name, n, K0, W, H, depth=3.0)
    assert len(traj) == n and (traj.width, traj.height) == (W, H)
    np.testing.assert_allclose(traj.w2c[0], np.eye(4), atol=1e-15)
    np.testing.assert_allclose(traj.K[0], K0, atol=1e-15)
    assert_rotations(traj.w2c)
    moving = np.abs(traj.w2c - np.eye(4)).max() + np.abs(traj.K - K0).max()
    assert (moving == 0) == (name == "static")
    # amplitude 0 is a static camera for every preset
    still = preset(name, n, K0, W, H, depth=3.0, amplitude=0.0)
    np.testing.assert_allclose(still.w2c, np.broadcast_to(np.eye(4), (n, 4, 4)), atol=1e-15)
    np.testing.assert_allclose(still.K, np.broadcast_to(K0, (n, 3, 3)), atol=1e-12)


def test_preset_values():
    n, d = 5, 2.0  # t = 0, 0.25, 0.5, 0.75, 1
    orbit = preset("orbit", n, K0, W, H, depth=d)
    yaw = np.deg2rad(15.0)
    np.testing.assert_allclose(orbit.centers[1], [d * np.sin(yaw), 0, d * (1 - np.cos(yaw))],
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(orbit.centers - [0, 0, d], axis=1), d, rtol=1e-12)
    np.testing.assert_allclose(orbit.w2c[-1], np.eye(4), atol=1e-12)
    dolly = preset("dolly", n, K0, W, H, depth=d, amplitude=2.0)
    np.testing.assert_allclose(dolly.centers[2], [0, 0, 0.2 * d * 2.0], atol=1e-12)
    pan = preset("pan", n, K0, W, H, depth=d)
    axis = pan.c2w[1, :3, 2]  # the camera turned right by 20 degrees
    np.testing.assert_allclose(axis, [np.sin(np.deg2rad(20)), 0, np.cos(np.deg2rad(20))],
                               atol=1e-12)
    np.testing.assert_allclose(pan.centers, 0, atol=1e-15)
    zoom = preset("zoom", n, K0, W, H, depth=d)
    np.testing.assert_allclose(zoom.K[2, 0, 0] / K0[0, 0], 1.5)
    np.testing.assert_allclose(zoom.K[:, :2, 2], np.broadcast_to(K0[:2, 2], (n, 2)))
    sp = preset("spiral", 8, K0, W, H, depth=d)
    np.testing.assert_allclose(sp.centers, spiral_positions(np.arange(8) / 8, 0.1, 0.1),
                               atol=1e-12)


def test_preset_unknown_name():
    with pytest.raises(InputError) as e:
        preset("wobble", 4, K0, W, H, depth=1.0)
    assert str(e.value).startswith("camera=wobble: unknown preset")
    assert "static, orbit, dolly, pan, zoom, spiral" in str(e.value)
    with pytest.raises(InputError, match="amplitude"):
        preset("zoom", 4, K0, W, H, depth=1.0, amplitude=-3.0)


# --- standardise, normalise_scale, resample ---------------------------------------------------


def test_standardise_identity_first_and_relative_motion():
    rng = np.random.default_rng(2)
    traj = random_trajectory(rng, 7)
    std = standardise(traj)
    np.testing.assert_array_equal(std.w2c[0], np.eye(4))
    for i, j in [(1, 4), (6, 2), (3, 0)]:
        before = traj.w2c[i] @ invert_rigid(traj.w2c[j])
        after = std.w2c[i] @ invert_rigid(std.w2c[j])
        np.testing.assert_allclose(after, before, atol=1e-12)
    np.testing.assert_array_equal(std.K, traj.K)


def test_normalise_scale():
    rng = np.random.default_rng(3)
    traj = random_trajectory(rng, 8)
    out = normalise_scale(traj, scene_depth=5.0, max_ratio=0.2)
    dist = np.linalg.norm(out.centers - out.centers[0], axis=1)
    assert dist.max() == pytest.approx(1.0, rel=1e-12)
    # uniformly scaled about the first centre
    before = np.linalg.norm(traj.centers - traj.centers[0], axis=1)
    np.testing.assert_allclose(dist, before / before.max(), rtol=1e-12)
    np.testing.assert_allclose(out.centers[0], traj.centers[0], atol=1e-12)
    np.testing.assert_array_equal(out.w2c[:, :3, :3], traj.w2c[:, :3, :3])
    np.testing.assert_array_equal(out.K, traj.K)
    pan = preset("pan", 5, K0, W, H, depth=1.0)
    assert normalise_scale(pan, 5.0) is pan


def test_resample_endpoints_identity_and_midpoint():
    rng = np.random.default_rng(4)
    traj = random_trajectory(rng, 5)
    same = resample(traj, 5)
    np.testing.assert_array_equal(same.w2c, traj.w2c)
    np.testing.assert_array_equal(same.K, traj.K)
    up = resample(traj, 13)
    assert len(up) == 13
    np.testing.assert_array_equal(up.w2c[[0, -1]], traj.w2c[[0, -1]])
    np.testing.assert_array_equal(up.K[[0, -1]], traj.K[[0, -1]])
    np.testing.assert_allclose(up.w2c[3], traj.w2c[1], atol=1e-12)  # 13 -> every 3rd is a source
    assert_rotations(up.w2c)
    down = resample(traj, 3)
    np.testing.assert_allclose(down.w2c[1], traj.w2c[2], atol=1e-12)

    # Two cameras: identity and a 100-degree turn about an axis, moved by (2, 0, 0).
    axis = np.array([1.0, 2.0, 2.0]) / 3.0
    angle = np.deg2rad(100.0)

    def rot(a):
        return quaternion_to_rotation(np.r_[axis * np.sin(a / 2), np.cos(a / 2)])

    w2c = np.repeat(np.eye(4)[None], 2, 0)
    w2c[1, :3, :3] = rot(angle)
    w2c[1, :3, 3] = -rot(angle) @ [2.0, 0.0, 0.0]
    K = np.stack([K0, K0 * [[2, 1, 1], [1, 2, 1], [1, 1, 1]]])
    mid = resample(Trajectory(w2c, K, W, H), 3)
    np.testing.assert_allclose(mid.w2c[1, :3, :3], rot(angle / 2), atol=1e-12)
    np.testing.assert_allclose(mid.centers[1], [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(mid.K[1, 0, 0], 1.5 * K0[0, 0])


def test_resample_single_frame():
    traj = preset("static", 1, K0, W, H, depth=1.0)
    out = resample(traj, 4)
    assert len(out) == 4
    np.testing.assert_array_equal(out.w2c, np.broadcast_to(np.eye(4), (4, 4, 4)))


# --- rotations --------------------------------------------------------------------------------


def test_quaternion_roundtrip_and_known_value():
    rng = np.random.default_rng(5)
    R = random_rotation(rng, 200)
    R[0] = np.diag([1.0, -1.0, -1.0])  # 180 degrees: the trace-negative branches
    R[1] = np.diag([-1.0, 1.0, -1.0])
    R[2] = np.diag([-1.0, -1.0, 1.0])
    q = rotation_to_quaternion(R)
    assert (q[:, 3] >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1, atol=1e-12)
    np.testing.assert_allclose(quaternion_to_rotation(q), R, atol=1e-12)
    # 90 degrees about z: x -> y
    q = np.array([0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)])
    np.testing.assert_allclose(quaternion_to_rotation(q) @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_check_rotation():
    rng = np.random.default_rng(6)
    R = random_rotation(rng)
    noisy = R + 1e-4 * rng.normal(size=(3, 3))
    out = check_rotation(noisy, "camera=x")
    np.testing.assert_allclose(out.T @ out, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(out, R, atol=1e-3)
    with pytest.raises(InputError, match=r"camera=x: line 4: rotation is not a rotation matrix"):
        check_rotation(R * 1.1, "camera=x", "line 4")
    with pytest.raises(InputError, match=r"det=-1"):
        check_rotation(-R, "camera=x")
    bad = R.copy()
    bad[1, 1] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        check_rotation(bad, "camera=x")


def test_rescale_intrinsics():
    traj = preset("zoom", 3, K0, W, H, depth=1.0)
    out = rescale_intrinsics(traj, 2 * W, 3 * H)
    assert (out.width, out.height) == (2 * W, 3 * H)
    np.testing.assert_allclose(out.K[:, 0], traj.K[:, 0] * 2)
    np.testing.assert_allclose(out.K[:, 1], traj.K[:, 1] * 3)
    np.testing.assert_allclose(out.K[:, 2], traj.K[:, 2])
