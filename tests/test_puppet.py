"""The puppet animator: the rest pose gives back the art, joints land on the driver's, no
triangle turns over, an arm raised across the body leaves the torso alone (and would not
without the cut), the mesh covers the art, bad input is refused, and the fast paths agree with
their dense references."""

import cv2
import igl
import numpy as np
import pytest

from dreamdance import assets
from dreamdance.media import load_image
from dreamdance.motion.align import CharacterFrame, align_poses
from dreamdance.motion.poses import PARTS, PoseSequence, read_poses
from dreamdance.puppet import (
    animate,
    build_rig,
    deform,
    deform_points,
    draw_frame,
    draw_order,
    frame_transforms,
    rig_preview,
)
from dreamdance.puppet import rig as rig_module
from dreamdance.puppet.deform import skin
from dreamdance.puppet.mesh import rasterize, signed_areas
from dreamdance.puppet.skeleton import LEFT, RIGHT, confident

# ------------------------------------------------------------------------------------------
# The bundled sample: art.png cut by art_mask.png, rigged on art_pose.json, danced by dance.json


@pytest.fixture(scope="module")
def sample():
    art = load_image(assets.sample_path(assets.ART)).rgb
    mask = load_image(assets.sample_path(assets.ART_MASK))
    alpha = mask.alpha if mask.alpha is not None else mask.rgb[..., 0]
    character = np.concatenate([art, alpha[..., None]], -1).astype(np.float32)   # [H, W, 4]
    own = read_poses(assets.sample_path(assets.ART_POSE))
    rig = build_rig(character, own.body[0, 0], own.face[0, 0])
    dance = align_poses(read_poses(assets.sample_path(assets.DANCE)),
                        CharacterFrame.from_pose(own), "limbs")
    return character, rig, dance


def composite(character, background):
    """The cut-out over a background, straight alpha.  [H, W, 4], [H, W, 3] -> [H, W, 3]"""
    return character[..., :3] * character[..., 3:] + (1 - character[..., 3:]) * background


def test_rest_pose_gives_back_the_cut_out(sample):
    character, rig, _ = sample
    transforms = frame_transforms(rig, rig.rest, rig.rest_face)                 # [B, 2, 3]
    np.testing.assert_allclose(transforms, np.broadcast_to(np.eye(2, 3), transforms.shape),
                               atol=1e-9)
    background = np.random.default_rng(0).random(character.shape[:2] + (3,)).astype(np.float32)
    out = draw_frame(character, rig, deform(rig, transforms), draw_order(rig, rig.rest),
                     background)
    assert out.shape == background.shape and out.dtype == np.float32
    figure = character[..., 3] > 0.5
    mse = np.mean((out[figure] - composite(character, background)[figure]) ** 2)
    assert 10 * np.log10(1.0 / max(mse, 1e-20)) >= 40.0
    np.testing.assert_allclose(out[~figure & (character[..., 3] == 0)],
                               background[~figure & (character[..., 3] == 0)])


def test_warped_joints_land_on_the_drivers_joints(sample):
    _, rig, dance = sample
    errors = []
    for t in range(len(dance)):
        body, face = dance.body[t, 0], dance.face[t, 0]
        ok = confident(rig.rest) & confident(body)
        moved = deform_points(rig, frame_transforms(rig, body, face), rig.rest[ok, :2])
        errors.append(np.linalg.norm(moved - body[ok, :2], axis=1))
    errors = np.concatenate(errors)
    assert len(errors) >= 49 * 14
    assert errors.mean() <= 2.0, errors.mean()


def test_no_triangle_turns_over_and_areas_keep(sample):
    _, rig, dance = sample
    assert len(igl.flipped_triangles(rig.vertices, rig.triangles)) == 0
    rest_area = signed_areas(rig.vertices, rig.triangles)
    changes = []
    for t in range(len(dance)):
        posed = deform(rig, frame_transforms(rig, dance.body[t, 0], dance.face[t, 0]))
        assert len(igl.flipped_triangles(posed, rig.triangles)) == 0, t
        changes.append(np.abs(signed_areas(posed, rig.triangles) / rest_area - 1))
    assert np.median(np.concatenate(changes)) <= 0.10


