"""Holes, depth alignment, new-pixel selection and view choice for warp-and-inpaint."""

from dataclasses import replace

import numpy as np

from dreamdance.scene.warp import (
    align_depth,
    depth_edges,
    diffuse,
    find_holes,
    fit_scale_shift,
    lazy_next_view,
    new_pixels,
    next_view,
)


def test_find_holes_drops_specks_and_grows():
    alpha = np.ones((40, 40), np.float32)
    alpha[5, 5] = 0.0               # a one-pixel speck
    alpha[20:30, 10:20] = 0.1       # a real hole
    holes = find_holes(alpha, threshold=0.5, min_area=4, grow=1)
    assert not holes[5, 5]
    assert holes[20:30, 10:20].all() and holes[19, 15] and holes[30, 9]
    assert holes.sum() == 12 * 12
    assert not find_holes(alpha, grow=0)[19, 15]


def test_fit_scale_shift_recovers_affine_map():
    rng = np.random.default_rng(0)
    pred = rng.uniform(1, 5, (30, 30))
    target = 2.5 * pred + 0.7
    known = rng.random((30, 30)) > 0.3
    target[~known] = 1e6  # unknown pixels must not matter
    a, b = fit_scale_shift(pred, target, known)
    assert abs(a - 2.5) < 1e-9 and abs(b - 0.7) < 1e-9
    a, b = fit_scale_shift(pred, -pred, known)  # negative fit: falls back to median ratio
    assert a < 0 or b == 0.0


def test_diffuse_fills_a_linear_ramp_smoothly():
    y, x = np.mgrid[0:50, 0:50].astype(np.float32)
    ramp = 1 + 0.02 * x
    known = np.ones_like(ramp, bool)
    known[15:35, 15:35] = False
    filled = diffuse(ramp, known)
    np.testing.assert_array_equal(filled[known], ramp[known])
    assert np.abs(filled - ramp).max() < 0.05  # span of the ramp over the hole is 0.4


def test_align_depth_meets_the_known_surface():
    y, x = np.mgrid[0:60, 0:60].astype(np.float32)
    true = 4 + 0.01 * x                      # the field's surface, metric
    pred = (true - 1.0) / 3.0                # an estimate off by scale and shift
    pred[:, 40:] += 0.05                     # and with a local error near the hole
    known = np.ones_like(true, bool)
    known[20:40, 30:50] = False
    aligned = align_depth(pred, np.where(known, true, 0), known)
    np.testing.assert_array_equal(aligned[known], true[known])
    border = aligned[20:40, 30]              # hole column next to the known surface
    assert np.abs(border - true[20:40, 30]).max() < 0.05
    assert np.abs(aligned[~known] - true[~known]).max() < 0.2
    assert (align_depth(pred, true, np.zeros_like(known)) > 0).all()  # nothing known


def test_depth_edges_and_new_pixels():
    depth = np.full((20, 20), 2.0, np.float32)
    depth[:, 10:] = 6.0
    edges = depth_edges(depth, ratio=0.1)
    assert edges[:, 9:11].all() and not edges[:, :8].any() and not edges[:, 12:].any()
    holes = np.ones_like(edges)
    chosen = new_pixels(holes, depth, 0.1)
    assert chosen.sum() == 20 * 18 and not chosen[:, 9:11].any()
    # a slanted plane (a ground plane seen at a grazing angle) has no edges
    v = np.arange(40, dtype=np.float32)[:, None]
    ground = np.repeat(30.0 / (v + 5.0), 30, axis=1)  # 1/z affine in the row
    assert (ground.max() / ground.min()) > 5 and not depth_edges(ground, 0.08).any()


def test_next_view_order_and_stop():
    ratios = np.array([0.1, 0.5, 0.3, 0.001])
    assert next_view(ratios, set()) == 1
    assert next_view(ratios, {1}) == 2
    assert next_view(ratios, {0, 1, 2}) is None  # only a covered view left
    assert next_view(ratios, {0, 1, 2, 3}) is None


def test_lazy_next_view_refreshes_only_what_it_must():
    true = np.array([0.05, 0.3, 0.2, 0.01])
    stale = np.array([0.6, 0.5, 0.25, 0.02])  # upper bounds of the true ratios
    calls = []

    def refresh(i):
        calls.append(i)
        return true[i]

    assert lazy_next_view(stale, set(), refresh) == 1
    assert calls == [0, 1]  # 2 and 3 were never re-rendered: their bounds lost to 1's value
    assert lazy_next_view(stale, {1}, refresh) == 2
    assert lazy_next_view(np.array([0.001, 0.5]), {1}, refresh) is None


def test_in_front_of_a_stored_view():
    """A stored view at the origin sees a wall at z = 4 on its left half and a near card at
    z = 2 on its right half; points are judged against the surface they project onto."""
    from dreamdance.scene.warp import in_front

    K = np.array([[20.0, 0, 16], [0, 20.0, 16], [0, 0, 1]])
    depth = np.full((32, 32), 4.0)
    depth[:, 16:] = 2.0
    seen = np.ones((32, 32), bool)
    points = np.array([
        [-1.0, 0.0, 3.0],   # left, in front of the wall: blocked
        [-1.0, 0.0, 3.9],   # left, within the 5 % margin of the wall: kept
        [1.0, 0.0, 3.0],    # right, behind the card: kept
        [1.0, 0.0, 1.5],    # right, in front of the card: blocked
        [30.0, 0.0, 3.0],   # outside the view: kept
        [0.0, 0.0, -1.0],   # behind the camera: kept
    ])
    got = in_front(points, depth, seen, np.eye(4), K, 0.05)
    assert got.tolist() == [True, False, False, True, False, False]
    # a moved stored view: the same points seen from 1 m to the left of the origin
    w2c = np.eye(4)
    w2c[0, 3] = 1.0  # camera at x = -1
    shifted = points - np.array([-1.0, 0.0, 0.0])  # where they were relative to that camera
    assert in_front(points, depth, seen, w2c, K, 0.05).tolist() == in_front(
        shifted, depth, seen, np.eye(4), K, 0.05).tolist()
    # pixels whose depth does not hold judge nothing
    assert not in_front(points, depth, np.zeros_like(seen), np.eye(4), K, 0.05).any()


def test_keep_behind_drops_only_the_gaussians_in_front_of_another_view():
    from dreamdance.scene.world import keep_behind, reference_view

    K = np.array([[20.0, 0, 8], [0, 20.0, 8], [0, 0, 1]])
    ref = reference_view(np.zeros((16, 16, 3), np.float32), np.full((16, 16), 4.0), K)
    depth = np.full((16, 16), 4.0)
    depth[:, :4] = 2.0  # a strip of the new view's holes took a near depth
    new = np.zeros((16, 16), bool)
    new[:, :8] = True
    view = replace(ref, depth=depth, new=new, added=int(new.sum()))
    kept = keep_behind(view, [ref], 0.05)
    assert kept.added == 64 and kept.new[:, 4:8].all() and not kept.new[:, :4].any()
    assert keep_behind(view, [], 0.05) is view
