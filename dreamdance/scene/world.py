"""The Gaussian world: the reference view first, then warp-and-inpaint along cameras.

For each visited camera (the one whose render has the largest hole ratio among those left):
render the field, find the holes, inpaint them, estimate depth for the inpainted view and align
it to the rendered depth, add one Gaussian per hole pixel (not on depth edges), store the view,
and fit the new Gaussians to the stored views with the older ones frozen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from dreamdance.camera import (
    Trajectory,
    normalise_scale,
    rescale_intrinsics,
    scale_intrinsics,
    scale_translation,
    spiral,
    spiral_defaults,
)
from dreamdance.errors import InputError
from dreamdance.io import write_array, write_json
from dreamdance.media import save_image, to_uint8
from dreamdance.scene.depth import unproject
from dreamdance.scene.fit import FitConfig, View, fit
from dreamdance.scene.gaussians import Gaussians, from_rgbd
from dreamdance.scene.render import render, render_trajectory
from dreamdance.scene.warp import align_depth, find_holes, in_front, lazy_next_view, new_pixels
from dreamdance.settings import conf_values

log = logging.getLogger(__name__)

Inpainter = Callable[..., np.ndarray]    # (rgb [H,W,3], holes [H,W] bool, prompt) -> rgb
DepthModel = Callable[[np.ndarray], object]  # rgb -> DepthResult(depth [H,W], focal)


@dataclass
class BuildConfig:
    """Settings of the field building: ``stage.build`` of ``conf/stage/scene.yaml`` (their one
    source and their meaning), made by :func:`build_config`."""

    opacity: float
    hole_alpha: float
    hole_min_area: int
    hole_grow: int
    edge_ratio: float
    front_margin: float
    reference_steps: int
    view_steps: int
    select_scale: float
    min_hole_ratio: float
    fit: FitConfig


@dataclass
class StoredView:
    """A visited camera: the inpainted image, its aligned depth, the holes that were filled."""

    rgb: np.ndarray      # [H, W, 3]
    depth: np.ndarray    # [H, W]
    holes: np.ndarray    # [H, W] bool
    new: np.ndarray      # [H, W] bool: the hole pixels that got a Gaussian
    fit_mask: np.ndarray  # [H, W] bool: the pixels later fits compare against
    w2c: np.ndarray      # [4, 4]
    K: np.ndarray        # [3, 3]
    hole_ratio: float
    added: int


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)


def _view(v: StoredView) -> View:
    return View(_tensor(v.rgb), torch.as_tensor(v.fit_mask), _tensor(v.w2c), _tensor(v.K))


def reference_view(plate: np.ndarray, depth: np.ndarray, K: np.ndarray) -> StoredView:
    """The reference camera (identity) as a stored view: every pixel given. ``plate [H, W,
    3]``, ``depth [H, W]``, ``K [3, 3]``"""
    everything = np.ones(depth.shape, bool)
    return StoredView(plate, depth, everything, everything, everything, np.eye(4), K, 1.0,
                      depth.size)


def reference_field(plate: np.ndarray, depth: np.ndarray, K: np.ndarray, cfg: BuildConfig,
                    device: str = "cpu") -> tuple[Gaussians, StoredView]:
    """One Gaussian per plate pixel at the reference camera (identity), fitted to the plate.

    Args:
        plate: the inpainted background. [H, W, 3]
        depth: its metric depth. [H, W]
        K: the reference intrinsics at this size. [3, 3]
    """
    ref = reference_view(plate, depth, K)
    g = from_rgbd(plate, depth, K, np.eye(4), None, opacity=cfg.opacity).to(device)
    fitted = fit(None, g, [_view(ref)], replace(cfg.fit, steps=cfg.reference_steps),
                 desc="fit reference")
    return fitted, ref


def hole_ratios(g: Gaussians, cams: Trajectory, candidates: list[int], scale: float,
                threshold: float, backend: str = "auto") -> np.ndarray:
    """Fraction of pixels with alpha < ``threshold`` in each candidate's render at ``scale`` of
    the trajectory's size, but at least 64 px on the long side (cheap renders, only to rank the
    candidates). [len(candidates)]"""
    s = min(1.0, max(scale, 64 / max(cams.width, cams.height)))  # at least 64 px: holes show
    w, h = round(cams.width * s), round(cams.height * s)
    small = rescale_intrinsics(cams, w, h)
    out = np.zeros(len(candidates))
    with torch.no_grad():
        for j, i in enumerate(candidates):
            alpha = render(g, _tensor(small.w2c[i]), _tensor(small.K[i]), w, h,
                           backend=backend).alpha
            out[j] = float((alpha < threshold).float().mean())
    return out


def expand(g: Gaussians, stored: list[StoredView], cams: Trajectory, n_views: int,
           inpainter: Inpainter, depth_model: DepthModel, prompt: str | None,
           cfg: BuildConfig, desc: str = "expand",
           guards: list[StoredView] | None = None) -> tuple[Gaussians, list[StoredView]]:
    """Visit up to ``n_views`` of ``cams`` by hole ratio, warp-and-inpaint each, grow ``g``.

    No Gaussian is added where it would stand in front of what a stored view (of ``stored``,
    and of ``guards``) sees (:func:`keep_behind`). Returns the grown field and the views
    visited here (``stored`` gets them appended too).
    """
    visited: set[int] = set()
    new_views: list[StoredView] = []
    ratios = hole_ratios(g, cams, list(range(len(cams))), cfg.select_scale, cfg.hole_alpha,
                         cfg.fit.backend)
    for _ in tqdm(range(n_views), desc=desc, leave=False):
        i = lazy_next_view(ratios, visited, lambda j, field=g: hole_ratios(
            field, cams, [j], cfg.select_scale, cfg.hole_alpha, cfg.fit.backend)[0],
            cfg.min_hole_ratio)
        if i is None:
            log.info("%s: every remaining view is covered; stopping after %d views", desc,
                     len(new_views))
            break
        visited.add(i)
        view = warp_and_inpaint(g, cams.w2c[i], cams.K[i], cams.width, cams.height, inpainter,
                                depth_model, prompt, cfg)
        view = keep_behind(view, [*stored, *(guards or [])], cfg.front_margin)
        log.info("%s: camera %d, hole ratio %.3f, %d new Gaussians", desc, i, view.hole_ratio,
                 view.added)
        if view.added:
            new = from_rgbd(view.rgb, view.depth, view.K, np.linalg.inv(view.w2c), view.new,
                            opacity=cfg.opacity)
            stored.append(view)
            new = fit(g, new, [_view(v) for v in stored], replace(cfg.fit, steps=cfg.view_steps),
                      desc=f"fit view {i}")
            g = Gaussians.cat([g, new])
        new_views.append(view)
    return g, new_views


def keep_behind(view: StoredView, others: list[StoredView], margin: float) -> StoredView:
    """``view`` with no new Gaussian where one would stand in front of the surface another
    stored view sees (on its ``fit_mask``, by more than ``margin`` of the depth there): such a
    Gaussian would change that view's image, which the view contradicts. This happens at depth
    edges, where a hole beside a near object takes the object's depth and its Gaussians would
    widen the object in every other view. Dropped pixels stay holes for later views."""
    if not view.added or not others:
        return view
    points = unproject(view.depth, view.K)[view.new]  # [M, 3] camera frame
    c2w = np.linalg.inv(view.w2c)
    points = points @ c2w[:3, :3].T + c2w[:3, 3]  # world
    blocked = np.zeros(len(points), bool)
    for o in others:
        blocked |= in_front(points, o.depth, o.fit_mask, o.w2c, o.K, margin)
    if not blocked.any():
        return view
    new = view.new.copy()
    new[new] = ~blocked
    log.debug("%d of %d new Gaussians would stand in front of a stored view; not added",
              int(blocked.sum()), view.added)
    return replace(view, new=new, added=int(new.sum()))


def warp_and_inpaint(g: Gaussians, w2c: np.ndarray, K: np.ndarray, width: int, height: int,
                     inpainter: Inpainter, depth_model: DepthModel, prompt: str | None,
                     cfg: BuildConfig) -> StoredView:
    """Render ``g`` at one camera, inpaint its holes, align the estimated depth to the render."""
    with torch.no_grad():
        r = render(g, _tensor(w2c), _tensor(K), width, height, backend=cfg.fit.backend)
    rgb, depth, alpha = (x.cpu().numpy() for x in r)
    holes = find_holes(alpha, cfg.hole_alpha, cfg.hole_min_area, cfg.hole_grow)
    fit_mask = holes | (alpha >= 0.9)  # new content, and what the field already covers fully
    if not holes.any():
        return StoredView(rgb, depth, holes, holes, fit_mask, w2c, K, 0.0, 0)
    filled = inpainter(np.where(holes[..., None], 0.0, rgb).astype(np.float32), holes, prompt)
    estimate = depth_model(filled).depth
    aligned = align_depth(estimate, depth, ~holes)
    # depth edges are judged on the estimate: the residual diffused across a thin hole between
    # a near and a far surface is smooth by construction, not a discontinuity of the content
    new = new_pixels(holes, estimate, cfg.edge_ratio)
    return StoredView(filled.astype(np.float32), aligned, holes, new, fit_mask,
                      np.asarray(w2c), np.asarray(K), float(holes.mean()), int(new.sum()))


# --------------------------------------------------------------------------------------------
# The scene stage's two passes, and what it writes


def build_config(values: dict | None = None, seed: int = 0, backend: str = "auto") -> BuildConfig:
    """A :class:`BuildConfig` from the stage's ``build:`` mapping: the values of
    ``conf/stage/scene.yaml`` with ``values`` over them (``ssim_weight`` goes to the fit);
    unknown keys are an error."""
    values = {**conf_values("stage/scene", "stage.build"), **(values or {})}
    fit_cfg = FitConfig(ssim_weight=values.pop("ssim_weight"), seed=seed, backend=backend)
    return BuildConfig(**values, fit=fit_cfg)


def spiral_cameras(depth: np.ndarray, K: np.ndarray, width: int, height: int,
                   spiral_cfg: Any) -> Trajectory:
    """The candidate cameras of eq. 5's spiral; ``r``, ``s`` default from the depth."""
    params = spiral_defaults(depth)
    if spiral_cfg.get("r") is not None:
        params["r"] = float(spiral_cfg["r"])
        params["s"] = params["r"]
    if spiral_cfg.get("s") is not None:
        params["s"] = float(spiral_cfg["s"])
    return spiral(int(spiral_cfg["candidates"]), K=K, width=width, height=height, **params)


