"""``model=tiny`` and ``model=cogvideox``: the paper's gated CogVideoX video-inpainting model.

Both run :class:`~dreamdance.animate.pipeline.DreamDancePipeline`; they differ only in where its
components come from (:meth:`components`), which is also what ``stage=train`` trains.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dreamdance.animate.backend import AnimateInputs, AnimateOutput
from dreamdance.errors import InputError
from dreamdance.inputs import resolve_dtype
from dreamdance.weights import require_dir

log = logging.getLogger(__name__)


class Diffusion:
    """The DreamDance pipeline as an animate backend.

    Args:
        name: the option's name, for messages.
        steps: denoising steps.
        guidance: classifier-free guidance scale (1: none).
        window: latent frames per window for long videos (None: all at once).
        overlap: latent frames shared by neighbouring windows.
        cpu_offload: diffusers' model CPU offload on CUDA.
        vae_tiling: decode the VAE in tiles.
    """

    def __init__(self, name: str, steps: int = 50, guidance: float = 3.0,
                 window: int | None = None, overlap: int = 4, cpu_offload: bool = False,
                 vae_tiling: bool = False):
        if steps < 1:
            raise InputError(f"model.steps={steps}", "must be at least 1")
        self.name, self.steps, self.guidance = name, int(steps), float(guidance)
        self.window, self.overlap = window, int(overlap)
        self.cpu_offload, self.vae_tiling = bool(cpu_offload), bool(vae_tiling)

    def components(self, seed: int = 0) -> dict[str, Any]:
        """The pipeline's parts: ``vae``, ``transformer``, ``scheduler``, ``image_encoder``,
        ``feature_extractor``."""
        raise NotImplementedError

    def pipeline(self, seed: int, device: str):
        from dreamdance.animate.pipeline import DreamDancePipeline

        pipe = DreamDancePipeline(**self.components(seed))
        if self.vae_tiling:
            pipe.enable_vae_tiling()
        if self.cpu_offload and device == "cuda":
            pipe.enable_model_cpu_offload()
        else:
            pipe.to(device)
        return pipe

    def __call__(self, inputs: AnimateInputs) -> AnimateOutput:
        import torch

        pipe = self.pipeline(inputs.seed, inputs.device)
        out = pipe(character=inputs.character, background_video=inputs.background,
                   mask_video=inputs.masks.astype(np.float32), pose_videos=inputs.pose_videos,
                   num_frames=inputs.num_frames, num_inference_steps=self.steps,
                   guidance_scale=self.guidance,
                   generator=torch.Generator().manual_seed(inputs.seed), window=self.window,
                   overlap=self.overlap, output_type="np")
        return AnimateOutput(np.asarray(out.frames[0], np.float32))


class Tiny(Diffusion):
    """``model=tiny``: tiny random components built in process; every code path runs on a CPU
    in seconds and the animation is noise (logged).

    Args:
        layout: the base's layout, ``"1.0"`` (CogVideoX-5b-I2V) or ``"1.5"``.
    """

    def __init__(self, name: str = "tiny", layout: str = "1.0", steps: int = 4,
                 guidance: float = 3.0, window: int | None = None, overlap: int = 2):
        super().__init__(name, steps, guidance, window, overlap)
        from dreamdance.animate.components import tiny_shapes

        tiny_shapes(layout)  # checked now, before anything is written
        self.layout = str(layout)

    def components(self, seed: int = 0) -> dict[str, Any]:
        from dreamdance.animate.components import tiny_components

        log.warning("model=%s: tiny random weights; the animation is noise (a check of the "
                    "code, not a result)", self.name)
        return tiny_components(self.layout, seed=seed)


class CogVideoX(Diffusion):
    """``model=cogvideox``: the gated model from local folders (see
    :func:`~dreamdance.animate.components.cogvideox_components`).

    Args:
        base: a CogVideoX image-to-video pipeline folder.
        transformer: a DreamDance transformer (or training checkpoint) folder; None converts
            the base's now (zero gates).
        clip: a CLIPVisionModelWithProjection folder.
        dtype: float32 | float16 | bfloat16 (:func:`dreamdance.inputs.resolve_dtype`).
    """

    def __init__(self, name: str = "cogvideox", base: str | None = None,
                 transformer: str | None = None, clip: str | None = None, dtype: str = "bfloat16",
                 steps: int = 50, guidance: float = 3.0, window: int | None = None,
                 overlap: int = 4, cpu_offload: bool = False, vae_tiling: bool = True):
        super().__init__(name, steps, guidance, window, overlap, cpu_offload, vae_tiling)
        from dreamdance.animate.components import CLIP, COGVIDEOX

        resolve_dtype(dtype, None, "model.dtype")  # checked now, before anything is written
        require_dir(base, COGVIDEOX)  # checked now, before anything is written
        require_dir(clip, CLIP)
        self.base, self.transformer, self.clip, self.dtype = base, transformer, clip, dtype

    def components(self, seed: int = 0) -> dict[str, Any]:
        from dreamdance.animate.components import cogvideox_components

        return cogvideox_components(self.base, self.transformer, self.clip, self.dtype)
