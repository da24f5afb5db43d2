"""Metric depth of one image: DepthPro, two CPU priors, and unprojection to camera-frame points.

Every estimator is a callable ``estimator(rgb) -> DepthResult``:

- ``rgb``: float32 ``[H, W, 3]`` in ``[0, 1]``;
- ``DepthResult.depth``: float32 ``[H, W]`` z-depth in metres (distance along the optical axis,
  not along the ray), every value ``> 0``;
- ``DepthResult.focal``: the image's focal length in pixels when the model predicts one
  (DepthPro's field-of-view head), else ``None`` (the caller then assumes its own ``fov``).

Backends:

- :class:`DepthProEstimator` — Apple DepthPro from a local ``transformers`` folder.
- :class:`PlaneDepth` — a fronto-parallel backdrop at one distance (no weights).
- :class:`RampDepth` — a ground plane rising to a backdrop (no weights).

Camera conventions are those of :mod:`dreamdance.camera`: OpenCV axes, ``K`` in pixels, pixel
``(i, j)`` centred at ``(i + 0.5, j + 0.5)``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dreamdance.errors import InputError
from dreamdance.inputs import resolve_device, resolve_dtype
from dreamdance.weights import ModelSpec, require_dir

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DEPTHPRO = ModelSpec(
    key="weights.depthpro",
    name="Apple DepthPro (apple/DepthPro-hf)",
    repo="apple/DepthPro-hf",
    marker="config.json",
    accept=("depth_pro", "DepthPro"),
)

# DepthProImageProcessor's defaults (transformers' IMAGENET_STANDARD_MEAN / _STD), used when the
# weights folder has no preprocessor_config.json.
DEPTHPRO_MEAN = (0.5, 0.5, 0.5)
DEPTHPRO_STD = (0.5, 0.5, 0.5)

# The post-processing clamps inverse depth to this range before inverting it (metres^-1).
INVERSE_DEPTH_RANGE = (1e-4, 1e4)


@dataclass
class DepthResult:
    """Output of a depth estimator.

    Attributes:
        depth: metric z-depth in metres, every value ``> 0``. float32 [H, W]
        focal: focal length in pixels of this image, when the model predicts one; else None.
    """

    depth: np.ndarray  # [H, W]
    focal: float | None = None

    def intrinsics(self, fov: float, width: int, height: int) -> np.ndarray:
        """K of this image at ``width x height``: the model's focal length where it predicts
        one (square pixels, centred principal point), else from the horizontal ``fov``
        (degrees). [3, 3]"""
        from dreamdance.camera import intrinsics_from_fov

        K = intrinsics_from_fov(fov, width, height)
        if self.focal is not None:
            K[0, 0] = K[1, 1] = self.focal
        return K


# ---------------------------------------------------------------------------------------------
# Unprojection
# ---------------------------------------------------------------------------------------------


def unproject(depth: Any, K: Any) -> Any:
    """Camera-frame points of every pixel centre at its z-depth.

    Pixel ``(i, j)`` (column ``i``, row ``j``) has its centre at ``(i + 0.5, j + 0.5)``; its
    point is ``depth[j, i] * r`` with the ray ``r = K^-1 [i + 0.5, j + 0.5, 1]`` scaled so that
    ``r_z = 1``. Works on numpy arrays (maths in float64) and on torch tensors (maths in the
    depth's floating dtype, on its device); the result has the depth's type and dtype.

    Args:
        depth: z-depth. [H, W]
        K: intrinsics in pixels. [3, 3]

    Returns:
        Points ``(x, y, z)`` in the camera frame, ``z == depth``. [H, W, 3]
    """
    if type(depth).__module__.startswith("torch"):
        return _unproject_torch(depth, K)
    depth = np.asarray(depth)
    K = np.asarray(K, dtype=np.float64)
    assert depth.ndim == 2, depth.shape
    assert K.shape == (3, 3), K.shape
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5, indexing="xy")  # [H, W]
    pix = np.stack([u, v, np.ones_like(u)], axis=-1)  # [H, W, 3]
    rays = pix @ np.linalg.inv(K).T  # [H, W, 3]
    rays = rays / rays[..., 2:3]
    out_dtype = depth.dtype if np.issubdtype(depth.dtype, np.floating) else np.float64
    return (depth.astype(np.float64)[..., None] * rays).astype(out_dtype)


def _unproject_torch(depth: torch.Tensor, K: Any) -> torch.Tensor:
    import torch

    assert depth.ndim == 2, depth.shape
    dtype = depth.dtype if depth.is_floating_point() else torch.float32
    K = torch.as_tensor(K, dtype=torch.float64, device=depth.device)
    assert K.shape == (3, 3), K.shape
    h, w = depth.shape
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64, device=depth.device) + 0.5,
                          torch.arange(w, dtype=torch.float64, device=depth.device) + 0.5,
                          indexing="ij")  # [H, W]
    pix = torch.stack([u, v, torch.ones_like(u)], dim=-1)  # [H, W, 3]
    rays = pix @ torch.linalg.inv(K).T  # [H, W, 3]
    rays = (rays / rays[..., 2:3]).to(dtype)
    return depth.to(dtype)[..., None] * rays


# ---------------------------------------------------------------------------------------------
# Priors that need no weights
# ---------------------------------------------------------------------------------------------


class PlaneDepth:
    """A fronto-parallel backdrop: every pixel at the same z-depth.

    Args:
        distance: the backdrop's z-depth in metres, ``> 0``.
    """

    def __init__(self, distance: float = 4.0):
        self.distance = _positive(distance, "depth.distance")

    def __call__(self, rgb: np.ndarray) -> DepthResult:
        h, w = _check_rgb(rgb)
        return DepthResult(np.full((h, w), self.distance, dtype=np.float32), None)


class RampDepth:
    """A ground plane rising to a backdrop, as seen by a level camera (no roll).

    Rows above the horizon row ``v_h = horizon * H`` are a backdrop at ``far``. Below it, each
    row shows the ground plane: with the camera pitched so that the plane's horizon (its
    vanishing line) is the image row ``v_h``, the plane's points satisfy ``n . X = c`` with a
    normal ``n = (0, n_y, n_z)`` in camera coordinates, and the point of pixel ``(u, v)`` is
    ``X = z (K^-1 [u, v, 1])``. For a pinhole ``K`` the plane equation becomes::

        1 / z = (n_y (v - c_y) / f_y + n_z) / c

    which is affine in ``v``, independent of ``u``, and zero on the horizon row, so::

        z(v) = C / (v - v_h),        C = near * (v_b - v_h)

    where ``v_b = H - 0.5`` is the centre of the bottom row, which thereby lies at ``near``.
    The depth grows towards the horizon and is clamped at ``far``, where the ground meets the
    backdrop. The z-depth of a plane does not depend on the focal length or principal point:
    any ``K`` unprojects these depths to one plane, ``f_y y + (c_y - v_h) z = C`` (the focal
    length only sets how high above the plane the camera is), so the prior needs no field of
    view.

    Args:
        near: z-depth of the bottom row in metres, ``> 0``.
        far: z-depth of the backdrop in metres, ``>= near``.
        horizon: the horizon's row as a fraction of the image height from the top, in
            ``[0, 1)``. When it lies below the bottom row's centre no ground is visible and
            the whole image is backdrop.
    """

    def __init__(self, near: float = 2.0, far: float = 8.0, horizon: float = 0.45):
        self.near = _positive(near, "depth.near")
        self.far = _positive(far, "depth.far")
        if self.far < self.near:
            raise InputError(f"depth.far={far}", f"must be >= depth.near={near}")
        if not (isinstance(horizon, int | float) and 0.0 <= horizon < 1.0):
            raise InputError(f"depth.horizon={horizon}",
                             "must be a fraction of the image height in [0, 1)")
        self.horizon = float(horizon)

    def __call__(self, rgb: np.ndarray) -> DepthResult:
        h, w = _check_rgb(rgb)
        return DepthResult(np.repeat(self.rows(h)[:, None], w, axis=1), None)

    def rows(self, height: int) -> np.ndarray:
        """The z-depth of each row of an image ``height`` pixels high. float32 [H]"""
        v = np.arange(height, dtype=np.float64) + 0.5  # row centres
        v_h = self.horizon * height
        v_b = height - 0.5
        z = np.full(height, self.far)
        if v_b > v_h:
            ground = v > v_h
            z[ground] = np.minimum(self.near * (v_b - v_h) / (v[ground] - v_h), self.far)
        return z.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# DepthPro
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes DepthPro's ``pixel_values``.

    Attributes:
        size: the model's input ``(height, width)`` in pixels.
        mean: per-channel mean subtracted from RGB in ``[0, 1]``. [3]
        std: per-channel standard deviation divided by. [3]
    """

    size: tuple[int, int]
    mean: tuple[float, float, float] = DEPTHPRO_MEAN
    std: tuple[float, float, float] = DEPTHPRO_STD


