"""Common inputs: weights folders, image size limits, devices."""

import json

import numpy as np
import pytest

from dreamdance.errors import InputError
from dreamdance.inputs import limit_size, resolve_device
from dreamdance.media import LoadedImage
from dreamdance.weights import ModelSpec, require_dir

SPEC = ModelSpec("weights.depthpro", "Apple DepthPro", "apple/DepthPro-hf", accept=("depth_pro",))


def test_require_dir_accepts_the_right_model(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "depth_pro"}))
    assert require_dir(tmp_path, SPEC) == tmp_path


@pytest.mark.parametrize("setup, message", [
    ("unset", "not set"),
    ("missing", "no such folder"),
    ("empty", "config.json not found"),
    ("other", "holds llava, not Apple DepthPro"),
    ("broken", "not valid JSON"),
])
def test_require_dir_refuses(tmp_path, setup, message):
    folder = tmp_path / "w"
    if setup != "missing":
        folder.mkdir()
    if setup == "other":
        (folder / "config.json").write_text(json.dumps({"model_type": "llava"}))
    if setup == "broken":
        (folder / "config.json").write_text("{")
    with pytest.raises(InputError, match=message) as e:
        require_dir(None if setup == "unset" else folder, SPEC)
    assert str(e.value).startswith("weights.depthpro")
    assert "huggingface-cli download apple/DepthPro-hf" in str(e.value)


def test_limit_size():
    small = LoadedImage(np.zeros((63, 200, 3), np.float32), None)
    with pytest.raises(InputError, match="too small"):
        limit_size(small, "image=x.png")
    ok = LoadedImage(np.zeros((64, 64, 3), np.float32), None)
    assert limit_size(ok, "image") is ok
    huge = LoadedImage(np.ones((100, 9000, 3), np.float32), np.ones((100, 9000), np.float32))
    out = limit_size(huge, "image")
    assert out.rgb.shape == (91, 8192, 3) and out.alpha.shape == (91, 8192)


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device=cuda"):
            resolve_device("cuda")
