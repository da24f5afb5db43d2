"""The bundled sample: present in the package, small, and exactly what the generator draws."""

import json

import numpy as np

from dreamdance import assets
from dreamdance.media import load_image
from dreamdance.motion.poses import read_poses
from dreamdance.trajectory import read_trajectory
from tools.make_sample import make_sample

FILES = (assets.ART, assets.ART_MASK, assets.ART_POSE, assets.DANCE, assets.CAMERA)


def test_committed_assets_match_the_generator(tmp_path):
    make_sample(tmp_path)
    for name in (assets.ART, assets.ART_MASK):
        a = load_image(assets.sample_path(name)).rgb
        b = load_image(tmp_path / name).rgb
        np.testing.assert_array_equal(a, b, err_msg=name)
    for name in (assets.ART_POSE, assets.DANCE, assets.CAMERA):
        assert json.loads(assets.sample_path(name).read_text()) == json.loads(
            (tmp_path / name).read_text()), name


def test_sample_is_small_and_consistent():
    assert sum(assets.sample_path(n).stat().st_size for n in FILES) < 2 * 1024**2
    art = load_image(assets.sample_path(assets.ART))
    mask = load_image(assets.sample_path(assets.ART_MASK)).rgb[..., 0]
    assert art.rgb.shape == (512, 512, 3) and art.alpha is None
    assert 0.05 < (mask > 0.5).mean() < 0.4  # a figure, not the whole frame
    own = read_poses(assets.sample_path(assets.ART_POSE))
    xy = own.body[0, 0, :, :2].round().astype(int)
    assert (mask[xy[:, 1], xy[:, 0]] > 0.5).mean() > 0.8  # the figure's keypoints lie on it
    dance = read_poses(assets.sample_path(assets.DANCE))
    cams = read_trajectory(assets.sample_path(assets.CAMERA), 512, 512, np.eye(3))
    assert len(dance) == len(cams) == 49 and dance.fps == 8
    moving = np.ptp(dance.body[:, 0, 4, :2], axis=0)  # the right wrist moves
    assert (moving > 20).all()
