"""Benchmark the CPU Gaussian rasterisers on a depth-map-like scene and on a deep one.

    python -m tools.bench_rasterizer [scene=depth|deep|both] [gaussians=50000] [size=256]
        [deep_gaussians=12000] [repeats=5] [json=OUT]

The depth scene is what the scene stage fits: one Gaussian per pixel of a smooth random depth
map (a tilted ground, a wavy wall and a few boxes in front), unprojected through a 60 degree
camera, isotropic with scale depth / focal / sqrt(2), opacity 0.8: about one layer of splats.
The deep scene is a random cloud in a box in front of the camera (depths 2 to 4, filling the
view), anisotropic splats of a few pixels with opacities 0.05 to 0.35, so that dozens overlap
at each pixel before any reaches the transmittance stop (the mean number of composited splats
per pixel is reported). Both are rendered by the same camera at ``size x size``, by the
compiled CPU rasteriser (``backend=numba``, the default on a CPU) and by the PyTorch one
(``backend=torch``) in the same run. Times are medians over ``repeats`` runs after one
warm-up: forward without autograd, and forward + backward of a weighted sum of rgb, depth and
alpha. As a further baseline, the dense reference (every Gaussian against every pixel) and the
PyTorch rasteriser render the same kind of scene at a size the dense one can hold. Peak memory
is the process's peak resident set (``VmHWM``, reset before each measurement where Linux
allows, else ``ru_maxrss`` since the start). ``scene=`` picks the scenes (default ``both``),
``gaussians=`` and ``deep_gaussians=`` their sizes; ``json=``: the figures are also written
there. :func:`suite` gives the rows of ``tools.bench_all``; with a GPU it adds ours against
gsplat on CUDA.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch

from dreamdance.scene.rasterize import rasterize
from dreamdance.scene.rasterize_numba import rasterize_numba
from dreamdance.scene.rasterize_torch import contributing_pairs, rasterize_dense, rasterize_torch
from tools.bench_common import (
    bench_main,
    cpu_peak_gb,
    cuda_available,
    cuda_sync,
    make_row,
    median_time,
    peak_memory_gb,
    quick_repeats,
    reset_cpu_peak,
    skipped_row,
    status_mb,
)

FOV_DEG = 60.0
DENSE_PAIRS = 1 << 22  # largest pixels x Gaussians of the dense baseline


def make_scene(gaussians: int, size: int, seed: int = 0) -> dict:
    """A depth-map scene of ``gaussians`` splats and a camera rendering ``size x size``.

    Returns the keyword arguments of :func:`rasterize_torch` (float32, CPU).
    """
    gen = torch.Generator().manual_seed(seed)
    side = math.ceil(math.sqrt(gaussians))
    v, u = torch.meshgrid(torch.arange(side) + 0.5, torch.arange(side) + 0.5, indexing="ij")
    s, t = u / side, v / side  # [side, side] in (0, 1)
    phase = torch.rand(4, generator=gen) * 2 * math.pi
    depth = 3.0 + 0.4 * torch.sin(5 * s + phase[0]) * torch.cos(4 * t + phase[1]) - 0.8 * t
    for _ in range(4):  # boxes in front of the background
        x0, y0 = torch.rand(2, generator=gen) * 0.7
        w, h = torch.rand(2, generator=gen) * 0.25 + 0.05
        inside = (s > x0) & (s < x0 + w) & (t > y0) & (t < y0 + h)
        depth = torch.where(inside, depth.clamp(max=1.2 + torch.rand(1, generator=gen)), depth)
    depth = depth * (1 + 0.02 * torch.randn(depth.shape, generator=gen))

    f = 0.5 * side / math.tan(math.radians(FOV_DEG) / 2)
    means = torch.stack([(u - side / 2) / f * depth, (v - side / 2) / f * depth, depth], -1)
    n = gaussians
    means = means.reshape(-1, 3)[:n]
    scales = (depth.reshape(-1)[:n] / f / math.sqrt(2))[:, None].expand(n, 3).contiguous()
    colors = torch.stack([s, t, 0.5 + 0.5 * torch.sin(8 * s * t + phase[2])], -1)
    colors = colors.reshape(-1, 3)[:n]
    quats = torch.randn(n, 4, generator=gen)
    opacities = torch.full((n,), 0.8)
    f_render = 0.5 * size / math.tan(math.radians(FOV_DEG) / 2)
    Ks = torch.tensor([[[f_render, 0.0, size / 2], [0.0, f_render, size / 2], [0.0, 0.0, 1.0]]])
    return dict(means=means, quats=quats, scales=scales, opacities=opacities, colors=colors,
                viewmats=torch.eye(4)[None], Ks=Ks, width=size, height=size)


def make_deep_scene(gaussians: int, size: int, seed: int = 0) -> dict:
    """A cloud of ``gaussians`` splats in a box in front of a camera rendering ``size x size``:
    many overlap at each pixel. Returns the keyword arguments of :func:`rasterize_torch`."""
    gen = torch.Generator().manual_seed(seed)
    n = gaussians
    z = 2.0 + 2.0 * torch.rand(n, generator=gen)  # [N] depths 2 to 4
    half = math.tan(math.radians(FOV_DEG) / 2)
    xy = (torch.rand(n, 2, generator=gen) * 2 - 1) * half * z[:, None]  # inside the frustum
    means = torch.cat([xy, z[:, None]], -1)
    # a few pixels across at any size: the footprints scale with the image
    pixel = 2 * half * 3.0 / size  # world size of a pixel at depth 3
    scales = pixel * torch.exp(torch.rand(n, 3, generator=gen) * 1.5) * 1.5
    f = 0.5 * size / half
    Ks = torch.tensor([[[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]]])
    return dict(means=means, quats=torch.randn(n, 4, generator=gen), scales=scales,
                opacities=0.05 + 0.3 * torch.rand(n, generator=gen),
                colors=torch.rand(n, 3, generator=gen), viewmats=torch.eye(4)[None], Ks=Ks,
                width=size, height=size)


def overlaps_per_pixel(scene: dict) -> float:
    """Mean number of splats composited per pixel (pairs before the transmittance stop)."""
    names = ("means", "quats", "scales", "opacities", "viewmats", "Ks", "width", "height")
    pixels, _ = contributing_pairs(**{k: scene[k] for k in names})
    return pixels.numel() / (scene["width"] * scene["height"])


Scene = Literal["depth", "deep", "both"]
SCENES: tuple[str, ...] = get_args(Scene)


def run(gaussians: int = 50000, size: int = 256, repeats: int = 5, scene: str = "depth",
        deep_gaussians: int = 12000) -> dict:
    """Time and measure the rasteriser; returns the figures printed by :func:`main`.

    Keys: ``gaussians``, ``size``, ``repeats``, ``threads``, ``load_average`` (1-minute load
    before the run: other processes on the cores slow the timings), ``forward_s``,
    ``forward_backward_s``, ``peak_rss_mb`` (the main scene, ``backend=torch``),
    ``numba_forward_s``, ``numba_forward_backward_s``, ``numba_peak_rss_mb`` (the same with
    ``backend=numba``), ``start_rss_mb`` (resident set
    before it, with the scene built: the peak less this is the rasteriser's), and ``baseline`` with
    ``gaussians``, ``size``, ``dense_forward_s``, ``dense_forward_backward_s``,
    ``torch_forward_s``, ``torch_forward_backward_s``, ``speedup_forward``,
    ``speedup_forward_backward``, ``dense_peak_rss_mb``, ``torch_peak_rss_mb``.
    ``scene="deep"`` gives, instead of the depth scene's figures, ``deep`` with ``gaussians``
    (``deep_gaussians``), ``size``, ``overlaps_per_pixel`` and the same six times and peaks;
    ``scene="both"`` gives both.
    """
    if gaussians < 1 or size < 1 or repeats < 1 or deep_gaussians < 1:
        raise ValueError(f"gaussians, deep_gaussians, size and repeats must be positive, got "
                         f"{gaussians}, {deep_gaussians}, {size}, {repeats}")
    if scene not in SCENES:
        raise ValueError(f"scene must be one of {', '.join(SCENES)}, got {scene!r}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    result = {"size": size, "repeats": repeats, "threads": torch.get_num_threads(),
              "load_average": load, "scene": scene}
    if scene != "depth":
        deep = make_deep_scene(deep_gaussians, size)
        fwd, fwd_bwd, peak = _measure(rasterize_torch, deep, repeats)
        n_fwd, n_fwd_bwd, n_peak = _measure(rasterize_numba, deep, repeats)
        result["deep"] = {"gaussians": deep_gaussians, "size": size,
                          "overlaps_per_pixel": overlaps_per_pixel(deep), "forward_s": fwd,
                          "forward_backward_s": fwd_bwd, "peak_rss_mb": peak,
                          "numba_forward_s": n_fwd, "numba_forward_backward_s": n_fwd_bwd,
                          "numba_peak_rss_mb": n_peak}
    if scene == "deep":
        return result
    return {**result, **_depth_run(gaussians, size, repeats)}


def _depth_run(gaussians: int, size: int, repeats: int) -> dict:
    """The depth scene's figures and the dense baseline (see :func:`run`)."""
    scene = make_scene(gaussians, size)
    start_rss = status_mb("VmRSS:")
    fwd, fwd_bwd, peak = _measure(rasterize_torch, scene, repeats)
    n_fwd, n_fwd_bwd, n_peak = _measure(rasterize_numba, scene, repeats)

    # baseline: the same density of Gaussians per pixel, pixels x Gaussians <= DENSE_PAIRS
    small = min(size, max(8, int((DENSE_PAIRS * size * size / gaussians) ** 0.25)))
    small_n = max(1, min(gaussians * small * small // (size * size), DENSE_PAIRS // small**2))
    small_scene = make_scene(small_n, small)
    d_fwd, d_fwd_bwd, d_peak = _measure(rasterize_dense, small_scene, repeats)
    t_fwd, t_fwd_bwd, t_peak = _measure(rasterize_torch, small_scene, repeats)
    return {
        "gaussians": gaussians,
        "forward_s": fwd,
        "forward_backward_s": fwd_bwd,
        "peak_rss_mb": peak,
        "numba_forward_s": n_fwd,
        "numba_forward_backward_s": n_fwd_bwd,
        "numba_peak_rss_mb": n_peak,
        "start_rss_mb": start_rss,
        "baseline": {
            "gaussians": small_n,
            "size": small,
            "dense_forward_s": d_fwd,
            "dense_forward_backward_s": d_fwd_bwd,
            "torch_forward_s": t_fwd,
            "torch_forward_backward_s": t_fwd_bwd,
            "speedup_forward": d_fwd / t_fwd,
            "speedup_forward_backward": d_fwd_bwd / t_fwd_bwd,
            "dense_peak_rss_mb": d_peak,
            "torch_peak_rss_mb": t_peak,
        },
    }


def _measure(render, scene: dict, repeats: int) -> tuple[float, float, float]:
    """Median forward and forward + backward seconds, and peak RSS in MB, of one renderer."""
    names = ("means", "quats", "scales", "opacities", "colors")
    reset_cpu_peak()

    def forward():
        return render(**scene)

    def forward_backward():
        leaves = {k: scene[k].clone().requires_grad_(True) for k in names}
        rgb, depth, alpha = render(**{**scene, **leaves})
        (rgb.sum() + 0.1 * depth.sum() + alpha.sum()).backward()

    forward()  # warm-up, both before timing either
    forward_backward()
    times = []
    for step in (forward, forward_backward):
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            runs.append(time.perf_counter() - start)
        times.append(statistics.median(runs))
    return times[0], times[1], cpu_peak_gb() * 1024


GPU_GAUSSIANS, GPU_SIZE = 200_000, 512  # the gsplat comparison's scene


def suite(repeats: int = 5, gpu: bool = False, quick: bool = False) -> list[dict]:
    """Rows for ``tools.bench_all``: the PyTorch rasteriser against the dense reference on CPU
    (forward, forward + backward), the main scene's times and peak memory, and with ``gpu``
    ours against gsplat on CUDA (skipped with a note where there is no CUDA)."""
    gaussians, deep, size = (6000, 600, 48) if quick else (50000, 12000, 256)
    n = quick_repeats(repeats, quick)
    result = run(gaussians, size, n, scene="both", deep_gaussians=deep)
    rows = _cpu_rows(result) + _deep_rows(result)
    if gpu:
        rows += _gpu_rows(n, *((4000, 64) if quick else (GPU_GAUSSIANS, GPU_SIZE)))
    return rows


def _cpu_rows(result: dict) -> list[dict]:
    """Rows of one :func:`run` result."""
    b, n = result["baseline"], result["repeats"]
    small = f"{b['gaussians']} Gaussians @ {b['size']}^2"
    main_case = f"{result['gaussians']} Gaussians @ {result['size']}^2"
    dense = "dense reference (rasterize_dense)"
    notes = f"threads {result['threads']}, load {result['load_average']:.2f}"
    return [
        make_row("rasterizer", f"forward, dense-size scene ({small})", "time", "s",
                 b["torch_forward_s"], b["dense_forward_s"], dense, repeats=n, notes=notes),
        make_row("rasterizer", f"forward+backward, dense-size scene ({small})", "time", "s",
                 b["torch_forward_backward_s"], b["dense_forward_backward_s"], dense, repeats=n,
                 notes=notes),
        *_numba_rows(result, main_case, notes),
        make_row("rasterizer", f"peak memory, numba ({main_case})", "memory", "GB",
                 result["numba_peak_rss_mb"] / 1024, result["peak_rss_mb"] / 1024, TORCH,
                 repeats=n,
                 notes=f"process peak RSS; {result['start_rss_mb'] / 1024:.2f} GB before it"),
    ]


TORCH = "PyTorch rasteriser (backend=torch)"


def _numba_rows(figures: dict, case: str, notes: str) -> list[dict]:
    """Forward and forward+backward of backend=numba against backend=torch, one scene."""
    return [make_row("rasterizer", f"{step}, numba ({case})", "time", "s",
                     figures[f"numba_{key}"], figures[key], TORCH, repeats=figures.get(
                         "repeats"), notes=notes)
            for step, key in (("forward", "forward_s"),
                              ("forward+backward", "forward_backward_s"))]


def _deep_rows(result: dict) -> list[dict]:
    """Rows of the deep scene of one :func:`run` result."""
    d, n = result["deep"], result["repeats"]
    case = (f"deep scene, {d['gaussians']} Gaussians @ {d['size']}^2, "
            f"{d['overlaps_per_pixel']:.0f} per pixel")
    notes = f"threads {result['threads']}, load {result['load_average']:.2f}"
    return [
        *_numba_rows({**d, "repeats": n}, case, notes),
        make_row("rasterizer", f"peak memory, numba ({case})", "memory", "GB",
                 d["numba_peak_rss_mb"] / 1024, d["peak_rss_mb"] / 1024, TORCH, repeats=n,
                 notes="process peak RSS"),
    ]


def _gpu_rows(repeats: int, gaussians: int, size: int) -> list[dict]:
    """Ours (PyTorch on CUDA) against gsplat on one scene; skipped rows without CUDA/gsplat."""
    case = f"{gaussians} Gaussians @ {size}^2"
    cases = [(f"forward ({case})", "time", "s"), (f"forward+backward ({case})", "time", "s"),
             (f"peak memory forward+backward ({case})", "memory", "GB")]
    why = None if cuda_available() else "needs CUDA, not available here"
    if why is None:
        try:
            import gsplat  # noqa: F401
        except ImportError as err:
            why = f"gsplat is not installed ({err})"
    if why is not None:
        return [skipped_row("rasterizer", c, m, u, why, baseline_name="gsplat") for c, m, u in cases]
    scene = {k: v.cuda() if torch.is_tensor(v) else v for k, v in make_scene(gaussians, size).items()}
    ours = _cuda_figures(rasterize_torch, scene, repeats)
    theirs = _cuda_figures(lambda **kw: rasterize(**kw, backend="gsplat"), scene, repeats)
    return [make_row("rasterizer", c, m, u, o, t, "gsplat", device="cuda", repeats=repeats)
            for (c, m, u), o, t in zip(cases, ours, theirs, strict=True)]


def _cuda_figures(render, scene: dict, repeats: int) -> tuple[float, float, float]:
    """Median forward and forward + backward seconds and peak GB of one renderer on CUDA."""
    names = ("means", "quats", "scales", "opacities", "colors")

    def forward():
        with torch.no_grad():
            render(**scene)

    def forward_backward():
        leaves = {k: scene[k].clone().requires_grad_(True) for k in names}
        rgb, depth, alpha = render(**{**scene, **leaves})
        (rgb.sum() + 0.1 * depth.sum() + alpha.sum()).backward()

    fwd = median_time(forward, repeats, sync=cuda_sync)
    fwd_bwd = median_time(forward_backward, repeats, sync=cuda_sync)
    return fwd, fwd_bwd, peak_memory_gb(forward_backward, "cuda")


@dataclass
class Options:
    """The command line's keys (see the module's docstring)."""

    scene: Scene = "both"
    gaussians: int = 50000  # of the depth scene
    deep_gaussians: int = 12000  # of the deep scene
    size: int = 256
    repeats: int = 5
    json: Path | None = None  # also write the figures here


def show(result: dict) -> None:
    """The figures as a table: a line per scene and rasteriser, and their ratios."""
    rows = [("scene", "forward s", "fwd+bwd s", "peak RSS MB")]
    if "deep" in result:
        d = result["deep"]
        case = f"deep {d['gaussians']} @ {d['size']}^2, {d['overlaps_per_pixel']:.1f} per pixel"
        rows += _backend_lines(d, case)
    if "baseline" in result:
        b = result["baseline"]
        rows += [
            *_backend_lines(result, f"{result['gaussians']} @ {result['size']}^2"),
            (f"dense {b['gaussians']} @ {b['size']}^2", f"{b['dense_forward_s']:.3f}",
             f"{b['dense_forward_backward_s']:.3f}", f"{b['dense_peak_rss_mb']:.0f}"),
            (f"torch {b['gaussians']} @ {b['size']}^2", f"{b['torch_forward_s']:.3f}",
             f"{b['torch_forward_backward_s']:.3f}", f"{b['torch_peak_rss_mb']:.0f}"),
            ("dense / torch", f"{b['speedup_forward']:.1f}x",
             f"{b['speedup_forward_backward']:.1f}x", ""),
        ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    before = (f"resident before the depth scene: {result['start_rss_mb']:.0f} MB; "
              if "start_rss_mb" in result else "")
    print(f"{before}threads: {result['threads']}; repeats: {result['repeats']} (median); "
          f"load average before the run: {result['load_average']:.2f}")


def main(argv: list[str] | None = None) -> dict | None:
    """The command line (see the module's docstring); returns the figures."""
    return bench_main(__doc__, Options, lambda o: run(o.gaussians, o.size, o.repeats, o.scene,
                                                      o.deep_gaussians),
                      show, argv, "tools.bench_rasterizer")


def _backend_lines(figures: dict, case: str) -> list[tuple[str, ...]]:
    """Printed lines of one scene: numba, torch and their ratio."""
    return [
        (f"numba {case}", f"{figures['numba_forward_s']:.3f}",
         f"{figures['numba_forward_backward_s']:.3f}", f"{figures['numba_peak_rss_mb']:.0f}"),
        (f"torch {case}", f"{figures['forward_s']:.3f}", f"{figures['forward_backward_s']:.3f}",
         f"{figures['peak_rss_mb']:.0f}"),
        ("torch / numba", f"{figures['forward_s'] / figures['numba_forward_s']:.1f}x",
         f"{figures['forward_backward_s'] / figures['numba_forward_backward_s']:.1f}x", ""),
    ]


if __name__ == "__main__":
    main()
