"""The bundled sample: present in the package, small, and exactly what the generator draws."""

import json

import numpy as np
import pytest

from dreamdance import assets
from dreamdance.camera.files import read_trajectory
from dreamdance.media import load_image
from dreamdance.motion.poses import read_poses
from tools.make_sample import make_sample

FILES = (assets.ART, assets.ART_MASK, assets.ART_POSE, assets.DANCE, assets.CAMERA, assets.SCENE)
# What "the same sample" means for the generator's floats: keypoints to a thousandth of a pixel,
# camera matrices and intrinsics to 1e-9 (both are rounded by float maths that may change by an
# ulp between numpy or OpenCV releases). Pixels of the drawn art are bytes we write: exact.
TOLERANCE = {assets.ART_POSE: 1e-3, assets.DANCE: 1e-3, assets.CAMERA: 1e-9}


def assert_same_json(a, b, atol: float, where: str = "") -> None:
    """``a == b`` with numbers compared to ``atol`` (ints and bools exactly, by type)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_json(a[k], b[k], atol, f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_json(x, y, atol, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert type(a) is type(b) and abs(a - b) <= atol, (where, a, b)
    else:
        assert a == b, (where, a, b)


def test_assert_same_json_can_fail():
    assert_same_json({"a": [1.0, 2]}, {"a": [1.0 + 1e-12, 2]}, 1e-9)
    for other in ({"a": [1.1, 2]}, {"a": [1.0, 3]}, {"a": [1.0]}, {"b": [1.0, 2]},
                  {"a": [1, 2]}):
        with pytest.raises(AssertionError):
            assert_same_json({"a": [1.0, 2]}, other, 1e-9)


def test_committed_assets_match_the_generator(tmp_path):
    make_sample(tmp_path)
    for name in (assets.ART, assets.ART_MASK, assets.SCENE):
        a = load_image(assets.sample_path(name)).rgb
        b = load_image(tmp_path / name).rgb
        np.testing.assert_array_equal(a, b, err_msg=name)
    for name, atol in TOLERANCE.items():
        assert_same_json(json.loads(assets.sample_path(name).read_text()),
                         json.loads((tmp_path / name).read_text()), atol, name)


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
