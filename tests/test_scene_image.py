"""A character in a scene of the user's choice (scene_image=): the world is built from that
image, the art's cut-out is placed into it, and every camera drives it."""

import json

import numpy as np
import pytest
from runner import refused, run
from test_scene import SMALL, psnr

from dreamdance import assets
from dreamdance.camera import PRESETS
from dreamdance.media import fit_size, load_image, read_video, resize
from dreamdance.motion.align import pose_box, pose_frame
from dreamdance.motion.poses import read_poses

SCENE = assets.sample_path(assets.SCENE)


@pytest.fixture(scope="module")
def placed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("scene_image")
    args = [f"scene_image={SCENE}", "motion.character_height=0.5", f"out={out}"]
    run("stage=scene", *args, *SMALL)
    run("stage=animate", *args, *SMALL[:2])  # frames, resolution
    return out, [*args, *SMALL]


def test_the_world_is_built_from_the_scene_image(placed_run):
    out, _ = placed_run
    scene = load_image(SCENE).rgb
    width, height = fit_size((scene.shape[1], scene.shape[0]), 128)
    plate = load_image(out / "scene/background.png").rgb
    assert plate.shape == (height, width, 3)
    # nothing cut out of the scene: the plate is the image itself
    assert psnr(plate, resize(scene, (width, height))) >= 40
    assert read_video(out / "scene/background.mp4").frames.shape == (5, height, width, 3)
    assert read_video(out / "animate/animation.mp4").frames.shape == (5, height, width, 3)


def test_the_character_is_placed_at_the_chosen_height(placed_run):
    out, _ = placed_run
    cut = load_image(out / "scene/character.png")
    height, width = cut.alpha.shape
    placement = json.loads((out / "motion/placement.json").read_text())
    assert placement["target"] == [width, height]
    # its own pose, placed with it, is 0.5 of the frame tall and stands on the cut-out's feet
    own = read_poses(out / "motion/character_pose.json")
    box = pose_box(pose_frame(own, 0))
    assert abs((box[3] - box[1]) / height - 0.5) < 0.01
    rows = np.flatnonzero((cut.alpha >= 0.5).any(1))
    assert abs(rows[-1] + 1 - box[3]) <= 0.05 * height
    # and the dance is aligned onto it (box mode: the first frame's box is the character's)
    aligned = read_poses(out / "motion/poses_aligned.json")
    first = pose_box(pose_frame(aligned, 0))
    assert (aligned.width, aligned.height) == (width, height)
    assert abs(first[3] - box[3]) < 0.5 and abs((first[3] - first[1]) - (box[3] - box[1])) < 0.5


@pytest.mark.parametrize("camera", [*PRESETS, "file"])
def test_every_camera_drives_the_new_scene(placed_run, camera, tmp_path):
    out, args = placed_run
    spec = assets.sample_path(assets.CAMERA) if camera == "file" else camera
    run("stage=scene", *args, f"camera={spec}", "frames=3")
    video = read_video(out / "scene/background.mp4").frames
    assert len(video) == 3
    coverage = json.loads((out / "scene/coverage.json").read_text())["uncovered_fraction"]
    assert max(coverage) <= 0.05, coverage


def test_scene_image_refusals(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    out = tmp_path / "run"
    message = refused("stage=scene", f"scene_image={broken}", f"out={out}", *SMALL)
    assert message.startswith(f"scene_image={broken}:"), message
    message = refused("stage=scene", f"scene_image={tmp_path / 'nowhere.png'}", f"out={out}")
    assert message == f"scene_image={tmp_path / 'nowhere.png'}: file not found"
    message = refused("stage=motion", f"scene_image={SCENE}", "motion.character_height=3",
                      f"out={out}")
    assert message.startswith("motion.character_height=3:"), message
    assert not out.exists()
