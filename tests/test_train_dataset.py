"""The training dataset (dreamdance.train.dataset) on a tiny synthetic dataset."""

import dataclasses
import json

import numpy as np
import pytest
from synthetic_data import make_dataset

from dreamdance.errors import InputError
from dreamdance.media import read_video, save_image
from dreamdance.motion.poses import read_poses
from dreamdance.train.dataset import (
    ClipDataset,
    DatasetConfig,
    choose_window_and_reference,
    reference_distance,
)
from dreamdance.train.degrade import DegradeConfig
from dreamdance.train.layout import read_metadata, write_metadata
from dreamdance.train.sample import collate

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = (64, 96)  # (H, W) of the synthetic clips: a centre crop to the square 32x32
CONFIG = dict(frames=6, stride=2, height=32, width=32, reference_gap=2, scene_ratio=0.0,
              degrade=dict(blocks_p=0.0, noise_p=0.0, blur_p=0.0, perspective_p=0.0))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), clips=2, frames=20, size=SIZE,
                        scene_clips=1, corrupt=1, short=1)


def fitted_frames(path):
    """All frames of a clip, centre-cropped to 64x64 and halved, as the dataset should."""
    frames = read_video(path).frames[:, :, 16:80].astype(np.float32) / 255.0
    return frames.reshape(len(frames), 32, 2, 32, 2, 3).mean(axis=(2, 4))


def find_frame(frames, image):
    return int(np.argmin(np.abs(frames - image[None]).mean(axis=(1, 2, 3))))


def test_shapes_and_ranges(data):
    ds = ClipDataset(data, CONFIG)
    assert len(ds) == 3
    s = ds.sample(0)
    f, h, w = 6, 32, 32
    assert s.video.shape == s.background.shape == (f, h, w, 3)
    assert s.mask.shape == s.boxes.shape == (f, h, w) and s.character.shape == (h, w, 4)
    for x in (s.video, s.background, s.mask, s.boxes, s.character, *s.poses.values()):
        assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    assert set(np.unique(s.mask)) <= {0.0, 1.0} and set(np.unique(s.boxes)) <= {0.0, 1.0}
    batch = collate([ds[0], ds[1]])
    assert batch["video"].shape == (2, f, 3, h, w) and batch["pose_body"].shape == (2, f, 3, h, w)
    assert batch["mask"].shape == (2, f, h, w) and batch["character"].shape == (2, h, w, 4)


def test_deterministic_in_seed_and_index(data):
    a, b = ClipDataset(data, CONFIG, seed=1), ClipDataset(data, CONFIG, seed=1)
    for index in (0, 10**9 + 7):
        s, t = a.sample(index), b.sample(index)
        for field in ("video", "background", "mask", "boxes", "character"):
            np.testing.assert_array_equal(getattr(s, field), getattr(t, field))
    x, y = a.sample(2), a.sample(3)
    assert x.name != y.name or not np.array_equal(x.video, y.video)
    assert {a.sample(i).name for i in range(len(a))} == {"person-000", "person-001"}, \
        "one pass visits every person clip"


def test_degradation_reaches_the_background(data):
    cfg = dict(CONFIG, degrade=dict(blocks_p=1.0, blocks_size=0.5, noise_p=0.0, blur_p=0.0,
                                    perspective_p=0.0))
    s = ClipDataset(data, cfg).sample(0)
    assert (s.background == 0).all(-1).any() and not (s.video == 0).all(-1).any()


def test_reference_lies_outside_the_window(data):
    ds = ClipDataset(data, CONFIG)
    for index in range(6):
        s = ds.sample(index)
        frames = fitted_frames(data / "clips" / s.name / "video.mp4")
        start = find_frame(frames, s.video[0])
        assert find_frame(frames, s.video[1]) == start + 2  # the stride
        reference = find_frame(frames, s.character[..., :3])
        assert reference_distance(reference, start, 11) > 2, (index, start, reference)
        assert s.character[..., 3].sum() > 0


def test_choose_window_and_reference():
    for seed in range(30):
        rng = np.random.default_rng(seed)
        start, ref = choose_window_and_reference(30, 11, 4, rng)
        assert 0 <= start <= 19 and 0 <= ref < 30
        assert ref < start - 4 or ref > start + 10 + 4
    start, ref = choose_window_and_reference(12, 11, 4, np.random.default_rng(0))
    assert ref == (11 if start == 0 else 0), "fallback: the frame farthest from the window"


def test_bad_clips_are_skipped_and_counted(data):
    ds = ClipDataset(data, CONFIG)
    assert ds.skipped == {"unreadable video": 1, "too short": 1}
    assert {c.record.name for c in ds.clips} == {"person-000", "person-001", "scene-000"}


