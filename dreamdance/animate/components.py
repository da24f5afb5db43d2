"""The animate pipeline's components: tiny random ones built in process (``model=tiny``), or
the real ones loaded from local folders (``model=cogvideox``). Nothing is ever downloaded."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from dreamdance.errors import InputError
from dreamdance.weights import ModelSpec, require_dir

log = logging.getLogger(__name__)

COGVIDEOX = ModelSpec("weights.cogvideox", "CogVideoX image-to-video (THUDM/CogVideoX-5b-I2V "
                      "or THUDM/CogVideoX1.5-5B-I2V)", "THUDM/CogVideoX-5b-I2V",
                      marker="model_index.json", accept=("CogVideoXImageToVideoPipeline",))
CLIP = ModelSpec("weights.clip", "a CLIP vision model with projection (e.g. "
                 "openai/clip-vit-large-patch14)", "openai/clip-vit-large-patch14",
                 accept=("clip",))
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def clip_processor_class() -> type:
    """CLIP's image processor: the PIL one where transformers has it (the same results with or
    without torchvision installed, and no warning about it), else ``CLIPImageProcessor``."""
    import transformers

    return getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor


def tiny_components(layout: str = "1.0", seed: int = 0) -> dict[str, Any]:
    """Tiny random components of the right architecture (one layer, head dim 16): every code
    path of the pipeline runs on a CPU in seconds; the output is noise."""
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXTransformer3DModel,
    )
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from dreamdance.animate.transformer import DreamDanceTransformer3DModel

    if layout not in ("1.0", "1.5"):
        raise InputError(f"model.layout={layout}", "must be 1.0 or 1.5")
    torch.manual_seed(seed)
    vae = AutoencoderKLCogVideoX(
        block_out_channels=(8, 8, 8, 8), latent_channels=16, layers_per_block=1,
        norm_num_groups=2, temporal_compression_ratio=4,
        down_block_types=("CogVideoXDownBlock3D",) * 4, up_block_types=("CogVideoXUpBlock3D",) * 4)
    base_cfg = dict(num_attention_heads=2, attention_head_dim=16, in_channels=32,
                    out_channels=16, time_embed_dim=32, text_embed_dim=32, num_layers=1,
                    sample_width=8, sample_height=8, sample_frames=9, max_text_seq_length=16,
                    use_rotary_positional_embeddings=True, patch_size=2)
    if layout == "1.5":
        base_cfg.update(patch_size_t=2, ofs_embed_dim=32, patch_bias=False)
    else:
        base_cfg.update(use_learned_positional_embeddings=True)
    torch.manual_seed(seed)
    transformer = DreamDanceTransformer3DModel.from_cogvideox(
        CogVideoXTransformer3DModel(**base_cfg), clip_embed_dim=32)
    torch.manual_seed(seed)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, image_size=32, patch_size=8, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, projection_dim=32))
    feature_extractor = clip_processor_class()(size={"shortest_edge": 32},
                                           crop_size={"height": 32, "width": 32})
    scheduler = CogVideoXDDIMScheduler(
        prediction_type="v_prediction", timestep_spacing="trailing", rescale_betas_zero_snr=True,
        beta_schedule="scaled_linear", clip_sample=False)
    return dict(vae=vae, transformer=transformer, scheduler=scheduler,
                image_encoder=image_encoder, feature_extractor=feature_extractor)


def cogvideox_components(base: str | None, transformer: str | None, clip: str | None,
                         dtype: str = "bf16") -> dict[str, Any]:
    """The real components from local folders.

    Args:
        base: a CogVideoX image-to-video pipeline folder (its ``vae/`` and ``scheduler/``; its
            ``transformer/`` too when ``transformer`` is None).
        transformer: a DreamDance transformer folder (trained, or made by
            ``python -m tools.convert_cogvideox``), or a training checkpoint folder holding
            one in ``transformer/``; None converts the base's on the fly — then
            the gates are zero and the model is the base image-to-video model (logged).
        clip: a CLIPVisionModelWithProjection folder with its image processor.
        dtype: fp32 | fp16 | bf16.
    """
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler
    from transformers import CLIPVisionModelWithProjection

    from dreamdance.animate.transformer import DreamDanceTransformer3DModel

    if dtype not in DTYPES:
        raise InputError(f"model.dtype={dtype}", f"must be one of {', '.join(DTYPES)}")
    torch_dtype = DTYPES[dtype]
    base_dir = require_dir(base, COGVIDEOX)
    clip_dir = require_dir(clip, CLIP)
    clip_width = CLIPVisionModelWithProjection.config_class.from_pretrained(
        clip_dir, local_files_only=True, trust_remote_code=False).hidden_size
    if transformer is None:
        log.warning("model.transformer is not set: converting %s's transformer now; its gates are "
                    "zero, so this is the base image-to-video model, not a trained DreamDance",
                    base_dir)
        model = DreamDanceTransformer3DModel.from_cogvideox(base_dir, torch_dtype=torch_dtype,
                                                            clip_embed_dim=clip_width)
    else:
        folder = Path(str(transformer)).expanduser()
        if (folder / "transformer" / "config.json").is_file():
            folder = folder / "transformer"  # a training checkpoint folder
        if not (folder / "config.json").is_file():
            raise InputError(f"model.transformer={transformer}",
                             "no config.json: not a DreamDance transformer folder (make one with "
                             "python -m tools.convert_cogvideox, or train one)")
        model = DreamDanceTransformer3DModel.from_pretrained(folder, torch_dtype=torch_dtype,
                                                             local_files_only=True,
                                                             trust_remote_code=False)
        if model.config.clip_embed_dim != clip_width:
            raise InputError(f"model.transformer={transformer}",
                             f"expects CLIP tokens of width {model.config.clip_embed_dim}, but "
                             f"weights.clip={clip} gives {clip_width}")
    return dict(
        vae=AutoencoderKLCogVideoX.from_pretrained(base_dir, subfolder="vae",
                                                   torch_dtype=torch_dtype, local_files_only=True,
                                                   trust_remote_code=False),
        transformer=model,
        scheduler=CogVideoXDDIMScheduler.from_pretrained(base_dir, subfolder="scheduler",
                                                         local_files_only=True,
                                                         trust_remote_code=False),
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(
            clip_dir, torch_dtype=torch_dtype, local_files_only=True, trust_remote_code=False),
        feature_extractor=clip_processor_class().from_pretrained(clip_dir, local_files_only=True,
                                                                 trust_remote_code=False))
