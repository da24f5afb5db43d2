"""Image inpainting: fill a hole (where the character stood, or a disocclusion) in an RGB image.

Every inpainter is a small class built by Hydra (``conf/inpainter/``) and called as

    filled = inpainter(rgb, mask, prompt)   # rgb [H, W, 3] float32 in [0, 1], mask [H, W] bool

``mask`` is True where pixels are to be filled; ``prompt`` describes the scene (None: a generic
one). Known pixels come back unchanged: exactly everywhere for :class:`OpenCVInpainter`,
exactly outside a feathered band around the hole for :class:`SDXLInpainter`.

Backends:

- :class:`ExemplarInpainter` — a smooth structure plus texture copied from the image by
  PatchMatch (CPU, no weights, no prompt; :mod:`dreamdance.scene.exemplar`), the CPU default;
- :class:`OpenCVInpainter` — Telea / Navier-Stokes diffusion (CPU, no weights, no prompt);
- :class:`SDXLInpainter` — Stable Diffusion XL inpainting, the paper's inpainter, run on a
  context crop around the hole (as Fooocus does) and blended back.
"""

from __future__ import annotations

import logging
import math
import numbers
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dreamdance.errors import InputError
from dreamdance.inputs import resolve_device, resolve_dtype
from dreamdance.media import to_uint8
from dreamdance.scene import exemplar
from dreamdance.weights import ModelSpec, require_dir

log = logging.getLogger(__name__)

SDXL_INPAINT = ModelSpec(
    key="weights.sdxl_inpaint",
    name="SDXL inpainting (diffusers/stable-diffusion-xl-1.0-inpainting-0.1)",
    repo="diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
    marker="model_index.json",
    accept=("StableDiffusionXL",),
)
_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
_U16 = 65535.0


class OpenCVInpainter:
    """OpenCV's fast-marching (Telea) or Navier-Stokes inpainting; ignores the prompt.

    Each channel is inpainted at 16 bits, so no 8-bit rounding reaches the filled pixels, and
    known pixels are copied back bit for bit.

    Args:
        method: ``telea`` or ``ns``.
        radius: neighbourhood radius in pixels each filled pixel draws from, > 0.
    """

    def __init__(self, method: str = "telea", radius: float = 5):
        if method not in _METHODS:
            raise InputError(f"inpainter.method={method}", "must be telea or ns")
        _check_number(radius, "inpainter.radius", low=0.0, strict=True)
        self.method, self.radius = method, float(radius)

    def __call__(self, rgb: np.ndarray, mask: np.ndarray, prompt: str | None = None) -> np.ndarray:
        """Args: rgb ``[H, W, 3]``; mask ``[H, W]`` (True = fill). Returns ``[H, W, 3]`` float32."""
        rgb, hole = _check_fill(rgb, mask)
        out = rgb.copy()
        if not hole.any():
            return out
        holes = hole.astype(np.uint8)
        levels = np.rint(np.clip(rgb, 0.0, 1.0) * _U16).astype(np.uint16)  # (H, W, 3)
        for c in range(3):
            filled = cv2.inpaint(np.ascontiguousarray(levels[..., c]), holes, self.radius,
                                 _METHODS[self.method])
            out[..., c][hole] = filled[hole].astype(np.float32) / np.float32(_U16)
        return out


