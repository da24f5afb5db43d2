"""``model=wan_animate``: Wan2.2-Animate (diffusers' ``WanAnimatePipeline``) from a local folder.

A public model that does the paper's pose-aware video inpainting. In ``replace`` mode it paints
the posed character into our scene's background video where our mask is white; in ``animate``
mode the character is animated with its own art as the scene (no scene stage needed). Its
conditions are made as Wan2.2's preprocessing makes them (:mod:`.wan_conditions`): the pose video
in Wan-Animate's skeleton drawing, the face video as square crops around the face landmarks of
the driving video (or, without one, of the art), the reference image, and a prompt from the
scene's caption.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dreamdance.animate.backend import AnimateInputs, AnimateOutput
from dreamdance.errors import InputError
from dreamdance.inputs import resolve_dtype
from dreamdance.weights import ModelSpec, require_dir

log = logging.getLogger(__name__)

WAN_ANIMATE = ModelSpec("weights.wan_animate", "Wan2.2-Animate-14B in the diffusers layout",
                        "Wan-AI/Wan2.2-Animate-14B-Diffusers", marker="model_index.json",
                        accept=("WanAnimatePipeline",))
MODES = ("replace", "animate")
OFFLOAD = ("none", "model", "group")
DTYPES = ("float32", "bfloat16")  # the Wan VAE encodes in float32 whatever the model's dtype


def valid_frames(n: int, temporal: int = 4) -> int:
    """The smallest frame count ``>= n`` of the form ``temporal·k + 1`` (what the VAE takes)."""
    return ((max(n, 1) - 1 + temporal - 1) // temporal) * temporal + 1


def pad_frames(video: np.ndarray, n: int) -> np.ndarray:
    """``video [T, ...]`` with its last frame repeated up to ``n`` frames. [n, ...]"""
    assert len(video) >= 1 and n >= len(video), (len(video), n)
    return np.concatenate([video, np.repeat(video[-1:], n - len(video), 0)])


class WanAnimate:
    """Wan2.2-Animate as an animate backend.

    Args:
        name: the option's name, for messages.
        path: the pipeline folder (``weights.wan_animate``).
        mode: ``replace`` (into the scene's background, where the mask is) or ``animate``
            (the art's own scene; no scene stage).
        steps: denoising steps.
        guidance: classifier-free guidance (1: none, the model's default).
        segment_frames: frames generated per segment (``segment_frame_length``, 4k + 1).
        prev_frames: frames of the previous segment that condition the next
            (``prev_segment_conditioning_frames``: 1 or 5).
        dtype: float32 | bfloat16 (:func:`dreamdance.inputs.resolve_dtype`): the transformer's
            and encoders'; the VAE stays float32.
        offload: none | model (diffusers' model CPU offload) | group (group offload by block,
            the least GPU memory); CUDA only.
        vae_tiling: decode the VAE in tiles.
        negative_prompt: what the model should avoid.
        prompt: the text prompt; empty: the scene's caption.
    """

    def __init__(self, name: str = "wan_animate", path: str | None = None,
                 mode: str = "replace", steps: int = 20, guidance: float = 1.0,
                 segment_frames: int = 77, prev_frames: int = 1, dtype: str = "bfloat16",
                 offload: str = "none", vae_tiling: bool = True, negative_prompt: str = "",
                 prompt: str = ""):
        if mode not in MODES:
            raise InputError(f"model.mode={mode}", f"must be one of {', '.join(MODES)}")
        if offload not in OFFLOAD:
            raise InputError(f"model.offload={offload}", f"must be one of {', '.join(OFFLOAD)}")
        self.dtype = resolve_dtype(dtype, None, "model.dtype", DTYPES)
        if steps < 1:
            raise InputError(f"model.steps={steps}", "must be at least 1")
        if segment_frames < 5 or (segment_frames - 1) % 4:
            raise InputError(f"model.segment_frames={segment_frames}",
                             "must be 4k + 1 and at least 5 (e.g. 77)")
        if not 0 <= prev_frames < segment_frames or (prev_frames - 1) % 4:
            raise InputError(f"model.prev_frames={prev_frames}",
                             "must be 4k + 1 and below model.segment_frames (1 or 5)")
        self.folder = require_dir(path, WAN_ANIMATE)  # checked now, before anything is written
        self.name, self.mode, self.steps, self.guidance = name, mode, int(steps), float(guidance)
        self.segment_frames, self.prev_frames = int(segment_frames), int(prev_frames)
        self.offload, self.vae_tiling = offload, bool(vae_tiling)
        self.negative_prompt, self.prompt = negative_prompt, prompt
        self.needs_scene = mode == "replace"

    def pipeline(self, device: str) -> Any:
        """The pipeline from the folder, placed as ``offload`` says."""
        import torch
        from diffusers import AutoencoderKLWan, WanAnimatePipeline

        vae = AutoencoderKLWan.from_pretrained(self.folder, subfolder="vae",
                                               torch_dtype=torch.float32, local_files_only=True,
                                               trust_remote_code=False)
        pipe = WanAnimatePipeline.from_pretrained(self.folder, vae=vae, torch_dtype=self.dtype,
                                                  local_files_only=True, trust_remote_code=False)
        if self.vae_tiling:
            pipe.vae.enable_tiling()
        if device != "cuda" or self.offload == "none":
            return pipe.to(device)
        if self.offload == "model":
            pipe.enable_model_cpu_offload()
        else:
            for component in (pipe.transformer, pipe.text_encoder, pipe.image_encoder, pipe.vae):
                component.enable_group_offload(onload_device=torch.device("cuda"),
                                               offload_type="block_level",
                                               num_blocks_per_group=1)
        return pipe

    def conditions(self, inputs: AnimateInputs, face_size: int) -> dict[str, Any]:
        """The pipeline's inputs from ours: PIL frames padded to a valid count, and the
        reference image (see the module)."""
        from PIL import Image

        from dreamdance.animate.wan_conditions import face_crops, wan_pose_video
        from dreamdance.media import to_uint8

        n = valid_frames(inputs.num_frames)
        pose = pad_frames(wan_pose_video(inputs.poses), n)
        if inputs.driving is not None and inputs.driving_poses is not None:
            log.info("model=%s: face video cropped from the driving video", self.name)
            k = min(len(inputs.driving), len(inputs.driving_poses), inputs.num_frames)
            frames = inputs.driving[:k]
            try:
                faces = face_crops(frames, _first(inputs.driving_poses, k, frames.shape[1:3]),
                                   face_size)
            except ValueError as e:
                if "no face found" not in str(e):
                    raise
                raise InputError("motion/poses.json", f"{e} (nor a head in the body "
                                 "keypoints)") from None
        else:
            own = inputs.character_pose
            if own is None or not (own["face"][:, 2] > 0).any():
                raise InputError(f"model={self.name}", "needs a face to follow: give driving= "
                                 "(its faces) or character_pose= with face landmarks")
            log.info("model=%s: no driving video, so the face video is the art's own face, "
                     "held still", self.name)
            faces = face_crops(to_uint8(inputs.art)[None], _one(own, inputs.poses), face_size)
        faces = pad_frames(faces, n)
        frames = {"pose_video": pose, "face_video": faces}
        if self.mode == "replace":
            frames["background_video"] = pad_frames(to_uint8(inputs.background), n)
            frames["mask_video"] = pad_frames(np.where(inputs.masks, 255, 0).astype(np.uint8), n)
            reference = to_uint8(inputs.character[..., :3] * inputs.character[..., 3:]
                                 + (1 - inputs.character[..., 3:]))  # the cut-out on white
        else:
            reference = to_uint8(inputs.art)
        out = {key: [Image.fromarray(f) for f in video] for key, video in frames.items()}
        out["image"] = Image.fromarray(reference)
        return out

    def __call__(self, inputs: AnimateInputs) -> AnimateOutput:
        w, h = inputs.size
        if w % 16 or h % 16:
            raise InputError(f"model={self.name}", f"the working size {w}x{h} must be a "
                             "multiple of 16 (resolution= rounds to one)")
        return self.generate(self.pipeline(inputs.device), inputs)

    def call_kwargs(self, inputs: AnimateInputs) -> dict[str, Any]:
        """Everything but the frames that the pipeline call takes."""
        import torch

        w, h = inputs.size
        return dict(prompt=self.prompt or inputs.caption or "a character dancing",
                    negative_prompt=self.negative_prompt or None, height=h, width=w,
                    segment_frame_length=self.segment_frames, num_inference_steps=self.steps,
                    mode=self.mode, prev_segment_conditioning_frames=self.prev_frames,
                    guidance_scale=self.guidance,
                    generator=torch.Generator().manual_seed(inputs.seed), output_type="np")

    def generate(self, pipe: Any, inputs: AnimateInputs) -> AnimateOutput:
        """The animation by a loaded pipeline: conditions built once, exactly the frames."""
        face_size = pipe.transformer.config.motion_encoder_size
        out = pipe(**self.conditions(inputs, face_size), **self.call_kwargs(inputs))
        frames = np.asarray(out.frames[0], np.float32)[:inputs.num_frames]
        if len(frames) != inputs.num_frames:
            raise RuntimeError(f"model={self.name}: the pipeline returned {len(frames)} frames "
                               f"for {inputs.num_frames}")
        return AnimateOutput(np.clip(frames, 0, 1))


def _first(poses, k: int, size: tuple[int, int]):
    """The first ``k`` frames of a pose sequence, scaled to frames of ``size = (H, W)``."""
    from dreamdance.motion.poses import PARTS, PoseSequence

    h, w = size
    scale = np.array([w / poses.width, h / poses.height, 1], np.float32)
    return PoseSequence(**{p: getattr(poses, p)[:k] * scale for p in PARTS}, width=w, height=h,
                        fps=poses.fps, driver=poses.driver)


def _one(own: dict[str, np.ndarray], like):
    """The art's own pose as a one-frame sequence in the working frame of ``like``."""
    from dreamdance.motion.poses import PARTS, PoseSequence

    return PoseSequence(**{p: own[p][None, None] for p in PARTS}, width=like.width,
                        height=like.height, fps=like.fps)
