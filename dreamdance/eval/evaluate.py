"""Compute the Table 1 metrics over matched predicted / reference videos.

Per-frame metrics (SSIM, PSNR, L1, LPIPS) are averaged over every frame of every video
(frames with an empty mask are left out of the foreground average). FID compares the Inception
features of all predicted frames with those of all reference frames; FID-VID and FVD compare
I3D features of clips: each video is cut into consecutive, non-overlapping clips of
``clip_length`` frames (a remainder shorter than a clip is dropped). A Fréchet distance needs at
least two samples per side; with fewer it is reported as ``None``.

Foreground variant (with masks): per-frame metrics are restricted to mask pixels (see
:mod:`dreamdance.eval.frames` and :mod:`dreamdance.eval.lpips`); for FID, FID-VID and FVD both
prediction and reference are composited on black outside the mask before feature extraction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from dreamdance.eval import frames as fm
from dreamdance.eval.frechet import frechet_distance_of_features
from dreamdance.eval.i3d import preprocess_clips
from dreamdance.eval.videos import VideoPair, load_pair

log = logging.getLogger("dreamdance.eval")

METRICS = ("ssim", "psnr", "l1", "lpips", "fid", "fid_vid", "fvd")
FRAME_METRICS = {"ssim": fm.ssim, "psnr": fm.psnr, "l1": fm.l1}
VARIANTS = ("full", "foreground")


@dataclass
class Networks:
    """The learned metrics' networks (None: that metric is not computed)."""

    lpips: torch.nn.Module | None = None
    inception: torch.nn.Module | None = None
    i3d: torch.nn.Module | None = None


@dataclass
class _Accumulator:
    per_frame: dict = field(default_factory=dict)  # (metric, variant) -> list of floats
    features: dict = field(default_factory=dict)  # (metric, variant, side) -> list of arrays

    def add_values(self, metric: str, variant: str, values: torch.Tensor) -> None:
        self.per_frame.setdefault((metric, variant), []).extend(values.cpu().tolist())

    def add_features(self, metric: str, variant: str, side: str, feats: torch.Tensor) -> None:
        self.features.setdefault((metric, variant, side), []).append(feats.double().cpu().numpy())


def clips_of(video: torch.Tensor, clip_length: int) -> torch.Tensor:
    """Consecutive non-overlapping clips.

    Args:
        video: frames. [T, C, H, W]
        clip_length: frames per clip, >= 1.

    Returns:
        ``T // clip_length`` clips. [T // clip_length, clip_length, C, H, W]
    """
    if clip_length < 1:
        raise ValueError(f"clip_length must be >= 1, got {clip_length}")
    n = video.shape[0] // clip_length
    return video[: n * clip_length].reshape(n, clip_length, *video.shape[1:])


