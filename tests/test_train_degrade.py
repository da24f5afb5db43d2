"""Degradations of a real clip's background (dreamdance.train.degrade)."""

import numpy as np
import pytest

from dreamdance.settings import conf_values
from dreamdance.train.degrade import (
    DegradeConfig,
    add_noise,
    black_blocks,
    blur,
    character_boxes,
    degrade,
    perspective_warp,
    random_homography,
    remove_character,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def clip(f=3, h=40, w=60, seed=0):
    """A bright, textured clip with no zero pixel."""
    return np.random.default_rng(seed).uniform(0.2, 1.0, (f, h, w, 3)).astype(np.float32)


def test_black_blocks_are_rectangles_of_the_stated_size():
    video = clip(h=50, w=80)
    for seed in range(10):
        out = black_blocks(video, np.random.default_rng(seed), count=1, size=0.4)
        zero = (out == 0).all(axis=-1)
        assert (zero == zero[0]).all(), "a block is the same in every frame"
        rows, cols = np.flatnonzero(zero[0].any(1)), np.flatnonzero(zero[0].any(0))
        bh, bw = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert zero[0].sum() == bh * bw, "the zero region is a filled rectangle"
        assert 0.2 * 50 - 1 <= bh <= 0.4 * 50 + 1 and 0.2 * 80 - 1 <= bw <= 0.4 * 80 + 1
        np.testing.assert_array_equal(out[:, ~zero[0]], video[:, ~zero[0]])
    many = black_blocks(video, np.random.default_rng(0), count=5, size=0.2)
    assert 0 < (many == 0).all(-1)[0].sum() <= 5 * 10 * 16


def test_noise_has_the_stated_std():
    video = np.full((4, 64, 64, 3), 0.5, np.float32)
    out = add_noise(video, np.random.default_rng(0), sigma=0.05)
    assert abs(float((out - video).std()) - 0.05) < 0.002
    assert abs(float((out - video).mean())) < 0.002
    clipped = add_noise(np.ones_like(video), np.random.default_rng(0), sigma=0.3)
    assert clipped.max() <= 1.0 and clipped.min() >= 0.0 and clipped.dtype == np.float32


def test_blur_lowers_high_frequencies():
    video = clip(h=64, w=64)
    out = blur(video, np.random.default_rng(0), sigma=2.0)

    def high(x):  # energy of the neighbour differences
        return float(np.abs(np.diff(x, axis=2)).mean())

    assert high(out) < 0.3 * high(video)
    assert abs(float(out.mean()) - float(video.mean())) < 0.01


def test_perspective_warp_follows_its_homography():
    h, w = 60, 80
    video = np.zeros((2, h, w, 3), np.float32)
    points = [(20, 15), (60, 40), (40, 30)]
    for x, y in points:
        video[:, y - 1:y + 2, x - 1:x + 2] = 1.0
    strength = 0.1
    homography = random_homography(np.random.default_rng(3), w, h, strength)
    out = perspective_warp(video, np.random.default_rng(3), strength)
    np.testing.assert_array_equal(out[0], out[1])
    for x, y in points:
        p = homography @ np.array([x, y, 1.0])
        u, v = p[:2] / p[2]
        ys, xs = np.nonzero(out[0, int(v) - 4:int(v) + 5, int(u) - 4:int(u) + 5, 0] > 0.2)
        assert len(xs), f"the dot at {(x, y)} is not near its image {(u, v)}"
        weight = out[0, int(v) - 4:int(v) + 5, int(u) - 4:int(u) + 5, 0][ys, xs]
        cy = (ys * weight).sum() / weight.sum() + int(v) - 4
        cx = (xs * weight).sum() / weight.sum() + int(u) - 4
        assert abs(cx - u) < 0.75 and abs(cy - v) < 0.75
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], float)
    moved = (homography @ corners.T).T
    moved = moved[:, :2] / moved[:, 2:]
    assert (np.abs(moved - corners[:, :2]) <= strength * np.array([w, h]) + 1e-6).all()


def test_perspective_warp_leaves_black_borders():
    out = perspective_warp(clip(h=60, w=80), np.random.default_rng(1), 0.2)
    assert (out == 0).all(-1).any()


@pytest.mark.parametrize("fn, strength", [(add_noise, 0.0), (blur, 0.0),
                                          (perspective_warp, 0.0)])
def test_strength_zero_is_identity(fn, strength):
    video = clip()
    out = fn(video, np.random.default_rng(0), strength)
    assert out is not video
    np.testing.assert_array_equal(out, video)


