"""Tests for dreamdance.scene.segment: every segmenter on synthetic art, the shared mask check,
bad input, and BiRefNet loaded from a tiny remote-code model written to disk."""

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from PIL import Image
from runner import config

from dreamdance.errors import InputError
from dreamdance.scene import birefnet
from dreamdance.scene.birefnet import BiRefNetSegmenter
from dreamdance.scene.segment import (
    AlphaSegmenter,
    AutoSegmenter,
    GrabCutSegmenter,
    MaskSegmenter,
    check_mask,
)

CONF = Path(__file__).resolve().parents[1] / "conf" / "segmenter"
H, W = 48, 80
BOX = (28, 8, 52, 44)  # the character: x0, y0, x1, y1


def art(alpha: bool = False):
    """A red character on a green-grey textured background; alpha = the character (or None)."""
    rng = np.random.default_rng(0)
    rgb = np.empty((H, W, 3), np.float32)
    rgb[:] = (0.0, 0.55, 0.35)
    rgb += rng.uniform(-0.04, 0.04, rgb.shape).astype(np.float32)
    x0, y0, x1, y1 = BOX
    rgb[y0:y1, x0:x1] = (0.95, 0.1, 0.1)
    rgb = np.clip(rgb, 0, 1)
    truth = np.zeros((H, W), np.float32)
    truth[y0:y1, x0:x1] = 1.0
    return rgb, (truth.copy() if alpha else None), truth


def interior(mask: np.ndarray, margin: int = 3) -> np.ndarray:
    x0, y0, x1, y1 = BOX
    return mask[y0 + margin:y1 - margin, x0 + margin:x1 - margin]


def exterior(mask: np.ndarray, margin: int = 4) -> np.ndarray:
    x0, y0, x1, y1 = BOX
    keep = np.ones_like(mask, bool)
    keep[max(0, y0 - margin):y1 + margin, max(0, x0 - margin):x1 + margin] = False
    return mask[keep]


# --------------------------------------------------------------------------------------------
# check_mask


def test_check_mask_refuses_empty_and_full():
    mask = np.zeros((100, 100), np.float32)
    with pytest.raises(InputError, match="no character found") as e:
        check_mask(mask, "image=art.png")
    assert e.value.name == "image=art.png"
    mask[0, :9] = 0.4  # soft, below one half: still nothing
    with pytest.raises(InputError, match="no character found"):
        check_mask(mask, "image=art.png")
    mask[0, :10] = 1.0  # 0.1 % of the pixels: enough
    assert check_mask(mask, "image=art.png").dtype == np.float32
    full = np.ones((100, 100), np.float32)
    full[0, :99] = 0.0  # 99.01 % character
    with pytest.raises(InputError, match="covers the whole image; nothing is left"):
        check_mask(full, "image=art.png")
    full[0, :101 - 1] = 0.0
    full[1, :1] = 0.0  # 98.99 %
    out = check_mask(full * 1.5 - 0.2, "image=art.png")  # values outside [0, 1] are clipped
    assert out.min() == 0.0 and out.max() == 1.0
    with pytest.raises(ValueError):
        check_mask(np.ones((4, 4, 1)), "image=x")


# --------------------------------------------------------------------------------------------
# alpha, mask file


def test_alpha_segmenter():
    rgb, alpha, truth = art(alpha=True)
    alpha[0, 0] = 0.3
    mask = AlphaSegmenter()(rgb, alpha, name="image=a.png")
    assert mask.dtype == np.float32 and mask.shape == (H, W)
    np.testing.assert_array_equal(mask, alpha)
    with pytest.raises(InputError, match="has no alpha channel") as e:
        AlphaSegmenter()(rgb, None, name="image=a.jpg")
    assert e.value.name == "image=a.jpg"
    with pytest.raises(InputError, match="no character found"):
        AlphaSegmenter()(rgb, np.zeros((H, W), np.float32), name="image=a.png")


