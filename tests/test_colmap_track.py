"""The COLMAP camera tracker (``camtrack=colmap``) on small videos with known cameras.

The videos are the camera suite's world (:mod:`tools.camera_suite`: photos on planes at depths
3, 5 and 10) at 192 x 192, 8 frames, with its dancer where a person is needed. The accuracy
target itself (384 x 384, 25 frames: rotation <= 0.5 deg, direction <= 3 deg on every frame)
is asserted on the whole suite by ``tests/test_camera_suite.py`` under ``make test-slow``.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
from runner import config

from dreamdance.camera import (
    intrinsics_from_fov,
    invert_rigid,
    pose_from_rotation_center,
    rotation_y,
)
from dreamdance.errors import InputError
from dreamdance.eval.trajectory import path_errors
from dreamdance.motion.colmap_sfm import Placed, extract, quiet, write_inputs
from dreamdance.motion.colmap_track import (
    ColmapConfig,
    ColmapTracker,
    fill,
    keyframes,
    track_colmap,
)
from dreamdance.motion.track_result import TrackResult
from tools import camera_suite as cs

ROTATION_MAX_DEG = 0.5
DIRECTION_MAX_DEG = 3.0


# ---------------------------------------------------------------------------------------------
# Small videos of the camera suite's world (tools/camera_suite.py) for the normal suite; the
# accuracy target itself is asserted on the suite in tests/test_camera_suite.py (slow)
# ---------------------------------------------------------------------------------------------

SMALL_SIZE, SMALL_N = 192, 8
# Tuned to the small frames: a smaller refinement window, the masks grown by more than half.
SMALL = dict(refine_window=11, mask_dilation=8)


def small_video(true, dancer=False):
    """Frames, K, the true poses and the dancer's masks (None without it) of the suite's
    world seen along ``true``, at 192 x 192."""
    K = intrinsics_from_fov(cs.FOV, SMALL_SIZE, SMALL_SIZE)
    frames = np.stack([cs.render(cs.world(SMALL_SIZE), K, p, SMALL_SIZE) for p in true])
    masks = None
    if dancer:
        frames, masks = cs.dancer(frames)
    return frames, K, true, masks


def figures(result: TrackResult, true):
    """Rotation errors [T] and direction errors [T - 1] (degrees; zeros for a rotation)."""
    e = path_errors(result.trajectory.w2c, true)
    return e.rotation, np.nan_to_num(e.direction[1:])


def pan_path(n):
    """A pan at a constant rate, 0 -> 12 degrees."""
    yaw = np.deg2rad(np.linspace(0.0, 12.0, n))
    return pose_from_rotation_center(np.swapaxes(rotation_y(yaw), -1, -2), np.zeros((n, 3)))


@pytest.fixture(scope="module")
def pan():
    return small_video(pan_path(SMALL_N))


@pytest.fixture(scope="module")
def orbit():
    return small_video(cs.orbit(SMALL_N, 12.0), dancer=True)


# ---------------------------------------------------------------------------------------------
# Accuracy
# ---------------------------------------------------------------------------------------------


def test_orbit_with_a_masked_person(orbit):
    """An orbit behind the dancer, masked; the mapper runs. Measured: rotation max 0.18 deg,
    direction max 0.51 deg."""
    frames, K, true, masks = orbit
    result = ColmapTracker(**SMALL)(frames, K, masks)
    rot, direction = figures(result, true)
    print(f"\nsmall orbit + masked person: rotation max {rot.max():.3f} deg, direction max "
          f"{direction.max():.2f} deg")
    np.testing.assert_array_equal(result.trajectory.w2c[0], np.eye(4))
    assert not result.rotation_only.any()
    assert rot.max() <= ROTATION_MAX_DEG, rot
    assert direction.max() <= DIRECTION_MAX_DEG, direction
    assert result.warnings == []
    assert (result.inliers > 0).all() and (result.scale_confidence == 1).all()


def test_pan_is_a_rotation_and_runs_quietly(pan, capfd):
    """A pan cannot start an incremental mapper: it is found as rotations about a fixed centre,
    from COLMAP's verified matches, with no translation at all; COLMAP prints nothing.
    Measured: rotation max 0.010 deg."""
    frames, K, true, _ = pan
    result = track_colmap(frames, K, cfg=ColmapConfig.from_conf(**SMALL))
    out, err = capfd.readouterr()
    rot, _ = figures(result, true)
    print(f"\nsmall pan: rotation max {rot.max():.3f} deg")
    assert out == "" and err == "", (out[-500:], err[-500:])
    assert result.rotation_only.all()
    np.testing.assert_array_equal(result.trajectory.centers, 0.0)
    assert rot.max() <= 0.2, rot
    assert result.warnings == []
    assert (result.inliers[1:] >= ColmapConfig.from_conf().min_inliers).all(), result.inliers


def test_a_mapper_that_cannot_start_falls_back_to_rotations(pan):
    """With the parallax test switched off, the mapper is run on the pan; it cannot register
    the keyframes, and the rotation path is used instead, with a warning."""
    frames, K, true, _ = pan
    result = track_colmap(frames, K, cfg=ColmapConfig.from_conf(**SMALL, parallax_threshold=1e-9))
    assert len(result.warnings) == 1 and result.warnings[0].startswith("COLMAP registered"), \
        result.warnings
    assert "rotating about a fixed centre" in result.warnings[0]
    assert result.rotation_only.all()
    assert figures(result, true)[0].max() <= 0.2


def test_long_videos_go_through_keyframes(pan):
    """Three of the eight frames go through COLMAP; the others are interpolated (the pan turns
    at a constant rate, so slerp is exact), without warnings."""
    frames, K, true, _ = pan
    result = track_colmap(frames, K, cfg=ColmapConfig.from_conf(**SMALL, max_keyframes=3))
    assert len(result.trajectory) == SMALL_N and result.warnings == []
    np.testing.assert_array_equal(result.inliers > 0, np.isin(np.arange(SMALL_N), [0, 4, 7]))
    assert figures(result, true)[0].max() <= 0.2


def test_a_blank_frame_is_interpolated_with_a_warning(orbit):
    frames, K, true, masks = orbit
    frames = frames.copy()
    frames[3] = 128
    result = track_colmap(frames, K, masks, ColmapConfig.from_conf(**SMALL))
    assert result.warnings == ["frame 3: COLMAP could not place it; pose interpolated between "
                               "frames 2 and 4"], result.warnings
    assert result.scale_confidence[3] == 0 and result.inliers[3] == 0
    assert (np.delete(result.scale_confidence, 3) == 1).all()
    rot, direction = figures(result, true)
    assert rot.max() <= 1.0 and direction.max() <= 5.0, (rot, direction)


# ---------------------------------------------------------------------------------------------
# COLMAP's inputs: masks and pixel coordinates
# ---------------------------------------------------------------------------------------------


def _keypoints(tmp_path, frames, masks, K, dilation):
    """COLMAP's SIFT keypoints (x, y) of each frame, as the tracker writes and extracts them."""
    import pycolmap

    write_inputs(tmp_path, frames, masks, dilation)
    cfg = ColmapConfig.from_conf()
    with quiet():
        extract(tmp_path / "database.db", tmp_path, K, cfg, cfg.peak_threshold)
    db = pycolmap.Database.open(tmp_path / "database.db")
    try:
        return {int(Path(im.name).stem): db.read_keypoints(im.image_id)[:, :2]
                for im in db.read_all_images()}
    finally:
        db.close()