def test_mesh_covers_the_alpha(sample):
    character, rig, _ = sample
    ys, xs = np.nonzero(character[..., 3] > 0.05)
    squared, _, _ = igl.point_mesh_squared_distance(np.stack([xs, ys], 1).astype(np.float64),
                                                    rig.vertices, rig.triangles)
    assert squared.max() <= 1e-12
    assert 1000 <= len(rig.triangles) <= 4000
    np.testing.assert_allclose(rig.weights.sum(1), 1.0, atol=1e-9)
    assert rig.weights.min() >= 0.0


def test_rig_preview_shows_the_rig(sample):
    character, rig, _ = sample
    preview = rig_preview(character, rig)
    assert preview.shape == character.shape[:2] + (3,) and preview.dtype == np.uint8
    art = np.round(composite(character, np.full(3, 0.5)) * 255)
    assert np.abs(preview.astype(float) - art).mean() > 10


# ------------------------------------------------------------------------------------------
# A synthetic figure: a checked torso, a head, arms and legs as capsules of distinct colours;
# the right arm (image left) hangs against the torso's side.

SIZE = 256
TORSO = (98, 70, 158, 150)     # x0, y0, x1, y1: the torso rectangle
ARM, LEG = 7, 8                # capsule radii
GREEN = np.array([0.1, 0.8, 0.2])
JOINTS = {0: (128, 52), 1: (128, 70), 2: (91, 76), 3: (91, 108), 4: (91, 138), 5: (165, 76),
          6: (165, 108), 7: (165, 138), 8: (113, 150), 9: (113, 185), 10: (113, 220),
          11: (143, 150), 12: (143, 185), 13: (143, 220), 14: (122, 46), 15: (134, 46),
          16: (112, 50), 17: (144, 50)}


def capsule(a, b, radius):
    """Pixels within ``radius`` of the segment a-b.  -> [SIZE, SIZE] bool"""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    p = np.stack([xx, yy], -1).astype(float)
    a, b = np.asarray(a, float)[:2], np.asarray(b, float)[:2]
    t = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
    return np.linalg.norm(p - (a + t[..., None] * (b - a)), axis=-1) <= radius


