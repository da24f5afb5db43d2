"""The animate pipeline's components: random ones of the real architecture built in process
(tiny for ``model=tiny`` and tests; any size for benchmarks), or the real ones loaded from local
folders (``model=cogvideox``). Nothing is ever downloaded."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dreamdance.errors import InputError
from dreamdance.inputs import resolve_dtype
from dreamdance.weights import ModelSpec, require_dir

log = logging.getLogger(__name__)

COGVIDEOX = ModelSpec("weights.cogvideox", "CogVideoX image-to-video (zai-org/CogVideoX-5b-I2V "
                      "or zai-org/CogVideoX1.5-5B-I2V)", "zai-org/CogVideoX-5b-I2V",
                      marker="model_index.json", accept=("CogVideoXImageToVideoPipeline",))
CLIP = ModelSpec("weights.clip", "a CLIP vision model with projection (e.g. "
                 "openai/clip-vit-large-patch14)", "openai/clip-vit-large-patch14",
                 accept=("clip",))

# The random components' scheduler: CogVideoX's DDIM (v-prediction, trailing timesteps, zero
# terminal SNR)
SCHEDULER = dict(prediction_type="v_prediction", timestep_spacing="trailing",
                 rescale_betas_zero_snr=True, beta_schedule="scaled_linear", clip_sample=False)


@dataclass(frozen=True)
class Shapes:
    """The sizes of random components of the real architecture (:func:`random_components`).

    Attributes:
        vae: ``AutoencoderKLCogVideoX`` arguments.
        base: the image-to-video base's ``CogVideoXTransformer3DModel`` arguments.
        clip: ``CLIPVisionConfig`` arguments.
        image_size: the CLIP image processor's input side, in pixels.
    """

    vae: dict[str, Any]
    base: dict[str, Any]
    clip: dict[str, Any]
    image_size: int


TINY_VAE = dict(block_out_channels=(8, 8, 8, 8), latent_channels=16, layers_per_block=1,
                norm_num_groups=2, temporal_compression_ratio=4,
                down_block_types=("CogVideoXDownBlock3D",) * 4,
                up_block_types=("CogVideoXUpBlock3D",) * 4)
TINY_BASE = dict(num_attention_heads=2, attention_head_dim=16, in_channels=32, out_channels=16,
                 time_embed_dim=32, text_embed_dim=32, num_layers=1, sample_width=8,
                 sample_height=8, sample_frames=9, max_text_seq_length=16,
                 use_rotary_positional_embeddings=True, patch_size=2)
TINY_CLIP = dict(hidden_size=32, image_size=32, patch_size=8, num_hidden_layers=2,
                 num_attention_heads=4, intermediate_size=37, projection_dim=32)
# One layer, head dim 16, per base layout: 1.0 (CogVideoX-5b-I2V: Conv2d patches, learned
# positional embeddings) and 1.5 (CogVideoX1.5-5B-I2V: patches over two frames, ofs condition).
TINY = {
    "1.0": Shapes(TINY_VAE, {**TINY_BASE, "use_learned_positional_embeddings": True},
                  TINY_CLIP, image_size=32),
    "1.5": Shapes(TINY_VAE, {**TINY_BASE, "patch_size_t": 2, "ofs_embed_dim": 32,
                             "patch_bias": False}, TINY_CLIP, image_size=32),
}


def clip_processor_class() -> type:
    """CLIP's image processor: the PIL one where transformers has it (the same results with or
    without torchvision installed, and no warning about it), else ``CLIPImageProcessor``."""
    import transformers

    return getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor


def tiny_shapes(layout: str) -> Shapes:
    """:data:`TINY`'s shapes of a base layout, ``"1.0"`` or ``"1.5"`` (``model.layout``)."""
    if str(layout) not in TINY:
        raise InputError(f"model.layout={layout}", f"must be {' or '.join(TINY)}")
    return TINY[str(layout)]


def random_base(shapes: Shapes, seed: int = 0) -> Any:
    """A random CogVideoX image-to-video transformer (the base DreamDance converts)."""
    from diffusers import CogVideoXTransformer3DModel

    torch.manual_seed(seed)
    return CogVideoXTransformer3DModel(**shapes.base)


def random_components(shapes: Shapes, seed: int = 0, transformer: Any = None) -> dict[str, Any]:
    """Random components of the real architecture, each built after seeding with ``seed``.

    At :data:`TINY` sizes (``model=tiny``) every code path of the pipeline runs on a CPU in
    seconds; the output is noise.

    Args:
        shapes: the sizes.
        seed: the seed of every component's weights.
        transformer: used as it is instead of the converted :func:`random_base` (a stand-in
            in a test).

    Returns:
        ``vae``, ``transformer``, ``scheduler``, ``image_encoder`` and ``feature_extractor``.
    """
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from dreamdance.animate.convert import from_cogvideox

    torch.manual_seed(seed)
    vae = AutoencoderKLCogVideoX(**shapes.vae)
    if transformer is None:
        transformer = from_cogvideox(random_base(shapes, seed),
                                     clip_embed_dim=shapes.clip["hidden_size"])
    torch.manual_seed(seed)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**shapes.clip))
    side = shapes.image_size
    feature_extractor = clip_processor_class()(size={"shortest_edge": side},
                                               crop_size={"height": side, "width": side})
    return dict(vae=vae, transformer=transformer, scheduler=CogVideoXDDIMScheduler(**SCHEDULER),
                image_encoder=image_encoder, feature_extractor=feature_extractor)


