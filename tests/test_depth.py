"""Depth estimators: DepthPro (tiny random model saved and reloaded), the priors, unprojection."""

import ast
import importlib.util
import json
import logging
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from runner import config

from dreamdance.errors import InputError
from dreamdance.scene.depth import (
    DepthProEstimator,
    DepthResult,
    PlaneDepth,
    RampDepth,
    depthpro_postprocess,
    depthpro_preprocessing,
    unproject,
)
from dreamdance.scene.popup import PopupDepth

CONF = Path(__file__).resolve().parents[1] / "conf" / "depth"
FOV = 60.0  # the tiny model's field-of-view head is set to predict exactly this


def tiny_depthpro(folder: Path, use_fov_model: bool = True) -> Path:
    """A randomly initialised DepthPro small enough for a CPU forward pass in ~0.1 s."""
    from transformers import DepthProConfig, DepthProForDepthEstimation

    dinov2 = dict(model_type="dinov2", hidden_size=16, num_hidden_layers=2,
                  num_attention_heads=2, intermediate_size=32, patch_size=8, image_size=32)
    config = DepthProConfig(
        patch_size=32, fusion_hidden_size=16, intermediate_hook_ids=[1, 0],
        intermediate_feature_dims=[8, 8], scaled_images_feature_dims=[8, 8, 8],
        use_fov_model=use_fov_model, num_fov_head_layers=1,
        image_model_config=dict(dinov2), patch_model_config=dict(dinov2),
        fov_model_config=dict(dinov2))
    torch.manual_seed(0)
    model = DepthProForDepthEstimation(config).eval()
    with torch.no_grad():
        if use_fov_model:  # a constant field of view, whatever the image
            last = model.fov_model.head.layers[-1]
            last.weight.zero_()
            last.bias.fill_(FOV)
        # a positive, non-degenerate inverse depth from the random head
        model.head.layers[-2].bias.fill_(0.5)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def depthpro_dir(tmp_path_factory):
    return tiny_depthpro(tmp_path_factory.mktemp("depthpro"))


@pytest.fixture(scope="module")
def depthpro(depthpro_dir):
    return DepthProEstimator(depthpro_dir, device="cpu")


def rgb_image(h=40, w=56, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# DepthPro
# ---------------------------------------------------------------------------------------------


def test_depthpro_metric_depth_and_focal(depthpro):
    out = depthpro(rgb_image(40, 56))
    assert isinstance(out, DepthResult)
    assert out.depth.shape == (40, 56) and out.depth.dtype == np.float32
    assert np.isfinite(out.depth).all() and (out.depth > 0).all()
    assert out.depth.std() > 0
    assert out.focal == pytest.approx(0.5 * 56 / math.tan(math.radians(FOV / 2)), rel=1e-6)


def test_depthpro_loads_lazily_and_checks_the_folder_first(depthpro_dir, tmp_path):
    est = DepthProEstimator(depthpro_dir, device="cpu")
    assert est._model is None
    with pytest.raises(InputError, match="weights.depthpro"):
        DepthProEstimator(tmp_path / "missing", device="cpu")
    with pytest.raises(InputError, match="weights.depthpro: not set"):
        DepthProEstimator(None, device="cpu")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "dinov2"}))
    with pytest.raises(InputError, match="not Apple DepthPro"):
        DepthProEstimator(other, device="cpu")
    with pytest.raises(InputError, match="depth.dtype=float64"):
        DepthProEstimator(depthpro_dir, device="cpu", dtype="float64")


def test_depthpro_input_follows_the_image_processor(depthpro):
    x = depthpro.pixel_values(np.ones((30, 20, 3), np.float32))
    # patch_size 32 / min(scaled_images_ratios) 0.25
    assert x.shape == (1, 3, 128, 128)
    torch.testing.assert_close(x, torch.ones_like(x))  # (1 - 0.5) / 0.5
    img = rgb_image(64, 64)
    x = depthpro.pixel_values(img)
    expected = torch.nn.functional.interpolate(
        (torch.from_numpy(img).permute(2, 0, 1)[None] - 0.5) / 0.5, size=(128, 128),
        mode="bilinear", align_corners=False)
    torch.testing.assert_close(x, expected)


def test_depthpro_default_input_size_is_1536():
    from transformers import DepthProConfig

    assert depthpro_preprocessing(DepthProConfig()).size == (1536, 1536)