def synthetic_figure():
    """-> character [SIZE, SIZE, 4], rest body [18, 3], torso pixels [SIZE, SIZE]"""
    body = np.array([(*JOINTS[i], 1.0) for i in range(18)])
    rgba = np.zeros((SIZE, SIZE, 4), np.float32)
    parts = [(capsule(JOINTS[8], JOINTS[10], LEG), (0.6, 0.2, 0.7)),
             (capsule(JOINTS[11], JOINTS[13], LEG), (0.2, 0.7, 0.8)),
             (capsule(JOINTS[2], JOINTS[4], ARM), GREEN),
             (capsule(JOINTS[5], JOINTS[7], ARM), (0.2, 0.3, 0.9))]
    for mask, colour in parts:
        rgba[mask] = (*colour, 1.0)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    x0, y0, x1, y1 = TORSO
    torso = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
    checks = ((xx // 4 + yy // 4) % 2 == 1)[..., None]       # a pattern shows any dragging
    rgba[..., :3] = np.where(torso[..., None] & checks, (0.9, 0.3, 0.2), rgba[..., :3])
    rgba[..., :3] = np.where(torso[..., None] & ~checks, (0.95, 0.6, 0.1), rgba[..., :3])
    rgba[torso, 3] = 1.0
    rgba[(xx - 128) ** 2 + (yy - 48) ** 2 <= 20 ** 2] = (0.95, 0.85, 0.3, 1.0)
    return rgba, body, torso


def arm_raised_across(body):
    """The right arm raised across the chest: shoulder fixed, elbow and wrist moved."""
    target = body.copy()
    elbow = target[2, :2] + 32 * np.array([np.cos(np.radians(15)), np.sin(np.radians(15))])
    target[3, :2] = elbow
    target[4, :2] = elbow + 30 * np.array([np.cos(np.radians(-50)), np.sin(np.radians(-50))])
    return target


def raise_the_arm(character, rest, rig):
    """-> the frame [SIZE, SIZE, 3], the cut-out at rest on the same background, the target"""
    background = np.ones((SIZE, SIZE, 3), np.float32)
    target = arm_raised_across(rest)
    frame = draw_frame(character, rig, deform(rig, frame_transforms(rig, target)),
                       draw_order(rig, target), background)
    return frame, composite(character, background), target


def torso_kept(frame, still, torso, rest, target):
    """Fraction of the torso's pixels away from the arm (at rest and raised, grown by the arm's
    radius) whose colour did not change."""
    arm = (capsule(rest[2], rest[4], ARM) | capsule(target[2], target[3], ARM)
           | capsule(target[3], target[4], ARM))
    near_arm = cv2.dilate(arm.astype(np.uint8), np.ones((2 * ARM + 1,) * 2, np.uint8)) > 0
    away = torso & ~near_arm
    assert away.sum() > 2000
    return (np.abs(frame - still).max(-1) <= 3 / 255)[away].mean()


def test_arm_raised_across_the_body_leaves_the_torso_and_stays_whole():
    character, rest, torso = synthetic_figure()
    rig = build_rig(character, rest)
    frame, still, target = raise_the_arm(character, rest, rig)
    assert torso_kept(frame, still, torso, rest, target) >= 0.99
    green = np.abs(frame - GREEN).max(-1) < 0.1                             # the moved arm
    green_rest = np.abs(still - GREEN).max(-1) < 0.1
    count, _, stats, _ = cv2.connectedComponentsWithStats(green.astype(np.uint8), connectivity=8)
    assert count - 1 == 1, stats[1:, cv2.CC_STAT_AREA]                      # one piece
    assert abs(green.sum() / green_rest.sum() - 1) <= 0.15
    raised = capsule(target[2], target[3], ARM) | capsule(target[3], target[4], ARM)
    assert green[raised].mean() >= 0.75 and (green & ~raised).sum() <= 0.02 * green.sum()


def test_without_the_cut_the_arm_drags_the_torso(monkeypatch):
    """The check above can fail: the same figure rigged without cutting the mesh."""
    character, rest, torso = synthetic_figure()
    monkeypatch.setattr(rig_module, "joined", lambda a, *_: np.ones(len(a), dtype=bool))
    rig = build_rig(character, rest)
    frame, still, target = raise_the_arm(character, rest, rig)
    assert torso_kept(frame, still, torso, rest, target) < 0.95


def test_draw_order_puts_the_far_side_behind():
    _, rest, _ = synthetic_figure()
    rig = build_rig(*synthetic_figure()[:2])
    assert draw_order(rig, rest) == [[6, 7, 8, 9], [0], [1], [2, 3, 4, 5]]
    turned = rest.copy()                    # facing image-left: the right side goes back
    turned[[2, 5], 0] = (120, 136)
    turned[0, 0] = 100
    layers = draw_order(rig, turned)
    assert layers[0] == list(RIGHT) and layers[-1] == [p for p in (2, 3, 4, 5) if p in LEFT]
    assert sorted(p for layer in layers for p in layer) == list(range(10))


def test_animate_draws_every_frame():
    character, rest, _ = synthetic_figure()
    body = np.stack([rest, arm_raised_across(rest)])[:, None].astype(np.float32)  # [2, 1, 18, 3]
    poses = PoseSequence(body=body, **{part: np.zeros((2, 1, k, 3), np.float32)
                                       for part, k in PARTS.items() if part != "body"},
                         width=SIZE, height=SIZE, fps=8.0)
    background = np.full((2, SIZE, SIZE, 3), 0.25, np.float32)
    frames = animate(character, rest, None, poses, background, progress=False)
    assert frames.shape == background.shape and frames.dtype == np.float32
    np.testing.assert_allclose(frames[0], composite(character, background[0]), atol=1e-5)
    assert np.abs(frames[1] - frames[0]).max() > 0.5
    with pytest.raises(ValueError, match="frames"):
        animate(character, rest, None, poses, background[:1], progress=False)


def test_bad_input_is_refused_clearly():
    character, rest, _ = synthetic_figure()
    with pytest.raises(ValueError, match="alpha is empty"):
        build_rig(np.zeros_like(character), rest)
    no_neck = rest.copy()
    no_neck[1, 2] = 0.0
    with pytest.raises(ValueError, match="neck"):
        build_rig(character, no_neck)
    no_hips = rest.copy()
    no_hips[[8, 11], 2] = 0.0
    with pytest.raises(ValueError, match="hip"):
        build_rig(character, no_hips)
    with pytest.raises(ValueError, match="RGBA"):
        build_rig(character[..., :3], rest)
    with pytest.raises(ValueError, match=r"\[18, 3\]"):
        build_rig(character, rest[:17])


# ------------------------------------------------------------------------------------------
# Fast paths against their references


def test_skin_matches_each_bone_and_blends_rotations_about_a_joint():
    rng = np.random.default_rng(0)
    points = rng.uniform(-20, 20, (50, 2))
    pivots = rng.uniform(-5, 5, (3, 2))
    transforms = rng.normal(size=(3, 2, 3)) + np.eye(2, 3)
    for b in range(3):  # one bone: exactly its affine map
        one_hot = np.eye(3)[np.full(50, b)]
        expected = points @ transforms[b, :, :2].T + transforms[b, :, 2]
        np.testing.assert_allclose(skin(points, one_hot, transforms, pivots), expected,
                                   atol=1e-9)
    same = np.repeat(transforms[:1], 3, 0)  # all bones alike: linear blend skinning's answer
    weights = rng.dirichlet(np.ones(3), 50)
    np.testing.assert_allclose(skin(points, weights, same, pivots),
                               points @ same[0, :, :2].T + same[0, :, 2], atol=1e-9)
    centre = np.array([3.0, -2.0])          # rotations about one joint blend to a rotation
    angles = np.radians([0.0, 150.0, 60.0])
    rotations = np.stack([np.concatenate([[[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]],
                                          np.zeros((2, 1))], 1) for a in angles])
    rotations[:, :, 2] = centre - np.einsum("bij,j->bi", rotations[:, :, :2], centre)
    moved = skin(points, weights, rotations, pivots)
    np.testing.assert_allclose(np.linalg.norm(moved - centre, axis=1),
                               np.linalg.norm(points - centre, axis=1), atol=1e-9)


def test_rasterize_matches_a_dense_point_in_triangle_test():
    rng = np.random.default_rng(1)
    vertices = rng.uniform(-4, 36, (30, 2))
    triangles = rng.integers(0, 30, (40, 3))
    triangles = triangles[np.abs(signed_areas(vertices, triangles)) > 1e-3]
    ids = rasterize(vertices, triangles, (28, 32))
    yy, xx = np.mgrid[:28, :32]
    p = np.stack([xx.ravel(), yy.ravel()], 1).astype(float)                 # [P, 2]
    expected = np.full(len(p), -1)
    for t, tri in enumerate(triangles):     # dense: every pixel against every triangle
        a, b, c = vertices[tri]
        area = signed_areas(vertices, triangles[t:t + 1])[0]
        sides = [((q - o)[0] * (p - o)[:, 1] - (q - o)[1] * (p - o)[:, 0]) * np.sign(area)
                 for o, q in ((a, b), (b, c), (c, a))]
        expected[np.all(np.stack(sides) >= -1e-9, 0)] = t
    np.testing.assert_array_equal(ids.ravel(), expected)
