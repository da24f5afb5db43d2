"""The DreamDance transformer: CogVideoX image-to-video with gated pose and character input.

Over 500 lines on purpose: the model is one self-contained file, as diffusers keeps each of its
models (its layers, forward, input checks and token-layout helpers; a third of the lines are
docstrings). Building one from a CogVideoX checkpoint is :mod:`dreamdance.animate.convert`.

DreamDance animates a character by pose-aware video inpainting. The denoiser is a CogVideoX
image-to-video MM-DiT whose video tokens are built as

    x' = f_b([x_t, β]) + tanh(g_p(t)) · f_p(γ) + tanh(g_c(t)) · f_c(φ)

* ``x_t``: the noisy video latent ``[B, F, 16, h, w]``;
* ``β``: the background-video latent and the inpainting-mask-video latent ``[B, F, 16 + 16, h, w]``;
* ``γ``: the face, hand and body pose-video latents ``[B, F, 48, h, w]``;
* ``φ``: the reference character's latent repeated along time ``[B, F, 16, h, w]``
  (:func:`repeat_character`);
* ``f_b``: the base model's patch embedding, widened by the mask channels. Its input channels are
  ``[x_t, background, mask]``: the first two groups keep the base's weights (the background sits
  in the base's image-latent slot) and the mask channels start at zero;
* ``f_p``, ``f_c``: new patchifying projections of the same kind as the base's (a ``Conv2d`` with
  kernel = stride = patch size for CogVideoX 1.0, a ``Linear`` on ``patch_size_t·p·p·C`` patches
  for CogVideoX 1.5), randomly initialised;
* ``g_p``, ``g_c``: ``Linear`` layers on the base's timestep embedding (timestep + ofs), one gate
  per sample (or one per channel with ``per_channel_gates=True``), weight and bias zero.

The text slot holds the reference character's CLIP image embedding, mapped to the base's text
width by a new ``image_proj``. With zero gates the model computes exactly what the base does on
``[x_t, background]`` with those text states, so training starts from the pretrained model.

Zero gates and the first training step: the gates' gradients are non-zero at initialisation
(``d tanh(g)·f/dg = f`` at ``g = 0``), and so are those of ``image_proj`` and of ``f_b``'s mask
channels. ``f_p`` and ``f_c`` get a zero gradient while the gates are exactly zero
(``d tanh(g)·f/dθ_f = tanh(g)·df/dθ_f = 0``); they receive gradient from the step after the
gates first move. This is the price of starting as the base model exactly.

Leaving a term out: ``pose=None`` (``character=None``) leaves that term out for the whole batch;
``keep_pose`` (``keep_character``), one flag per sample, leaves it out for some samples only, so
one batch can mix conditional and unconditional samples (condition dropout in training,
classifier-free guidance as one doubled batch). A dropped sample's tokens are selected with
``torch.where``, not multiplied by zero, so its output equals that of the sample run alone with
``pose=None`` whatever the dropped condition holds (``x + 0·y`` is ``x`` only for finite ``y``).
Its gradient into ``f_p`` (``f_c``) and the gate is zero. :meth:`condition_tokens` computes
``f_p(γ)`` and ``f_c(φ)``, which do not depend on the timestep, once for every denoising step.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config
from diffusers.models.embeddings import get_3d_rotary_pos_embed
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXTransformer3DModel
from diffusers.pipelines.cogvideo.pipeline_cogvideox_image2video import (
    get_resize_crop_region_for_grid,
)
from diffusers.utils import apply_lora_scale
from torch import nn

OFS = 2.0  # CogVideoX 1.5's ofs condition, the value its image-to-video pipeline passes

POSITIONAL_EMBEDDINGS = ("interpolate", "drop")

# The layers DreamDance adds to the base model; everything else is the base's.
NEW_LAYERS = ("pose_embed", "character_embed", "pose_gate", "character_gate", "image_proj")


def repeat_character(latent: torch.Tensor, frames: int) -> torch.Tensor:
    """Repeat the character's single-frame latent along latent time.

    Args:
        latent: the reference character's VAE latent. [B, 1, C, h, w]
        frames: the number of latent frames F of the video.

    Returns:
        The latent at every frame. [B, F, C, h, w]
    """
    if latent.ndim != 5 or latent.shape[1] != 1:
        raise ValueError(f"latent: expected shape [B, 1, C, h, w], got {list(latent.shape)}")
    if frames < 1:
        raise ValueError(f"frames: expected a positive number of latent frames, got {frames}")
    return latent.repeat(1, frames, 1, 1, 1)  # [B, F, C, h, w]


def patchify(
    x: torch.Tensor, proj: nn.Module, patch_size: int, patch_size_t: int | None
) -> torch.Tensor:
    """Cut a latent video into patches and project each to the transformer width.

    The token order is the base model's: frame (or frame group), then row, then column.

    Args:
        x: latent video. [B, F, C, h, w]
        proj: a ``Conv2d`` with kernel = stride = ``patch_size`` (``patch_size_t`` is None) or a
            ``Linear`` on ``C·patch_size_t·patch_size²`` features.
        patch_size: the spatial patch size p.
        patch_size_t: the temporal patch size, or None for per-frame patches.

    Returns:
        Tokens. [B, F/p_t · h/p · w/p, D]
    """
    # Adapted from diffusers.models.embeddings.CogVideoXPatchEmbed.forward (the image branch)
    batch_size, num_frames, channels, height, width = x.shape
    if patch_size_t is None:
        x = x.reshape(-1, channels, height, width)  # [B·F, C, h, w]
        x = proj(x)  # [B·F, D, h/p, w/p]
        x = x.view(batch_size, num_frames, *x.shape[1:])  # [B, F, D, h/p, w/p]
        x = x.flatten(3).transpose(2, 3)  # [B, F, h/p·w/p, D]
        return x.flatten(1, 2)  # [B, F·h/p·w/p, D]
    p, p_t = patch_size, patch_size_t
    x = x.permute(0, 1, 3, 4, 2)  # [B, F, h, w, C]
    x = x.reshape(batch_size, num_frames // p_t, p_t, height // p, p, width // p, p, channels)
    x = x.permute(0, 1, 3, 5, 7, 2, 4, 6)  # [B, F/p_t, h/p, w/p, C, p_t, p, p]
    x = x.flatten(4, 7).flatten(1, 3)  # [B, F/p_t·h/p·w/p, C·p_t·p·p]
    return proj(x)  # [B, N, D]


def resize_positional_embedding(
    embedding: torch.Tensor, grid: tuple[int, int, int], size: tuple[int, int, int]
) -> torch.Tensor:
    """Resize a learned video positional embedding from one token grid to another (trilinear).

    Args:
        embedding: one embedding per video token, frame-major then row then column. [1, T·H·W, D]
        grid: the embedding's grid (T, H, W).
        size: the wanted grid (T', H', W').

    Returns:
        The embedding on the new grid. [1, T'·H'·W', D]
    """
    frames, rows, cols = grid
    if embedding.shape[1] != frames * rows * cols:
        raise ValueError(f"embedding: {embedding.shape[1]} tokens do not fill a grid of {grid}")
    dim = embedding.shape[-1]
    grid_embedding = embedding.reshape(1, frames, rows, cols, dim)  # [1, T, H, W, D]
    grid_embedding = grid_embedding.permute(0, 4, 1, 2, 3).float()  # [1, D, T, H, W]
    grid_embedding = F.interpolate(grid_embedding, size=size, mode="trilinear",
                                   align_corners=False)  # [1, D, T', H', W']
    grid_embedding = grid_embedding.permute(0, 2, 3, 4, 1)  # [1, T', H', W', D]
    return grid_embedding.reshape(1, -1, dim).to(embedding.dtype)  # [1, T'·H'·W', D]



class DreamDanceTransformer3DModel(CogVideoXTransformer3DModel):
    """CogVideoX image-to-video transformer with DreamDance's gated pose and character injection.

    Every argument of :class:`~diffusers.CogVideoXTransformer3DModel` is accepted with the same
    meaning, except ``in_channels``, which here counts the channels entering the widened patch
    embedding ``f_b``: noisy latent + background latent + mask latent (16 + 16 + 16 = 48).

    Parameters:
        pose_channels (`int`, defaults to `48`):
            Channels of the pose latents γ: face, hand and body pose-video latents, 16 each.
        character_channels (`int`, defaults to `16`):
            Channels of the character latent φ.
        mask_channels (`int`, defaults to `16`):
            Channels of the inpainting-mask latent, the last input channels of ``f_b`` (the ones
            that are zero in a model made by
            :func:`~dreamdance.animate.convert.from_cogvideox`).
        clip_embed_dim (`int`, defaults to `1024`):
            Width of the CLIP image-encoder hidden states that stand in for the text states.
        per_channel_gates (`bool`, defaults to `False`):
            One gate per transformer channel instead of one scalar gate per sample.
        positional_embedding (`str`, defaults to `"interpolate"`):
            What to do with a learned video positional embedding (CogVideoX-5b-I2V 1.0) when
            the working grid differs from the base's sample grid: ``"interpolate"`` resizes it
            trilinearly; ``"drop"`` uses no absolute embedding at all, on any grid (rotary
            embeddings only).
        max_text_seq_length (`int`, defaults to `226`):
            With an absolute positional embedding (learned, or sin-cos in a base without rotary
            embeddings) the text slot has exactly this many tokens: the projected image tokens
            are zero-padded or truncated to it. It is also the number of tokens used when no
            image embedding is given.
    """

    _skip_layerwise_casting_patterns = ["patch_embed", "pose_embed", "character_embed", "norm"]

    @register_to_config
    def __init__(
        self,
        num_attention_heads: int = 30,
        attention_head_dim: int = 64,
        in_channels: int = 48,
        out_channels: int | None = 16,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        time_embed_dim: int = 512,
        ofs_embed_dim: int | None = None,
        text_embed_dim: int = 4096,
        num_layers: int = 30,
        dropout: float = 0.0,
        attention_bias: bool = True,
        sample_width: int = 90,
        sample_height: int = 60,
        sample_frames: int = 49,
        patch_size: int = 2,
        patch_size_t: int | None = None,
        temporal_compression_ratio: int = 4,
        max_text_seq_length: int = 226,
        activation_fn: str = "gelu-approximate",
        timestep_activation_fn: str = "silu",
        norm_elementwise_affine: bool = True,
        norm_eps: float = 1e-5,
        spatial_interpolation_scale: float = 1.875,
        temporal_interpolation_scale: float = 1.0,
        use_rotary_positional_embeddings: bool = False,
        use_learned_positional_embeddings: bool = False,
        patch_bias: bool = True,
        pose_channels: int = 48,
        character_channels: int = 16,
        mask_channels: int = 16,
        clip_embed_dim: int = 1024,
        per_channel_gates: bool = False,
        positional_embedding: str = "interpolate",
    ):
        if positional_embedding not in POSITIONAL_EMBEDDINGS:
            raise ValueError(f"positional_embedding: expected one of {POSITIONAL_EMBEDDINGS}, "
                             f"got {positional_embedding!r}")
        if out_channels is None or in_channels < out_channels + mask_channels:
            raise ValueError(f"in_channels: {in_channels} cannot hold the noisy latent "
                             f"({out_channels}) and the mask latent ({mask_channels})")
        for name, value in (("pose_channels", pose_channels),
                            ("character_channels", character_channels),
                            ("clip_embed_dim", clip_embed_dim)):
            if value < 1:
                raise ValueError(f"{name}: expected a positive number, got {value}")
        super().__init__(
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            flip_sin_to_cos=flip_sin_to_cos,
            freq_shift=freq_shift,
            time_embed_dim=time_embed_dim,
            ofs_embed_dim=ofs_embed_dim,
            text_embed_dim=text_embed_dim,
            num_layers=num_layers,
            dropout=dropout,
            attention_bias=attention_bias,
            sample_width=sample_width,
            sample_height=sample_height,
            sample_frames=sample_frames,
            patch_size=patch_size,
            patch_size_t=patch_size_t,
            temporal_compression_ratio=temporal_compression_ratio,
            max_text_seq_length=max_text_seq_length,
            activation_fn=activation_fn,
            timestep_activation_fn=timestep_activation_fn,
            norm_elementwise_affine=norm_elementwise_affine,
            norm_eps=norm_eps,
            spatial_interpolation_scale=spatial_interpolation_scale,
            temporal_interpolation_scale=temporal_interpolation_scale,
            use_rotary_positional_embeddings=use_rotary_positional_embeddings,
            use_learned_positional_embeddings=use_learned_positional_embeddings,
            patch_bias=patch_bias,
        )
        self._init_new_layers()

    def _init_new_layers(self) -> None:
        """Create (or re-create) the layers DreamDance adds to the base model."""
        config = self.config
        inner_dim = config.num_attention_heads * config.attention_head_dim

        # f_p, f_c: patchifying projections like the base's, randomly initialised.
        self.pose_embed = self._make_patch_projection(config.pose_channels, inner_dim)
        self.character_embed = self._make_patch_projection(config.character_channels, inner_dim)

        # g_p, g_c: gates on the timestep embedding, zero so that tanh(g) = 0 at the start.
        gate_dim = inner_dim if config.per_channel_gates else 1
        self.pose_gate = nn.Linear(config.time_embed_dim, gate_dim)
        self.character_gate = nn.Linear(config.time_embed_dim, gate_dim)
        for gate in (self.pose_gate, self.character_gate):
            nn.init.zeros_(gate.weight)
            nn.init.zeros_(gate.bias)

        # The reference character's CLIP hidden states in the text slot.
        self.image_proj = nn.Linear(config.clip_embed_dim, config.text_embed_dim)

    def _make_patch_projection(self, channels: int, inner_dim: int) -> nn.Module:
        p, p_t = self.config.patch_size, self.config.patch_size_t
        if p_t is None:
            return nn.Conv2d(channels, inner_dim, kernel_size=(p, p), stride=p,
                             bias=self.config.patch_bias)
        return nn.Linear(channels * p * p * p_t, inner_dim)

    # ----------------------------------------------------------------------------------------
    # Conditions

    def encode_image(self, image_embeds: torch.Tensor | None, batch_size: int = 1) -> torch.Tensor:
        """The text-slot states from the reference character's CLIP image embedding.

        This is what :meth:`forward` passes to the base model's text path, so a base
        CogVideoX model given these as ``encoder_hidden_states`` sees the same input.

        Args:
            image_embeds: CLIP vision hidden states, or None for zeros
                (``max_text_seq_length`` tokens). [B, L, clip_embed_dim]
            batch_size: B when ``image_embeds`` is None.

        Returns:
            [B, L', text_embed_dim], L' = ``max_text_seq_length`` (zero-padded or truncated)
            when the base has an absolute positional embedding, else L.
        """
        config = self.config
        if image_embeds is None:
            image_embeds = self.image_proj.weight.new_zeros(
                batch_size, config.max_text_seq_length, config.clip_embed_dim)  # [B, L, C_clip]
        elif image_embeds.ndim != 3 or image_embeds.shape[-1] != config.clip_embed_dim:
            raise ValueError(f"image_embeds: expected shape [B, L, {config.clip_embed_dim}], "
                             f"got {list(image_embeds.shape)}")
        states = self.image_proj(image_embeds.to(self.image_proj.weight.dtype))  # [B, L, C_text]
        if config.use_learned_positional_embeddings or not config.use_rotary_positional_embeddings:
            length = config.max_text_seq_length
            states = states[:, :length]  # [B, min(L, 226), C_text]
            states = F.pad(states, (0, 0, 0, length - states.shape[1]))  # [B, 226, C_text]
        return states

    def ofs_condition(self) -> float | None:
        """The offset condition this model takes: ``OFS`` for CogVideoX 1.5 (which has an
        ``ofs`` embedding), None for 1.0. Inference and training both pass this value."""
        return OFS if self.config.ofs_embed_dim is not None else None

    def rotary_embedding(
        self, frames: int, height: int, width: int, device: torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The rotary positional embedding for a latent video, as CogVideoX's I2V pipeline makes it.

        Args:
            frames: latent frames F.
            height: latent height h.
            width: latent width w.

        Returns:
            (cos, sin), each [F/p_t · h/p · w/p, attention_head_dim], or None when the model
            uses no rotary embedding.
        """
        config = self.config
        if not config.use_rotary_positional_embeddings:
            return None
        # Adapted from diffusers.pipelines.cogvideo.pipeline_cogvideox_image2video
        # .CogVideoXImageToVideoPipeline._prepare_rotary_positional_embeddings (latent sizes)
        p, p_t = config.patch_size, config.patch_size_t
        grid_height, grid_width = height // p, width // p
        base_size_width, base_size_height = config.sample_width // p, config.sample_height // p
        if p_t is None:
            grid_crops_coords = get_resize_crop_region_for_grid(
                (grid_height, grid_width), base_size_width, base_size_height)
            return get_3d_rotary_pos_embed(
                embed_dim=config.attention_head_dim, crops_coords=grid_crops_coords,
                grid_size=(grid_height, grid_width), temporal_size=frames, device=device)
        return get_3d_rotary_pos_embed(
            embed_dim=config.attention_head_dim, crops_coords=None,
            grid_size=(grid_height, grid_width), temporal_size=(frames + p_t - 1) // p_t,
            grid_type="slice", max_size=(base_size_height, base_size_width), device=device)

    def positional_embedding_for(
        self, frames: int, height: int, width: int, text_length: int
    ) -> torch.Tensor | None:
        """The absolute positional embedding added to [text tokens, video tokens], if any.

        Learned embeddings (CogVideoX-5b-I2V 1.0) were trained for the base's sample grid: on
        that grid they are used as they are, on another grid they are resized trilinearly.
        Fixed sin-cos embeddings are recomputed for the grid, as the base does. With
        ``positional_embedding="drop"`` there is none.

        Args:
            frames: latent frames F.
            height: latent height h.
            width: latent width w.
            text_length: the number of text-slot tokens.

        Returns:
            [1, text_length + N, D] or None.
        """
        config, embed = self.config, self.patch_embed
        if config.positional_embedding == "drop" or not hasattr(embed, "pos_embedding"):
            return None
        p = config.patch_size
        pre_frames = (frames - 1) * config.temporal_compression_ratio + 1
        if not config.use_learned_positional_embeddings:
            if (config.sample_height, config.sample_width, config.sample_frames) == (
                    height, width, pre_frames):
                return embed.pos_embedding
            return embed._get_positional_embeddings(height, width, pre_frames,
                                                    device=embed.pos_embedding.device)
        text = embed.pos_embedding[:, :config.max_text_seq_length]  # [1, 226, D]
        if text_length != text.shape[1]:
            raise ValueError(f"text_length: {text_length} tokens, the learned positional "
                             f"embedding needs {text.shape[1]}")
        video = embed.pos_embedding[:, config.max_text_seq_length:]  # [1, T·H·W, D]
        grid = ((config.sample_frames - 1) // config.temporal_compression_ratio + 1,
                config.sample_height // p, config.sample_width // p)
        size = (frames // (config.patch_size_t or 1), height // p, width // p)
        if size != grid:
            video = resize_positional_embedding(video, grid, size)  # [1, N, D]
        return torch.cat([text, video], dim=1)  # [1, 226 + N, D]

    def condition_tokens(
        self, pose: torch.Tensor | None, character: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The pose and character tokens ``f_p(γ)`` and ``f_c(φ)``, before their gates.

        They do not depend on the timestep: a sampler computes them once and passes them to
        every step as ``pose_tokens`` and ``character_tokens``.

        Args:
            pose: face, hand and body pose-video latents, or None. [B, F, 48, h, w]
            character: the character latent repeated along time, or None. [B, F, 16, h, w]

        Returns:
            (pose tokens or None, character tokens or None), each [B, N, D] with
            N = F/p_t · h/p · w/p.
        """
        config = self.config
        p, p_t = config.patch_size, config.patch_size_t
        tokens = []
        for name, latent, channels, proj in (
                ("pose", pose, config.pose_channels, self.pose_embed),
                ("character", character, config.character_channels, self.character_embed)):
            if latent is None:
                tokens.append(None)
                continue
            if latent.ndim != 5 or latent.shape[2] != channels:
                raise ValueError(f"{name}: expected shape [B, F, {channels}, h, w], "
                                 f"got {list(latent.shape)}")
            _, frames, _, height, width = latent.shape
            if height % p or width % p or (p_t is not None and frames % p_t):
                raise ValueError(f"{name}: {frames} frames of {height}x{width} do not fill "
                                 f"patches of {p_t or 1}x{p}x{p}")
            tokens.append(patchify(latent, proj, p, p_t))  # [B, N, D]
        return tokens[0], tokens[1]

    # ----------------------------------------------------------------------------------------
    # Forward

    def _check_inputs(self, hidden_states, background, timestep, image_embeds, pose,
                      character, pose_tokens=None, character_tokens=None) -> None:
        config = self.config
        for name, latent, tokens in (("pose", pose, pose_tokens),
                                     ("character", character, character_tokens)):
            if latent is not None and tokens is not None:
                raise ValueError(f"{name}: give either {name} or {name}_tokens, not both")
        if hidden_states.ndim != 5 or hidden_states.shape[2] != config.out_channels:
            raise ValueError(f"hidden_states: expected shape [B, F, {config.out_channels}, h, w], "
                             f"got {list(hidden_states.shape)}")
        batch_size, frames, _, height, width = hidden_states.shape
        expected = {
            "background": (background, config.in_channels - config.out_channels),
            "pose": (pose, config.pose_channels),
            "character": (character, config.character_channels),
        }
        for name, (tensor, channels) in expected.items():
            if tensor is None:
                continue
            want = (batch_size, frames, channels, height, width)
            if tuple(tensor.shape) != want:
                raise ValueError(f"{name}: expected shape {list(want)}, got {list(tensor.shape)}")
        if image_embeds is not None and image_embeds.shape[0] != batch_size:
            raise ValueError(f"image_embeds: batch of {image_embeds.shape[0]}, hidden_states "
                             f"has {batch_size}")
        p, p_t = config.patch_size, config.patch_size_t
        if height % p or width % p:
            raise ValueError(f"hidden_states: latent size {height}x{width} is not a multiple of "
                             f"the patch size {p}")
        if p_t is not None and frames % p_t:
            raise ValueError(f"hidden_states: {frames} latent frames is not a multiple of the "
                             f"temporal patch size {p_t}")
        want = (batch_size, frames // (p_t or 1) * (height // p) * (width // p),
                config.num_attention_heads * config.attention_head_dim)
        for name, tokens in (("pose_tokens", pose_tokens),
                             ("character_tokens", character_tokens)):
            if tokens is not None and tuple(tokens.shape) != want:
                raise ValueError(f"{name}: expected shape {list(want)} (condition_tokens of the "
                                 f"same batch and grid), got {list(tokens.shape)}")
        shape = tuple(timestep.shape) if torch.is_tensor(timestep) else ()
        if shape not in ((), (1,), (batch_size,)):
            raise ValueError(f"timestep: expected a scalar or shape [{batch_size}], "
                             f"got {list(timestep.shape)}")

    def timestep_embedding(
        self, timestep: torch.Tensor, ofs: torch.Tensor | float | None, dtype: torch.dtype
    ) -> torch.Tensor:
        """The base's timestep (+ ofs) embedding ``emb`` that drives the blocks and the gates.

        Args:
            timestep: diffusion timesteps. [B]
            ofs: the CogVideoX 1.5 offset condition (its pipeline passes 2.0); needed exactly
                when ``ofs_embed_dim`` is set.

        Returns:
            [B, time_embed_dim]
        """
        # Adapted from diffusers.models.transformers.cogvideox_transformer_3d
        # .CogVideoXTransformer3DModel.forward (step 1)
        t_emb = self.time_proj(timestep)  # [B, D]
        t_emb = t_emb.to(dtype=dtype)
        emb = self.time_embedding(t_emb, None)  # [B, time_embed_dim]
        if self.ofs_embedding is not None:
            if ofs is None:
                raise ValueError(f"ofs: required by this model (ofs_embed_dim="
                                 f"{self.config.ofs_embed_dim}); CogVideoX 1.5 I2V uses 2.0")
            if not torch.is_tensor(ofs):
                ofs = torch.full((1,), float(ofs), device=emb.device)
            ofs_emb = self.ofs_proj(ofs)  # [1 or B, ofs_embed_dim]
            ofs_emb = ofs_emb.to(dtype=dtype)
            ofs_emb = self.ofs_embedding(ofs_emb)  # [1 or B, time_embed_dim]
            emb = emb + ofs_emb  # [B, time_embed_dim]
        return emb

    def _gate(self, gate: nn.Linear, emb: torch.Tensor, batch_size: int) -> torch.Tensor:
        g = torch.tanh(gate(emb))  # [B, 1] or [B, D]
        return g.expand(batch_size, -1).unsqueeze(1)  # [B, 1, 1] or [B, 1, D]

    @staticmethod
    def _keep_mask(keep: torch.Tensor | None, name: str, condition: torch.Tensor | None,
                   batch_size: int, device: torch.device) -> torch.Tensor | None:
        """``keep`` as a bool mask [B, 1, 1] (None keeps every sample); checked."""
        if keep is None:
            return None
        if condition is None:
            raise ValueError(f"keep_{name}: given without {name} or {name}_tokens")
        if not torch.is_tensor(keep) or tuple(keep.shape) != (batch_size,):
            shape = list(keep.shape) if torch.is_tensor(keep) else type(keep).__name__
            raise ValueError(f"keep_{name}: expected a tensor of shape [{batch_size}], "
                             f"got {shape}")
        if keep.dtype != torch.bool:
            if keep.is_complex() or not bool(((keep == 0) | (keep == 1)).all()):
                raise ValueError(f"keep_{name}: expected bool or 0/1 values, got {keep.tolist()}")
            keep = keep != 0
        return keep.to(device).view(batch_size, 1, 1)  # [B, 1, 1]

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        background: torch.Tensor,
        timestep: torch.Tensor | int | float,
        image_embeds: torch.Tensor | None = None,
        pose: torch.Tensor | None = None,
        character: torch.Tensor | None = None,
        ofs: torch.Tensor | float | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        return_dict: bool = True,
        pose_tokens: torch.Tensor | None = None,
        character_tokens: torch.Tensor | None = None,
        keep_pose: torch.Tensor | None = None,
        keep_character: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor] | Transformer2DModelOutput:
        """Predict the velocity (v-prediction, as the base) of a noisy video latent.

        Args:
            hidden_states: noisy video latent x_t. [B, F, 16, h, w]
            background: background-video latent then mask-video latent, on channels.
                [B, F, 16 + 16, h, w]
            timestep: diffusion timesteps. [B]
            image_embeds: the reference character's CLIP vision hidden states; None for zeros.
                [B, L, clip_embed_dim]
            pose: face, hand and body pose-video latents; None leaves the pose term out (the
                unconditional branch of guidance, condition dropout). [B, F, 48, h, w]
            character: the character latent repeated along time (:func:`repeat_character`);
                None leaves the character term out. [B, F, 16, h, w]
            ofs: the CogVideoX 1.5 offset condition (2.0 in its pipeline); only with
                ``ofs_embed_dim`` set.
            image_rotary_emb: rotary embedding (cos, sin) from :meth:`rotary_embedding`.
            attention_kwargs: passed to the attention processors (``scale`` for LoRA).
            return_dict: return a ``Transformer2DModelOutput`` rather than a tuple.
            pose_tokens: ``f_p(γ)`` from :meth:`condition_tokens`, used instead of ``pose``
                (giving both is an error). [B, N, D]
            character_tokens: ``f_c(φ)`` from :meth:`condition_tokens`, used instead of
                ``character``. [B, N, D]
            keep_pose: per sample, True (1) keeps the pose term, False (0) leaves it out exactly
                as ``pose=None`` does for that sample; None keeps it for all. Needs ``pose`` or
                ``pose_tokens``. [B] bool or 0/1
            keep_character: the same for the character term. [B] bool or 0/1

        Returns:
            ``Transformer2DModelOutput(sample)`` with sample [B, F, 16, h, w].
        """
        self._check_inputs(hidden_states, background, timestep, image_embeds, pose, character,
                           pose_tokens, character_tokens)
        batch_size, num_frames, channels, height, width = hidden_states.shape
        p, p_t = self.config.patch_size, self.config.patch_size_t
        if not torch.is_tensor(timestep) or timestep.ndim == 0:
            timestep = torch.as_tensor(timestep, device=hidden_states.device).reshape(1)
        timestep = timestep.expand(batch_size)  # [B]

        # 1. Time embedding
        emb = self.timestep_embedding(timestep, ofs, hidden_states.dtype)  # [B, time_embed_dim]

        # 2. Tokens: the text slot, then x' = f_b([x_t, β]) + tanh(g_p)·f_p(γ) + tanh(g_c)·f_c(φ)
        encoder_hidden_states = self.encode_image(image_embeds, batch_size)  # [B, L, C_text]
        encoder_hidden_states = encoder_hidden_states.to(hidden_states.dtype)
        text = self.patch_embed.text_proj(encoder_hidden_states)  # [B, L, D]
        inputs = torch.cat([hidden_states, background], dim=2)  # [B, F, 48, h, w]
        video = patchify(inputs, self.patch_embed.proj, p, p_t)  # [B, N, D]
        if pose is not None or character is not None:
            raw_pose, raw_character = self.condition_tokens(pose, character)  # [B, N, D] each
            pose_tokens = raw_pose if pose is not None else pose_tokens
            character_tokens = raw_character if character is not None else character_tokens
        for name, tokens, gate_layer, keep in (
                ("pose", pose_tokens, self.pose_gate, keep_pose),
                ("character", character_tokens, self.character_gate, keep_character)):
            keep = self._keep_mask(keep, name, tokens, batch_size, video.device)  # [B, 1, 1]
            if tokens is None:
                continue
            gate = self._gate(gate_layer, emb, batch_size)  # [B, 1, 1|D]
            gated = video + gate * tokens  # [B, N, D]
            # a dropped sample keeps f_b's tokens as they are (not + 0·y: y may be non-finite)
            video = gated if keep is None else torch.where(keep, gated, video)  # [B, N, D]
        hidden_states = torch.cat([text, video], dim=1).contiguous()  # [B, L + N, D]
        text_seq_length = text.shape[1]
        pos_embedding = self.positional_embedding_for(num_frames, height, width, text_seq_length)
        if pos_embedding is not None:
            hidden_states = hidden_states + pos_embedding.to(hidden_states.dtype)  # [B, L + N, D]
        hidden_states = self.embedding_dropout(hidden_states)  # [B, L + N, D]
        encoder_hidden_states = hidden_states[:, :text_seq_length]  # [B, L, D]
        hidden_states = hidden_states[:, text_seq_length:]  # [B, N, D]

        # 3. Transformer blocks
        # Copied from diffusers.models.transformers.cogvideox_transformer_3d
        # .CogVideoXTransformer3DModel.forward (steps 3 to 5)
        for block in self.transformer_blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden_states, encoder_hidden_states = self._gradient_checkpointing_func(
                    block, hidden_states, encoder_hidden_states, emb, image_rotary_emb,
                    attention_kwargs)  # [B, N, D], [B, L, D]
            else:
                hidden_states, encoder_hidden_states = block(
                    hidden_states=hidden_states,
                    encoder_hidden_states=encoder_hidden_states,
                    temb=emb,
                    image_rotary_emb=image_rotary_emb,
                    attention_kwargs=attention_kwargs,
                )  # [B, N, D], [B, L, D]
        hidden_states = self.norm_final(hidden_states)  # [B, N, D]

        # 4. Final block
        hidden_states = self.norm_out(hidden_states, temb=emb)  # [B, N, D]
        hidden_states = self.proj_out(hidden_states)  # [B, N, p_t·p·p·16]

        # 5. Unpatchify
        if p_t is None:
            output = hidden_states.reshape(batch_size, num_frames, height // p, width // p, -1,
                                           p, p)  # [B, F, h/p, w/p, 16, p, p]
            output = output.permute(0, 1, 4, 2, 5, 3, 6)  # [B, F, 16, h/p, p, w/p, p]
            output = output.flatten(5, 6).flatten(3, 4)  # [B, F, 16, h, w]
        else:
            output = hidden_states.reshape(batch_size, (num_frames + p_t - 1) // p_t,
                                           height // p, width // p, -1, p_t, p, p)
            output = output.permute(0, 1, 5, 4, 2, 6, 3, 7)  # [B, F/p_t, p_t, 16, h/p, p, w/p, p]
            output = output.flatten(6, 7).flatten(4, 5).flatten(1, 2)  # [B, F, 16, h, w]

        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)
