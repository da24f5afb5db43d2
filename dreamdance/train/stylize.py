"""Stylised reference frames: one frame of each person clip re-drawn as character art.

The animate model is trained on real dance clips but animates drawn characters. To close that
gap each person clip gets a stylised reference: one of its frames re-drawn in an illustration
style with the same structure, by SDXL with two ControlNets (depth and Canny edges). The result
is ``DATA/clips/NAME/style.png`` at the frame's size, and the clip's metadata records it
(``style``, ``style_frame``; see :mod:`dreamdance.train.layout`).

Image-to-image, not text-to-image: the denoising starts from the frame itself, noised to
``strength``, so the character keeps its clothing colours, hair and proportions (what makes it
*this* clip's character), while the ControlNets hold the pose and layout in place. A
text-to-image ControlNet run keeps only the structure and invents a new character each time.

Weights are local folders (never downloaded): an SDXL base pipeline and two SDXL ControlNets,
loaded with ``local_files_only=True``; the invisible watermarker is off (it needs an extra
package and changes pixels).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dreamdance.errors import InputError
from dreamdance.media import fit_size, probe_video, read_video, resize, save_image
from dreamdance.train.layout import ClipRecord, dataset_path, read_metadata, write_metadata
from dreamdance.weights import ModelSpec, require_dir

log = logging.getLogger(__name__)

SDXL = ModelSpec("sdxl", "Stable Diffusion XL base (stabilityai/stable-diffusion-xl-base-1.0)",
                 "stabilityai/stable-diffusion-xl-base-1.0", marker="model_index.json",
                 accept=("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
                         "StableDiffusionXLControlNet"))
CONTROLNET_DEPTH = ModelSpec("controlnet_depth", "an SDXL depth ControlNet "
                             "(diffusers/controlnet-depth-sdxl-1.0)",
                             "diffusers/controlnet-depth-sdxl-1.0", accept=("ControlNetModel",))
CONTROLNET_EDGE = ModelSpec("controlnet_edge", "an SDXL Canny-edge ControlNet "
                            "(diffusers/controlnet-canny-sdxl-1.0)",
                            "diffusers/controlnet-canny-sdxl-1.0", accept=("ControlNetModel",))

STYLE_FILE = "style.png"
FRAME_CHOICES = ("middle", "first")


@dataclass(frozen=True)
class StyleSettings:
    """How a frame is re-drawn.

    Attributes:
        prompt: the style, e.g. ``"anime illustration, flat colours, clean line art"``.
        negative_prompt: what to avoid.
        steps: denoising steps of the full schedule (``strength`` of them are run).
        strength: how far the frame is noised before re-drawing, in ``(0, 1]``.
        guidance: classifier-free guidance scale (``<= 1``: off).
        conditioning_scale: ``(depth, edge)`` ControlNet weights.
        resolution: long side of the working size (snapped to a multiple of 64); the result is
            resized back to the frame's size.
        edges: ``(low, high)`` thresholds of ``cv2.Canny`` on the 8-bit grey frame.
        seed: the noise seed (the same for every clip, so a clip's result does not depend on
            which other clips are done).
    """

    prompt: str = "anime illustration, flat colours, clean line art"
    negative_prompt: str = ("photo, photorealistic, 3d render, blurry, lowres, deformed, "
                            "extra limbs, watermark, text")
    steps: int = 30
    strength: float = 0.75
    guidance: float = 7.0
    conditioning_scale: tuple[float, float] = (0.5, 0.5)
    resolution: int = 1024
    edges: tuple[int, int] = (100, 200)
    seed: int = 0


# ---------------------------------------------------------------------------------------------
# Control images
# ---------------------------------------------------------------------------------------------


def depth_control(depth: np.ndarray) -> np.ndarray:
    """The depth ControlNet's input: inverse depth scaled to ``[0, 1]``, near = white.

    This is the form the SDXL depth ControlNets were trained on (normalised DPT/MiDaS
    disparity). A constant depth (e.g. the ``plane`` prior) gives a black image.

    Args:
        depth: z-depth, every value ``> 0``. [H, W]

    Returns:
        float32 grey as RGB in ``[0, 1]``. [H, W, 3]
    """
    assert depth.ndim == 2, depth.shape
    disparity = 1.0 / np.maximum(depth.astype(np.float64), 1e-6)  # [H, W]
    lo, hi = float(disparity.min()), float(disparity.max())
    scaled = (disparity - lo) / (hi - lo) if hi - lo > 1e-12 else np.zeros_like(disparity)
    return np.repeat(scaled.astype(np.float32)[..., None], 3, axis=2)


def edge_control(rgb: np.ndarray, low: int = 100, high: int = 200) -> np.ndarray:
    """The edge ControlNet's input: Canny edges of the grey frame, white on black.

    Args:
        rgb: uint8. [H, W, 3]
        low, high: ``cv2.Canny`` hysteresis thresholds.

    Returns:
        float32 in ``{0, 1}`` as RGB. [H, W, 3]
    """
    import cv2

    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8, (rgb.shape, rgb.dtype)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # [H, W]
    edges = cv2.Canny(grey, low, high) > 0  # [H, W]
    return np.repeat(edges.astype(np.float32)[..., None], 3, axis=2)


# ---------------------------------------------------------------------------------------------
# The re-drawing model
# ---------------------------------------------------------------------------------------------


def load_pipeline(sdxl: str | Path | None, controlnet_depth: str | Path | None,
                  controlnet_edge: str | Path | None, device: str, dtype: Any) -> Any:
    """SDXL ControlNet image-to-image with a ``MultiControlNetModel`` of (depth, edge).

    Every part comes from the local folders (``local_files_only=True``); nothing is downloaded.

    Args:
        sdxl: an SDXL base pipeline folder (``model_index.json``, ``unet/``, ``vae/``,
            ``text_encoder/``, ``text_encoder_2/``, ``tokenizer/``, ``tokenizer_2/``,
            ``scheduler/``).
        controlnet_depth, controlnet_edge: ``ControlNetModel`` folders.
        device: a torch device name.
        dtype: the torch dtype of every model.

    Raises:
        InputError: a folder is missing, not the expected model, or cannot be loaded.
    """
    from diffusers import (
        ControlNetModel,
        MultiControlNetModel,
        StableDiffusionXLControlNetImg2ImgPipeline,
    )

    folders = {spec: require_dir(path, spec) for spec, path in
               ((SDXL, sdxl), (CONTROLNET_DEPTH, controlnet_depth),
                (CONTROLNET_EDGE, controlnet_edge))}
    nets = [_load(ControlNetModel.from_pretrained, spec, folders[spec], dtype=dtype)
            for spec in (CONTROLNET_DEPTH, CONTROLNET_EDGE)]
    pipe = _load(StableDiffusionXLControlNetImg2ImgPipeline.from_pretrained, SDXL, folders[SDXL],
                 controlnet=MultiControlNetModel(nets), dtype=dtype,
                 add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _load(loader: Callable[..., Any], spec: ModelSpec, folder: Path, **kwargs: Any) -> Any:
    """``loader(folder, local_files_only=True, trust_remote_code=False, **kwargs)``; a folder
    it cannot read is an :class:`InputError` naming ``spec``'s key."""
    try:
        return loader(folder, local_files_only=True, trust_remote_code=False, **kwargs)
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{spec.key}={folder}",
                         f"cannot be loaded as {spec.name} ({first})") from None