def evaluate(
    pairs: Sequence[VideoPair],
    metrics: Sequence[str],
    networks: Networks,
    device: str = "cpu",
    clip_length: int = 16,
    batch_size: int = 16,
) -> dict:
    """Evaluate predicted videos against references.

    Args:
        pairs: matched videos (see :func:`dreamdance.eval.videos.match_videos`).
        metrics: names from :data:`METRICS`; a learned metric without its network is skipped.
        networks: the loaded networks.
        device: ``"cpu"`` or ``"cuda"``.
        clip_length: frames per clip for FID-VID and FVD.
        batch_size: frames (or clips) per network call.

    Returns:
        ``{"metrics": {name: {"full": value, "foreground": value or None}}, "videos": {name:
        {"frames": T, metric: {...}}}, "frames": total, "clips": total, "clip_length": ...}``
        (per-video entries hold the per-frame metrics only).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {list(METRICS)}")
    if not pairs:
        raise ValueError("no videos to evaluate")
    masked = any(p.mask is not None for p in pairs)
    variants = VARIANTS if masked else VARIANTS[:1]
    acc, videos, n_frames, n_clips = _Accumulator(), {}, 0, 0
    for pair in tqdm(pairs, desc="evaluate", unit="video", disable=len(pairs) < 2):
        pred, ref, mask = load_pair(pair)
        n_frames += pred.shape[0]
        one = _Accumulator()
        with torch.no_grad():
            for start in tqdm(range(0, pred.shape[0], batch_size), desc=pair.name, unit="batch",
                              leave=False, disable=pred.shape[0] <= batch_size):
                sl = slice(start, start + batch_size)
                p, r = pred[sl].to(device), ref[sl].to(device)
                m = None if mask is None else mask[sl].to(device)
                _frame_batch(p, r, m, metrics, networks, one, acc)
            if networks.i3d is not None and {"fid_vid", "fvd"} & set(metrics):
                n_clips += _clip_features(pred, ref, mask, metrics, networks.i3d, acc,
                                          device, clip_length, batch_size)
        videos[pair.name] = {"frames": int(pred.shape[0]), **_summary(one, variants)}
        for key, values in one.per_frame.items():
            acc.per_frame.setdefault(key, []).extend(values)
    result = _summary(acc, variants)
    for metric in ("fid", "fid_vid", "fvd"):
        if metric in result or (metric, "full", "pred") not in acc.features:
            continue
        result[metric] = {v: _frechet(acc, metric, v) for v in variants}
    return {"metrics": {m: _with_variants(result[m]) for m in metrics if m in result},
            "videos": videos, "frames": n_frames, "clips": n_clips, "clip_length": clip_length}


def _frame_batch(p, r, m, metrics, networks: Networks, one: _Accumulator, acc: _Accumulator):
    """Per-frame metrics of one batch into ``one``, Inception features into ``acc``."""
    for name, fn in FRAME_METRICS.items():
        if name in metrics:
            one.add_values(name, "full", fn(p, r))
            if m is not None:
                one.add_values(name, "foreground", fn(p, r, m))
    if "lpips" in metrics and networks.lpips is not None:
        one.add_values("lpips", "full", networks.lpips(p, r))
        if m is not None:
            one.add_values("lpips", "foreground", networks.lpips(p, r, m))
    if "fid" in metrics and networks.inception is not None:
        acc.add_features("fid", "full", "pred", networks.inception(p))
        acc.add_features("fid", "full", "ref", networks.inception(r))
        if m is not None:
            acc.add_features("fid", "foreground", "pred", networks.inception(fm.composite_on_black(p, m)))
            acc.add_features("fid", "foreground", "ref", networks.inception(fm.composite_on_black(r, m)))


def _clip_features(pred, ref, mask, metrics, i3d, acc: _Accumulator, device, clip_length, batch_size):
    """I3D features of every clip of one video into ``acc``; return the number of clips."""
    inputs = {"full": (pred, ref)}
    if mask is not None:
        inputs["foreground"] = (fm.composite_on_black(pred, mask), fm.composite_on_black(ref, mask))
    n = 0
    for variant, (vp, vr) in inputs.items():
        for side, video in (("pred", vp), ("ref", vr)):
            clips = clips_of(video, clip_length)
            n = clips.shape[0]
            for start in range(0, n, max(1, batch_size // clip_length)):
                batch = clips[start:start + max(1, batch_size // clip_length)].to(device)
                features, logits = i3d(preprocess_clips(batch))
                if "fvd" in metrics:
                    acc.add_features("fvd", variant, side, logits)
                if "fid_vid" in metrics and features is not None:
                    acc.add_features("fid_vid", variant, side, features)
    return n


def _frechet(acc: _Accumulator, metric: str, variant: str) -> float | None:
    a = acc.features.get((metric, variant, "pred"))
    b = acc.features.get((metric, variant, "ref"))
    if a is None or b is None:
        return None
    a, b = np.concatenate(a), np.concatenate(b)
    if len(a) < 2 or len(b) < 2:
        log.warning("%s (%s): %d samples; a Fréchet distance needs at least 2 (use more or "
                    "longer videos, or a smaller clip_length)", metric, variant, len(a))
        return None
    return frechet_distance_of_features(a, b)


def _summary(acc: _Accumulator, variants) -> dict:
    out: dict = {}
    for (metric, variant), values in acc.per_frame.items():
        if variant in variants:
            out.setdefault(metric, {})[variant] = fm.finite_mean(values)
    return out


def _with_variants(entry: dict) -> dict:
    return {v: entry.get(v) for v in VARIANTS}