def test_mask_file_grey_rgb_alpha_and_resize(tmp_path, caplog):
    rgb, _, truth = art()
    grey = tmp_path / "grey.png"
    Image.fromarray((truth * 200).astype(np.uint8), "L").save(grey)
    mask = MaskSegmenter(str(grey))(rgb)
    np.testing.assert_allclose(mask, truth * 200 / 255, atol=1e-6)  # soft, not thresholded

    colour = np.zeros((H, W, 3), np.uint8)
    colour[truth > 0] = (255, 0, 0)  # pure red: luminance 0.299
    colour[: H // 2][truth[: H // 2] > 0] = (255, 255, 255)
    path = tmp_path / "colour.jpg"
    Image.fromarray(colour).save(path, quality=100)
    mask = MaskSegmenter(path)(rgb)
    assert abs(float(interior(mask)[-1].mean()) - 0.299) < 0.03
    assert float(interior(mask)[0].mean()) > 0.97

    cutout = np.zeros((H, W, 4), np.uint8)
    cutout[..., :3] = 30  # dark character: the alpha is the mask, not the luminance
    cutout[..., 3] = (truth * 255).astype(np.uint8)
    path = tmp_path / "cutout.png"
    Image.fromarray(cutout, "RGBA").save(path)
    np.testing.assert_array_equal(MaskSegmenter(path)(rgb), truth)

    big = tmp_path / "big.png"  # twice the size: resized, with a warning
    Image.fromarray((truth * 255).astype(np.uint8), "L").resize((2 * W, 2 * H),
                                                                Image.NEAREST).save(big)
    with caplog.at_level(logging.INFO, logger="dreamdance.scene.segment"):
        mask = MaskSegmenter(big)(rgb)
    assert mask.shape == (H, W)
    assert "resized" in caplog.text and f"{2 * W}x{2 * H}" in caplog.text
    assert np.abs(mask - truth).mean() < 0.02


def test_mask_at_the_images_own_size_fits_a_non_square_working_frame(tmp_path):
    """A 300 x 200 image works at 128 x 80 (sides snapped to 16: aspect 1.5 -> 1.6); its mask,
    drawn at 300 x 200, goes through the same resize instead of being refused."""
    from dreamdance.media import fit_size

    width, height = fit_size((300, 200), 128)
    assert (width, height) == (128, 80)
    truth = np.zeros((200, 300), np.uint8)
    truth[40:180, 100:200] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(truth, "L").save(path)
    mask = MaskSegmenter(path)(np.zeros((height, width, 3), np.float32))
    assert mask.shape == (80, 128)
    expected = cv2.resize(truth, (width, height), interpolation=cv2.INTER_AREA) / 255
    assert np.abs(mask - expected).mean() < 0.01
    tall = tmp_path / "tall.png"
    Image.fromarray(truth.T.copy(), "L").save(tall)  # another picture's mask: refused
    with pytest.raises(InputError, match="aspect ratios differ"):
        MaskSegmenter(tall)(np.zeros((height, width, 3), np.float32))


def test_mask_file_bad_input(tmp_path):
    rgb, _, truth = art()
    with pytest.raises(InputError, match="file not found") as e:
        MaskSegmenter(str(tmp_path / "nope.png"))
    assert e.value.name == f"segmenter.path={tmp_path / 'nope.png'}"
    with pytest.raises(InputError, match="not set"):
        MaskSegmenter(None)
    wide = tmp_path / "wide.png"
    Image.fromarray(np.full((H, 2 * W), 255, np.uint8), "L").save(wide)  # aspect off by 100 %
    with pytest.raises(InputError, match="aspect ratios differ by 100.0%") as e:
        MaskSegmenter(wide)(rgb)
    assert e.value.name == f"segmenter.path={wide}"
    with pytest.raises(InputError, match="covers the whole image"):
        MaskSegmenter(wide)(np.zeros((H, 2 * W, 3), np.float32))
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros((H, W), np.uint8), "L").save(black)
    with pytest.raises(InputError, match="no character found") as e:
        MaskSegmenter(black)(rgb, name="image=art.png")
    assert e.value.name == "image=art.png"


# --------------------------------------------------------------------------------------------
# GrabCut, auto


