"""Temporal clean-up: gap filling, the One-Euro filter, and sanitising outside input."""

import logging
import math

import numpy as np
import pytest

from dreamdance.errors import InputError
from dreamdance.motion.poses import PARTS, PoseSequence
from dreamdance.motion.smooth import fill_gaps, one_euro, sanitize


def track(x, y, conf, fps=8.0, width=640, height=480):
    """A sequence whose body keypoint 0 of person 0 follows x, y, conf (length T)."""
    t = len(x)
    arrays = {part: np.zeros((t, 1, k, 3), np.float32) for part, k in PARTS.items()}
    arrays["body"][:, 0, 0] = np.stack([x, y, conf], -1)
    return PoseSequence(**arrays, width=width, height=height, fps=fps)


def linear(t=12):
    time = np.arange(t, dtype=np.float32)
    return 10 + 3 * time, 50 - 2 * time


def test_fill_gaps_fills_a_short_gap_exactly():
    x, y = linear()
    conf = np.full(12, 0.9, np.float32)
    conf[5] = 0.7
    conf[6:9] = 0.1  # a 3-frame gap between frames 5 and 9
    gapped = track(np.where(conf > 0.2, x, 0), np.where(conf > 0.2, y, 0), conf)
    out = fill_gaps(gapped, max_gap=4)
    np.testing.assert_allclose(out.body[:, 0, 0, 0], x, rtol=1e-6)
    np.testing.assert_allclose(out.body[:, 0, 0, 1], y, rtol=1e-6)
    np.testing.assert_allclose(out.body[6:9, 0, 0, 2], 0.7)  # the smaller end confidence
    np.testing.assert_allclose(gapped.body[6:9, 0, 0, 2], 0.1)  # input untouched
    assert not out.body[:, 0, 1:].any() and not out.face.any()  # absent throughout: unchanged


def test_fill_gaps_leaves_long_and_open_gaps():
    x, y = linear()
    conf = np.full(12, 0.9, np.float32)
    conf[3:9] = 0  # 6 frames
    conf[:1] = 0   # an open start
    gapped = track(np.where(conf > 0, x, 0), np.where(conf > 0, y, 0), conf)
    out = fill_gaps(gapped, max_gap=4)
    np.testing.assert_array_equal(out.body, gapped.body)
    np.testing.assert_allclose(fill_gaps(gapped, max_gap=6).body[3:9, 0, 0, 2], 0.9)


def test_one_euro_keeps_a_constant_signal_exactly():
    x = np.full(30, 123.456, np.float32)
    y = np.full(30, 7.89, np.float32)
    poses = track(x, y, np.ones(30, np.float32))
    out = one_euro(poses)
    np.testing.assert_array_equal(out.body, poses.body)


def test_one_euro_damps_jitter_of_a_still_point():
    # at 30 fps, min_cutoff 1 Hz: alpha ~ 0.17, an exponential smoother that passes ~9.5%
    # of white-noise variance; beta raises the cutoff a little, so ask for at least 5x less.
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 2.0, (2, 600)).astype(np.float32)
    poses = track(200 + noise[0], 100 + noise[1], np.ones(600, np.float32), fps=30)
    out = one_euro(poses, min_cutoff=1.0, beta=0.01)
    before = poses.body[50:, 0, 0, :2].var(0)
    after = out.body[50:, 0, 0, :2].var(0)
    assert (after < before / 5).all(), (before, after)


def test_one_euro_lags_a_ramp_by_a_bounded_amount():
    fps, v, min_cutoff, beta = 30.0, 90.0, 1.0, 0.01  # v pixels per second
    time = np.arange(150) / fps
    poses = track(v * time, np.full(150, 10.0), np.ones(150), fps=fps)
    out = one_euro(poses, min_cutoff=min_cutoff, beta=beta)
    lag = (poses.body[:, 0, 0, 0] - out.body[:, 0, 0, 0])[100:]
    # steady state: speed v raises the cutoff to min_cutoff + beta v; the lag is v / (2 pi fc)
    steady = v / (2 * math.pi * (min_cutoff + beta * v))
    np.testing.assert_allclose(lag, steady, rtol=0.02)
    assert (poses.body[:, 0, 0, 0] - out.body[:, 0, 0, 0] >= -1e-4).all()  # never leads
    assert lag.max() < v / (2 * math.pi * min_cutoff)  # below the slow-filter bound


def test_one_euro_restarts_after_a_gap():
    x = np.concatenate([np.full(10, 100.0), np.zeros(3), np.full(10, 300.0)])
    conf = np.concatenate([np.ones(10), np.zeros(3), np.ones(10)])
    poses = track(x, np.full(23, 5.0), conf)
    out = one_euro(poses)
    np.testing.assert_array_equal(out.body[10:13], poses.body[10:13])  # absent: unchanged
    np.testing.assert_allclose(out.body[13:, 0, 0, 0], 300.0)  # not pulled towards 100


def test_sanitize_counts_and_refusals(caplog):
    t = 4
    x = np.full(t, 100.0, np.float32)
    y = np.full(t, 100.0, np.float32)
    conf = np.ones(t, np.float32)
    conf[0] = np.nan            # NaN confidence: absent
    x[1] = -70                  # 70 px left of a 640 px frame: > 10% outside
    y[2] = 520                  # 40 px below a 480 px frame: within 10%, kept
    poses = track(x, y, conf)
    poses.left_hand[3, 0, 5] = (np.nan, np.nan, 0)  # absent with NaN coordinates: zeroed
    poses.face[2, 0, 7] = (700, 10, np.inf)         # infinite confidence: absent
    with caplog.at_level(logging.WARNING):
        out = sanitize(poses, "poses=dance.json")
    assert "poses=dance.json: 2 keypoints with a NaN or infinite confidence" in caplog.text
    assert "poses=dance.json: 1 keypoints more than 10% outside the 640x480 frame" in caplog.text
    assert out.body[0, 0, 0].tolist() == [0, 0, 0]
    assert out.body[1, 0, 0].tolist() == [-70, 100, 0]      # kept, flagged absent
    assert out.body[2, 0, 0].tolist() == [100, 520, 1]
    assert out.left_hand[3, 0, 5].tolist() == [0, 0, 0] and out.face[2, 0, 7].tolist() == [0] * 3
    assert np.isfinite(np.concatenate([getattr(out, p).ravel() for p in PARTS])).all()
    assert np.isnan(poses.body[0, 0, 0, 2])  # input untouched

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        clean = sanitize(track(x[2:], y[2:], np.ones(2, np.float32)), "p")
    assert caplog.text == "" and clean.body[:, 0, 0, 2].tolist() == [1, 1]

    poses.right_hand[3, 0, 2] = (np.nan, 4, 0.8)
    with pytest.raises(InputError, match=r"^poses=dance.json: frame 3 person 0 right_hand "
                                         r"keypoint 2: NaN or infinite coordinate"):
        sanitize(poses, "poses=dance.json")
