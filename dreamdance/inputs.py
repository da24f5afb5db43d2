"""The command line's common inputs, checked once and resolved to concrete values.

Every stage starts here, so that bad input is refused before anything is written.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from dreamdance import assets
from dreamdance.errors import InputError

log = logging.getLogger(__name__)

MIN_SIDE, MAX_SIDE = 64, 8192
DEVICES = ("auto", "cpu", "cuda")
# The names a dtype option takes, each with the torch dtype it means (``torch.<value>``):
# torch's own, and the short ones that mean the same.
DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16",
          "fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def check_common(cfg: Any) -> None:
    """Validate the top-level keys every stage shares (see ``conf/config.yaml``)."""
    _positive_int(cfg.frames, "frames")
    if not isinstance(cfg.fps, int | float) or not math.isfinite(cfg.fps) or cfg.fps <= 0:
        raise InputError(f"fps={cfg.fps}", "must be a positive number")
    _positive_int(cfg.resolution, "resolution")
    if not MIN_SIDE <= cfg.resolution <= MAX_SIDE:
        raise InputError(f"resolution={cfg.resolution}", f"must be in [{MIN_SIDE}, {MAX_SIDE}]")
    if not isinstance(cfg.fov, int | float) or not 1 <= cfg.fov <= 170:
        raise InputError(f"fov={cfg.fov}", "must be a field of view in degrees in [1, 170]")
    if cfg.device not in DEVICES:
        raise InputError(f"device={cfg.device}", f"must be one of {', '.join(DEVICES)}")
    if not isinstance(cfg.seed, int):
        raise InputError(f"seed={cfg.seed}", "must be an integer")
    check_settings(cfg)


def check_settings(cfg: Any) -> None:
    """The choices and numbers of the shared groups (``motion.*``, ``mask.*``, ``scene.*``) and
    of the scene stage (``stage.renderer``, ``stage.scale``), checked before any work, so that a
    bad one never surfaces after some steps were written."""
    from dreamdance.motion.align import MODES
    from dreamdance.motion.mask import SHAPES
    from dreamdance.motion.poses import TOO_SHORT
    from dreamdance.motion.sources import CAMERA_LENGTH
    from dreamdance.scene.source import SOURCES

    mo, m = cfg.motion, cfg.mask
    for key, value, options in (("motion.align", mo.align, MODES),
                                ("motion.too_short", mo.too_short, TOO_SHORT),
                                ("motion.camera_length", mo.camera_length, CAMERA_LENGTH),
                                ("mask.shape", m.shape, SHAPES),
                                ("scene.source", cfg.scene.source, SOURCES)):
        _choice(value, options, key)
    for key, value in (("mask.dilate", m.dilate), ("mask.face_margin", m.face_margin),
                       ("mask.hand_margin", m.hand_margin), ("motion.smooth.beta", mo.smooth.beta)):
        _number(value, key, low=0.0)
    _number(cfg.scene.removal.dilate, "scene.removal.dilate", low=0.0, high=0.5)
    for key, value in (("motion.preset_depth", mo.preset_depth),
                       ("motion.smooth.min_cutoff", mo.smooth.min_cutoff)):
        _number(value, key, low=0.0, strict=True)
    _number(mo.preset_amplitude, "motion.preset_amplitude")
    for key, value in (("motion.transition", mo.transition),
                       ("motion.smooth.max_gap", mo.smooth.max_gap),
                       ("scene.removal.window", cfg.scene.removal.window)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"{key}={value}", "must be a whole number >= 0")
    if cfg.stage.name == "scene":
        from dreamdance.scene.rasterize import BACKENDS

        _choice(cfg.stage.renderer, BACKENDS, "stage.renderer")
        _choice(cfg.stage.scale, ("auto", "metric"), "stage.scale")


def _choice(value: Any, options: tuple, key: str) -> None:
    if value not in options:
        raise InputError(f"{key}={value}", f"must be one of {', '.join(options)}")


def _number(value: Any, key: str, low: float | None = None, strict: bool = False,
            high: float | None = None) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if strict else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
        if high is not None:
            bound = f" in [{low:g}, {high:g}]"
        raise InputError(f"{key}={value}", f"must be a number{bound}")


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without CUDA is an error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device=cuda", "CUDA is not available on this machine (use device=cpu)")
    return name


def resolve_dtype(name: str, device: str | None, key: str,
                  choices: tuple[str, ...] = ("float32", "float16", "bfloat16")) -> Any:
    """The torch dtype a ``dtype`` option names; ``key`` names the option in the error.

    Every ``dtype`` option (and the tools' ``dtype=``) takes torch's names
    ``float32``, ``float16`` and ``bfloat16``, or the short ``fp32``, ``fp16`` and ``bf16`` for
    the same (:data:`DTYPES`).

    Args:
        name: the option's value.
        device: the device, for an option that also takes ``auto`` (float16 on ``cuda``,
            float32 elsewhere); None for one that does not.
        key: the option, e.g. ``"depth.dtype"``.
        choices: the dtypes the option supports, by torch's names.

    Raises:
        InputError: ``name`` is not one of ``choices`` by either of its names (nor ``auto``
            where a device is given).
    """
    import torch

    dtype = DTYPES.get(name)
    if name == "auto" and device is not None:
        dtype = "float16" if device == "cuda" else "float32"
    if dtype not in choices:
        full = ("auto", *choices) if device is not None else choices
        short = [n for n, d in DTYPES.items() if d in choices and n != d]
        raise InputError(f"{key}={name}", f"must be one of {', '.join(full)} "
                                          f"(or {', '.join(short)})")
    return getattr(torch, dtype)


def input_file(value: str | None, key: str, sample: str | None = None) -> Path | None:
    """Path given for ``key``, or the bundled sample's file when ``value`` is null.

    A path that does not exist is an :class:`InputError` naming ``key=value``.
    """
    if value is None:
        return assets.sample_path(sample) if sample else None
    path = Path(str(value)).expanduser()
    if not path.exists():
        raise InputError(f"{key}={value}", "file not found")
    return path


def limit_size(image: Any, name: str) -> Any:
    """Refuse an image smaller than 64 px on a side; downscale one larger than 8192 px on its
    long side (logged). ``image`` is a :class:`~dreamdance.media.LoadedImage`."""
    from dreamdance.media import LoadedImage, resize

    h, w = image.rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise InputError(name, f"{w}x{h} is too small (at least {MIN_SIDE} px on each side)")
    if max(h, w) <= MAX_SIDE:
        return image
    s = MAX_SIDE / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    log.warning("%s: %dx%d is larger than %d px; downscaled to %dx%d", name, w, h, MAX_SIDE,
                *size)
    alpha = None if image.alpha is None else resize(image.alpha, size)
    return LoadedImage(resize(image.rgb, size), alpha)


def plain(node: Any) -> Any:
    """A config node as plain Python values (resolved); anything else as it is."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def builds(node: Any, cls: type) -> bool:
    """Whether the config ``node`` (with a ``_target_``) builds a ``cls`` or a subclass of it;
    the class is imported, nothing is built."""
    from hydra.utils import get_class

    return issubclass(get_class(str(node._target_)), cls)


def build(node: Any) -> Any:
    """``hydra.utils.instantiate`` that lets a component's :class:`InputError` (a missing
    weights folder, a bad setting) through as itself rather than wrapped by Hydra."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node)
    except InstantiationException as e:
        if isinstance(e.__cause__, InputError):
            raise e.__cause__ from None
        raise


def _positive_int(value: Any, key: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{key}={value}", "must be a positive integer")