def test_grabcut_with_box_and_default_box():
    rgb, _, truth = art()
    mask = GrabCutSegmenter(box=[24, 4, 56, 47], iterations=3)(rgb)
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
    assert (mask == truth).mean() > 0.98
    assert interior(mask, 1).min() == 1.0 and exterior(mask, 1).max() == 0.0
    default = GrabCutSegmenter(iterations=3)
    assert default.box_for(W, H) == (16, 2, 64, 45)  # middle 60 % x 90 %, centred
    assert (default(rgb) == truth).mean() > 0.98


def test_grabcut_downscaled_and_feathered():
    rgb, _, truth = art()
    big = np.repeat(np.repeat(rgb, 4, axis=0), 4, axis=1)  # 192 x 320
    truth_big = np.repeat(np.repeat(truth, 4, axis=0), 4, axis=1)
    mask = GrabCutSegmenter(box=[96, 16, 224, 188], max_side=80)(big)
    assert mask.shape == (4 * H, 4 * W)
    assert (mask == truth_big).mean() > 0.97
    # a box that leaves only the bottom rows free still leaves GrabCut background when scaled
    mask = GrabCutSegmenter(box=[0, 0, 4 * W, 4 * H - 2], max_side=80)(big)
    assert (mask == truth_big).mean() > 0.97
    soft = GrabCutSegmenter(box=[24, 4, 56, 47], feather=3)(rgb)
    edge = soft[H // 2, BOX[0] - 2:BOX[0] + 2]
    assert 0.0 < edge.min() < 0.5 < edge.max() < 1.0 and np.all(np.diff(edge) > 0)


def test_grabcut_drops_small_stray_pieces():
    rgb, _, truth = art()
    rgb[40:43, 20:23] = (0.95, 0.1, 0.1)  # a 3x3 red speck inside the box, apart from the body
    kept = GrabCutSegmenter(box=[16, 2, 64, 46], min_part=0)(rgb)
    assert kept[41, 21] == 1.0
    mask = GrabCutSegmenter(box=[16, 2, 64, 46])(rgb)
    assert mask[41, 21] == 0.0 and (mask == truth).mean() > 0.98
    with pytest.raises(InputError, match="segmenter.min_part=2"):
        GrabCutSegmenter(min_part=2)


@pytest.mark.parametrize(
    ("box", "problem"),
    [([1, 2, 3], "four pixel coordinates"), ([1, 2, 3, 4, 5], "four pixel coordinates"),
     ([1.5, 2, 30, 40], "whole pixel"), (["a", 2, 30, 40], "whole pixel"),
     ([-1, 2, 30, 40], ">= 0"), ([30, 2, 10, 40], "x0 < x1"), ([1, 40, 30, 40], "y0 < y1")])
def test_grabcut_bad_box(box, problem):
    with pytest.raises(InputError, match=problem) as e:
        GrabCutSegmenter(box=box)
    assert e.value.name == "segmenter.box=[" + ",".join(map(str, box)) + "]"


def test_grabcut_box_outside_or_whole_image():
    rgb, _, _ = art()
    with pytest.raises(InputError, match=f"does not fit inside the {W}x{H} image") as e:
        GrabCutSegmenter(box=[10, 5, W + 1, 30])(rgb)
    assert e.value.name == f"segmenter.box=[10,5,{W + 1},30]"
    with pytest.raises(InputError, match="covers the whole image; GrabCut needs background"):
        GrabCutSegmenter(box=[0, 0, W, H])(rgb)
    with pytest.raises(InputError, match="segmenter.iterations=0"):
        GrabCutSegmenter(iterations=0)


def test_auto_uses_alpha_only_when_transparent(caplog, monkeypatch):
    rgb, alpha, truth = art(alpha=True)
    calls = []
    original = GrabCutSegmenter.__call__
    monkeypatch.setattr(GrabCutSegmenter, "__call__",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    auto = AutoSegmenter(box=[24, 4, 56, 47], iterations=3)
    with caplog.at_level(logging.INFO, logger="dreamdance.scene.segment"):
        soft = alpha * 0.8
        np.testing.assert_array_equal(auto(rgb, soft, name="image=a.png"), soft)
        assert calls == [] and "using its alpha" in caplog.text
        opaque = np.ones((H, W), np.float32)
        opaque[0, :5] = 0.0  # a few clear pixels do not make a cut-out
        mask = auto(rgb, opaque, name="image=b.png")
        assert calls == [1] and "opaque alpha channel, using GrabCut" in caplog.text
        assert (mask == truth).mean() > 0.98
        auto(rgb, None, name="image=c.jpg")
        assert calls == [1, 1] and "image=c.jpg has no alpha channel" in caplog.text
    with pytest.raises(InputError, match="no character found"):
        auto(rgb, np.zeros((H, W), np.float32), name="image=d.png")  # fully clear art


# --------------------------------------------------------------------------------------------
# BiRefNet from a tiny remote-code model

CONFIG_CODE = '''
from transformers import PretrainedConfig


class BiRefNetConfig(PretrainedConfig):
    model_type = "SegformerForSemanticSegmentation"

    def __init__(self, bb_pretrained=False, **kwargs):
        self.bb_pretrained = bb_pretrained
        super().__init__(**kwargs)
'''

# A 1x1 convolution standing in for BiRefNet. Two flavours: "hub" behaves like a well-formed
# PreTrainedModel; "birefnet" copies BiRefNet's own habits (replaces self.config with a plain
# object, never calls post_init), which PreTrainedModel.from_pretrained cannot load.
MODEL_CODE = '''
import torch
from torch import nn
from transformers import PreTrainedModel

from .BiRefNet_config import BiRefNetConfig


class Config:
    def __init__(self):
        self.size = (1024, 1024)


class BiRefNet(PreTrainedModel):
    config_class = BiRefNetConfig

    def __init__(self, bb_pretrained=True, config=BiRefNetConfig()):
        super().__init__(config)
        self.head = nn.Conv2d(3, 1, 1)
        if QUIRKS:
            self.config = Config()
        else:
            self.post_init()

    def forward(self, x):
        coarse = torch.full_like(x[:, :1, ::2, ::2], 10.0)  # an earlier, coarser output
        return [coarse, self.head(x)]
'''


def write_birefnet(folder: Path, quirks: bool) -> Path:
    """A tiny BiRefNet folder whose mask is sigmoid(20 (R - 0.5)) of the un-normalised red."""
    from transformers import AutoConfig, AutoModelForImageSegmentation

    folder.mkdir(parents=True)
    (folder / "BiRefNet_config.py").write_text(CONFIG_CODE)
    (folder / "birefnet.py").write_text(MODEL_CODE.replace("QUIRKS", str(quirks)))
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["BiRefNet"],
        "auto_map": {"AutoConfig": "BiRefNet_config.BiRefNetConfig",
                     "AutoModelForImageSegmentation": "birefnet.BiRefNet"},
        "bb_pretrained": False,
    }))
    weight = torch.zeros(1, 3, 1, 1)
    weight[0, 0] = 20.0 * birefnet.IMAGENET_STD[0]
    bias = torch.tensor([20.0 * (birefnet.IMAGENET_MEAN[0] - 0.5)])
    if quirks:
        from safetensors.torch import save_file

        save_file({"head.weight": weight, "head.bias": bias}, folder / "model.safetensors")
    else:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=True, local_files_only=True)
        model = AutoModelForImageSegmentation.from_config(config, trust_remote_code=True)
        model.head.load_state_dict({"weight": weight, "bias": bias})
        model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("quirks", [False, True], ids=["hub", "birefnet-habits"])