def depthpro_preprocessing(config: Any, folder: str | Path | None = None) -> Preprocessing:
    """The input size and normalisation for a DepthPro model.

    The input size is the one at which the patch encoder's smallest scaled image is exactly
    one patch: ``patch_size / min(scaled_images_ratios)`` (1536 for apple/DepthPro-hf: 384 /
    0.25). A ``preprocessor_config.json`` in ``folder`` overrides size, mean and std, as
    ``DepthProImageProcessor.from_pretrained`` would read them.

    Args:
        config: the model's ``DepthProConfig``.
        folder: the weights folder, or None.
    """
    side = config.patch_size / min(config.scaled_images_ratios)
    if abs(side - round(side)) > 1e-6:
        raise ValueError(f"DepthPro patch_size {config.patch_size} / min(scaled_images_ratios) "
                         f"{min(config.scaled_images_ratios)} is not a whole number of pixels")
    pre = Preprocessing(size=(round(side), round(side)))
    path = Path(folder) / "preprocessor_config.json" if folder is not None else None
    if path is None or not path.is_file():
        return pre
    try:
        meta = json.loads(path.read_text())
        size = meta.get("size") or {}
        if size:
            pre = Preprocessing((int(size["height"]), int(size["width"])), pre.mean, pre.std)
        mean = _triple(meta.get("image_mean", pre.mean)) if meta.get("do_normalize", True) \
            else (0.0, 0.0, 0.0)
        std = _triple(meta.get("image_std", pre.std)) if meta.get("do_normalize", True) \
            else (1.0, 1.0, 1.0)
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{DEPTHPRO.key}={folder}",
                         f"preprocessor_config.json is not a valid DepthPro processor config "
                         f"({e})") from None
    return Preprocessing(pre.size, mean, std)


