"""``DreamDancePipeline``: pose-aware video inpainting with a CogVideoX image-to-video MM-DiT.

Over 500 lines on purpose: a diffusers pipeline is one class in one file (its input checks,
condition encoders, denoising loop and decoding), as diffusers keeps each of its pipelines, and
this docstring states the method's choices.

The pipeline repaints the character into a background video inside an inpainting-mask video,
driven by face, hand and body pose videos, from one RGBA cut-out of the character:

1. check inputs;
2. encode the conditions once (they do not depend on the timestep): VAE latents of the
   background video and the mask video (concatenated on channels, 32), of the face, hand and
   body pose videos (48), of the character (16, one frame repeated over latent time), and the
   character's CLIP image tokens, which stand in for CogVideoX's text hidden states; then, per
   window, the transformer's pose and character tokens ``f_p(γ)``, ``f_c(φ)``
   (``condition_tokens``), reused at every step;
3. prepare the timesteps and the noise;
4. denoise (v-prediction, DDIM), with classifier-free guidance and, for long videos, temporal
   aggregation of overlapping windows (:mod:`dreamdance.animate.windows`);
5. decode, trim to the requested frames, convert.

Choices:

- **Character compositing.** The RGBA cut-out is composited on mid-grey (``CHARACTER_GREY``,
  0.5, i.e. 0 in the VAE's [-1, 1] range) before both the VAE and CLIP see it: grey is neither
  a dark nor a bright scene, so the cut-out's surroundings do not read as one. Training must
  composite the same way.
- **Unconditional branch.** Training drops pose and character each with probability 0.1; the
  unconditional branch of guidance drops both (``pose=None, character=None``) and keeps the
  background, the mask and the CLIP tokens, so guidance pushes towards the pose and the
  character's appearance, not away from the scene. Both branches are one transformer call per
  step on a doubled batch ``[conditional, unconditional]`` (as diffusers' image-to-video
  pipeline batches its branches): the unconditional sample gets the same inputs with
  ``keep_pose = keep_character = False``, which leaves those terms out exactly as
  ``pose=None, character=None`` does.
- **Frame counts.** Any ``num_frames`` comes back exactly. The causal VAE wants ``4k + 1``
  frames, and the 1.5 layout (``patch_size_t = 2``) an even number of latent frames, so the
  input videos are padded by repeating their last frame up to the next valid count and the
  decoded video is trimmed back. (Diffusers' 1.5 image-to-video pipeline instead prepends a
  copy of the first latent and drops it after denoising; padding in pixels keeps every
  condition a true VAE encoding of a video and the first latent the one-frame latent.)
- **Size.** ``height`` and ``width`` are rounded to the nearest multiple of the transformer's
  pixel patch (VAE factor × ``patch_size``: 16 for the real checkpoints) with a logged warning;
  every input is resized (bilinear, antialiased) to that size.
- **Condition latents** are the mode of the VAE's posterior (deterministic; the generator is
  kept for the noise), scaled by ``scaling_factor`` as diffusers' image-to-video pipeline does.
  The five condition videos (background, mask, face, hand, body) are encoded as one VAE batch:
  one pass instead of five, which is faster on the tiny test parts (fewer, larger kernels) and no
  slower on large ones. Its peak memory is that of five videos; ``enable_vae_slicing`` makes the
  VAE encode the batch one video at a time, so that the peak is that of one video
  (``enable_vae_tiling`` lowers it further).
- **CLIP tokens** are the penultimate hidden states of the image encoder, ``[B, L, hidden]``
  (as Wan's image-to-video pipeline uses them; the transformer's ``clip_embed_dim`` is the
  encoder's ``hidden_size``), preprocessed by ``feature_extractor``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor
from transformers import CLIPVisionModelWithProjection
from transformers.image_processing_utils import BaseImageProcessor

from dreamdance.animate.backend import POSE_KEYS
from dreamdance.animate.transformer import repeat_character
from dreamdance.animate.windows import aggregate, blend_weights, window_slices

log = logging.getLogger(__name__)

CHARACTER_GREY = 0.5  # the cut-out is composited on this grey, in [0, 1]


def composite_on_grey(rgba: torch.Tensor) -> torch.Tensor:
    """The cut-out over ``CHARACTER_GREY``: ``[..., 4]`` straight alpha -> ``[..., 3]``."""
    return rgba[..., :3] * rgba[..., 3:] + CHARACTER_GREY * (1 - rgba[..., 3:])


@dataclass
class DreamDancePipelineOutput(BaseOutput):
    """Output of :class:`DreamDancePipeline`.

    Args:
        frames: ``np.ndarray [B, F, H, W, 3]`` or ``torch.Tensor [B, F, 3, H, W]`` in [0, 1],
            or ``list[list[PIL.Image.Image]]``; the latents ``[B, F', C, h, w]`` for
            ``output_type="latent"``.
    """

    frames: np.ndarray | torch.Tensor | list[list[PIL.Image.Image]]


def _as_tensor(value, name: str) -> torch.Tensor:
    """An image or video as float32 in [0, 1] (uint8 is divided by 255); NaN is refused."""
    if isinstance(value, PIL.Image.Image):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"`{name}` must be a numpy array or a torch tensor, got {type(value)}")
    if value.dtype == torch.uint8:
        return value.float() / 255.0
    if not value.is_floating_point():
        raise ValueError(f"`{name}` must be uint8 or float, got {value.dtype}")
    value = value.float()
    if torch.isnan(value).any():
        raise ValueError(f"`{name}` contains NaN")
    if value.numel() and (value.min() < 0 or value.max() > 1):
        raise ValueError(f"`{name}` must be in [0, 1] (or uint8), got values in "
                         f"[{value.min().item():g}, {value.max().item():g}]")
    return value


def _resize(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[F, H, W, C] -> [F, C, height, width]``, bilinear and antialiased when it shrinks."""
    frames = frames.permute(0, 3, 1, 2)
    if frames.shape[-2:] == (height, width):
        return frames
    return F.interpolate(frames, size=(height, width), mode="bilinear", antialias=True,
                         align_corners=False).clamp(0, 1)


class DreamDancePipeline(DiffusionPipeline):
    r"""Pipeline for pose-aware video inpainting (DreamDance's animate stage).

    Args:
        vae: CogVideoX's causal video VAE.
        transformer: ``DreamDanceTransformer3DModel`` (v-prediction): its
            ``condition_tokens(pose, character)`` is called once per window, then
            ``transformer(hidden_states, background, timestep, image_embeds, ofs=,
            image_rotary_emb=, attention_kwargs=, return_dict=, pose_tokens=,
            character_tokens=, keep_pose=, keep_character=)`` once per window and step; its
            ``rotary_embedding(frames, h, w, device)`` and ``ofs_condition()`` give the
            positional embedding and the ofs value, the same ones training passes.
        scheduler: ``CogVideoXDDIMScheduler`` (``prediction_type="v_prediction"``).
        image_encoder: CLIP vision tower whose penultimate hidden states are the character
            tokens.
        feature_extractor: the CLIP image preprocessing.
    """

    model_cpu_offload_seq = "image_encoder->transformer->vae"
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        vae: AutoencoderKLCogVideoX,
        transformer: torch.nn.Module,
        scheduler: CogVideoXDDIMScheduler,
        image_encoder: CLIPVisionModelWithProjection,
        feature_extractor: BaseImageProcessor,
    ):
        super().__init__()
        self.register_modules(vae=vae, transformer=transformer, scheduler=scheduler,
                              image_encoder=image_encoder, feature_extractor=feature_extractor)
        self.vae_scale_factor_spatial = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.vae_scale_factor_temporal = self.vae.config.temporal_compression_ratio
        self.vae_scaling_factor_image = self.vae.config.scaling_factor
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor_spatial)

    # VAE memory toggles, passed through to the VAE.
    def enable_vae_slicing(self):
        self.vae.enable_slicing()

    def disable_vae_slicing(self):
        self.vae.disable_slicing()

    def enable_vae_tiling(self):
        self.vae.enable_tiling()

    def disable_vae_tiling(self):
        self.vae.disable_tiling()

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1.0

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    @property
    def pixel_multiple(self) -> int:
        """Height and width are multiples of this: the VAE's factor times the patch size."""
        return self.vae_scale_factor_spatial * self.transformer.config.patch_size

    def padded_frames(self, num_frames: int) -> int:
        """The smallest valid video length ``>= num_frames``: ``4k + 1``, and an even number of
        latent frames ``k + 1`` for the 1.5 layout."""
        k = -(-(num_frames - 1) // self.vae_scale_factor_temporal)
        p_t = self.transformer.config.patch_size_t
        if p_t is not None and (k + 1) % p_t:
            k += p_t - (k + 1) % p_t
        return k * self.vae_scale_factor_temporal + 1

    def check_inputs(self, character, background_video, mask_video, pose_videos, num_frames,
                     num_inference_steps, guidance_scale, window, overlap, output_type,
                     callback_on_step_end_tensor_inputs):
        """Convert and check the inputs.

        Returns:
            ``(character [H, W, 4], background [F, H, W, 3], mask [F, H, W, 3],
            poses {face, hand, body: [F, H, W, 3]})`` as float32 in [0, 1].
        """
        if num_inference_steps < 1:
            raise ValueError(f"`num_inference_steps` must be >= 1, got {num_inference_steps}")
        if not guidance_scale >= 1:  # also refuses NaN
            raise ValueError(
                f"`guidance_scale` must be >= 1 (1 = no guidance), got {guidance_scale}")
        if output_type not in ("np", "pt", "pil", "latent"):
            raise ValueError(
                f"`output_type` must be 'np', 'pt', 'pil' or 'latent', got {output_type!r}")
        if callback_on_step_end_tensor_inputs is not None and not set(
                callback_on_step_end_tensor_inputs) <= set(self._callback_tensor_inputs):
            raise ValueError(f"`callback_on_step_end_tensor_inputs` must be in "
                             f"{self._callback_tensor_inputs}, "
                             f"got {callback_on_step_end_tensor_inputs}")

        character = _as_tensor(character, "character")
        if character.ndim != 3 or character.shape[-1] not in (3, 4):
            raise ValueError(f"`character` must be an RGBA image [H, W, 4], got shape "
                             f"{tuple(character.shape)}")
        if character.shape[-1] != 4:
            raise ValueError("`character` has no alpha channel: pass the RGBA cut-out "
                             "(the scene stage segments the character first)")

        if not isinstance(pose_videos, dict) or set(pose_videos) != set(POSE_KEYS):
            got = sorted(pose_videos) if isinstance(pose_videos, dict) else type(pose_videos)
            raise ValueError(f"`pose_videos` must be a dict with keys {list(POSE_KEYS)}, got {got}")
        videos = {"background_video": _as_tensor(background_video, "background_video"),
                  "mask_video": _as_tensor(mask_video, "mask_video")}
        for key in POSE_KEYS:
            videos[f"pose_videos['{key}']"] = _as_tensor(pose_videos[key], f"pose_videos['{key}']")
        mask = videos["mask_video"]
        if mask.ndim == 3:
            mask = mask[..., None]
        if mask.ndim == 4 and mask.shape[-1] == 1:
            mask = mask.expand(-1, -1, -1, 3)
        videos["mask_video"] = mask
        for name, video in videos.items():
            if video.ndim != 4 or video.shape[-1] != 3:
                raise ValueError(f"`{name}` must be a video [F, H, W, 3] (the mask may be "
                                 f"[F, H, W]), got shape {tuple(video.shape)}")
        counts = {name: video.shape[0] for name, video in videos.items()}
        if len(set(counts.values())) > 1:
            raise ValueError(f"the input videos have different frame counts: {counts}")
        sizes = {name: tuple(video.shape[1:3]) for name, video in videos.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"the input videos have different sizes: {sizes}")
        available = videos["background_video"].shape[0]
        if num_frames is not None and not 1 <= num_frames <= available:
            raise ValueError(f"`num_frames` must be in [1, {available}] (the input videos' "
                             f"frames), got {num_frames}")

        if window is not None:
            if window < 1 or not 0 <= overlap < window:
                raise ValueError(f"`window` must be >= 1 and `overlap` in [0, window), got "
                                 f"window={window}, overlap={overlap}")
            p_t = self.transformer.config.patch_size_t
            if p_t is not None and (window % p_t or overlap % p_t):
                raise ValueError(f"with patch_size_t={p_t}, `window` and `overlap` must be "
                                 f"multiples of {p_t} latent frames, got window={window}, "
                                 f"overlap={overlap}")
        poses = {key: videos[f"pose_videos['{key}']"] for key in POSE_KEYS}
        return character, videos["background_video"], videos["mask_video"], poses

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """VAE latents of videos in [0, 1], scaled as the image-to-video pipeline does.

        Args:
            video: ``[B, F, 3, H, W]``.

        Returns:
            ``[B, F', C, h, w]`` with ``F' = (F - 1) / 4 + 1``.
        """
        x = (video * 2 - 1).permute(0, 2, 1, 3, 4).to(self.vae.device, self.vae.dtype)
        latents = self.vae.encode(x).latent_dist.mode().permute(0, 2, 1, 3, 4)
        if self.vae.config.invert_scale_latents:
            return latents / self.vae_scaling_factor_image
        return latents * self.vae_scaling_factor_image

    def encode_character_image(self, image: torch.Tensor) -> torch.Tensor:
        """CLIP tokens of the composited character: the penultimate hidden states.

        Args:
            image: ``[H, W, 3]`` in [0, 1].

        Returns:
            ``[1, L, hidden]``.
        """
        pixels = self.feature_extractor(images=image.cpu().numpy(), do_rescale=False,
                                        return_tensors="pt").pixel_values
        encoder = self.image_encoder
        pixels = pixels.to(encoder.device, encoder.dtype)
        return encoder(pixels, output_hidden_states=True).hidden_states[-2]

    def encode_conditions(self, character: torch.Tensor, background: torch.Tensor,
                          mask: torch.Tensor, poses: dict[str, torch.Tensor],
                          target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The model's conditions, as inference and training both build them.

        Args:
            character: the RGBA cut-out, straight alpha in [0, 1].  [B, H, W, 4]
            background: the background video in [0, 1].  [B, F, 3, H, W]
            mask: the inpainting mask video in {0, 1}, three equal channels.  [B, F, 3, H, W]
            poses: ``{key: [B, F, 3, H, W]}`` for every key of ``POSE_KEYS``.
            target: the clip itself (training), encoded in the same VAE batch.  [B, F, 3, H, W]

        Returns:
            ``background [B, F', 32, h, w]`` (background latents, then mask latents), ``pose
            [B, F', 48, h, w]`` (in ``POSE_KEYS`` order), ``character [B, F', 16, h, w]`` (the
            composite's latent at every latent frame), ``image_embeds [B, L, D]`` (CLIP tokens
            of the composite), and ``latents [B, F', 16, h, w]`` when ``target`` is given; in
            the VAE's and the image encoder's dtypes.
        """
        b = background.shape[0]
        videos = [background, mask, *(poses[k] for k in POSE_KEYS)]
        videos += [] if target is None else [target]
        latents = self.encode_video(torch.cat(videos))  # [(5|6)·B, F', 16, h, w]
        bg, mask_latents, *rest = latents.split(b)
        n = bg.shape[1]
        composite = composite_on_grey(character)  # [B, H, W, 3]
        character_latent = self.encode_video(composite.permute(0, 3, 1, 2)[:, None])  # [B, 1, 16, h, w]
        out = {"background": torch.cat([bg, mask_latents], 2),
               "pose": torch.cat(rest[:len(POSE_KEYS)], 2),
               "character": repeat_character(character_latent, n),
               "image_embeds": torch.cat([self.encode_character_image(c) for c in composite])}
        if target is not None:
            out["latents"] = rest[-1]
        return out

    def predict(self, latents, background, pose_tokens, character_tokens, image_embeds, t, ofs,
                rotary, attention_kwargs) -> torch.Tensor:
        """One guided v-prediction on one window of latent time.

        With guidance, the conditional and the unconditional branch are one transformer call on
        the doubled batch ``[conditional, unconditional]``; the unconditional samples leave the
        pose and character terms out through ``keep_pose`` / ``keep_character``.

        Args:
            latents: the window's noisy latents. [B, F, 16, h, w]
            background: background and mask latents. [B, F, 32, h, w]
            pose_tokens: the window's ``condition_tokens`` for the pose. [B, N, D]
            character_tokens: the window's ``condition_tokens`` for the character. [B, N, D]
            image_embeds: CLIP tokens of the character. [B, L, C_clip]
            t: the timestep (a scalar tensor).

        Returns:
            The guided velocity, float32. [B, F, 16, h, w]
        """
        batch_size = latents.shape[0]
        latent_input = self.scheduler.scale_model_input(latents, t)  # [B, F, 16, h, w]
        keep = None
        if self.do_classifier_free_guidance:
            latent_input, background, pose_tokens, character_tokens, image_embeds = (
                x.expand(2 * batch_size, *x.shape[1:])  # [2B, ...], no copy
                for x in (latent_input, background, pose_tokens, character_tokens, image_embeds))
            keep = torch.arange(2 * batch_size, device=latents.device) < batch_size  # [2B]
        prediction = self.transformer(
            hidden_states=latent_input, background=background,
            timestep=t.expand(latent_input.shape[0]), image_embeds=image_embeds, ofs=ofs,
            image_rotary_emb=rotary, attention_kwargs=attention_kwargs, return_dict=False,
            pose_tokens=pose_tokens, character_tokens=character_tokens, keep_pose=keep,
            keep_character=keep,
        )[0].float()  # [B or 2B, F, 16, h, w]
        if self.do_classifier_free_guidance:
            conditional, unconditional = prediction.chunk(2)  # [B, F, 16, h, w] each
            prediction = unconditional + self.guidance_scale * (conditional - unconditional)
        return prediction

    @torch.no_grad()
    def __call__(
        self,
        character: np.ndarray | torch.Tensor | PIL.Image.Image,
        background_video: np.ndarray | torch.Tensor,
        mask_video: np.ndarray | torch.Tensor,
        pose_videos: dict[str, np.ndarray | torch.Tensor],
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 3.0,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        window: int | None = None,
        overlap: int = 4,
        output_type: str = "np",
        return_dict: bool = True,
        attention_kwargs: dict | None = None,
        callback_on_step_end: Callable[[DiffusionPipeline, int, torch.Tensor, dict], dict]
        | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> DreamDancePipelineOutput | tuple:
        r"""Animate the character into the background video.

        Images and videos are uint8 or float in [0, 1], numpy or torch, channels last.

        Args:
            character: the RGBA cut-out of the character (PIL images too).  [H, W, 4]
            background_video: the coarse background video.  [F, H, W, 3]
            mask_video: the inpainting mask, 1 where the character may be painted.
                [F, H, W] or [F, H, W, 3]
            pose_videos: ``{"face", "hand", "body"}`` rendered pose videos.  [F, H, W, 3] each
            num_frames: frames to generate, at most F (default F); returned exactly.
            height, width: output size in pixels (default the videos'), rounded to the nearest
                multiple of ``pixel_multiple`` (16) with a warning.
            num_inference_steps: DDIM steps, >= 1.
            guidance_scale: classifier-free guidance weight, >= 1; 1 disables guidance (a
                batch of one per transformer call instead of two).
            eta: DDIM's eta.
            generator: for the initial noise.
            latents: initial noise instead of drawing it.  [1, F', C, h, w]
            window: latent frames per window for long videos (None: the whole video at once);
                even for the 1.5 layout.
            overlap: latent frames shared by neighbouring windows, in [0, window).
            output_type: ``"np"``, ``"pt"``, ``"pil"`` or ``"latent"``.
            return_dict: return a :class:`DreamDancePipelineOutput` rather than a tuple.
            attention_kwargs: passed to the transformer.
            callback_on_step_end: ``callback(pipe, step, t, {name: tensor})`` after each step;
                may return a replacement ``latents``.
            callback_on_step_end_tensor_inputs: tensors given to the callback (``["latents"]``).
        """
        if callback_on_step_end_tensor_inputs is None:
            callback_on_step_end_tensor_inputs = ["latents"]

        # 1. Check inputs
        character, background, mask, poses = self.check_inputs(
            character, background_video, mask_video, pose_videos, num_frames,
            num_inference_steps, guidance_scale, window, overlap, output_type,
            callback_on_step_end_tensor_inputs)
        num_frames = num_frames or background.shape[0]
        height = height or background.shape[1]
        width = width or background.shape[2]
        m = self.pixel_multiple
        rounded = (max(m, round(height / m) * m), max(m, round(width / m) * m))
        if rounded != (height, width):
            log.warning("height x width %d x %d is not a multiple of %d: using %d x %d",
                        height, width, m, *rounded)
        height, width = rounded
        self._guidance_scale = guidance_scale
        self._interrupt = False
        device = self._execution_device
        dtype = self.transformer.dtype

        # 2. Encode the conditions, once, as training does (the videos padded to a valid frame
        # count by repeating the last frame; one video at a time with enable_vae_slicing)
        padded = self.padded_frames(num_frames)
        index = torch.arange(padded).clamp(max=num_frames - 1)

        def video(v: torch.Tensor) -> torch.Tensor:  # [F, H, W, 3] -> [1, F'', 3, height, width]
            return _resize(v[:num_frames][index], height, width)[None].to(device)

        character = _resize(character[None], height, width).permute(0, 2, 3, 1).to(device)
        encoded = self.encode_conditions(character, video(background), video(mask),
                                         {k: video(v) for k, v in poses.items()})
        background_latents = encoded["background"].to(dtype)  # [1, F', 32, h, w]
        pose_latents = encoded["pose"].to(dtype)  # [1, F', 48, h, w]
        character_latents = encoded["character"].to(dtype)  # [1, F', 16, h, w]
        image_embeds = encoded["image_embeds"].to(device, dtype)  # [1, L, D]
        n_latent = pose_latents.shape[1]

        # 3. Timesteps
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)

        # 4. Latents
        shape = (1, n_latent, self.vae.config.latent_channels, *pose_latents.shape[-2:])
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"`latents` must have shape {shape}, got {tuple(latents.shape)}")
        latents = latents.to(device, dtype) * self.scheduler.init_noise_sigma

        # 5. Windows, rotary embeddings and ofs
        slices = window_slices(n_latent, window or n_latent, overlap if window else 0)
        weights = blend_weights(slices, n_latent).to(device)
        rotary = {}
        for s in slices:
            length = s.stop - s.start
            if self.transformer.config.use_rotary_positional_embeddings and length not in rotary:
                rotary[length] = self.transformer.rotary_embedding(
                    length, *pose_latents.shape[-2:], device)
        hook = getattr(self.transformer, "_hf_hook", None)
        if hook is not None:  # model CPU offload: bring the transformer in before its first use
            hook.pre_forward(self.transformer)
        conditions = [self.transformer.condition_tokens(pose_latents[:, s], character_latents[:, s])
                      for s in slices]  # (pose [1, N, D], character [1, N, D]) per window
        ofs = self.transformer.ofs_condition()
        ofs = None if ofs is None else latents.new_full((1,), fill_value=ofs)
        extra_step_kwargs = {}
        if "eta" in inspect.signature(self.scheduler.step).parameters:
            extra_step_kwargs["eta"] = eta
        if "generator" in inspect.signature(self.scheduler.step).parameters:
            extra_step_kwargs["generator"] = generator

        # 6. Denoising loop: every window predicts on its slice, the predictions are blended
        with self.progress_bar(total=num_inference_steps) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                predictions = [
                    self.predict(latents[:, s], background_latents[:, s], *tokens, image_embeds,
                                 t, ofs, rotary.get(s.stop - s.start), attention_kwargs)
                    for s, tokens in zip(slices, conditions, strict=True)]
                prediction = aggregate(predictions, slices, weights)
                latents = self.scheduler.step(prediction, t, latents, **extra_step_kwargs,
                                              return_dict=False)[0].to(dtype)

                if callback_on_step_end is not None:
                    tensors = {"latents": latents}
                    callback_kwargs = {k: tensors[k] for k in callback_on_step_end_tensor_inputs}
                    outputs = callback_on_step_end(self, i, t, callback_kwargs) or {}
                    latents = outputs.pop("latents", latents)
                progress_bar.update()

        # 7. Decode and trim to the requested frames
        if output_type == "latent":
            video = latents
        else:
            decoded = self.vae.decode(latents.permute(0, 2, 1, 3, 4).to(self.vae.dtype)
                                      / self.vae_scaling_factor_image).sample
            decoded = decoded[:, :, :num_frames].float()  # [1, 3, num_frames, H, W]
            video = self.video_processor.postprocess_video(video=decoded, output_type=output_type)

        # 8. Offload all models
        self.maybe_free_model_hooks()

        if not return_dict:
            return (video,)
        return DreamDancePipelineOutput(frames=video)