def test_birefnet_tiny_remote_code(tmp_path, quirks):
    folder = write_birefnet(tmp_path / "birefnet", quirks)
    seg = BiRefNetSegmenter(str(folder), trust_remote_code=True, device="cpu", resolution=64)
    assert seg.model is None  # nothing loaded before the first call
    rgb, _, truth = art()
    mask = seg(rgb, None, name="image=art.png")
    assert type(seg.model).__name__ == "BiRefNet" and not seg.model.training
    assert seg.model.head.weight.dtype == torch.float32
    assert mask.shape == (H, W) and mask.dtype == np.float32
    # the loaded weights, the ImageNet normalisation and the last output all show here
    assert interior(mask).min() > 0.99 and exterior(mask).max() < 0.01
    assert (np.abs(mask - truth) < 0.5).mean() > 0.97
    assert seg(rgb) is not mask and seg.load() is seg.model  # loaded once


def test_birefnet_refusals(tmp_path):
    folder = write_birefnet(tmp_path / "birefnet", quirks=True)
    with pytest.raises(InputError, match="trust_remote_code=true") as e:
        BiRefNetSegmenter(str(folder))
    assert e.value.name == "segmenter.trust_remote_code=false"
    with pytest.raises(InputError, match="no such folder") as e:
        BiRefNetSegmenter(str(tmp_path / "missing"), trust_remote_code=True)
    assert e.value.name == f"weights.birefnet={tmp_path / 'missing'}"
    assert "huggingface-cli download ZhengPeng7/BiRefNet" in str(e.value)
    with pytest.raises(InputError, match="weights.birefnet: not set"):
        BiRefNetSegmenter(None, trust_remote_code=True)
    with pytest.raises(InputError, match="multiple of 32"):
        BiRefNetSegmenter(str(folder), trust_remote_code=True, resolution=1000)
    with pytest.raises(InputError, match="segmenter.dtype=half"):
        BiRefNetSegmenter(str(folder), trust_remote_code=True, device="cpu", dtype="half")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"architectures": ["LlavaModel"]}))
    with pytest.raises(InputError, match="not BiRefNet"):
        BiRefNetSegmenter(str(other), trust_remote_code=True)
    (folder / "model.safetensors").unlink()
    with pytest.raises(InputError, match="no weights"):
        BiRefNetSegmenter(str(folder), trust_remote_code=True)


