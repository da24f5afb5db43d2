"""A DreamDance transformer from a CogVideoX image-to-video transformer.

Every base weight is copied exactly; the base's patch embedding ``f_b`` gains ``mask_channels``
zero input channels (for the mask latent); DreamDance's new layers are initialised with zero
gates. The result therefore computes what the base computes (see
:mod:`dreamdance.animate.transformer`), and training starts from the pretrained model.
``python -m tools.convert_cogvideox`` saves such a model as a folder.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import torch
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXTransformer3DModel
from torch import nn

from dreamdance.animate.components import COGVIDEOX
from dreamdance.animate.transformer import NEW_LAYERS, DreamDanceTransformer3DModel
from dreamdance.errors import InputError
from dreamdance.weights import require_dir


def from_cogvideox(
    path_or_model: str | Path | CogVideoXTransformer3DModel,
    torch_dtype: torch.dtype | None = None,
    **extra: Any,
) -> DreamDanceTransformer3DModel:
    """Build a DreamDance transformer from a CogVideoX image-to-video transformer.

    Every base weight is copied exactly; the patch embedding gains ``mask_channels`` zero
    input channels; the new layers are initialised (gates zero), so the result computes
    what the base computes.

    Args:
        path_or_model: a local CogVideoX image-to-video pipeline folder (its ``transformer/``
            subfolder is used), a transformer folder, or a loaded base model. Never
            downloaded.
        torch_dtype: the dtype of every tensor of the result (a base folder is loaded in
            it); when None each tensor keeps the base's dtype as loaded (float32 from a
            folder).
        **extra: DreamDance's own config arguments (``pose_channels``,
            ``character_channels``, ``mask_channels``, ``clip_embed_dim``,
            ``per_channel_gates``, ``positional_embedding``).

    Raises:
        InputError: the folder is missing or not a CogVideoX transformer, or the base is a
            text-to-video model.
        ValueError: ``extra`` holds an unknown or base-owned argument.
    """
    base_args = set(inspect.signature(CogVideoXTransformer3DModel.__init__).parameters)
    own = set(inspect.signature(DreamDanceTransformer3DModel.__init__).parameters) - base_args
    unknown = sorted(set(extra) - own)
    if unknown:
        raise ValueError(f"extra: unknown DreamDance arguments {unknown}; "
                         f"expected some of {sorted(own)}")

    if isinstance(path_or_model, CogVideoXTransformer3DModel):
        base, name = path_or_model, f"base model ({type(path_or_model).__name__})"
    else:
        folder = transformer_folder(path_or_model)
        name = f"{COGVIDEOX.key}={path_or_model}"
        base = CogVideoXTransformer3DModel.from_pretrained(
            folder, local_files_only=True, torch_dtype=torch_dtype)
    if isinstance(base, DreamDanceTransformer3DModel):
        raise InputError(name, "is already a DreamDance transformer")

    channels = _patch_in_channels(base)
    if channels != 2 * base.config.out_channels:
        kind = ("a text-to-video model" if channels == base.config.out_channels
                else "not an image-to-video model")
        raise InputError(name, f"is {kind} (its patch embedding takes {channels} channels, "
                               f"not {2 * base.config.out_channels}); DreamDance needs "
                               f"{COGVIDEOX.name}")

    config = {k: v for k, v in base.config.items() if k in base_args}
    mask_channels = extra.get("mask_channels", 16)
    config["in_channels"] = channels + mask_channels
    # Built without memory (the base's weights are assigned below), then the new layers
    # are made for real: a 5B base is not initialised randomly only to be overwritten.
    with torch.device("meta"):
        model = DreamDanceTransformer3DModel(**config, **extra)

    state = base.state_dict()
    if base is path_or_model:  # never share storage with the caller's model
        state = {k: v.clone() for k, v in state.items()}
    key = "patch_embed.proj.weight"
    p, p_t = base.config.patch_size, base.config.patch_size_t or 1
    state[key] = _widen_patch_weight(state[key], mask_channels, p_t * p * p)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    stray = [k for k in missing if not k.startswith(NEW_LAYERS)]
    if stray or unexpected:
        raise ValueError(f"path_or_model: weights do not match the DreamDance layout "
                         f"(missing {stray}, unexpected {unexpected})")
    model._init_new_layers()
    embed = model.patch_embed
    if getattr(embed, "pos_embedding", None) is not None and embed.pos_embedding.is_meta:
        # a fixed sin-cos embedding (not saved): computed again
        embed.pos_embedding = embed._get_positional_embeddings(
            embed.sample_height, embed.sample_width, embed.sample_frames)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ValueError(f"path_or_model: no weights for {left}")
    for layer in NEW_LAYERS:  # the new layers take the base's device and dtype
        getattr(model, layer).to(device=base.device, dtype=base.dtype)
    if torch_dtype is not None:
        # nn.Module.to: ModelMixin.to warns about fp32-kept modules even when there are none
        nn.Module.to(model, dtype=torch_dtype)
    return model


def transformer_folder(path: str | Path | None) -> Path:
    """The transformer folder of a CogVideoX pipeline folder, or ``path`` itself; checked.

    Raises:
        InputError: not set, not a folder, or no CogVideoX transformer's ``config.json``.
    """
    root = Path(str(path)).expanduser() if path not in (None, "") else None
    if root is not None and (root / "transformer" / "config.json").is_file():
        root = root / "transformer"
    # the same model as weights.cogvideox, seen from its transformer/ folder
    spec = dataclasses.replace(COGVIDEOX, marker="config.json",
                               accept=("CogVideoXTransformer3DModel",))
    return require_dir(root if root is not None else path, spec)


def _patch_in_channels(model: CogVideoXTransformer3DModel) -> int:
    """The number of latent channels the base model's patch embedding takes."""
    proj = model.patch_embed.proj
    if isinstance(proj, nn.Conv2d):
        return proj.in_channels
    p, p_t = model.config.patch_size, model.config.patch_size_t
    return proj.in_features // (p * p * p_t)


def _widen_patch_weight(
    weight: torch.Tensor, extra: int, features_per_channel: int
) -> torch.Tensor:
    """Append ``extra`` zero input channels to a patch embedding weight.

    Args:
        weight: Conv2d weight [D, C, p, p] or Linear weight [D, C·p_t·p·p] (channel-major).
        extra: the number of zero channels to append.
        features_per_channel: p_t·p·p for the Linear layout (unused for Conv2d).

    Returns:
        [D, C + extra, p, p] or [D, (C + extra)·p_t·p·p]
    """
    if weight.ndim == 4:
        zeros = weight.new_zeros(weight.shape[0], extra, *weight.shape[2:])  # [D, extra, p, p]
        return torch.cat([weight, zeros], dim=1)  # [D, C + extra, p, p]
    zeros = weight.new_zeros(weight.shape[0], extra * features_per_channel)  # [D, extra·p_t·p·p]
    return torch.cat([weight, zeros], dim=1)  # [D, (C + extra)·p_t·p·p]