def test_probability_zero_is_identity():
    video = clip()
    cfg = DegradeConfig.from_conf(blocks_p=0, noise_p=0, blur_p=0, perspective_p=0)
    np.testing.assert_array_equal(degrade(video, np.random.default_rng(0), cfg), video)
    cfg = DegradeConfig.from_conf(blocks_p=1, blocks_count=0, noise_p=1, noise_sigma=0, blur_p=1,
                        blur_sigma=0, perspective_p=1, perspective_strength=0)
    np.testing.assert_array_equal(degrade(video, np.random.default_rng(0), cfg), video)


def test_degrade_applies_each_with_probability_one():
    video = clip()
    full = DegradeConfig.from_conf(blocks_p=1, blocks_size=0.3, noise_p=1, noise_sigma=0.02, blur_p=1,
                         perspective_p=1, perspective_strength=0.1)
    out = degrade(video, np.random.default_rng(0), full)
    assert out.shape == video.shape and out.dtype == np.float32
    assert (out < 0.1).all(-1).any(), "blocks or warp borders are black (up to the noise)"
    assert not np.array_equal(out, video)
    again = degrade(video, np.random.default_rng(0), full)
    np.testing.assert_array_equal(out, again)


@pytest.mark.parametrize("kwargs, message", [
    ({"blocks_p": 1.5}, "degrade.blocks_p"),
    ({"noise_p": -0.1}, "degrade.noise_p"),
    ({"blur_sigma": -1}, "degrade.blur_sigma"),
    ({"blocks_count": 2.5}, "degrade.blocks_count"),
    ({"perspective_strength": 0.5}, "degrade.perspective_strength"),
    ({"noise_sigma": float("nan")}, "degrade.noise_sigma"),
])
def test_config_is_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DegradeConfig.from_conf(**kwargs)


def test_config_from_plain_mapping():
    cfg = DegradeConfig.from_conf(**{"blocks_p": 0.2, "blur_sigma": 2})
    assert cfg.blocks_p == 0.2 and cfg.blur_sigma == 2 and cfg.noise_p == conf_values("stage/train", "train.data.degrade")["noise_p"]


def test_remove_character_changes_only_the_inside():
    f, h, w = 3, 96, 128
    video = np.empty((f, h, w, 3), np.float32)
    video[:] = np.linspace(0.1, 0.5, w, dtype=np.float32)[None, None, :, None]
    masks = np.zeros((f, h, w), np.float32)
    masks[:, 30:70, 40:70] = 1
    masks[2] = 0  # an empty frame is kept as it is
    video[:, 30:70, 40:70] = (1.0, 0.0, 0.0)  # a red character
    out = remove_character(video, masks)
    outside = masks < 0.5
    np.testing.assert_array_equal(out[outside], video[outside])
    inside = out[0, 30:70, 40:70]
    assert np.abs(inside - video[0, 30:70, 40:70]).mean() > 0.3
    assert abs(float(inside[..., 0].mean()) - 0.3) < 0.1, "filled from the gradient around"
    assert inside[..., 1].mean() > 0.05
    np.testing.assert_array_equal(out[2], video[2])


def test_remove_character_is_fast():
    import time

    video = clip(f=49, h=512, w=512)
    masks = np.zeros(video.shape[:3], np.float32)
    masks[:, 100:400, 180:330] = 1
    start = time.perf_counter()
    remove_character(video, masks)
    assert time.perf_counter() - start < 4.0


def test_character_boxes_cover_the_mask():
    masks = np.zeros((3, 50, 60), np.float32)
    masks[0, 10:20, 30:40] = 1
    masks[0, 25, 35] = 1
    masks[1, 0:5, 55:60] = 1
    boxes = character_boxes(masks, margin=0.1)
    assert boxes.dtype == np.float32 and boxes.shape == masks.shape
    assert (boxes[masks > 0] == 1).all()
    # frame 0: rows 10..25 (16 high), cols 30..39 (10 wide), grown by 1.6 and 1 px
    expect = np.zeros((50, 60), np.float32)
    expect[8:28, 29:41] = 1
    np.testing.assert_array_equal(boxes[0], expect)
    assert boxes[1, 0:6, 54:60].all() and boxes[1].sum() == 6 * 6
    assert boxes[2].sum() == 0
    np.testing.assert_array_equal(character_boxes(masks, 0.0)[1], masks[1])