def build_spiral(plate: np.ndarray, depth: np.ndarray, K: np.ndarray, cams: Trajectory,
                 n_views: int, inpainter: Inpainter, depth_model: DepthModel,
                 prompt: str | None, cfg: BuildConfig,
                 device: str = "cpu") -> tuple[Gaussians, list[StoredView]]:
    """The reference field grown along the spiral; returns it and every stored view."""
    g, ref = reference_field(plate, depth, K, cfg, device)
    stored = [ref]
    g, _ = expand(g, stored, cams, n_views, inpainter, depth_model, prompt, cfg, desc="spiral")
    return g, stored


def build_custom(g: Gaussians, cams: Trajectory, n_views: int, inpainter: Inpainter,
                 depth_model: DepthModel, prompt: str | None, cfg: BuildConfig,
                 reference: StoredView | None = None) -> Gaussians:
    """The field grown along the custom trajectory (its views are fitted on their own; no
    new Gaussian stands in front of what ``reference`` sees)."""
    g, _ = expand(g, [], cams, n_views, inpainter, depth_model, prompt, cfg, desc="custom",
                  guards=None if reference is None else [reference])
    return g


def scene_trajectory(traj: Trajectory, depth: np.ndarray, mode: str, max_translation: float,
                     preset_depth: float, is_preset: bool) -> Trajectory:
    """The custom trajectory in the scene's units.

    ``metric``: as given. ``auto``: a preset (built around ``preset_depth``) is scaled so its
    look-at distance is the scene's median depth; a file (arbitrary SLAM scale) is normalised
    so its largest camera offset is ``max_translation`` × the median depth.
    """
    if mode == "metric":
        return traj
    if mode != "auto":
        raise InputError(f"stage.scale={mode}", "must be auto or metric")
    median = float(np.median(depth[np.isfinite(depth) & (depth > 0)]))
    if is_preset:
        return scale_translation(traj, median / preset_depth)
    return normalise_scale(traj, median, max_translation)