def test_depthpro_preprocessor_config_overrides(depthpro_dir, tmp_path):
    from transformers import DepthProConfig

    config = DepthProConfig.from_pretrained(depthpro_dir)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"height": 96, "width": 64}, "image_mean": [0.1, 0.2, 0.3],
         "image_std": 0.25}))
    pre = depthpro_preprocessing(config, tmp_path)
    assert pre.size == (96, 64) and pre.mean == (0.1, 0.2, 0.3) and pre.std == (0.25,) * 3
    (tmp_path / "preprocessor_config.json").write_text("{oops")
    with pytest.raises(InputError, match="preprocessor_config.json"):
        depthpro_preprocessing(config, tmp_path)


def test_depthpro_without_fov_head_is_relative(tmp_path, caplog):
    est = DepthProEstimator(tiny_depthpro(tmp_path, use_fov_model=False), device="cpu")
    with caplog.at_level(logging.WARNING, logger="dreamdance.scene.depth"):
        out = est(rgb_image(24, 32))
    assert out.focal is None
    assert out.depth.shape == (24, 32) and (out.depth > 0).all()
    assert "not metric" in caplog.text


def _transformers_post_process():
    """``DepthProImageProcessor.post_process_depth_estimation``, taken from the installed
    transformers source: its module imports torchvision, which is not a dependency, but the
    function itself only needs torch."""
    from transformers.image_utils import PILImageResampling
    from transformers.utils import TensorType

    spec = importlib.util.find_spec("transformers.models.depth_pro")
    source = Path(spec.submodule_search_locations[0]) / "image_processing_depth_pro.py"
    tree = ast.parse(source.read_text())
    node = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                 and n.name == "post_process_depth_estimation"), None)
    if node is None:
        pytest.skip("this transformers has no DepthProImageProcessor.post_process_depth_estimation")
    namespace = {"torch": torch, "TensorType": TensorType,
                 "pil_torch_interpolation_mapping": {
                     PILImageResampling.BILINEAR: SimpleNamespace(value="bilinear")}}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(source), "exec"), namespace)
    processor = SimpleNamespace(resample=PILImageResampling.BILINEAR)
    return lambda outputs, sizes: namespace["post_process_depth_estimation"](
        processor, outputs, target_sizes=sizes)


@pytest.mark.parametrize("fov", [FOV, 37.5, None])
def test_depthpro_postprocess_matches_transformers(fov):
    reference = _transformers_post_process()
    g = torch.Generator().manual_seed(1)
    predicted = torch.rand(1, 48, 48, generator=g) * 3 + 0.05
    field_of_view = None if fov is None else torch.tensor([fov])
    ref = reference(SimpleNamespace(predicted_depth=predicted, field_of_view=field_of_view),
                    [(30, 70)])[0]
    depth, focal = depthpro_postprocess(
        predicted[0], None if fov is None else field_of_view[0], 30, 70)
    torch.testing.assert_close(depth, ref["predicted_depth"], rtol=1e-6, atol=0)
    if fov is None:
        assert focal is None and ref["focal_length"] is None
    else:
        assert focal == pytest.approx(float(ref["focal_length"]), rel=1e-7)


def test_depthpro_postprocess_formula():
    # constant canonical inverse depth c: depth = 1 / (c W / focal) = focal / (c W)
    w, h, fov, c = 80, 50, 50.0, 0.4
    depth, focal = depthpro_postprocess(torch.full((16, 16), c), torch.tensor(fov), h, w)
    expected_focal = 0.5 * w / math.tan(math.radians(fov) / 2)
    assert focal == pytest.approx(expected_focal, rel=1e-6)
    torch.testing.assert_close(depth, torch.full((h, w), expected_focal / (c * w)))
    with pytest.raises(RuntimeError, match="field of view"):
        depthpro_postprocess(torch.full((4, 4), c), torch.tensor(190.0), h, w)


# ---------------------------------------------------------------------------------------------
# Priors
# ---------------------------------------------------------------------------------------------


def test_plane_depth():
    out = PlaneDepth(3.5)(rgb_image(10, 12))
    assert out.focal is None and out.depth.dtype == np.float32
    np.testing.assert_array_equal(out.depth, np.full((10, 12), 3.5, np.float32))
    for bad in (0, -1.0, float("nan"), "4"):
        with pytest.raises(InputError, match="depth.distance"):
            PlaneDepth(bad)


def intrinsics(w, h, fov=55.0):
    f = 0.5 * w / math.tan(math.radians(fov) / 2)
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])


