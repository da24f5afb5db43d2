"""Camera tracking from a video: synthetic videos of a textured 3D scene with a known camera.

The scene is a few textured rectangles (a back wall at z = 6, a floor 1.2 below the camera, a
box at z = 3-4) rendered by ray casting: each output pixel's ray is intersected with the
rectangles and the nearest hit samples its texture (bilinear), 3x supersampled and averaged
down. The textures are multi-scale value noise with shapes drawn on them, prefiltered and sized
so that a texel is about a pixel. The cameras are therefore known exactly.

Errors measured per frame (run with ``-s`` to print them):

- rotation error: the angle of ``R_est R_true^T``;
- direction error: the angle between estimated and true camera centres (the scale is free);
- scale drift: the step lengths ``|c_i - c_{i-1}|`` divided by the true ones, normalised by
  their median; the largest ``|ratio - 1|``.
"""


import cv2
import numpy as np
import pytest
from runner import config

from dreamdance.camera import (
    intrinsics_from_fov,
    invert_rigid,
    look_at,
    pose_from_rotation_center,
    rotation_y,
    scale_intrinsics,
)
from dreamdance.errors import InputError
from dreamdance.motion.camera_track import CameraTracker, TrackConfig, track_camera
from dreamdance.motion.klt import background_masks, noise_level, track_klt, trackable
from dreamdance.motion.track_chain import chain_path, resect
from dreamdance.motion.two_view import essential_fit, rotation_fit, triangulate

W, H = 160, 120
K = intrinsics_from_fov(60.0, W, H)
N_FRAMES = 12
# Tuned to 160x120 frames: a smaller KLT window, the person masks grown by half of it.
CFG = TrackConfig.from_conf(window=11, mask_dilation=6, min_distance=5.0, max_corners=400)

# Bounds, with headroom over what was measured (see the test docstrings).
# Over scene seeds 0-7: pan max 0.056 deg; orbit (with or without the masked person) rotation
# max 0.68 deg, mean 0.31, direction max 3.2 deg, scale drift max 0.15.
PAN_MAX_DEG, PAN_MEAN_DEG = 0.25, 0.1
ORBIT_MAX_DEG, ORBIT_MEAN_DEG = 1.0, 0.5
ORBIT_DIRECTION_DEG = 5.0
ORBIT_SCALE_DRIFT = 0.2


# ---------------------------------------------------------------------------------------------
# The scene and its renderer
# ---------------------------------------------------------------------------------------------


