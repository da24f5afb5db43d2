"""tools.stylize_references end to end on tiny random SDXL + ControlNet models (CPU)."""

import json

import numpy as np
import pytest

from dreamdance.media import load_image, write_video
from dreamdance.train.layout import ClipRecord, read_metadata, write_metadata
from dreamdance.train.stylize import depth_control, edge_control, parse_frame
from tools.stylize_references import main

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = (48, 80)  # (H, W) of the clips: not square, not the working size


def _tokenizer(folder):
    """A CLIP tokenizer over a tiny vocabulary (every unknown word maps to <|endoftext|>)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for word in ("anime", "photo", "flat", "line", "art", "a", "n", "i", "m", "e"):
        vocab.setdefault(f"{word}</w>", len(vocab))
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                         model_max_length=77)


def _controlnet(seed):
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    return ControlNetModel(
        block_out_channels=(32, 64), layers_per_block=1, in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        conditioning_embedding_out_channels=(16, 32), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Tiny SDXL base pipeline and two ControlNets in the real checkpoints' folder layouts."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    root = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64)  # 80 = 6 time ids x 8 + text_encoder_2's projection (32)
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3,
                        down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4,
                        sample_size=64)
    text = dict(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32,
                intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                vocab_size=100, max_position_embeddings=77, hidden_act="gelu",
                projection_dim=32)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(**text))
    torch.manual_seed(0)
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear",
                                       timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
        tokenizer=_tokenizer(root / "vocab1"), tokenizer_2=_tokenizer(root / "vocab2"),
        unet=unet, scheduler=scheduler, add_watermarker=False)
    pipe.save_pretrained(root / "sdxl")
    _controlnet(1).save_pretrained(root / "controlnet-depth")
    _controlnet(2).save_pretrained(root / "controlnet-canny")
    return {"sdxl": root / "sdxl", "controlnet_depth": root / "controlnet-depth",
            "controlnet_edge": root / "controlnet-canny"}


def _dataset(root, frames=5):
    """Two person clips and one scene clip of ``frames`` frames each, ``SIZE``."""
    h, w = SIZE
    records = []
    for i, (name, kind) in enumerate([("a", "person"), ("b", "person"), ("c", "scene")]):
        t = np.arange(frames)[:, None, None, None]
        y = np.arange(h)[None, :, None, None]
        x = np.arange(w)[None, None, :, None]
        video = ((x * 3 + y * 2 + t * 40 + i * 50 + np.array([0, 60, 120])) % 256)
        video[:, h // 4:3 * h // 4, w // 3:2 * w // 3] = 255  # a box with sharp edges
        write_video(root / f"clips/{name}/video.mp4", video.astype(np.uint8), fps=8, crf=0)
        records.append(ClipRecord(
            name=name, video=f"clips/{name}/video.mp4",
            poses=f"clips/{name}/poses.json" if kind == "person" else None,
            frames=frames, fps=8.0, width=w, height=h, kind=kind))
    write_metadata(root, records)
    return root


def _argv(data, weights, *extra):
    """The tool's arguments for a fast CPU run; ``extra`` (``key=value``) replaces defaults."""
    args = {"data": data, **weights, "steps": 2, "strength": 0.5, "resolution": 64,
            "device": "cpu", "dtype": "fp32"}
    args.update(a.partition("=")[::2] for a in extra if "=" in a)
    return [f"{k}={v}" for k, v in args.items()] + [a for a in extra if "=" not in a]