@pytest.mark.parametrize("fov", [40.0, 90.0])
def test_ramp_depth_ground_is_a_plane(fov):
    h, w, near, far, horizon = 60, 80, 2.0, 30.0, 0.45
    out = RampDepth(near, far, horizon)(rgb_image(h, w))
    depth = out.depth
    assert out.focal is None and depth.shape == (h, w) and depth.dtype == np.float32
    assert depth[-1, 0] == pytest.approx(near)
    assert (np.diff(depth, axis=0) <= 0).all()  # non-increasing downwards
    assert (depth[: int(horizon * h)] == far).all()  # backdrop above the horizon
    ground = depth < far
    assert ground[-1].all() and ground.sum() > 10 * w
    # any K unprojects the ground rows to one plane: fit n . X = 1 by least squares
    K = intrinsics(w, h, fov)
    pts = unproject(depth.astype(np.float64), K)[ground]  # [M, 3]
    n, *_ = np.linalg.lstsq(pts, np.ones(len(pts)), rcond=None)
    residual = np.abs(pts @ n - 1.0) / np.linalg.norm(n)  # point-to-plane distance, metres
    assert residual.max() < 1e-5 * far
    assert abs(n[0]) < 1e-6 * np.linalg.norm(n)  # no roll: the plane's normal has no x part
    # the plane is the documented one: f_y y + (c_y - v_h) z = C
    C = near * (h - 0.5 - horizon * h)
    np.testing.assert_allclose(K[1, 1] * pts[:, 1] + (K[1, 2] - horizon * h) * pts[:, 2], C,
                               rtol=1e-5)


def test_ramp_depth_edge_cases_and_validation():
    assert (RampDepth(2.0, 8.0, 0.0).rows(1) == 2.0).all()  # one row below the horizon
    assert (RampDepth(2.0, 8.0, 0.9).rows(1) == 8.0).all()  # no ground visible
    np.testing.assert_array_equal(RampDepth(3.0, 3.0, 0.5).rows(9), np.full(9, 3.0, np.float32))
    with pytest.raises(InputError, match="depth.far"):
        RampDepth(near=5.0, far=2.0)
    with pytest.raises(InputError, match="depth.near"):
        RampDepth(near=0.0)
    for bad in (1.0, -0.1, None):
        with pytest.raises(InputError, match="depth.horizon"):
            RampDepth(horizon=bad)
    with pytest.raises(ValueError, match="rgb"):
        RampDepth()(np.zeros((4, 4)))


# ---------------------------------------------------------------------------------------------
# Unprojection
# ---------------------------------------------------------------------------------------------


def test_unproject_projects_back_to_pixel_centres():
    h, w = 7, 9
    K = np.array([[11.0, 0.3, 4.1], [0, 12.0, 3.2], [0, 0, 1]])
    depth = np.random.default_rng(0).uniform(1, 5, (h, w))
    pts = unproject(depth, K)
    assert pts.shape == (h, w, 3) and pts.dtype == np.float64
    np.testing.assert_allclose(pts[..., 2], depth)
    proj = pts @ K.T
    uv = proj[..., :2] / proj[..., 2:]
    j, i = np.mgrid[0:h, 0:w]
    np.testing.assert_allclose(uv[..., 0], i + 0.5, atol=1e-9)
    np.testing.assert_allclose(uv[..., 1], j + 0.5, atol=1e-9)
    t = unproject(torch.from_numpy(depth), torch.from_numpy(K))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    np.testing.assert_allclose(t.numpy(), pts, rtol=1e-12)
    t32 = unproject(torch.from_numpy(depth).float(), K)
    assert t32.dtype == torch.float32
    np.testing.assert_allclose(t32.numpy(), pts, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Config files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,cls", [("plane", PlaneDepth), ("ramp", RampDepth),
                                      ("popup", PopupDepth), ("depthpro", DepthProEstimator)])
def test_config_files_build_their_estimator(name, cls, depthpro_dir):
    from hydra.utils import instantiate

    cfg = config("stage=scene", f"depth={name}", "device=cpu", f"weights.depthpro={depthpro_dir}")
    estimator = instantiate(cfg.depth)
    assert type(estimator) is cls
    out = estimator(rgb_image(16, 20))
    assert out.depth.shape == (16, 20) and (out.depth > 0).all()


def test_result_intrinsics_take_the_models_focal_else_the_fov():
    from dreamdance.camera import intrinsics_from_fov
    from dreamdance.scene.depth import DepthResult

    depth = np.ones((30, 40), np.float32)
    from_fov = DepthResult(depth).intrinsics(55, 40, 30)
    np.testing.assert_allclose(from_fov, intrinsics_from_fov(55, 40, 30))
    K = DepthResult(depth, focal=123.0).intrinsics(55, 40, 30)
    assert K[0, 0] == K[1, 1] == 123.0
    np.testing.assert_allclose(K[:2, 2], from_fov[:2, 2])  # the principal point stays