def depthpro_postprocess(predicted_depth: torch.Tensor, field_of_view: torch.Tensor | None,
                         height: int, width: int) -> tuple[torch.Tensor, float | None]:
    """DepthPro's raw outputs -> metric depth at the image's size, and the focal length.

    The same computation as ``DepthProImageProcessor.post_process_depth_estimation`` with
    ``target_sizes=[(height, width)]``: the model predicts a canonical inverse depth at its
    input size; with the field of view ``fov`` (degrees, of the image width)::

        focal = 0.5 * width / tan(0.5 * fov * pi / 180)      # pixels of the ORIGINAL image
        inverse_depth = predicted_depth * width / focal
        inverse_depth = bilinear_resize(inverse_depth, (height, width))  # align_corners=False
        depth = 1 / clamp(inverse_depth, 1e-4, 1e4)

    Without a field of view the inverse depth is not rescaled (the depth is then not metric)
    and ``focal`` is None.

    Args:
        predicted_depth: the model's ``predicted_depth`` for one image. [h, w]
        field_of_view: the model's ``field_of_view`` for one image, degrees. [] or [1] or None
        height, width: the original image's size.

    Returns:
        ``(depth [height, width] float32, focal or None)``.
    """
    import torch
    import torch.nn.functional as F

    assert predicted_depth.ndim == 2, predicted_depth.shape
    inverse = predicted_depth.float()
    focal = None
    if field_of_view is not None:
        fov = field_of_view.float().reshape(())
        if not (torch.isfinite(fov) and 0.0 < float(fov) < 180.0):
            raise RuntimeError(f"DepthPro predicted a field of view of {float(fov)} degrees; "
                               "expected a value in (0, 180)")
        focal_t = 0.5 * width / torch.tan(0.5 * torch.deg2rad(fov))
        inverse = inverse * width / focal_t
        focal = float(focal_t)
    inverse = F.interpolate(inverse[None, None], size=(height, width), mode="bilinear")[0, 0]
    depth = 1.0 / torch.clamp(inverse, min=INVERSE_DEPTH_RANGE[0], max=INVERSE_DEPTH_RANGE[1])
    return depth, focal