def test_birefnet_weights_not_matching_code(tmp_path):
    from safetensors.torch import save_file

    folder = write_birefnet(tmp_path / "birefnet", quirks=True)
    save_file({"conv.weight": torch.zeros(1, 3, 1, 1)}, folder / "model.safetensors")
    seg = BiRefNetSegmenter(folder, trust_remote_code=True, device="cpu", resolution=32)
    with pytest.raises(InputError, match="does not match the model code.*head.weight"):
        seg(art()[0])


# --------------------------------------------------------------------------------------------
# configs


def compose(name: str, *overrides: str):
    """The ``segmenter`` node of the scene stage's run config with ``segmenter=name``."""
    return config("stage=scene", f"segmenter={name}", "device=cpu", *overrides).segmenter


def test_configs_build_the_segmenters(tmp_path):
    assert sorted(p.stem for p in CONF.glob("*.yaml")) == ["alpha", "auto", "birefnet",
                                                            "grabcut", "mask"]
    assert isinstance(instantiate(compose("auto")), AutoSegmenter)
    assert isinstance(instantiate(compose("alpha")), AlphaSegmenter)
    grabcut = instantiate(compose("grabcut"), box=[1, 2, 30, 40])
    assert isinstance(grabcut, GrabCutSegmenter) and grabcut.box == (1, 2, 30, 40)
    path = tmp_path / "m.png"
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(path)
    assert isinstance(instantiate(compose("mask"), path=str(path)), MaskSegmenter)
    folder = write_birefnet(tmp_path / "b", quirks=True)
    cfg = compose("birefnet", f"weights.birefnet={folder}")
    assert cfg.path == str(folder) and cfg.device == "cpu" and cfg.trust_remote_code is False
    built = instantiate(cfg, trust_remote_code=True)
    assert isinstance(built, BiRefNetSegmenter) and built.resolution == 1024
    with pytest.raises(InstantiationException) as e:  # Hydra wraps the InputError
        instantiate(compose("birefnet"), trust_remote_code=True)
    assert isinstance(e.value.__cause__, InputError)
    assert e.value.__cause__.name == "weights.birefnet"


def test_birefnet_refuses_a_pickle_that_is_not_tensors(tmp_path):
    import pickle

    folder = write_birefnet(tmp_path / "birefnet", quirks=True)
    (folder / "model.safetensors").unlink()
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump({"head.weight": print}, f)  # a reference to code, not a tensor
    seg = BiRefNetSegmenter(str(folder), trust_remote_code=True, device="cpu", resolution=64)
    with pytest.raises(InputError, match="pytorch_model.bin refused: it holds pickled Python") as e:
        seg.load()
    assert e.value.name == f"weights.birefnet={folder}"