class ExemplarInpainter:
    """Exemplar-based fill (:func:`dreamdance.scene.exemplar.fill`); ignores the prompt.

    Known pixels come back bit for bit; the filled ones are clipped to ``[0, 1]``.

    Args:
        patch: patch side in pixels, odd, >= 3.
        sigma: blur (pixels) splitting the structure from the texture that is copied, > 0.
        energy: how much the texture's local strength counts when sources are chosen, >= 0.
        search: PatchMatch rounds per search, >= 1.
        refine: search-and-vote rounds matching on the texture itself, >= 0.
        components: PCA dimensions patches are compared in, >= 1.
        seed: seed of the random search.
        agree: colour distance at which a row's (column's) two ends across the hole stop
            counting as one stratum, > 0.
        membrane: weight of the membrane fill beside the strata, > 0.
    """

    def __init__(self, patch: int = 7, sigma: float = 4.0, energy: float = 0.3, search: int = 3,
                 refine: int = 3, components: int = 16, seed: int = 0, agree: float = 0.05,
                 membrane: float = 0.05):
        _check_int(patch, "inpainter.patch", 3)
        if patch % 2 == 0:
            raise InputError(f"inpainter.patch={patch}", "must be odd")
        _check_number(sigma, "inpainter.sigma", low=0.0, strict=True)
        _check_number(energy, "inpainter.energy", low=0.0)
        _check_int(search, "inpainter.search", 1)
        _check_int(refine, "inpainter.refine", 0)
        _check_int(components, "inpainter.components", 1)
        _check_int(seed, "inpainter.seed", 0)
        _check_number(agree, "inpainter.agree", low=0.0, strict=True)
        _check_number(membrane, "inpainter.membrane", low=0.0, strict=True)
        self.options = {"patch": patch, "sigma": float(sigma), "energy": float(energy),
                        "search": search, "refine": refine, "components": components,
                        "seed": seed, "agree": float(agree), "membrane": float(membrane)}

    def __call__(self, rgb: np.ndarray, mask: np.ndarray, prompt: str | None = None) -> np.ndarray:
        """Args: rgb ``[H, W, 3]``; mask ``[H, W]`` (True = fill). Returns ``[H, W, 3]`` float32."""
        rgb, hole = _check_fill(rgb, mask)
        out = rgb.copy()
        if not hole.any():
            return out
        filled = exemplar.fill(rgb, hole, **self.options)
        out[hole] = np.clip(filled[hole], 0.0, 1.0)
        return out