class Stylizer:
    """Re-draws one frame: ``stylizer(rgb uint8 [H, W, 3]) -> uint8 [H, W, 3]``.

    Args:
        pipeline: from :func:`load_pipeline`.
        depth_model: a :mod:`dreamdance.scene.depth` estimator, ``(rgb float [H, W, 3]) ->
            DepthResult``.
        settings: :class:`StyleSettings`.
    """

    def __init__(self, pipeline: Any, depth_model: Callable[[np.ndarray], Any],
                 settings: StyleSettings):
        self.pipeline = pipeline
        self.depth_model = depth_model
        self.settings = settings

    def controls(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(depth, edge)`` control images of a working-size frame, float32 [h, w, 3] each."""
        depth = self.depth_model(rgb.astype(np.float32) / 255.0).depth  # [h, w]
        return depth_control(depth), edge_control(rgb, *self.settings.edges)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        import torch
        from PIL import Image

        assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8, (rgb.shape,
                                                                                rgb.dtype)
        s = self.settings
        h, w = rgb.shape[:2]
        work_w, work_h = fit_size((w, h), s.resolution, multiple=64)
        work = resize(rgb, (work_w, work_h), interpolation="area")  # [h', w', 3] uint8
        depth, edges = self.controls(work)
        out = self.pipeline(
            prompt=s.prompt, negative_prompt=s.negative_prompt,
            image=Image.fromarray(work),
            control_image=[Image.fromarray((c * 255).round().astype(np.uint8))
                           for c in (depth, edges)],
            height=work_h, width=work_w, strength=s.strength, num_inference_steps=s.steps,
            guidance_scale=s.guidance, controlnet_conditioning_scale=list(s.conditioning_scale),
            generator=torch.Generator("cpu").manual_seed(s.seed), output_type="np",
        ).images[0]  # [h', w', 3] float in [0, 1]
        if not np.isfinite(out).all():
            raise RuntimeError("the SDXL pipeline returned NaN or inf pixels (a half-precision "
                               "overflow: try dtype=float32 or a VAE that is safe in float16)")
        out = resize(np.clip(out, 0.0, 1.0).astype(np.float32), (w, h), interpolation="linear")
        return (out * 255.0).round().astype(np.uint8)  # [H, W, 3]


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------


def parse_frame(value: str) -> str | int:
    """``middle``, ``first`` or a frame index ``N >= 0``.

    Raises:
        InputError: anything else.
    """
    text = str(value).strip()
    if text in FRAME_CHOICES:
        return text
    if text.isdigit():
        return int(text)
    raise InputError(f"frame={value}", "must be middle, first or a frame index N >= 0")


def read_frame(root: Path, record: ClipRecord, choice: str | int) -> tuple[int, np.ndarray]:
    """The chosen frame of a clip and its index.

    ``middle`` is frame ``frames // 2``, with ``frames`` from the metadata (or the container's
    estimate when the metadata says 0); if the video turns out shorter, its last frame is used.

    Returns:
        ``(index, rgb uint8 [H, W, 3])``.

    Raises:
        InputError: the video cannot be read, or frame ``N`` is past its end.
    """
    path = root / record.video
    name = f"clip {record.name}: {record.video}"
    if choice == "first":
        index = 0
    elif choice == "middle":
        count = record.frames or probe_video(path, name).n_frames
        index = count // 2
    else:
        index = int(choice)
    frames = read_video(path, name, max_frames=index + 1).frames  # [T, H, W, 3]
    if len(frames) <= index:
        if choice != "middle":
            raise InputError(f"frame={choice}", f"clip {record.name} has only {len(frames)} "
                                                "frames")
        index = len(frames) - 1
    return index, frames[index]


def style_path(record: ClipRecord) -> str:
    """Where a clip's stylised reference goes, relative to the dataset root."""
    return f"clips/{record.name}/{STYLE_FILE}"


