"""BiRefNet (ZhengPeng7/BiRefNet), the paper's segmenter (``segmenter=birefnet``), loaded from a
local folder with its own model code (``trust_remote_code``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from dreamdance.errors import InputError
from dreamdance.inputs import resolve_device, resolve_dtype
from dreamdance.scene.segment import check_image, check_int, check_mask
from dreamdance.weights import ModelSpec, require_dir

log = logging.getLogger(__name__)
BIREFNET = ModelSpec(
    key="weights.birefnet",
    name="BiRefNet (ZhengPeng7/BiRefNet)",
    repo="ZhengPeng7/BiRefNet",
    marker="config.json",
    accept=("BiRefNet",),
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class BiRefNetSegmenter:
    """BiRefNet (ZhengPeng7/BiRefNet) dichotomous segmentation: a soft, detailed mask.

    BiRefNet ships its own model code (``birefnet.py`` and ``BiRefNet_config.py`` beside its
    weights), so running it executes that code: it is refused unless
    ``segmenter.trust_remote_code=true``. The class named by ``auto_map`` in the folder's
    ``config.json`` is imported through transformers' remote-code loader (local files only),
    built from the folder's config (read by the class's own ``config_class``), and the
    weights are loaded strictly from ``model.safetensors`` (or ``pytorch_model.bin``).
    ``PreTrainedModel.from_pretrained`` is not used: BiRefNet's code replaces ``self.config``
    with its own plain ``Config`` object and does not call ``post_init``, which transformers
    >= 4.56 needs when loading.

    Pre-processing as in BiRefNet's model card: resize to ``resolution x resolution``
    (bilinear), ImageNet mean / std; the last of the model's outputs is the mask's logits.

    Args:
        path: the weights folder (``weights.birefnet``).
        trust_remote_code: allow running the folder's model code.
        device: ``auto``, ``cpu`` or ``cuda``.
        resolution: the side of the square the model sees, a multiple of 32 (1024 for
            BiRefNet, 2048 for BiRefNet_HR).
        dtype: ``auto`` (float16 on CUDA, float32 on CPU), ``float32``, ``float16`` or
            ``bfloat16``.
    """

    def __init__(self, path: str | Path | None, trust_remote_code: bool = False,
                 device: str = "auto", resolution: int = 1024, dtype: str = "auto"):
        self.path = require_dir(path, BIREFNET)
        if trust_remote_code is not True:
            raise InputError(f"segmenter.trust_remote_code={trust_remote_code}".lower(),
                             f"BiRefNet runs its own model code ({self.path}/*.py); read it, "
                             "then pass segmenter.trust_remote_code=true to allow it")
        check_int(resolution, "segmenter.resolution", low=32)
        if resolution % 32:
            raise InputError(f"segmenter.resolution={resolution}", "must be a multiple of 32")
        self.model_class_ref = _auto_map_entry(self.path)
        self.weights = _weight_file(self.path)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device, "segmenter.dtype")
        self.resolution = int(resolution)
        self.model: Any = None

    def load(self) -> Any:
        """Build the model from the folder (once); return it, in eval mode, on ``device``."""
        if self.model is None:
            self.model = _load_remote_model(self.path, self.model_class_ref, self.weights)
            self.model.to(device=self.device, dtype=self.dtype).eval()
            log.info("BiRefNet loaded from %s (%s, %s)", self.path, self.device, self.dtype)
        return self.model

    def __call__(self, rgb: np.ndarray, alpha: np.ndarray | None = None,
                 name: str = "image") -> np.ndarray:
        """Args: rgb ``[H, W, 3]``; alpha ignored. Returns ``[H, W]`` float32."""
        import torch
        import torch.nn.functional as F

        h, w = check_image(rgb, alpha)
        model = self.load()
        x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))  # (H, W, 3)
        x = x.permute(2, 0, 1)[None].to(self.device)  # (1, 3, H, W)
        size = (self.resolution, self.resolution)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        x = ((x - mean) / std).to(self.dtype)  # (1, 3, R, R)
        with torch.inference_mode():
            outputs = model(x)
        logits = outputs[-1] if isinstance(outputs, list | tuple) else outputs
        if logits.ndim != 4 or logits.shape[:2] != (1, 1):
            raise ValueError(f"BiRefNet returned logits of shape {tuple(logits.shape)}, "
                             "expected (1, 1, h, w)")
        prob = logits.float().sigmoid()  # (1, 1, h, w)
        prob = F.interpolate(prob, size=(h, w), mode="bilinear", align_corners=False,
                             antialias=True)
        mask = prob[0, 0].clamp(0.0, 1.0).cpu().numpy().astype(np.float32)  # (H, W)
        return check_mask(mask, name)


def _auto_map_entry(folder: Path) -> str:
    """``auto_map["AutoModelForImageSegmentation"]`` of the folder's config.json."""
    config = json.loads((folder / BIREFNET.marker).read_text())
    ref = (config.get("auto_map") or {}).get("AutoModelForImageSegmentation")
    if not isinstance(ref, str) or "." not in ref:
        raise InputError(f"{BIREFNET.key}={folder}",
                         "config.json has no auto_map entry for AutoModelForImageSegmentation: "
                         f"not the transformers release of {BIREFNET.name}")
    return ref


def _weight_file(folder: Path) -> Path:
    for name in _WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"{BIREFNET.key}={folder}",
                     f"no weights ({' or '.join(_WEIGHT_FILES)}) in the folder")


def _load_remote_model(folder: Path, class_ref: str, weights: Path) -> Any:
    """Import the folder's model class, build it from the folder's config, load its weights."""
    import torch
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    key = f"{BIREFNET.key}={folder}"
    try:
        model_class = get_class_from_dynamic_module(class_ref, str(folder),
                                                    local_files_only=True)
    except ImportError as e:  # the model code imports a package this environment lacks
        raise InputError(key, f"its model code cannot be imported: {e}") from None
    # The model class names its config class; config.json's auto_map may not (a folder
    # re-saved with save_pretrained keeps only the model's entry).
    config = model_class.config_class.from_pretrained(folder, local_files_only=True)
    model = model_class(config=config)
    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(weights))
    else:
        import pickle

        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise InputError(key, f"{weights.name} refused: it holds pickled Python objects other "
                                  "than tensors (unpickling them could run code); give "
                                  "model.safetensors") from None
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise InputError(key, f"{weights.name} does not match the model code (missing "
                              f"{_first(result.missing_keys)}, unexpected "
                              f"{_first(result.unexpected_keys)})")
    return model


def _first(keys: list[str], n: int = 3) -> str:
    if not keys:
        return "none"
    more = f", ... ({len(keys)} in all)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more