def tiny_components(layout: str = "1.0", seed: int = 0, transformer: Any = None
                    ) -> dict[str, Any]:
    """:func:`random_components` at :data:`TINY` sizes, for a base ``layout``."""
    return random_components(tiny_shapes(layout), seed, transformer)


def save_tiny_weights(root: str | Path, layout: str = "1.0", seed: int = 0) -> tuple[Path, Path]:
    """Tiny random weights as the folders ``model=cogvideox`` reads, saved with
    ``save_pretrained``: a CogVideoX image-to-video pipeline folder (``vae/``, ``scheduler/``,
    the base's ``transformer/``, ``model_index.json``) and a CLIP folder.

    Returns:
        (``root/CogVideoX-I2V``: ``weights.cogvideox``, ``root/clip``: ``weights.clip``)
    """
    import diffusers

    parts = tiny_components(layout, seed)
    base, clip = Path(root) / "CogVideoX-I2V", Path(root) / "clip"
    parts["vae"].save_pretrained(base / "vae")
    parts["scheduler"].save_pretrained(base / "scheduler")
    random_base(tiny_shapes(layout), seed).save_pretrained(base / "transformer")
    (base / "model_index.json").write_text(json.dumps(
        {"_class_name": "CogVideoXImageToVideoPipeline",
         "_diffusers_version": diffusers.__version__}))
    parts["image_encoder"].save_pretrained(clip)
    parts["feature_extractor"].save_pretrained(clip)
    return base, clip


def cogvideox_components(base: str | None, transformer: str | None, clip: str | None,
                         dtype: str = "bfloat16") -> dict[str, Any]:
    """The real components from local folders.

    Args:
        base: a CogVideoX image-to-video pipeline folder (its ``vae/`` and ``scheduler/``; its
            ``transformer/`` too when ``transformer`` is None).
        transformer: a DreamDance transformer folder (trained, or made by
            ``python -m tools.convert_cogvideox``), or a training checkpoint folder holding
            one in ``transformer/``; None converts the base's on the fly — then
            the gates are zero and the model is the base image-to-video model (logged).
        clip: a CLIPVisionModelWithProjection folder with its image processor.
        dtype: float32 | float16 | bfloat16 (:func:`dreamdance.inputs.resolve_dtype`).
    """
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler
    from transformers import CLIPVisionModelWithProjection

    from dreamdance.animate.convert import from_cogvideox
    from dreamdance.animate.transformer import DreamDanceTransformer3DModel

    dtype = resolve_dtype(dtype, None, "model.dtype")
    base_dir = require_dir(base, COGVIDEOX)
    clip_dir = require_dir(clip, CLIP)
    clip_width = CLIPVisionModelWithProjection.config_class.from_pretrained(
        clip_dir, local_files_only=True, trust_remote_code=False).hidden_size
    if transformer is None:
        log.warning("model.transformer is not set: converting %s's transformer now; its gates are "
                    "zero, so this is the base image-to-video model, not a trained DreamDance",
                    base_dir)
        model = from_cogvideox(base_dir, torch_dtype=dtype, clip_embed_dim=clip_width)
    else:
        folder = Path(str(transformer)).expanduser()
        if (folder / "transformer" / "config.json").is_file():
            folder = folder / "transformer"  # a training checkpoint folder
        if not (folder / "config.json").is_file():
            raise InputError(f"model.transformer={transformer}",
                             "no config.json: not a DreamDance transformer folder (make one with "
                             "python -m tools.convert_cogvideox, or train one)")
        model = DreamDanceTransformer3DModel.from_pretrained(folder, torch_dtype=dtype,
                                                             local_files_only=True,
                                                             trust_remote_code=False)
        if model.config.clip_embed_dim != clip_width:
            raise InputError(f"model.transformer={transformer}",
                             f"expects CLIP tokens of width {model.config.clip_embed_dim}, but "
                             f"weights.clip={clip} gives {clip_width}")
    return dict(
        vae=AutoencoderKLCogVideoX.from_pretrained(base_dir, subfolder="vae",
                                                   torch_dtype=dtype, local_files_only=True,
                                                   trust_remote_code=False),
        transformer=model,
        scheduler=CogVideoXDDIMScheduler.from_pretrained(base_dir, subfolder="scheduler",
                                                         local_files_only=True,
                                                         trust_remote_code=False),
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(
            clip_dir, torch_dtype=dtype, local_files_only=True, trust_remote_code=False),
        feature_extractor=clip_processor_class().from_pretrained(clip_dir, local_files_only=True,
                                                                 trust_remote_code=False))
