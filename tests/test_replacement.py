"""Character replacement (scene.source=driving): the dancer painted out of the driving video,
the character painted in along the dancer's poses."""

import cv2
import numpy as np
import pytest
from runner import refused, run
from test_removal import PERSON, T, driving_video, standing_pose

from dreamdance.media import read_video
from dreamdance.motion.align import pose_box, pose_frame
from dreamdance.motion.poses import PARTS, PoseSequence, read_poses, write_poses
from tools.bench_removal import per_frame_inpaint, psnr


def write_driving(folder, frames: np.ndarray, with_person: bool = True) -> tuple:
    """The frames as a PNG folder (lossless) and the walker's poses beside it."""
    folder.mkdir()
    for t, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{t:03d}.png"), frame[..., ::-1])
    h, w = frames.shape[1:3]
    people = [standing_pose(12 + 6.9 * t, 50.0) for t in range(len(frames))]
    poses = PoseSequence(**{part: np.stack([[p[part]] for p in people]) for part in PARTS},
                         width=w, height=h, fps=8.0)
    if not with_person:
        poses = PoseSequence(**{part: np.zeros_like(getattr(poses, part)) for part in PARTS},
                             width=w, height=h, fps=8.0)
    path = folder.parent / f"{folder.name}.json"
    write_poses(path, poses)
    return folder, path


@pytest.fixture(scope="module")
def replaced(tmp_path_factory):
    """One replacement run (scene, then animate with the puppet) on a panning walk."""
    tmp = tmp_path_factory.mktemp("replace")
    frames, background, person = driving_video(pan=1)
    folder, poses = write_driving(tmp / "walk", frames)
    out = tmp / "run"
    args = ["scene.source=driving", f"driving={folder}", f"poses={poses}", f"frames={T}",
            "resolution=128", f"out={out}"]
    run("stage=scene", *args)
    run("stage=animate", *args)
    return out, frames, background, person, poses


def test_the_dancer_is_painted_out_from_other_frames(replaced):
    out, frames, background, person, _ = replaced
    removed = read_video(out / "scene/removed.mp4").frames
    masks = read_video(out / "scene/person_mask.mp4").frames[..., 0] > 127
    assert removed.shape == frames.shape and masks.shape == person.shape
    assert (masks & person).sum() >= 0.98 * person.sum()  # the dancer is covered
    ours = psnr(removed[person], background[person])
    alone = psnr(per_frame_inpaint(frames, masks)[person], background[person])
    assert alone <= 20.0, alone
    assert ours >= 30.0, (ours, alone)
    assert read_video(out / "scene/background.mp4").frames.shape == frames.shape
    summary = (out / "scene/removal.json").read_text()
    assert '"from_frames"' in summary
    assert (out / "scene/preview.png").is_file() and (out / "scene/character.png").is_file()


def test_the_character_takes_the_dancers_place(replaced):
    out, frames, background, person, poses = replaced
    aligned = read_poses(out / "motion/poses_aligned.json")
    dancer = read_poses(poses)
    assert (aligned.width, aligned.height) == (frames.shape[2], frames.shape[1])
    np.testing.assert_allclose(pose_box(pose_frame(aligned, 5)), pose_box(pose_frame(dancer, 5)),
                               atol=0.05)
    # the character's cut-out stands on the dancer's first-frame feet, as tall as the dancer
    from dreamdance.media import load_image

    alpha = load_image(out / "scene/character.png").alpha >= 0.5
    rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
    box = pose_box(pose_frame(dancer, 0))
    assert abs(rows[-1] + 1 - box[3]) <= 6 and abs((cols[0] + cols[-1]) / 2 - 12) <= 8


def test_no_frame_shows_the_dancer_outside_the_new_mask(replaced):
    out, frames, background, person, _ = replaced
    animation = read_video(out / "animate/animation.mp4").frames
    assert animation.shape == frames.shape
    new_mask = ((read_video(out / "animate/mask.mp4").frames[..., 0] > 127)
                | (read_video(out / "scene/person_mask.mp4").frames[..., 0] > 127))

    def dancer_pixels(video):
        return np.linalg.norm(video.astype(np.float32) - PERSON, axis=-1) < 60

    assert dancer_pixels(frames)[person].mean() > 0.99  # the check sees the dancer
    assert not (dancer_pixels(animation) & ~new_mask).any()
    # outside the mask: the person-free video, through two H.264 encodes of a noisy texture
    outside = ~new_mask
    removed = read_video(out / "scene/removed.mp4").frames
    assert psnr(animation[outside], removed[outside]) >= 30.0
    assert psnr(animation[outside], background[outside]) >= 27.0


def test_refusals(tmp_path):
    frames, _, _ = driving_video(pan=0)
    folder, poses = write_driving(tmp_path / "walk", frames[:4])
    empty_folder, nobody = write_driving(tmp_path / "empty", frames[:4], with_person=False)
    out = tmp_path / "run"
    common = ["stage=scene", "frames=4", "resolution=128", f"out={out}"]
    message = refused(*common, "scene.source=driving", f"driving={empty_folder}",
                      f"poses={nobody}")
    assert message.startswith(f"driving={empty_folder}: no person to replace"), message
    message = refused(*common, "scene.source=driving", f"driving={folder}", f"poses={poses}",
                      f"scene_image={tmp_path / 'walk/000.png'}")
    assert "cannot be used with scene.source=driving" in message
    message = refused(*common, "scene.source=driving")
    assert message.startswith("scene.source=driving: needs driving="), message
    message = refused(*common, "scene.source=driving", f"driving={folder}", f"poses={poses}",
                      "camera=orbit")
    assert message.startswith("camera=orbit:"), message
    assert not out.exists()


def test_the_seam_masks_the_removed_dancer(replaced):
    out, frames, *_ = replaced
    from dreamdance.animate.backend import read_inputs

    art = np.full((64, 64, 3), 0.5, np.float32)
    plain = read_inputs(out, art, fps=8, seed=0, device="cpu")
    removed = read_inputs(out, art, fps=8, seed=0, device="cpu", removed=True)
    person = read_video(out / "scene/person_mask.mp4").frames[..., 0] > 127
    np.testing.assert_array_equal(removed.masks, plain.masks | person)
    assert (removed.masks & ~plain.masks).any()  # the dancer's region was not masked before


def test_wan_animate_replaces_the_dancer_unchanged(replaced, tmp_path):
    """model=wan_animate (a tiny random pipeline) in its replace mode on the same run."""
    import shutil

    from dreamdance.animate.wan_tiny import tiny_wan_animate

    out, frames, *_ = replaced
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    weights = tiny_wan_animate(tmp_path / "wan")
    run("stage=animate", "scene.source=driving", f"driving={out.parent / 'walk'}",
        f"poses={out.parent / 'walk.json'}", f"frames={T}", "resolution=128", f"out={copy}",
        "model=wan_animate", f"weights.wan_animate={weights}", "model.steps=1",
        "model.segment_frames=17", "model.dtype=fp32", "device=cpu")
    assert read_video(copy / "animate/animation.mp4").frames.shape == frames.shape