class SDXLInpainter:
    """Stable Diffusion XL inpainting on a context crop around the hole, blended back.

    Procedure (after Fooocus' inpaint mode):

    1. pre-fill the hole with OpenCV Telea, so the model starts from plausible colours;
    2. take a square box around the hole's bounding box, its side ``(1 + 2 * context)`` times
       the box's long side (and at least ``2 * feather + 2`` pixels of margin), shifted and, if
       larger than the image, clipped to fit; resize it so its long side is ``max_side`` (both
       sides multiples of 8), giving SDXL its native resolution whatever the hole's size;
    3. inpaint there the hole grown by ``feather`` pixels, with ``prompt`` and
       ``negative_prompt``, seeded by ``seed``;
    4. resize the result back and blend it in with a weight of 1 over the hole that falls off
       (dilation by ``feather`` then a Gaussian blur of ``feather`` pixels) to 0 at ``2 *
       feather`` pixels from it: a pixel whose distance ``max(|dx|, |dy|)`` to the nearest
       hole pixel exceeds ``2 * feather`` is the input's, exactly.

    The pipeline is loaded on the first call; the folder is checked at construction.

    Args:
        path: the weights folder (``weights.sdxl_inpaint``), a diffusers SDXL pipeline folder:
            the inpainting model, or an SDXL base model.
        device: ``auto``, ``cpu`` or ``cuda``.
        steps: denoising steps.
        guidance: classifier-free guidance scale (>= 0; <= 1 turns guidance off).
        strength: how far the start is noised, in (0, 1]; ``steps * strength >= 1``.
        negative_prompt: what the fill must not show (people, text, ...).
        seed: seed of the noise (the same seed gives the same fill).
        max_side: long side of the working crop in pixels, a multiple of 8.
        context: margin around the hole's box on each side, as a fraction of its long side.
        feather: width of the blend band in pixels (0: a hard edge at the hole).
        dtype: ``auto`` (float16 on CUDA, float32 on CPU), ``float32``, ``float16``,
            ``bfloat16``.
        variant: weights variant to load (e.g. ``fp16`` for ``*.fp16.safetensors``), or None.
    """

    def __init__(
        self,
        path: str | Path | None,
        negative_prompt: str | None,
        device: str = "auto",
        steps: int = 30,
        guidance: float = 7.0,
        strength: float = 0.99,
        seed: int = 0,
        max_side: int = 1024,
        context: float = 0.25,
        feather: int = 8,
        dtype: str = "auto",
        variant: str | None = None,
    ):
        self.path = require_dir(path, SDXL_INPAINT)
        _check_int(steps, "inpainter.steps", low=1)
        _check_number(guidance, "inpainter.guidance", low=0.0)
        _check_number(strength, "inpainter.strength", low=0.0, strict=True)
        if strength > 1:
            raise InputError(f"inpainter.strength={strength}", "must be in (0, 1]")
        if int(steps * strength) < 1:
            raise InputError(f"inpainter.strength={strength}",
                             f"with inpainter.steps={steps} leaves no denoising step "
                             "(steps * strength must be >= 1)")
        _check_int(seed, "inpainter.seed", low=-(2**63))
        _check_int(max_side, "inpainter.max_side", low=64)
        if max_side % 8:
            raise InputError(f"inpainter.max_side={max_side}", "must be a multiple of 8")
        _check_number(context, "inpainter.context", low=0.0)
        _check_int(feather, "inpainter.feather", low=0)
        if negative_prompt is not None and not isinstance(negative_prompt, str):
            raise InputError(f"inpainter.negative_prompt={negative_prompt}",
                             "must be text or null")
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device, "inpainter.dtype")
        self.steps, self.guidance, self.strength = int(steps), float(guidance), float(strength)
        self.negative_prompt, self.seed = negative_prompt, int(seed)
        self.max_side, self.context, self.feather = int(max_side), float(context), int(feather)
        self.variant = variant
        self.pipe: Any = None

    def load(self) -> Any:
        """Load the diffusers pipeline from the folder (once) and return it, on ``device``."""
        if self.pipe is None:
            from diffusers import StableDiffusionXLInpaintPipeline

            self.pipe = StableDiffusionXLInpaintPipeline.from_pretrained(
                self.path, local_files_only=True, trust_remote_code=False, dtype=self.dtype,
                variant=self.variant)
            self.pipe.to(self.device)
            self.pipe.set_progress_bar_config(desc="SDXL inpainting", leave=False)
            log.info("SDXL inpainting loaded from %s (%s, %s)", self.path, self.device,
                     self.dtype)
        return self.pipe

    def __call__(self, rgb: np.ndarray, mask: np.ndarray, prompt: str | None = None) -> np.ndarray:
        """Args: rgb ``[H, W, 3]``; mask ``[H, W]`` (True = fill); prompt: the scene (the
        caption; needed).

        Returns:
            ``[H, W, 3]`` float32 in [0, 1].
        """
        import torch
        from PIL import Image

        rgb, hole = _check_inputs(rgb, mask)
        if not hole.any():
            return rgb.copy()
        if prompt is None:
            raise ValueError("SDXL inpainting needs a prompt (the scene's caption)")
        prompt = str(prompt)
        h, w = hole.shape
        if hole.all():  # nothing to pre-fill from: start from mid grey
            filled = np.full_like(rgb, 0.5)
        else:
            filled = OpenCVInpainter("telea", radius=5)(rgb, hole)  # (H, W, 3)
        grown = _dilate(hole, self.feather)  # (H, W) bool: what SDXL repaints
        x0, y0, x1, y1 = context_box(hole, self.context, margin=2 * self.feather + 2)
        cw, ch = x1 - x0, y1 - y0
        tw, th = working_size(cw, ch, self.max_side)
        crop = cv2.resize(filled[y0:y1, x0:x1], (tw, th), interpolation=_interp(cw, tw))
        crop_mask = cv2.resize(grown[y0:y1, x0:x1].astype(np.float32), (tw, th),
                               interpolation=cv2.INTER_LINEAR)
        log.info("SDXL inpainting a %dx%d crop at %d,%d (worked at %dx%d): %r",
                 cw, ch, x0, y0, tw, th, prompt)
        pipe = self.load()
        out = pipe(
            prompt=prompt,
            negative_prompt=self.negative_prompt,
            image=Image.fromarray(to_uint8(crop)),
            mask_image=Image.fromarray(to_uint8(crop_mask), "L"),
            height=th,
            width=tw,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            strength=self.strength,
            generator=torch.Generator("cpu").manual_seed(self.seed),
            output_type="np",
        ).images[0]  # (th, tw, 3) in [0, 1]
        out = np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)
        out = cv2.resize(out, (cw, ch), interpolation=_interp(tw, cw))
        generated = filled.copy()
        generated[y0:y1, x0:x1] = np.clip(out, 0.0, 1.0)
        weight = blend_weight(hole, self.feather)  # (H, W) in [0, 1]
        weight[:y0], weight[y1:], weight[:, :x0], weight[:, x1:] = 0, 0, 0, 0
        weight = np.maximum(weight, hole.astype(np.float32))[..., None]
        blended = weight * generated + (1.0 - weight) * rgb
        return np.where(weight > 0, blended, rgb).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Geometry of the context crop and the blend


