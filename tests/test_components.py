"""model=cogvideox loads its components from local folders through the same code as real
weights; here the folders hold tiny random models saved in the test."""

import numpy as np
import pytest
import torch

from dreamdance.animate.components import cogvideox_components, save_tiny_weights
from dreamdance.animate.pipeline import DreamDancePipeline
from dreamdance.errors import InputError


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return save_tiny_weights(tmp_path_factory.mktemp("weights"), "1.0")


def test_loads_and_runs_from_local_folders(folders):
    base, clip = folders
    parts = cogvideox_components(str(base), None, str(clip), "fp32")
    assert parts["transformer"].config.in_channels == 48  # widened from the base's 32
    assert parts["transformer"].config.clip_embed_dim == 32  # the CLIP width
    pipe = DreamDancePipeline(**parts)
    pipe.set_progress_bar_config(disable=True)
    f, h, w = 5, 32, 32
    rng = np.random.default_rng(0)
    character = np.concatenate([rng.random((h, w, 3)), np.ones((h, w, 1))], -1)
    out = pipe(character=character.astype(np.float32),
               background_video=rng.random((f, h, w, 3)).astype(np.float32),
               mask_video=np.ones((f, h, w), np.float32),
               pose_videos={k: np.zeros((f, h, w, 3), np.float32) for k in ("body", "face", "hand")},
               num_inference_steps=1, guidance_scale=1.0,
               generator=torch.Generator().manual_seed(0))
    assert np.asarray(out.frames).shape == (1, f, h, w, 3)


def test_refuses_missing_or_wrong_folders(folders, tmp_path):
    base, clip = folders
    with pytest.raises(InputError, match="weights.cogvideox: not set"):
        cogvideox_components(None, None, str(clip))
    with pytest.raises(InputError, match="weights.clip"):
        cogvideox_components(str(base), None, str(base))  # a pipeline folder is not CLIP
    with pytest.raises(InputError, match="model.transformer"):
        cogvideox_components(str(base), str(tmp_path), str(clip))
    with pytest.raises(InputError, match="model.dtype"):
        cogvideox_components(str(base), None, str(clip), "int8")


def test_animate_benchmark_reports_ratios():
    from tools.bench_animate import per_step, pipeline_overhead

    step = per_step(repeats=1, layers=1, heads=2, head_dim=16, frames=3, size=8)
    assert step["config"]["layers"] == 1 and step["config"]["head_dim"] == 16
    assert step["ratio"] == pytest.approx(step["ours_s"] / step["base_s"])
    pipe = pipeline_overhead(repeats=1, steps=1, frames=5, size=64)  # the base's grid
    assert (pipe["frames"], pipe["size"], pipe["steps"]) == (5, 64, 1)
    for guidance in ("guidance_1", "guidance_6"):
        g = pipe[guidance]
        assert g["ratio"] == pytest.approx(g["ours_s"] / g["baseline_s"]), guidance