def _bad(capsys, argv, progress=False):
    """Run the tool expecting bad input; return its error line, the only line on stderr (or,
    with ``progress``, the last one, after the progress bar)."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    if not progress:
        assert len(err.splitlines()) == 1, err
    return err.splitlines()[-1]


@pytest.mark.slow
def test_end_to_end_resume_and_force(tmp_path, weights, capsys):
    data = _dataset(tmp_path / "data")
    before = (data / "metadata.jsonl").read_text()
    main(_argv(data, weights, "frame=middle"))
    records = {r.name: r for r in read_metadata(data)}
    for name in ("a", "b"):
        r = records[name]
        assert r.style == f"clips/{name}/style.png" and r.style_frame == 2
        style = load_image(data / r.style)
        assert style.rgb.shape == (*SIZE, 3) and style.alpha is None
        assert style.rgb.std() > 0  # an image, not a constant
    assert records["c"].style is None and not (data / "clips/c/style.png").exists()
    assert "stylised 2 clips" in capsys.readouterr().out

    # a second run skips every clip
    stamps = {n: (data / f"clips/{n}/style.png").stat().st_mtime_ns for n in ("a", "b")}
    main(_argv(data, weights))
    assert "stylised 0 clips" in capsys.readouterr().out
    assert {n: (data / f"clips/{n}/style.png").stat().st_mtime_ns for n in stamps} == stamps

    # a lost style file is redone; force=true redoes all, here from another frame
    (data / "clips/b/style.png").unlink()
    main(_argv(data, weights))
    assert "stylised 1 clips" in capsys.readouterr().out
    main(_argv(data, weights, "force=true", "frame=first"))
    assert "stylised 2 clips" in capsys.readouterr().out
    assert {r.name: r.style_frame for r in read_metadata(data)} == {"a": 0, "b": 0, "c": None}
    assert before != (data / "metadata.jsonl").read_text()


def test_missing_weights_is_one_line_and_writes_nothing(tmp_path, weights, capsys):
    data = _dataset(tmp_path / "data", frames=2)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    meta = (data / "metadata.jsonl").read_text()

    err = _bad(capsys, _argv(data, {**weights, "controlnet_depth": tmp_path / "nope"}))
    assert "controlnet_depth=" in err and "diffusers/controlnet-depth-sdxl-1.0" in err
    err = _bad(capsys, _argv(data, {**weights, "sdxl": weights["controlnet_edge"]}))
    assert err.startswith("error: sdxl=") and "stable-diffusion-xl-base-1.0" in err
    err = _bad(capsys, _argv(data, weights, "depth=depthpro"))
    assert "weights.depthpro" in err and "apple/DepthPro-hf" in err
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before
    assert (data / "metadata.jsonl").read_text() == meta


@pytest.mark.parametrize("arg, name", [
    ("steps=0", "steps=0"), ("strength=1.5", "strength=1.5"), ("frame=last", "frame=last"),
    ("conditioning_scale=0.5", "conditioning_scale=0.5"), ("depth=midas", "depth=midas"),
    ("depth.distance=-1", "depth.distance=-1"), ("colour=red", "colour"),
    ("force=yes", "force=yes"), ("dtype=fp8", "dtype=fp8"), ("frames", "frames"),
])
def test_bad_arguments(tmp_path, weights, capsys, arg, name):
    data = _dataset(tmp_path / "data", frames=2)
    if arg.startswith("depth."):
        arg_list = _argv(data, weights, "depth=plane", arg)
    else:
        arg_list = _argv(data, weights, arg)
    err = _bad(capsys, arg_list)
    assert err.startswith(f"error: {name}") or name in err, err
    assert not list(data.rglob("style.png"))


def test_frame_past_the_end_names_the_clip(tmp_path, weights, capsys):
    data = _dataset(tmp_path / "data", frames=3)
    err = _bad(capsys, _argv(data, weights, "frame=7"), progress=True)
    assert "frame=7" in err and "clip a" in err
    assert not list(data.rglob("style.png"))


def test_controls():
    depth = np.array([[1.0, 2.0], [4.0, 4.0]], np.float32)
    control = depth_control(depth)
    assert control.shape == (2, 2, 3)
    np.testing.assert_allclose(control[..., 0], [[1.0, 1 / 3], [0.0, 0.0]], atol=1e-6)
    assert not depth_control(np.full((3, 3), 4.0, np.float32)).any()
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, 8:] = 255
    edges = edge_control(rgb)
    assert edges.shape == (16, 16, 3) and edges[2:-2, 7:9].any(axis=1).all()
    assert not edges[:, :6].any() and not edges[:, 10:].any()
    assert parse_frame("middle") == "middle" and parse_frame("12") == 12