class DepthProEstimator:
    """Apple DepthPro: metric depth and focal length from one image.

    The folder is a ``transformers`` DepthPro checkpoint (e.g. apple/DepthPro-hf) with the
    field-of-view head (``use_fov_model: true``). It is checked here and loaded on the first
    call. Pre- and post-processing follow ``DepthProImageProcessor`` (see
    :func:`depthpro_preprocessing` and :func:`depthpro_postprocess`): normalise, then resize to
    the model's input size (bilinear, no antialiasing), run the model, and turn the predicted
    canonical inverse depth into metric depth with the predicted field of view. Without the
    field-of-view head the depth is only relative (a warning is logged) and ``focal`` is None.

    Args:
        path: the local weights folder (``weights.depthpro``).
        device: ``auto``, ``cpu`` or ``cuda`` (see :func:`dreamdance.inputs.resolve_device`).
        dtype: ``float32``, ``float16`` or ``bfloat16`` (:func:`dreamdance.inputs.resolve_dtype`):
            the model's weights and activations.
    """

    def __init__(self, path: str | Path | None, device: str = "auto", dtype: str = "float32"):
        self.path = require_dir(path, DEPTHPRO)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, None, "depth.dtype")
        self._model = None
        self._pre: Preprocessing | None = None

    def _load(self) -> None:
        from transformers import DepthProForDepthEstimation

        model = DepthProForDepthEstimation.from_pretrained(
            self.path, local_files_only=True, trust_remote_code=False,
            dtype=self.dtype)
        self._model = model.to(self.device).eval()
        self._pre = depthpro_preprocessing(model.config, self.path)
        if not model.use_fov_model:
            log.warning("%s has no field-of-view head (use_fov_model is false): its depth is "
                        "relative, not metric, and no focal length is predicted", self.path)

    def __call__(self, rgb: np.ndarray) -> DepthResult:
        import torch

        h, w = _check_rgb(rgb)
        if self._model is None:
            self._load()
        pixel_values = self.pixel_values(rgb)  # [1, 3, h_in, w_in]
        with torch.inference_mode():
            out = self._model(pixel_values=pixel_values.to(self.device, self.dtype))
        fov = None if out.field_of_view is None else out.field_of_view[0]
        depth, focal = depthpro_postprocess(out.predicted_depth[0], fov, h, w)
        return DepthResult(depth.cpu().numpy().astype(np.float32), focal)

    def pixel_values(self, rgb: np.ndarray) -> torch.Tensor:
        """The model's input for one image, as ``DepthProImageProcessor`` prepares it.

        Normalisation comes first, then a bilinear resize to the input size without
        antialiasing (``align_corners=False``), on float32 values.

        Args:
            rgb: float RGB in ``[0, 1]``. [H, W, 3]

        Returns:
            float32 on the CPU. [1, 3, h_in, w_in]
        """
        import torch
        import torch.nn.functional as F

        _check_rgb(rgb)
        if self._pre is None:
            self._load()
        pre = self._pre
        x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))  # [H, W, 3]
        x = x.permute(2, 0, 1)[None]  # [1, 3, H, W]
        mean = torch.tensor(pre.mean, dtype=torch.float32)[None, :, None, None]
        std = torch.tensor(pre.std, dtype=torch.float32)[None, :, None, None]
        x = (x - mean) / std
        return F.interpolate(x, size=pre.size, mode="bilinear", align_corners=False,
                             antialias=False)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _check_rgb(rgb: np.ndarray) -> tuple[int, int]:
    """``(H, W)`` of a float ``[H, W, 3]`` image; ValueError otherwise."""
    shape = getattr(rgb, "shape", None)
    if shape is None or len(shape) != 3 or shape[2] != 3 or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"rgb must be [H, W, 3], got shape {shape}")
    if not np.issubdtype(np.asarray(rgb).dtype, np.floating):
        raise ValueError(f"rgb must be float in [0, 1], got dtype {np.asarray(rgb).dtype}")
    return int(shape[0]), int(shape[1])


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name}={value}", "must be a positive number of metres")
    return float(value)


def _triple(values: Any) -> tuple[float, float, float]:
    if isinstance(values, int | float):
        values = [values] * 3
    values = [float(v) for v in values]
    if len(values) != 3:
        raise ValueError(f"expected 3 channel values, got {len(values)}")
    return values[0], values[1], values[2]