def with_reference_intrinsics(traj: Trajectory, reference: dict) -> Trajectory:
    """The trajectory seen through the reference camera: K of the art (from the depth model's
    focal or the configured fov) at every frame, times the trajectory's own relative zoom
    (``fx_i / fx_0``)."""
    ref_K = scale_intrinsics(np.asarray(reference["K"], np.float64),
                             traj.width / reference["width"], traj.height / reference["height"])
    zoom = traj.K[:, 0, 0] / traj.K[0, 0, 0]
    K = np.repeat(ref_K[None], len(traj), axis=0)
    K[:, 0, 0] *= zoom
    K[:, 1, 1] *= zoom
    return Trajectory(traj.w2c, K, traj.width, traj.height)


def save_views(folder: Path, views: list[StoredView]) -> None:
    """``view_XX.png`` (RGB), ``view_XX_depth.npy`` and ``views.json`` (cameras, hole ratios)."""
    records = []
    for i, v in enumerate(views):
        save_image(folder / f"view_{i:02d}.png", v.rgb)
        write_array(folder / f"view_{i:02d}_depth.npy", v.depth.astype(np.float32))
        records.append({"image": f"view_{i:02d}.png", "depth": f"view_{i:02d}_depth.npy",
                        "w2c": v.w2c, "K": v.K, "hole_ratio": v.hole_ratio, "added": v.added})
    write_json(folder / "views.json", {"views": records})


def render_video(g: Gaussians, traj: Trajectory,
                 backend: str = "auto") -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Every frame of ``traj``: ``frames [T, H, W, 3]`` uint8, ``depths [T, H, W]`` and the
    fraction of each frame's pixels with alpha < 0.5."""
    frames, depths, coverage = [], [], []
    for rgb, depth, alpha in render_trajectory(g, traj, desc="background video",
                                               backend=backend):
        frames.append(to_uint8(np.clip(rgb, 0, 1)))
        depths.append(depth)
        coverage.append(float((alpha < 0.5).mean()))
    return np.stack(frames), np.stack(depths), coverage