def pending(root: Path, records: list[ClipRecord], force: bool = False) -> list[ClipRecord]:
    """The person clips that need a stylised reference.

    A clip is done when its metadata names a style whose file exists; ``force`` redoes all.
    """
    return [r for r in records if r.kind == "person" and
            (force or not r.style or not (root / r.style).is_file())]


def stylize_dataset(root: str | Path, make_stylizer: Callable[[], Callable[[np.ndarray],
                    np.ndarray]], frame: str | int = "middle", force: bool = False,
                    progress: bool = True) -> list[str]:
    """Write ``clips/NAME/style.png`` for every pending person clip and record it.

    The metadata is rewritten (atomically) after each clip, so an interrupted run resumes where
    it stopped. The models are loaded (``make_stylizer()``) only when a clip needs them, after
    its frame is read.

    Args:
        root: the dataset folder (``data=``).
        make_stylizer: builds the frame re-drawer, e.g. a :class:`Stylizer`.
        frame: ``middle``, ``first`` or an index (see :func:`read_frame`).
        force: redo clips that already have a style.
        progress: show a tqdm bar.

    Returns:
        The names of the clips written, in metadata order.

    Raises:
        InputError: no dataset at ``root``, a clip's video cannot be read, or a clip's
            ``style.png`` would be written outside ``root`` (its folder a symlink leading out;
            checked for every clip before anything is written).
    """
    from tqdm import tqdm

    root = Path(root)
    records = read_metadata(root)
    todo = pending(root, records, force)
    skipped = sum(r.kind == "person" for r in records) - len(todo)
    if skipped:
        log.info("%d clips already have a style (force=true redoes them)", skipped)
    if not todo:
        return []
    targets = {r.name: dataset_path(root, style_path(r), f"data={root}: clip {r.name!r} "
                                                         f"{style_path(r)}") for r in todo}
    stylizer = None
    position = {r.name: i for i, r in enumerate(records)}
    done = []
    for record in tqdm(todo, desc="stylize", unit="clip", disable=not progress):
        index, rgb = read_frame(root, record, frame)
        if stylizer is None:  # after the first frame is read: a bad video fails fast
            stylizer = make_stylizer()
        save_image(targets[record.name], stylizer(rgb))
        records[position[record.name]] = dataclasses.replace(
            record, style=style_path(record), style_frame=index)
        write_metadata(root, records)
        done.append(record.name)
    return done