@pytest.mark.parametrize("masked", [True, False])
def test_no_feature_is_taken_on_the_grown_masks(orbit, tmp_path, masked):
    """With the masks, no keypoint lies on the person grown by ``mask_dilation``; without them
    many do (so the check can fail)."""
    frames, K, _, masks = orbit
    dilation = 6
    grown = np.stack([cv2.dilate(m.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * dilation + 1,) * 2)) > 0 for m in masks[:3]])
    kps = _keypoints(tmp_path, frames[:3], masks[:3] if masked else None, K, dilation)
    assert sorted(kps) == [0, 1, 2]
    for t, p in kps.items():
        assert len(p) >= 30, (t, len(p))
        xi, yi = np.floor(p).astype(int).T  # the pixel each keypoint lies in
        on = grown[t, yi, xi].sum()
        assert on == 0 if masked else on >= 10, (t, on)


def test_keypoints_have_pixel_centres_at_half(tmp_path):
    """COLMAP puts the centre of pixel (i, j) at (i + 0.5, j + 0.5), as dreamdance.camera does:
    a blob centred on pixel (50, 40) is found at (50.5, 40.5)."""
    y, x = np.mgrid[0:120, 0:160]
    blob = np.exp(-((x - 50) ** 2 + (y - 40) ** 2) / (2 * 3.0**2))
    image = np.repeat(np.rint(20 + 200 * blob).astype(np.uint8)[None, ..., None], 3, axis=3)
    kps = _keypoints(tmp_path, image, None, intrinsics_from_fov(60.0, 160, 120), 0)
    nearest = kps[0][np.argmin(np.linalg.norm(kps[0] - [50.5, 40.5], axis=1))]
    np.testing.assert_allclose(nearest, [50.5, 40.5], atol=0.05)


# ---------------------------------------------------------------------------------------------
# Keyframes and gaps
# ---------------------------------------------------------------------------------------------


def test_keyframes_are_spread_evenly():
    np.testing.assert_array_equal(keyframes(10, None), np.arange(10))
    np.testing.assert_array_equal(keyframes(10, 60), np.arange(10))
    keys = keyframes(100, 10)
    assert len(keys) == 10 and keys[0] == 0 and keys[-1] == 99
    assert (np.diff(keys) >= 10).all() and (np.diff(keys) <= 12).all()


