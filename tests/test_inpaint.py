"""Tests for dreamdance.scene.inpaint: OpenCV fills, the context crop and blend geometry, and SDXL
inpainting through a tiny pipeline saved to disk and loaded like real weights."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from runner import config

from dreamdance.errors import InputError
from dreamdance.scene.inpaint import (
    ExemplarInpainter,
    OpenCVInpainter,
    SDXLInpainter,
    blend_weight,
    context_box,
    working_size,
)
from dreamdance.settings import conf_values

CONF = Path(__file__).resolve().parents[1] / "conf" / "inpainter"


def ramp(h: int, w: int) -> np.ndarray:
    """A smooth image whose values are not on the 1/255 grid."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([0.1 + 0.8 * x / w, 0.2 + 0.6 * y / h, 0.5 + 0.3 * np.sin(x / 9 + y / 13)], -1)
    return (rgb + 1e-4 * np.pi).astype(np.float32)


def square_hole(h: int, w: int, y0: int, x0: int, size: int) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[y0:y0 + size, x0:x0 + size] = True
    return hole


def chebyshev_far(hole: np.ndarray, distance: int) -> np.ndarray:
    """Pixels more than ``distance`` pixels from the hole in x or in y."""
    k = 2 * distance + 1
    return cv2.dilate(hole.astype(np.uint8), np.ones((k, k), np.uint8)) == 0


# --------------------------------------------------------------------------------------------
# OpenCV


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_opencv_fills_smoothly_and_keeps_known_pixels(method):
    rgb = ramp(40, 56)
    hole = square_hole(40, 56, 12, 20, 14)
    damaged = rgb.copy()
    damaged[hole] = (1.0, 0.0, 1.0)  # the character: must not leak into the fill
    out = OpenCVInpainter(method, radius=4)(damaged, hole, prompt="ignored")
    assert out.shape == rgb.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[~hole], damaged[~hole])  # bit for bit
    assert np.abs(out[hole] - rgb[hole]).max() < 0.15
    assert np.abs(out[hole] - rgb[hole]).mean() < 0.04
    # 16-bit working precision: the fill is not quantised to 8 bits
    assert np.abs(out[hole] * 255 - np.rint(out[hole] * 255)).max() > 0.05


def test_opencv_edge_cases():
    rgb = ramp(16, 16)
    out = OpenCVInpainter()(rgb, np.zeros((16, 16), bool))
    np.testing.assert_array_equal(out, rgb)
    assert out is not rgb
    soft = np.zeros((16, 16), np.float32)
    soft[4:8, 4:8] = 0.7  # non-bool masks: >= 0.5 is a hole
    soft[0, 0] = 0.3
    out = OpenCVInpainter()(rgb, soft)
    assert out[0, 0].tolist() == rgb[0, 0].tolist()
    with pytest.raises(ValueError, match="whole image"):
        OpenCVInpainter()(rgb, np.ones((16, 16), bool))
    with pytest.raises(ValueError, match="mask must be"):
        OpenCVInpainter()(rgb, np.zeros((16, 15), bool))
    with pytest.raises(InputError, match="inpainter.method=fast: must be telea or ns"):
        OpenCVInpainter("fast")
    with pytest.raises(InputError, match="inpainter.radius=0"):
        OpenCVInpainter(radius=0)


# --------------------------------------------------------------------------------------------
# crop and blend geometry


def test_context_box_square_around_hole_inside_image():
    hole = square_hole(100, 200, 40, 90, 20)  # box x 90..110, y 40..60
    assert context_box(hole, 0.25) == (85, 35, 115, 65)  # side 30, centred
    assert context_box(hole, 0.25, margin=10) == (80, 30, 120, 70)  # side 20 + 2 * 10
    corner = square_hole(100, 200, 0, 190, 10)  # touches the top-right corner
    assert context_box(corner, 1.0) == (170, 0, 200, 30)  # shifted inside
    wide = np.zeros((50, 200), bool)
    wide[20:30, 10:190] = True  # side 180 * 1.5 > both image sides: clipped to the image
    assert context_box(wide, 0.25) == (0, 0, 200, 50)
    tall = np.zeros((300, 80), bool)
    tall[100:160, 30:40] = True
    x0, y0, x1, y1 = context_box(tall, 0.25)
    assert (x0, x1) == (0, 80) and y1 - y0 == 90 and y0 <= 100 and y1 >= 160


