"""model=wan_animate: a tiny random Wan-Animate pipeline, saved as a diffusers folder and loaded
by the same code a user's folder goes through, in both modes, for frame counts not 4k + 1."""

import numpy as np
import pytest
from runner import refused, run

from dreamdance.animate.wan import pad_frames, valid_frames
from dreamdance.animate.wan_tiny import tiny_wan_animate
from dreamdance.media import read_video

pytestmark = pytest.mark.usefixtures("one_thread")

SCENE = ["resolution=64", "stage.build_resolution=32", "stage.build.reference_steps=5",
         "stage.build.view_steps=2", "stage.spiral.candidates=4", "stage.spiral.views=1",
         "stage.custom.views=1"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tiny_wan_animate(tmp_path_factory.mktemp("wan") / "Wan2.2-Animate-tiny")


def model(weights, *more):
    return ["model=wan_animate", f"weights.wan_animate={weights}", "model.steps=2",
            "model.segment_frames=5", "model.dtype=fp32", "device=cpu", *more]


def test_valid_frames_and_padding():
    assert [valid_frames(n) for n in (1, 2, 5, 6, 9, 10)] == [1, 5, 5, 9, 9, 13]
    video = np.arange(3)[:, None]
    np.testing.assert_array_equal(pad_frames(video, 5)[:, 0], [0, 1, 2, 2, 2])


@pytest.mark.parametrize("frames", [6, 11])
def test_replace_mode_writes_exactly_the_frames(weights, tmp_path, frames):
    out = tmp_path / "run"
    run("stage=scene", f"out={out}", f"frames={frames}", *SCENE)
    run("stage=animate", f"out={out}", f"frames={frames}", "resolution=64", *model(weights))
    video = read_video(out / "animate/animation.mp4").frames
    assert video.shape == (frames, 64, 64, 3)


def test_animate_mode_needs_no_scene(weights, tmp_path):
    out = tmp_path / "run"
    run("stage=animate", f"out={out}", "frames=7", "resolution=64",
        *model(weights, "model.mode=animate"))
    assert read_video(out / "animate/animation.mp4").frames.shape == (7, 64, 64, 3)
    assert not (out / "scene").exists()


def test_bad_settings_and_folders(weights, tmp_path):
    out = f"out={tmp_path / 'run'}"
    assert "weights.wan_animate: not set" in refused("stage=animate", out,
                                                     "model=wan_animate")
    assert "model_index.json not found" in refused("stage=animate", out, "model=wan_animate",
                                                   f"weights.wan_animate={tmp_path}")
    for key, value in (("mode", "dance"), ("offload", "disk"), ("segment_frames", "8"),
                       ("prev_frames", "2")):
        assert f"model.{key}={value}" in refused("stage=animate", out,
                                                 *model(weights, f"model.{key}={value}"))
    assert not (tmp_path / "run").exists()