def texture(rng, w, h):
    """Multi-scale value noise with circles, bars and lines drawn on it; float RGB in [0, 1]."""
    img = np.zeros((h, w, 3), np.float32)
    for cell in (64, 32, 16, 8, 4):
        grid = rng.random((max(2, h // cell), max(2, w // cell), 3)).astype(np.float32)
        img += cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) * np.sqrt(cell)
    img = (img - img.min()) / (img.max() - img.min()) * 0.5 + 0.25
    img = (img * 255).astype(np.uint8)
    for _ in range(w * h // 600):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(2, 10))
        kind = rng.integers(3)
        if kind == 0:
            cv2.circle(img, (x, y), r, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, (x, y), (x + r, y + int(rng.integers(2, 10))), colour, -1)
        else:
            end = (x + int(rng.integers(-20, 20)), y + int(rng.integers(-20, 20)))
            cv2.line(img, (x, y), end, colour, 1, cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), 0.7).astype(np.float64) / 255.0


def make_scene(seed=0):
    """Textured rectangles ``(origin, u axis, v axis, u size, v size, texture)``."""
    rng = np.random.default_rng(seed)
    ex, ey, ez = np.eye(3)
    rects = [  # origin, axes, sizes, texels per unit
        ((-6.0, -4.0, 6.0), ex, ey, 12.0, 5.2, 30),  # back wall, z = 6
        ((-6.0, 1.2, 0.5), ex, ez, 12.0, 5.5, 20),  # floor, y = 1.2 (y points down)
        ((-1.6, 0.2, 3.0), ex, ey, 1.0, 1.0, 48),  # box front, z = 3
        ((-0.6, 0.2, 3.0), ez, ey, 1.0, 1.0, 48),  # box side, x = -0.6
        ((-1.6, 0.2, 3.0), ex, ez, 1.0, 1.0, 48),  # box top, y = 0.2
    ]
    return [(np.array(o), u, v, su, sv, texture(rng, int(su * d), int(sv * d)))
            for o, u, v, su, sv, d in rects]


def bilinear(tex, x, y):
    h, w = tex.shape[:2]
    x, y = np.clip(x, 0, w - 1.001), np.clip(y, 0, h - 1.001)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    ax, ay = (x - x0)[:, None], (y - y0)[:, None]
    top = (1 - ax) * tex[y0, x0] + ax * tex[y0, x0 + 1]
    bottom = (1 - ax) * tex[y0 + 1, x0] + ax * tex[y0 + 1, x0 + 1]
    return (1 - ay) * top + ay * bottom


def render(scene, w2c, ss=3):
    """The scene seen by camera ``w2c`` (K above), ``ss`` x ``ss`` supersampled. [H, W, 3] uint8

    Pixel ``(i, j)`` of the supersampled image looks through ``(i + 0.5, j + 0.5)`` of
    ``scale_intrinsics(K, ss, ss)``; area averaging then gives pixel centres at ``+0.5`` of K.
    """
    Ks = scale_intrinsics(K, ss, ss)
    j, i = np.mgrid[0:H * ss, 0:W * ss]
    pix = np.stack([i.ravel() + 0.5, j.ravel() + 0.5, np.ones(i.size)], axis=1)
    c2w = invert_rigid(w2c)
    d = (pix @ np.linalg.inv(Ks).T) @ c2w[:3, :3].T  # ray directions, world
    C = c2w[:3, 3]
    depth = np.full(len(d), np.inf)
    colour = np.full((len(d), 3), 0.5)
    for o, u, v, su, sv, tex in scene:
        n = np.cross(u, v)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((o - C) @ n) / (d @ n)
        P = C + t[:, None] * d
        a, b = (P - o) @ u, (P - o) @ v
        hit = np.isfinite(t) & (t > 1e-6) & (t < depth)
        hit &= (a >= 0) & (a <= su) & (b >= 0) & (b <= sv)
        th, tw = tex.shape[:2]
        colour[hit] = bilinear(tex, a[hit] / su * (tw - 1), b[hit] / sv * (th - 1))
        depth[hit] = t[hit]
    img = cv2.resize(colour.reshape(H * ss, W * ss, 3), (W, H), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def pan_path(n=N_FRAMES, degrees=10.0):
    """A camera at the origin turning right about the y axis, 0 -> ``degrees``."""
    yaw = np.deg2rad(np.linspace(0.0, degrees, n))
    return pose_from_rotation_center(np.swapaxes(rotation_y(yaw), -1, -2), np.zeros(3))


def orbit_path(n=N_FRAMES, degrees=12.0, d=4.0):
    """A camera on an arc around ``(0, 0, d)``, looking at it, rising a little as it goes; it
    speeds up (steps from 0.4 to 1.6 times the mean) so that a wrong scale shows."""
    u = np.linspace(0.0, 1.0, n)
    yaw = np.deg2rad(degrees) * (0.4 * u + 0.6 * u**2)
    rise = -0.3 * np.sin(u * np.pi / 2)
    eyes = np.stack([d * np.sin(yaw), rise, d - d * np.cos(yaw)], axis=-1)
    return np.stack([look_at(e, np.array([0.0, 0.0, d])) for e in eyes])


def add_person(frames, seed=1, w=40, h=76):
    """A bright ``w`` x ``h`` textured rectangle moving across the frames by itself, and its
    masks."""
    rng = np.random.default_rng(seed)
    tex = texture(rng, 64, 64) * 0.5 + 0.5
    out = frames.copy()
    masks = np.zeros(frames.shape[:3], bool)
    for t in range(len(frames)):
        x0, y0 = 30 + 5 * t, int(round(25 + 8 * np.sin(0.7 * t)))
        patch = cv2.resize(np.roll(tex, 3 * t, axis=0), (w, h))
        out[t, y0:y0 + h, x0:x0 + w] = np.rint(patch * 255).astype(np.uint8)[:H - y0, :W - x0]
        masks[t, y0:y0 + h, x0:x0 + w] = True
    return out, masks


# ---------------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------------


def rotation_errors(w2c, true):
    """Geodesic angle of ``R_est R_true^T`` per frame, degrees. [T]"""
    M = w2c[:, :3, :3] @ np.swapaxes(true[:, :3, :3], -1, -2)
    cos = (np.trace(M, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))


def direction_errors(centers, true_centers):
    """Angle between estimated and true camera centres, frames 1.., degrees. [T - 1]"""
    a, b = centers[1:], true_centers[1:]
    cos = np.sum(a * b, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1),
                                        1e-300)
    return np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))