def test_gaps_are_interpolated_or_held_with_warnings():
    """Keyframes at frames 0, 3, 6, 9, 12; those at 0 and 6 were not placed."""
    keys = np.array([0, 3, 6, 9, 12])
    true = cs.sideways(13, 1.0, turn=-6.0)
    placed = Placed.empty(5)
    placed.w2c[:] = true[keys]
    placed.registered[:] = [False, True, False, True, True]
    placed.inliers[:] = [0, 50, 0, 60, 70]
    placed.rotation_only[:] = False
    filled = fill(keys, 13, placed)
    assert filled.warnings == [
        "frame 0: COLMAP could not place it; pose held from frame 3",
        "frame 6: COLMAP could not place it; pose interpolated between frames 3 and 9"]
    np.testing.assert_array_equal(filled.w2c[[0, 1, 2]], np.repeat(true[3][None], 3, 0))
    np.testing.assert_array_equal(filled.w2c[[3, 9, 12]], true[[3, 9, 12]])
    # Halfway between frames 3 and 9: half the turn, the mean centre.
    halfway = slerp_pose(true[3], true[9], 0.5)
    np.testing.assert_allclose(filled.w2c[6], halfway, atol=1e-12)
    np.testing.assert_array_equal(filled.confidence,
                                  [0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(filled.inliers, [0, 0, 0, 50, 0, 0, 0, 0, 0, 60, 0, 0, 70])
    np.testing.assert_array_equal(filled.rotation_only, [True] * 3 + [False] * 10)


def slerp_pose(a, b, u):
    """The pose a fraction ``u`` of the way from ``a`` to ``b`` (angle-axis, linear centre)."""
    R = b[:3, :3] @ a[:3, :3].T
    rvec = cv2.Rodrigues(R)[0]
    Ru = cv2.Rodrigues(u * rvec)[0] @ a[:3, :3]
    ca, cb = invert_rigid(a)[:3, 3], invert_rigid(b)[:3, 3]
    return pose_from_rotation_center(Ru, (1 - u) * ca + u * cb)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_fewer_than_two_frames_are_refused(pan):
    frames, K, _, _ = pan
    with pytest.raises(InputError, match=r"^driving: a camera path needs at least 2 frames"):
        track_colmap(frames[:1], K)
    with pytest.raises(InputError, match=r"^driving=dance.mp4: "):
        ColmapTracker()(frames[:0], K, name="driving=dance.mp4")


def test_a_uniform_video_is_a_still_camera_with_a_warning():
    grey = np.full((3, 96, 128, 3), 128, np.uint8)
    result = track_colmap(grey, intrinsics_from_fov(60.0, 128, 96))
    np.testing.assert_array_equal(result.trajectory.w2c, np.repeat(np.eye(4)[None], 3, 0))
    assert len(result.warnings) == 1 and result.warnings[0].startswith("nothing to track"), \
        result.warnings


def test_shapes_are_checked(pan):
    frames, K, _, _ = pan
    with pytest.raises(ValueError, match="uint8"):
        track_colmap(frames.astype(np.float32), K)
    with pytest.raises(ValueError, match="masks"):
        track_colmap(frames, K, np.zeros((2, SMALL_SIZE, SMALL_SIZE), bool))
    with pytest.raises(ValueError, match="K"):
        track_colmap(frames, np.eye(4))


@pytest.mark.parametrize("key, value", [
    ("max_keyframes", 1), ("max_keyframes", 2.5), ("max_features", 0), ("overlap", True),
    ("refine_window", 2), ("peak_threshold", 0.0), ("max_error", float("nan")),
    ("min_registered", 0.0), ("min_registered", 1.5), ("min_inliers", 2),
    ("mask_dilation", -1), ("num_threads", 0), ("parallax_threshold", "1")])
def test_bad_settings_are_input_errors(key, value):
    with pytest.raises(InputError, match=rf"^camtrack\.{key}="):
        ColmapConfig.from_conf(**{key: value})


def test_optional_settings_take_null():
    cfg = ColmapConfig.from_conf(max_keyframes=None, refine_window=None, num_threads=None)
    assert cfg.max_keyframes is None and cfg.refine_window is None


def test_config_file_builds_the_tracker(pan, tmp_path, monkeypatch):
    """``conf/camtrack/colmap.yaml`` states every setting and its default, and builds a tracker
    that runs; COLMAP's temporary files are removed."""
    import tempfile

    from hydra.utils import instantiate

    cfg = config("camtrack=colmap").camtrack
    tracker = instantiate(cfg)
    assert isinstance(tracker, ColmapTracker)
    assert {k for k in cfg if k != "_target_"} == set(ColmapConfig.__dataclass_fields__)
    assert tracker.cfg == ColmapConfig.from_conf()
    assert repr(tracker).startswith("ColmapTracker(max_keyframes=60")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    frames, K, true, _ = pan
    result = instantiate(cfg, **SMALL)(frames[:4], K)
    assert len(result.trajectory) == 4
    assert figures(result, true[:4])[0].max() <= 0.2
    assert list(tmp_path.iterdir()) == []
