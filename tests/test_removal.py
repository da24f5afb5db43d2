"""Painting the person out: the hidden background comes back from other frames, exactly."""

import cv2
import numpy as np
import pytest

from dreamdance.motion.poses import PARTS, PoseSequence
from dreamdance.scene.removal import fill_background, person_masks
from tools.bench_removal import per_frame_inpaint, psnr

H, W, T = 96, 128, 16
PERSON = (230, 20, 200)  # magenta, unlike the background


def texture(width: int, seed: int = 0) -> np.ndarray:
    """A background inpainting cannot guess: gradient + stripes + checks + fine noise.

    Returns:
        [H, width, 3] uint8
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:width].astype(np.float32)
    base = np.stack([60 + 0.6 * x, 90 + 0.8 * y, 140 - 0.3 * x + 0.4 * y], -1)
    stripes = 35 * np.sin(2 * np.pi * (x + 0.5 * y) / 7.0)[..., None]
    checks = 30 * (((x // 5) + (y // 5)) % 2 - 0.5)[..., None]
    noise = cv2.GaussianBlur(rng.normal(0, 40, (H, width, 3)).astype(np.float32), (0, 0), 0.8)
    return np.clip(base + stripes + checks + noise, 0, 255).astype(np.uint8)


def person_region(cx: float, cy: float = 50.0) -> np.ndarray:
    """A 20 × 40 px filled ellipse centred at (cx, cy).  Returns [H, W] bool."""
    canvas = np.zeros((H, W), np.uint8)
    cv2.ellipse(canvas, (int(round(cx)), int(round(cy))), (10, 20), 0, 0, 360, 1, -1)
    return canvas.astype(bool)


def driving_video(pan: int, static: np.ndarray | None = None):
    """Frames with a person walking right while the camera pans ``pan`` px per frame.

    Returns:
        (frames [T, H, W, 3], background [T, H, W, 3], person [T, H, W] bool)
    """
    scene = texture(W + pan * T + 1)
    background = np.stack([scene[:, pan * t:pan * t + W] for t in range(T)])
    person = np.stack([person_region(12 + 6.9 * t) for t in range(T)])
    if static is not None:
        person |= static[None]
    frames = background.copy()
    frames[person] = PERSON
    return frames, background, person


def dilated(masks: np.ndarray, r: int = 2) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel).astype(bool) for m in masks])


@pytest.mark.parametrize("pan", [1, 0])
def test_fill_background_restores_the_hidden_background(pan):
    frames, background, person = driving_video(pan)
    masks = dilated(person)
    filled, source = fill_background(frames, masks, window=8)
    assert filled.shape == frames.shape and filled.dtype == np.uint8
    assert source.shape == masks.shape and source.dtype == np.uint8
    # outside the masks: unchanged, bit for bit, and marked kept
    np.testing.assert_array_equal(filled[~masks], frames[~masks])
    assert (source[~masks] == 0).all()
    # inside: the true background, far better than inpainting each frame alone
    ours = psnr(filled[masks], background[masks])
    alone = psnr(per_frame_inpaint(frames, masks)[masks], background[masks])
    assert alone <= 20.0, alone
    assert ours >= 30.0, (ours, alone)
    # the walk uncovers everything except what the first/last frames' person hides at the
    # image border while panning: nearly all masked pixels come from other frames
    assert (source[masks] == 1).mean() >= 0.95
    assert set(np.unique(source[masks])) <= {1, 2}


def test_always_covered_region_is_inpainted():
    static = np.zeros((H, W), bool)
    static[70:86, 56:72] = True  # something that never moves on a static camera
    frames, background, person = driving_video(pan=0, static=static)
    masks = dilated(person)
    hidden = dilated(static[None])[0]
    filled, source = fill_background(frames, masks, window=6)
    assert (source[:, hidden] == 2).all()
    walked = masks & ~hidden[None]
    assert (source[walked] == 1).mean() >= 0.95
    assert psnr(filled[walked], background[walked]) >= 30.0
    np.testing.assert_array_equal(filled[~masks], frames[~masks])


def test_fill_background_without_masks_is_identity():
    frames, _, _ = driving_video(pan=1)
    filled, source = fill_background(frames, np.zeros(frames.shape[:3], bool))
    np.testing.assert_array_equal(filled, frames)
    assert not source.any()


def standing_pose(cx: float, cy: float) -> dict[str, np.ndarray]:
    """COCO-18 body keypoints on the person_region(cx, cy) ellipse (20 × 40 px)."""
    pose = {part: np.zeros((k, 3), np.float32) for part, k in PARTS.items()}
    body = {0: (0, -15), 1: (0, -10), 2: (-5, -9), 3: (-6, -3), 4: (-6, 2), 5: (5, -9),
            6: (6, -3), 7: (6, 2), 8: (-3, 2), 9: (-3, 9), 10: (-3, 16), 11: (3, 2),
            12: (3, 9), 13: (3, 16), 14: (-2, -16), 15: (2, -16)}
    for k, (dx, dy) in body.items():
        pose["body"][k] = (cx + dx, cy + dy, 0.9)
    return pose


def test_person_masks_cover_the_person():
    frames, _, _ = driving_video(pan=0)
    frames = frames[:2].copy()
    frames[1] = texture(W)  # frame 1: no one
    truth = person_region(12.0)
    empty = {part: np.zeros((k, 3), np.float32) for part, k in PARTS.items()}
    people = [[standing_pose(12.0, 50.0), empty], [empty, empty]]  # two slots, one person
    poses = PoseSequence(**{part: np.stack([[p[part] for p in f] for f in people])
                            for part in PARTS}, width=W, height=H, fps=8.0)
    masks = person_masks(frames, poses)
    assert masks.shape == (2, H, W) and masks.dtype == bool
    cover = (masks[0] & truth).sum() / truth.sum()
    assert cover >= 0.9, cover
    assert masks[0].sum() <= 3 * truth.sum(), masks[0].sum() / truth.sum()
    assert not masks[1].any()
    # no dilation: GrabCut alone hugs the person (tighter, still covering)
    tight = person_masks(frames, poses, dilate=0.0)[0]
    assert tight.sum() < masks[0].sum()
    assert (tight & truth).sum() / truth.sum() >= 0.8


def test_person_masks_by_birefnet_on_the_box_crop(tmp_path):
    """person=segmenter with segmenter=birefnet: BiRefNet (a tiny one that keeps red pixels)
    sees the crop of the person's box; its mask lands back in the frame."""
    from runner import config
    from test_segment import write_birefnet

    from dreamdance.inputs import build
    from dreamdance.scene.removal import CropPerson

    folder = write_birefnet(tmp_path / "birefnet", quirks=True)
    person = build(config("stage=scene", "person=segmenter", "segmenter=birefnet",
                          f"weights.birefnet={folder}", "segmenter.trust_remote_code=true",
                          "segmenter.resolution=64", "device=cpu").person)
    assert isinstance(person, CropPerson)
    frames = np.zeros((1, H, W, 3), np.uint8)
    frames[..., 2] = 120  # blue ground: the tiny BiRefNet keeps only red > 0.5
    truth = person_region(40.0)
    frames[0][truth] = PERSON
    frames[0, 5:15, 100:120] = PERSON  # a red thing outside the person's box stays out
    poses = PoseSequence(**{part: v[None, None] for part, v in standing_pose(40.0, 50.0).items()},
                         width=W, height=H, fps=8.0)
    masks = person_masks(frames, poses, dilate=0.0, segment=person)
    assert (masks[0] & truth).sum() / truth.sum() >= 0.95
    assert not masks[0, 5:15, 100:120].any()
    assert masks[0].sum() <= 1.3 * truth.sum()


def test_bad_arguments_are_the_callers_bug_not_bad_input():
    """The stage checks scene.removal.* as user input; the library's own arguments are a
    contract: ValueError with a traceback, not a one-line InputError."""
    from dreamdance.errors import InputError

    frames, _, _ = driving_video(pan=0)
    masks = np.zeros(frames.shape[:3], bool)
    poses = PoseSequence(**{part: np.zeros((T, 0, k, 3), np.float32) for part, k in PARTS.items()},
                         width=W, height=H, fps=8.0)
    for call in (lambda: fill_background(frames, masks, window=-1),
                 lambda: person_masks(frames, poses, dilate=-1.0)):
        with pytest.raises(ValueError) as e:
            call()
        assert not isinstance(e.value, InputError)