def scale_drift(centers, true_centers):
    """Largest ``|r - 1|`` of the step-length ratios (estimate / truth) over their median."""
    est = np.linalg.norm(np.diff(centers, axis=0), axis=1)
    ref = np.linalg.norm(np.diff(true_centers, axis=0), axis=1)
    ratio = est / ref
    return float(np.abs(ratio / np.median(ratio) - 1.0).max())


def orbit_figures(result, true):
    rot = rotation_errors(result.trajectory.w2c, true)
    centers, true_centers = result.trajectory.centers, invert_rigid(true)[:, :3, 3]
    direction = direction_errors(centers, true_centers)
    return rot, direction, scale_drift(centers, true_centers)


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scene():
    return make_scene()


@pytest.fixture(scope="module")
def pan(scene):
    true = pan_path()
    return np.stack([render(scene, p) for p in true]), true


@pytest.fixture(scope="module")
def orbit(scene):
    true = orbit_path()
    return np.stack([render(scene, p) for p in true]), true


# ---------------------------------------------------------------------------------------------
# Accuracy on known paths
# ---------------------------------------------------------------------------------------------


def test_pan_is_a_rotation_about_a_fixed_centre(pan):
    """Measured: max 0.032 deg, mean 0.009."""
    frames, true = pan
    result = track_camera(frames, K, cfg=CFG)
    rot = rotation_errors(result.trajectory.w2c, true)
    print(f"\npan: rotation error max {rot.max():.3f} deg, mean {rot.mean():.3f}")
    np.testing.assert_array_equal(result.trajectory.w2c[0], np.eye(4))
    assert result.rotation_only.all(), result.rotation_only
    np.testing.assert_array_equal(result.trajectory.centers, 0.0)  # no translation at all
    assert rot.max() < PAN_MAX_DEG and rot.mean() < PAN_MEAN_DEG, rot
    assert result.warnings == []
    assert (result.inliers[1:] >= CFG.min_inliers).all(), result.inliers


def test_orbit_rotation_direction_and_scale(orbit):
    """Measured: rotation max 0.16 deg, mean 0.08; direction max 1.3 deg; scale drift 0.11."""
    frames, true = orbit
    result = track_camera(frames, K, cfg=CFG)
    rot, direction, drift = orbit_figures(result, true)
    print(f"\norbit: rotation error max {rot.max():.3f} deg, mean {rot.mean():.3f}; direction "
          f"error max {direction.max():.2f} deg, mean {direction.mean():.2f}; scale drift "
          f"{drift:.3f}")
    assert not result.rotation_only[1:].all()
    assert rot.max() < ORBIT_MAX_DEG and rot.mean() < ORBIT_MEAN_DEG, rot
    assert direction.max() < ORBIT_DIRECTION_DEG, direction
    assert drift < ORBIT_SCALE_DRIFT, drift
    assert ((result.scale_confidence >= 0) & (result.scale_confidence <= 1)).all()
    assert result.warnings == []


def test_masked_person_does_not_spoil_the_orbit(orbit):
    """A textured rectangle moving by itself over the orbit. Masked, the orbit's bounds hold
    (measured: rotation max 0.33 deg, mean 0.11; direction max 1.6 deg; scale drift 0.15).
    Unmasked, RANSAC alone has to reject it and the estimate may degrade (here rotation max
    0.20 deg, direction max 1.8, scale drift 0.13; over seeds 0-7 up to 1.4 deg, 4.2 deg and
    0.79): printed, not asserted."""
    frames, true = orbit
    person, masks = add_person(frames)
    masked = track_camera(person, K, masks, cfg=CFG)
    rot, direction, drift = orbit_figures(masked, true)
    unmasked = track_camera(person, K, None, cfg=CFG)
    u_rot, u_direction, u_drift = orbit_figures(unmasked, true)
    print(f"\norbit + masked person: rotation max {rot.max():.3f} deg, mean {rot.mean():.3f}; "
          f"direction max {direction.max():.2f}; scale drift {drift:.3f}"
          f"\norbit + unmasked person: rotation max {u_rot.max():.3f} deg, mean "
          f"{u_rot.mean():.3f}; direction max {u_direction.max():.2f}; scale drift "
          f"{u_drift:.3f}; warnings {len(unmasked.warnings)}")
    assert rot.max() < ORBIT_MAX_DEG and rot.mean() < ORBIT_MEAN_DEG, rot
    assert direction.max() < ORBIT_DIRECTION_DEG, direction
    assert drift < ORBIT_SCALE_DRIFT, drift