def test_working_size():
    assert working_size(30, 30, 1024) == (1024, 1024)  # small crops are enlarged
    assert working_size(2000, 500, 1024) == (1024, 256)
    assert working_size(300, 100, 64) == (64, 24)
    assert all(v % 8 == 0 for v in working_size(123, 77, 1024))


def test_blend_weight_band():
    hole = square_hole(60, 60, 25, 25, 10)
    weight = blend_weight(hole, 4)
    assert weight.dtype == np.float32
    assert (weight[hole] == 1.0).all()
    assert (weight[chebyshev_far(hole, 8)] == 0.0).all()
    assert (weight[~chebyshev_far(hole, 5)] > 0).all()
    row = weight[30, 34:48]  # from the hole's last column, falling off to the right
    assert np.all(np.diff(row) <= 0) and row[0] == 1.0 and row[-1] == 0.0
    np.testing.assert_array_equal(blend_weight(hole, 0), hole.astype(np.float32))


# --------------------------------------------------------------------------------------------
# SDXL with a tiny pipeline


def tiny_tokenizer():
    from transformers import CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    vocab.update({c: len(vocab) + i for i, c in enumerate(letters)})
    vocab.update({c + "</w>": len(vocab) + i for i, c in enumerate(letters)})
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


@pytest.fixture(scope="module")
def sdxl_folder(tmp_path_factory) -> Path:
    """A tiny SDXL inpainting pipeline (9-channel UNet, like the real inpainting model)."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=9,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=80,  # 6*8+32
        cross_attention_dim=64, norm_num_groups=8)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear", timestep_spacing="leading")
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=[16, 32], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4,
                        sample_size=64, norm_num_groups=8)
    text = CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32,
                          intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                          vocab_size=60, hidden_act="gelu", projection_dim=32)
    torch.manual_seed(0)
    encoder, encoder_2 = CLIPTextModel(text), CLIPTextModelWithProjection(text)
    pipe = StableDiffusionXLInpaintPipeline(
        vae=vae, text_encoder=encoder, text_encoder_2=encoder_2, tokenizer=tiny_tokenizer(),
        tokenizer_2=tiny_tokenizer(), unet=unet, scheduler=scheduler,
        requires_aesthetics_score=False)
    folder = tmp_path_factory.mktemp("weights") / "sdxl-inpaint"
    pipe.save_pretrained(folder)
    return folder


class Spy:
    """Records the keyword arguments of each pipeline call and passes them on."""

    def __init__(self, pipe):
        self.pipe, self.calls = pipe, []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self.pipe(**kwargs)


def make(folder, **kwargs):
    args = dict(device="cpu", steps=2, max_side=64, feather=2, context=0.25,
                negative_prompt=conf_values("inpainter/sdxl")["negative_prompt"])
    return SDXLInpainter(str(folder), **(args | kwargs))


def test_sdxl_inpaints_the_crop_and_blends_back(sdxl_folder):
    from diffusers import StableDiffusionXLInpaintPipeline

    inpainter = make(sdxl_folder)
    assert inpainter.pipe is None  # loaded on the first call
    rgb = ramp(80, 96)
    hole = square_hole(80, 96, 30, 50, 12)
    inpainter.load()
    assert isinstance(inpainter.pipe, StableDiffusionXLInpaintPipeline)
    assert inpainter.pipe.unet.config.in_channels == 9
    assert list(inpainter.pipe.unet.config.block_out_channels) == [32, 64]  # the saved tiny model
    assert inpainter.pipe.unet.dtype == torch.float32
    spy = inpainter.pipe = Spy(inpainter.pipe)

    out = inpainter(rgb, hole, "a blue sky")
    assert out.shape == rgb.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    far = chebyshev_far(hole, 2 * 2)
    np.testing.assert_array_equal(out[far], rgb[far])  # exact beyond the feathered band
    assert np.abs(out[hole] - rgb[hole]).mean() > 0.05  # the hole was repainted
    assert not np.array_equal(out[~far & ~hole], rgb[~far & ~hole])  # the band is blended

    (call,) = spy.calls
    assert call["prompt"] == "a blue sky" and call["num_inference_steps"] == 2
    assert (call["width"], call["height"]) == (64, 64)  # the crop, enlarged to max_side
    assert call["image"].size == (64, 64) and call["mask_image"].mode == "L"
    crop_mask = np.asarray(call["mask_image"]) > 127
    # the 24 px crop (12 px hole + 2 * (2 * feather + 2) margin) maps the hole to its middle
    assert crop_mask[32, 32] and not crop_mask[2, 2] and 0.1 < crop_mask.mean() < 0.6


def test_sdxl_is_deterministic_and_follows_seed_and_prompt(sdxl_folder):
    rgb = ramp(64, 64)
    hole = square_hole(64, 64, 20, 24, 16)
    first = make(sdxl_folder, seed=3)
    a, b = first(rgb, hole, "a red wall"), first(rgb, hole, "a red wall")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, make(sdxl_folder, seed=3)(rgb, hole, "a red wall"))
    assert not np.array_equal(a, make(sdxl_folder, seed=4)(rgb, hole, "a red wall"))
    assert not np.array_equal(a, first(rgb, hole, "green grass"))
    spy = first.pipe = Spy(first.pipe)
    first(rgb, hole, "a red wall")
    assert spy.calls[0]["prompt"] == "a red wall"
    assert spy.calls[0]["negative_prompt"] == conf_values("inpainter/sdxl")["negative_prompt"]
    with pytest.raises(ValueError, match="needs a prompt"):
        first(rgb, hole)
    np.testing.assert_array_equal(first(rgb, np.zeros((64, 64), bool)), rgb)  # nothing to fill
    assert len(spy.calls) == 1
    everything = first(rgb, np.ones((64, 64), bool), "a red wall")  # no known pixel: from scratch
    assert everything.shape == rgb.shape and np.abs(everything - rgb).mean() > 0.05


def test_sdxl_refusals(tmp_path, sdxl_folder):
    with pytest.raises(InputError, match="no such folder") as e:
        SDXLInpainter(str(tmp_path / "missing"), None)
    assert e.value.name == f"weights.sdxl_inpaint={tmp_path / 'missing'}"
    assert "stable-diffusion-xl-1.0-inpainting-0.1" in e.value.problem
    with pytest.raises(InputError, match="weights.sdxl_inpaint: not set"):
        SDXLInpainter(None, None)
    other = tmp_path / "sd15"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(InputError, match="holds StableDiffusionPipeline, not SDXL inpainting"):
        SDXLInpainter(str(other), None)
    for key, value, problem in [("steps", 0, ">= 1"), ("strength", 0.0, "> 0"),
                                ("strength", 1.5, r"\(0, 1\]"), ("max_side", 100, "multiple of 8"),
                                ("feather", -1, ">= 0"), ("guidance", float("nan"), ">= 0"),
                                ("dtype", "fp8", "float16")]:
        with pytest.raises(InputError, match=problem) as e:
            make(sdxl_folder, **{key: value})
        assert e.value.name == f"inpainter.{key}={value}"
    with pytest.raises(InputError, match="leaves no denoising step"):
        make(sdxl_folder, steps=2, strength=0.4)
    assert make(sdxl_folder, dtype="bfloat16").load().unet.dtype == torch.bfloat16


# --------------------------------------------------------------------------------------------
# configs


def compose(name: str, *overrides: str):
    """The ``inpainter`` node of the scene stage's run config with ``inpainter=name``."""
    return config("stage=scene", f"inpainter={name}", "device=cpu", "seed=7", *overrides).inpainter


def test_configs_build_the_inpainters(sdxl_folder):
    assert sorted(p.stem for p in CONF.glob("*.yaml")) == ["exemplar", "opencv", "sdxl"]
    fill = instantiate(compose("exemplar"))
    assert isinstance(fill, ExemplarInpainter) and fill.options["seed"] == 7
    opencv = instantiate(compose("opencv"))
    assert isinstance(opencv, OpenCVInpainter) and opencv.method == "telea"
    sdxl = instantiate(compose("sdxl", f"weights.sdxl_inpaint={sdxl_folder}"))
    assert isinstance(sdxl, SDXLInpainter) and sdxl.path == sdxl_folder
    assert (sdxl.device, sdxl.seed, sdxl.steps, sdxl.max_side) == ("cpu", 7, 30, 1024)
    with pytest.raises(InstantiationException) as e:  # Hydra wraps the InputError
        instantiate(compose("sdxl"))
    assert isinstance(e.value.__cause__, InputError)
    assert e.value.__cause__.name == "weights.sdxl_inpaint"