def test_no_usable_clip_is_an_input_error(tmp_path):
    root = make_dataset(tmp_path, clips=0, corrupt=1, short=1, size=(32, 32))
    with pytest.raises(InputError, match=f"data={root}: no usable train clip"):
        ClipDataset(root, CONFIG)
    with pytest.raises(InputError, match="no usable val clip"):
        ClipDataset(data_root := make_dataset(tmp_path / "b", clips=1, size=(32, 32)),
                    CONFIG, split="val")
    assert data_root.is_dir()


def test_read_failure_in_sample_uses_another_clip(tmp_path):
    root = make_dataset(tmp_path, clips=2, frames=16, size=SIZE)
    ds = ClipDataset(root, CONFIG)
    (root / "clips" / "person-000" / "video.mp4").write_bytes(b"garbage" * 100)
    names = [ds.sample(i).name for i in range(4)]
    assert names == ["person-001"] * 4
    assert ds.skipped["read failed"] == 2
    np.testing.assert_array_equal(ds.sample(0).video, ds.sample(0).video)


def test_scene_clips_have_no_person(data):
    ds = ClipDataset(data, dict(CONFIG, scene_ratio=1.0))
    for index in range(3):
        s = ds.sample(index)
        assert s.name == "scene-000" and not s.has_person
        assert all((v == 0).all() for v in s.poses.values())
        assert (s.mask == 0).all() and (s.boxes == 0).all() and (s.character[..., 3] == 0).all()
        assert ds[index]["has_person"].item() == 0.0


def test_mask_follows_the_poses_after_crop_and_resize(data):
    ds = ClipDataset(data, CONFIG)
    for index in range(2):
        s = ds.sample(index)
        frames = fitted_frames(data / "clips" / s.name / "video.mp4")
        start = find_frame(frames, s.video[0])
        poses = read_poses(data / "clips" / s.name / "poses.json")
        for t in range(6):
            body = poses.body[start + 2 * t, 0]
            # 96x64 -> crop x 16..80 -> halve, about pixel centres
            x = (body[:, 0] - 16 + 0.5) * 0.5 - 0.5
            y = (body[:, 1] + 0.5) * 0.5 - 0.5
            inside = (x >= 0) & (x <= 31) & (y >= 0) & (y <= 31)
            xi, yi = np.rint(x[inside]).astype(int), np.rint(y[inside]).astype(int)
            assert inside.sum() >= 10
            assert (s.mask[t, yi, xi] == 1).all()
            assert (s.boxes[t, yi, xi] == 1).all()
            drawn = s.poses["body"][t].max(-1) > 0
            near = [drawn[max(0, b - 1):b + 2, max(0, a - 1):a + 2].any() for a, b in zip(xi, yi, strict=True)]
            assert all(near)
        # the figure (the mask.mp4 silhouette) is covered by the background's filled region
        assert not np.array_equal(s.background, s.video)


def test_without_mask_video_the_character_comes_from_the_poses(tmp_path):
    root = make_dataset(tmp_path, clips=1, frames=16, size=SIZE, masks=False)
    s = ClipDataset(root, CONFIG).sample(0)
    assert s.mask.sum() > 0
    assert (s.boxes[s.mask > 0] == 1).all()


def test_style_reference(tmp_path):
    root = make_dataset(tmp_path, clips=1, frames=20, size=SIZE)
    style = np.zeros((*SIZE, 3), np.float32)
    style[..., 2] = 1.0  # blue
    save_image(root / "clips" / "person-000" / "style.png", style)
    records = [dataclasses.replace(r, style="clips/person-000/style.png", style_frame=3)
               for r in read_metadata(root)]
    write_metadata(root, records)
    s = ClipDataset(root, dict(CONFIG, style_ratio=1.0)).sample(0)
    np.testing.assert_allclose(s.character[..., :3], np.broadcast_to([0, 0, 1.0], (32, 32, 3)))
    frames = fitted_frames(root / "clips" / "person-000" / "video.mp4")
    assert reference_distance(3, find_frame(frames, s.video[0]), 11) > 2


@pytest.mark.parametrize("kwargs, message", [
    ({"frames": 0}, "data.frames"),
    ({"stride": 1.5}, "data.stride"),
    ({"scene_ratio": 2}, "data.scene_ratio"),
    ({"mask": {"dilation": 1}}, "data.mask: unknown keys"),
    ({"degrade": {"blur_p": -1}}, "degrade.blur_p"),
])
def test_config_is_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DatasetConfig.from_conf(**kwargs)


def test_config_from_yaml_like_mapping():
    cfg = DatasetConfig.from_conf(**json.loads('{"frames": 9, "degrade": {"noise_p": 0.0}, '
                                     '"mask": {"dilate": 0.1, "shape": "box"}}'))
    assert isinstance(cfg.degrade, DegradeConfig) and cfg.degrade.noise_p == 0.0
    assert cfg.span == (9 - 1) * 2 + 1