def test_unmasked_person_over_a_pan_leaves_a_rotation(pan):
    """A large unmasked rectangle (70x100 of 160x120) moving over the pan: its tracks leave
    more parallax than the threshold once the rotation is compensated, but the model choice
    (GRIC) sees that a rotation with outliers explains the matches better than an essential
    matrix, so the pan stays a rotation (measured: max 0.024 deg)."""
    frames, true = pan
    person, _ = add_person(frames, 1, 70, 100)
    result = track_camera(person, K, cfg=CFG)
    rot = rotation_errors(result.trajectory.w2c, true)
    print(f"\npan + unmasked large person: rotation error max {rot.max():.3f} deg")
    assert result.rotation_only.all(), result.rotation_only
    assert rot.max() < PAN_MAX_DEG, rot


def test_features_stay_off_the_grown_masks(orbit):
    frames, _ = orbit
    person, masks = add_person(frames)
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in person])
    allowed = background_masks(masks, *masks.shape, CFG.mask_dilation)
    assert (allowed[masks] == 0).all() and (allowed == 0).sum() > masks.sum()
    ids, pts = track_klt(gray, allowed, CFG)
    for t, p in enumerate(pts):
        assert len(p) >= CFG.min_inliers and len(ids[t]) == len(p)
        xi, yi = np.floor(p).astype(int).T  # the pixel each point lies in
        assert (allowed[t, yi, xi] > 0).all(), t


def test_slow_orbit_accumulates_parallax(scene):
    """The orbit at half the speed over 24 frames: no two neighbouring frames show enough
    parallax for a translation (upper quartile 0.25-0.5 px), so it is measured from the last
    translating frame (here at frames 9, 16, 21) and the frames between are placed by PnP.
    Measured: rotation max 0.17 deg, mean 0.07; direction max 1.5 deg; scale drift 0.11."""
    true = orbit_path(24, 12.0)
    frames = np.stack([render(scene, p) for p in true])
    result = track_camera(frames, K, cfg=CFG)
    rot, direction, drift = orbit_figures(result, true)
    print(f"\nslow orbit: rotation error max {rot.max():.3f} deg, mean {rot.mean():.3f}; "
          f"direction error max {direction.max():.2f} deg; scale drift {drift:.3f}")
    assert rot.max() < ORBIT_MAX_DEG and rot.mean() < ORBIT_MEAN_DEG, rot
    assert direction.max() < ORBIT_DIRECTION_DEG, direction
    assert drift < ORBIT_SCALE_DRIFT, drift


# ---------------------------------------------------------------------------------------------
# Bad input and failing frames
# ---------------------------------------------------------------------------------------------


def test_a_uniform_video_is_a_still_camera_with_a_warning():
    grey = np.full((4, H, W, 3), 128, np.uint8)
    result = track_camera(grey, K, cfg=CFG)
    np.testing.assert_array_equal(result.trajectory.w2c, np.repeat(np.eye(4)[None], 4, 0))
    assert len(result.warnings) == 1 and result.warnings[0].startswith("nothing to track"), \
        result.warnings
    assert (result.scale_confidence == 0).all() and (result.inliers == 0).all()


def test_noise_only_gives_no_features_and_a_still_camera():
    """Grey frames with independent sensor noise: corners are found in noise by a relative
    quality level, and tracked into random motion; the noise floor keeps them out."""
    rng = np.random.default_rng(0)
    noisy = np.clip(np.rint(128 + rng.normal(0, 3, (6, H, W, 1))), 0, 255).astype(np.uint8)
    noisy = np.repeat(noisy, 3, axis=3)
    level = noise_level(noisy[0, ..., 0])
    assert 2.7 < level < 3.3, level
    assert not trackable(noisy[0, ..., 0], CFG.noise_margin).any()
    result = track_camera(noisy, K, cfg=CFG)
    np.testing.assert_array_equal(result.trajectory.w2c, np.repeat(np.eye(4)[None], 6, 0))
    assert "stand out of the noise" in result.warnings[0], result.warnings