def context_box(hole: np.ndarray, context: float, margin: int = 0) -> tuple[int, int, int, int]:
    """The crop ``(x0, y0, x1, y1)`` SDXL works on: a square around the hole, inside the image.

    The side is ``max(ceil(L * (1 + 2 * context)), L + 2 * margin)`` for the long side ``L``
    of the hole's bounding box; the square is centred on the box, shifted to lie inside the
    image, and clipped along an axis where the image is shorter than the side. It always
    contains the hole's bounding box.

    Args:
        hole: ``[H, W]`` bool with at least one True.
        context: margin on each side, as a fraction of ``L``.
        margin: a minimum margin on each side in pixels.
    """
    ys, xs = np.nonzero(hole)
    if ys.size == 0:
        raise ValueError("hole is empty")
    h, w = hole.shape
    bx0, bx1, by0, by1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    long_side = max(bx1 - bx0, by1 - by0)
    side = max(math.ceil(long_side * (1.0 + 2.0 * context)), long_side + 2 * margin)

    def span(lo: int, hi: int, limit: int) -> tuple[int, int]:
        if side >= limit:
            return 0, limit
        start = round((lo + hi) / 2 - side / 2)
        start = min(max(start, 0), limit - side)
        return start, start + side

    x0, x1 = span(bx0, bx1, w)
    y0, y1 = span(by0, by1, h)
    return x0, y0, x1, y1


def working_size(width: int, height: int, max_side: int, multiple: int = 8) -> tuple[int, int]:
    """``(W', H')``: the long side ``max_side``, the aspect kept, both multiples of ``multiple``."""
    scale = max_side / max(width, height)
    return (max(multiple, round(width * scale / multiple) * multiple),
            max(multiple, round(height * scale / multiple) * multiple))


def blend_weight(hole: np.ndarray, feather: int) -> np.ndarray:
    """``[H, W]`` float32: 1 on the hole, falling to exactly 0 at ``2 * feather`` pixels off it.

    The hole is dilated by ``feather`` pixels (a disc) and blurred with a ``2 * feather + 1``
    square Gaussian kernel, then raised to 1 on the hole itself. The weight is 0 wherever the
    Chebyshev distance (``max(|dx|, |dy|)``) to the hole exceeds ``2 * feather``.
    """
    weight = hole.astype(np.float32)
    if feather > 0:
        k = 2 * feather + 1
        weight = cv2.GaussianBlur(_dilate(hole, feather).astype(np.float32), (k, k), 0,
                                  borderType=cv2.BORDER_REPLICATE)
        weight[weight < 1e-6] = 0.0
    return np.maximum(weight, hole.astype(np.float32))


def _dilate(hole: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return hole.copy()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(hole.astype(np.uint8), disc) > 0


def _interp(src: int, dst: int) -> int:
    return cv2.INTER_AREA if dst < src else cv2.INTER_CUBIC


# --------------------------------------------------------------------------------------------
# Helpers


def _check_inputs(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rgb [H, W, 3]`` as float32 and ``mask [H, W]`` as bool (non-bool: ``>= 0.5``)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"rgb must be [H, W, 3], got shape {rgb.shape}")
    if not np.issubdtype(rgb.dtype, np.floating) or not np.isfinite(rgb).all():
        raise ValueError(f"rgb must be finite floats in [0, 1], got {rgb.dtype}")
    mask = np.asarray(mask)
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask must be [H, W] = {rgb.shape[:2]}, got shape {mask.shape}")
    hole = mask if mask.dtype == bool else mask >= 0.5
    return rgb.astype(np.float32, copy=False), hole


def _check_fill(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_check_inputs`, refusing a mask over the whole image (nothing to fill from)."""
    rgb, hole = _check_inputs(rgb, mask)
    if hole.all():
        raise ValueError("mask covers the whole image: there is nothing to fill it from")
    return rgb, hole


def _check_int(value: Any, key: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InputError(f"{key}={value}", f"must be an integer >= {low}")


def _check_number(value: Any, key: str, low: float, strict: bool = False) -> None:
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value) and (value > low if strict else value >= low))
    if not ok:
        raise InputError(f"{key}={value}", f"must be a number {'>' if strict else '>='} {low:g}")
