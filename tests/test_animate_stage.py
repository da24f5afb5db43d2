"""stage=animate: the seam every backend goes through, on a fresh run directory, and the
preview backend (the layout check)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from runner import refused, run

from dreamdance.animate.compose import alpha_box, composite_preview, paste_matrix
from dreamdance.media import load_image, read_video
from dreamdance.motion.poses import PARTS, PoseSequence

RUN = ["frames=5", "resolution=128", "stage.build_resolution=64",
       "stage.build.reference_steps=10", "stage.build.view_steps=3",
       "stage.spiral.candidates=8", "stage.spiral.views=1", "stage.custom.views=1"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "dreamdance.run", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_paste_matrix_maps_box_onto_box():
    M = paste_matrix((10, 20, 30, 60), (100, 50, 120, 130))  # height 40 -> 80
    feet = M @ np.array([20, 60, 1.0])
    top = M @ np.array([20, 20, 1.0])
    np.testing.assert_allclose(feet, [110, 130])
    np.testing.assert_allclose(top, [110, 50])


def test_composite_follows_the_pose_box():
    h = w = 64
    character = np.zeros((h, w, 4), np.float32)
    character[10:50, 20:40] = [1, 0, 0, 1]  # a red figure, box (20, 10, 40, 50)
    body = np.zeros((2, 1, 18, 3), np.float32)
    body[:, 0, 0] = [30, 20, 1]   # nose
    body[:, 0, 10] = [30, 40, 1]  # ankle
    body[1, 0, :, 0] += 15        # frame 1: moved right by 15 px
    arrays = {k: np.zeros((2, 1, n, 3), np.float32) for k, n in PARTS.items()}
    arrays["body"] = body
    poses = PoseSequence(**arrays, width=w, height=h, fps=8)
    out = composite_preview(character, np.zeros((2, h, w, 3), np.float32), poses,
                            np.zeros((2, h, w), bool))
    for t in range(2):
        red = out[t, ..., 0] > 0.5
        x0, y0, x1, y1 = alpha_box(red.astype(np.float32))
        assert abs((x0 + x1) / 2 - (30 + 15 * t)) <= 1  # centred on the pose
        assert y1 == pytest.approx(41, abs=1)            # feet on the pose's box bottom


@pytest.mark.slow
def test_animate_preview_end_to_end(tmp_path):
    out = tmp_path / "run"
    early = cli("stage=animate", f"out={out}")  # the command line's exit code and one line
    assert early.returncode == 2 and "run stage=scene with the same out= first" in early.stderr
    assert len(early.stderr.strip().splitlines()) == 1
    run("stage=scene", f"out={out}", *RUN)  # then animate alone: the motion steps run first
    run("stage=animate", f"out={out}", "model=preview", *RUN[:2])
    assert (out / "motion/poses_aligned.json").is_file()
    video = read_video(out / "animate/animation.mp4")
    assert video.frames.shape == (5, 128, 128, 3)
    sheet = load_image(out / "animate/preview.png").rgb
    assert sheet.shape[0] > 100 and sheet.std() > 0.05  # a contact sheet, not a blank
    run("stage=animate", f"out={out}", "force=true", *RUN[:2])  # the default: model=puppet
    puppet = read_video(out / "animate/animation.mp4").frames.astype(float)
    assert puppet.shape == (5, 128, 128, 3) and (out / "animate/rig.png").is_file()
    masks = read_video(out / "animate/mask.mp4").frames[..., 0] > 127
    moved = np.abs(puppet[1:] - puppet[:1])[masks[1:] | masks[:1]].mean()
    assert moved > 10  # the figure changes where the dance goes, frame to frame
    run("stage=animate", f"out={out}", "model=tiny", "force=true", *RUN[:2])
    noise = read_video(out / "animate/animation.mp4")
    assert noise.frames.shape == (5, 128, 128, 3)
    assert np.abs(noise.frames.astype(float) - video.frames).mean() > 5  # not the preview
    assert "weights.cogvideox: not set" in refused("stage=animate", f"out={out}",
                                                   "model=cogvideox", *RUN[:2])
    run("stage=motion", f"out={out}", "frames=6", "resolution=128")
    assert "frame counts disagree" in refused("stage=animate", f"out={out}", "frames=6",
                                              "resolution=128", "model=preview")


STAND_IN = '''
import pathlib

import numpy as np

from dreamdance.animate.backend import AnimateOutput


class Negative:
    """The background in negative, red where the mask is, and a picture of its own."""

    def __init__(self, name, strength, report):
        self.name, self.strength, self.report = name, strength, report

    def __call__(self, inputs):
        frames = 1 - inputs.background * self.strength
        frames[inputs.masks] = [1.0, 0.0, 0.0]
        seen = dict(frames=inputs.num_frames, size=inputs.size, own=inputs.character_pose
                    is not None, fps=inputs.fps, seed=inputs.seed, device=inputs.device,
                    keys=sorted(inputs.pose_videos), driving=inputs.driving is None)
        pathlib.Path(self.report).write_text(repr(seen))
        return AnimateOutput(frames.astype(np.float32), {"extra": np.zeros((8, 8, 3), np.uint8)})
'''


@pytest.mark.slow
def test_a_new_backend_is_one_file_and_one_yaml(tmp_path):
    """A backend defined outside the package runs through stage=animate unchanged."""
    code, conf = tmp_path / "code", tmp_path / "conf" / "model"
    code.mkdir()
    conf.mkdir(parents=True)
    report = tmp_path / "seen.txt"
    (code / "standin_backend.py").write_text(STAND_IN)
    (conf / "negative.yaml").write_text(f"_target_: standin_backend.Negative\nname: negative\n"
                                        f"strength: 1.0\nreport: {report}\n")
    out = tmp_path / "run"
    run("stage=scene", f"out={out}", *RUN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get(
        "PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "dreamdance.run", "stage=animate", f"out={out}",
                        f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "model=negative",
                        "device=cpu", *RUN[:2]], capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert eval(report.read_text()) == dict(frames=5, size=(128, 128), own=True, fps=8.0, seed=0,
                                            device="cpu", keys=["body", "face", "hand"],
                                            driving=True)
    video = read_video(out / "animate/animation.mp4").frames.astype(float)
    background = read_video(out / "scene/background.mp4").frames.astype(float)
    masks = read_video(out / "animate/mask.mp4").frames[..., 0] > 127
    assert np.median(np.abs(video - (255 - background))[~masks]) < 8  # this backend's frames
    assert np.median(video[masks][:, 0]) > 200  # red where the mask is
    assert (out / "animate/extra.png").is_file() and (out / "animate/preview.png").is_file()