def test_masks_covering_the_frames_leave_a_still_camera(pan):
    frames, _ = pan
    result = track_camera(frames[:3], K, np.ones((3, H, W), bool), cfg=CFG)
    assert "on the background" in result.warnings[0], result.warnings
    np.testing.assert_array_equal(result.trajectory.w2c, np.repeat(np.eye(4)[None], 3, 0))


def test_revealed_background_is_tracked(pan):
    """The pan reveals a strip on the right that frame 0 did not see; the frames are topped up
    with corners there while older tracks still live."""
    frames, _ = pan
    ids, pts = track_klt(np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]),
                         np.full(frames.shape[:3], 255, np.uint8), CFG)
    born_late = ~np.isin(ids[-1], ids[0])
    assert (pts[-1][born_late, 0] > 0.85 * W).sum() >= 5
    assert np.isin(ids[-1], ids[0]).sum() >= CFG.min_inliers  # old tracks live on


def test_fewer_than_two_frames_are_refused(pan):
    frames, _ = pan
    with pytest.raises(InputError, match="at least 2 frames"):
        track_camera(frames[:1], K, cfg=CFG)


def test_shapes_are_checked(pan):
    frames, _ = pan
    with pytest.raises(ValueError, match="uint8"):
        track_camera(frames.astype(np.float32), K)
    with pytest.raises(ValueError, match="masks"):
        track_camera(frames, K, np.zeros((2, H, W), bool))
    with pytest.raises(ValueError, match="K"):
        track_camera(frames, np.eye(4))


def test_a_blank_frame_is_bridged_with_a_warning(pan):
    """A frame with nothing to track cannot be placed: the next frame finds the tracks of the
    frame before it again, and the blank frame is placed between them, with a warning."""
    frames, true = pan
    frames = frames.copy()
    frames[5] = 128
    result = track_camera(frames, K, cfg=CFG)
    assert len(result.warnings) == 1 and result.warnings[0].startswith("frame 5:"), \
        result.warnings
    assert "interpolated between frames 4 and 6" in result.warnings[0]
    assert result.scale_confidence[5] == 0 and result.inliers[5] == 0
    rot = rotation_errors(result.trajectory.w2c, true)
    assert rot.max() < PAN_MAX_DEG, rot  # no offset is left after the gap


def test_a_cut_holds_the_pose_and_goes_on(pan):
    """Frames lost for longer than max_gap hold the last pose; the motion after them is still
    measured, from the first frame that can be tracked."""
    frames, true = pan
    frames = frames.copy()
    frames[4:8] = 128
    result = track_camera(frames, K, cfg=CFG)
    assert [w.split(":")[0] for w in result.warnings] == [f"frame {i}" for i in range(4, 9)], \
        result.warnings
    assert all("held from frame 3" in w for w in result.warnings)
    for i in range(4, 9):
        np.testing.assert_array_equal(result.trajectory.w2c[i], result.trajectory.w2c[3])
    rel_est = result.trajectory.w2c[11] @ invert_rigid(result.trajectory.w2c[8])
    rel_true = true[11] @ invert_rigid(true[8])
    assert rotation_errors(rel_est[None], rel_true[None])[0] < PAN_MAX_DEG


def test_a_step_with_no_map_in_view_assumes_its_length():
    """Exact tracks of a camera sliding sideways: every frame translates. The tracks of frames
    0-1 all end at frame 1 and new ones start there, so step 1 -> 2 sees none of the points
    triangulated before: its length is assumed (the median of the earlier steps), with a
    warning and confidence 0; the next steps are measured again."""
    rng = np.random.default_rng(0)
    X = np.stack([rng.uniform(-3, 4, 200), rng.uniform(-2, 1, 200), rng.uniform(2, 10, 200)], 1)
    true = pose_from_rotation_center(np.eye(3), np.outer(np.arange(5), [0.5, 0.0, 0.0]))
    visible = [np.arange(100), np.arange(200)] + [np.arange(100, 200)] * 3
    ids, pts = [], []
    for w2c, v in zip(true, visible, strict=True):
        x = (X[v] @ w2c[:3, :3].T + w2c[:3, 3]) @ K.T
        ids.append(v)
        pts.append(x[:, :2] / x[:, 2:])
    result = chain_path(ids, pts, K, W, H, CFG)
    assert len(result.warnings) == 1 and result.warnings[0].startswith("frame 2: too few "
                                                                       "triangulated"), \
        result.warnings
    np.testing.assert_array_equal(result.scale_confidence, [1, 1, 0, 1, 1])
    assert not result.rotation_only[1:].any()
    centers = result.trajectory.centers
    np.testing.assert_allclose(centers / centers[1, 0], invert_rigid(true)[:, :3, 3] / 0.5,
                               atol=1e-6)


