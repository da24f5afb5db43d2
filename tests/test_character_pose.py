"""The art's own pose (the puppet's rest pose): given, the sample's, or found by the pose
backend on the art when its weights are given; written as motion/character_pose.json."""

import sys

import numpy as np
from runner import run

from dreamdance import assets
from dreamdance.media import load_image, save_image
from dreamdance.motion.poses import read_poses

POSE_BACKEND = '''
import numpy as np

from dreamdance import assets
from dreamdance.motion.poses import read_poses


class SamplePose:
    """A pose backend that finds the sample figure's own pose on any picture of it."""

    def __init__(self, found=True):
        self.found = found

    def __call__(self, frames, fps=8.0, progress=True):
        own = read_poses(assets.sample_path(assets.ART_POSE))
        h, w = frames.shape[1:3]
        scale = np.array([w / own.width, h / own.height, 1], np.float32)
        parts = {p: np.repeat(getattr(own, p) * scale, len(frames), 0)
                 for p in ("body", "face", "left_hand", "right_hand")}
        if not self.found:
            parts = {p: a[:, :0] for p, a in parts.items()}
        return type(own)(**parts, width=w, height=h, fps=fps)
'''
FAST = ["frames=5", "resolution=128", "camera=static"]


def user_art(tmp_path):
    """The sample art as a user's own file (so the sample's pose file is not used)."""
    path = tmp_path / "art.png"
    save_image(path, load_image(assets.sample_path(assets.ART)).rgb)
    return path


def test_the_pose_backend_finds_the_arts_own_pose(tmp_path, monkeypatch):
    (tmp_path / "code").mkdir()
    (tmp_path / "code/sample_pose_backend.py").write_text(POSE_BACKEND)
    conf = tmp_path / "conf/pose"
    conf.mkdir(parents=True)
    (conf / "sample.yaml").write_text("_target_: sample_pose_backend.SamplePose\nfound: true\n")
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    search = f"hydra.searchpath=[file://{tmp_path / 'conf'}]"
    out = tmp_path / "found"
    run("stage=motion", f"out={out}", f"image={user_art(tmp_path)}", search, "pose=sample", *FAST)
    own = read_poses(out / "motion/character_pose.json")
    sample = read_poses(assets.sample_path(assets.ART_POSE))
    assert (own.width, own.height) == (128, 128)
    np.testing.assert_allclose(own.body[0, 0, :, :2], sample.body[0, 0, :, :2] / 4, atol=0.01)  # the file keeps 2 decimals

    out = tmp_path / "none"  # a backend that sees nobody: no rest pose, the mask places it
    run("stage=motion", f"out={out}", f"image={user_art(tmp_path)}", search, "pose=sample",
        "pose.found=false", "motion.align=none", *FAST)
    assert not (out / "motion/character_pose.json").exists()
    sys.modules.pop("sample_pose_backend", None)


def test_no_weights_no_detection_and_the_sample_ships_its_pose(tmp_path):
    out = tmp_path / "user"
    run("stage=motion", f"out={out}", f"image={user_art(tmp_path)}", "motion.align=none", *FAST)
    assert not (out / "motion/character_pose.json").exists()  # dwpose without its weights
    out = tmp_path / "sample"
    run("stage=motion", f"out={out}", *FAST)
    own = read_poses(out / "motion/character_pose.json")
    sample = read_poses(assets.sample_path(assets.ART_POSE))
    np.testing.assert_allclose(own.body[0, 0, :, :2], sample.body[0, 0, :, :2] / 4, atol=0.01)  # the file keeps 2 decimals