@pytest.mark.parametrize("key, value", [("quality", 1.5), ("min_inliers", 5), ("max_gap", 1.5),
                                        ("ransac_threshold", 0.0), ("noise_margin", -1)])
def test_bad_settings_are_input_errors(key, value):
    with pytest.raises(InputError, match=rf"^camtrack\.{key}="):
        TrackConfig.from_conf(**{key: value})


def test_config_file_builds_the_tracker(pan):

    from hydra.utils import instantiate

    cfg = config("camtrack=opencv").camtrack
    tracker = instantiate(cfg)
    assert isinstance(tracker, CameraTracker)
    assert {k for k in cfg if k != "_target_"} == set(TrackConfig.__dataclass_fields__)
    assert tracker.cfg == TrackConfig.from_conf()  # the file's values
    frames, true = pan
    small = instantiate(cfg, window=11, mask_dilation=6, min_distance=5.0)
    result = small(frames[:4], K)
    assert len(result.trajectory) == 4
    assert rotation_errors(result.trajectory.w2c, true[:4]).max() < PAN_MAX_DEG


# ---------------------------------------------------------------------------------------------
# Two-view pieces on exact correspondences
# ---------------------------------------------------------------------------------------------


def _two_views(rng, R, t, n=60):
    X = np.stack([rng.uniform(-2, 2, n), rng.uniform(-1.5, 1.5, n), rng.uniform(3, 8, n)], 1)
    x1 = X @ K.T
    X2 = X @ R.T + t
    x2 = X2 @ K.T
    return X, x1[:, :2] / x1[:, 2:], x2[:, :2] / x2[:, 2:]


def test_essential_fit_and_triangulation_recover_the_motion():
    rng = np.random.default_rng(0)
    R = np.swapaxes(rotation_y(np.deg2rad(4.0)), -1, -2)
    t = np.array([0.3, -0.05, 0.1])
    X, p1, p2 = _two_views(rng, R, t)
    R_est, t_est, inl = essential_fit(p1, p2, K, 1.0)
    assert inl.all()
    np.testing.assert_allclose(R_est, R, atol=1e-6)
    np.testing.assert_allclose(t_est, t / np.linalg.norm(t), atol=1e-6)
    X_est, valid = triangulate(p1, p2, K, R_est, t_est, 0.5)
    assert valid.all()
    np.testing.assert_allclose(X_est * np.linalg.norm(t), X, rtol=1e-5)


def test_far_points_of_a_small_step_are_inliers():
    """A step of 0.02 sideways before points 3-8 away (150-400 baselines): every point is an
    inlier and the direction is right (a cheirality check limited to 50 baselines drops them
    all)."""
    rng = np.random.default_rng(2)
    t = np.array([0.02, 0.0, 0.0])
    _, p1, p2 = _two_views(rng, np.eye(3), t, n=80)
    R_est, t_est, inl = essential_fit(p1, p2, K, 1.0)
    assert inl.all(), inl.sum()
    np.testing.assert_allclose(t_est, [1.0, 0.0, 0.0], atol=1e-4)


def test_rotation_fit_and_resection():
    rng = np.random.default_rng(1)
    R = np.swapaxes(rotation_y(np.deg2rad(-3.0)), -1, -2)
    X, p1, p2 = _two_views(rng, R, np.zeros(3))
    R_est, err = rotation_fit(p1, p2, K, 1.0)
    np.testing.assert_allclose(R_est, R, atol=1e-9)
    assert err.max() < 1e-6
    w2c = pose_from_rotation_center(R, np.array([0.2, 0.1, -0.3]))
    x = (X @ w2c[:3, :3].T + w2c[:3, 3]) @ K.T
    pose, inl = resect(X, x[:, :2] / x[:, 2:], K, np.eye(4), 1.0)
    assert inl.all()
    np.testing.assert_allclose(pose, w2c, atol=1e-6)
