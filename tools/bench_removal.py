"""Benchmark painting the dancer out of a driving video (scene.source=driving).

    python -m tools.bench_removal [repeats=3] [quick=false] [json=OUT]

A synthetic driving video whose background is known: a textured scene the camera pans across
(2 px per frame) while an elliptical "dancer" walks across it, 49 frames at 512x288 (the
working size of a 16:9 video at resolution=512; ``quick=true``: 7 frames at 192x108). The
dancer's pose box seeds the person masks. Timed (medians over ``repeats`` after a warm-up):
the person masks (GrabCut per box), the fill from other frames
(:func:`dreamdance.scene.removal.fill_background`, window 12) and, as the baseline, inpainting
each frame alone (OpenCV Telea). Quality: PSNR in the dancer's region against the known
background, ours and the baseline's. ``json=``: the figures are also written there.
:func:`suite` gives the rows of ``tools.bench_all``.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from dreamdance.motion.poses import PARTS, PoseSequence
from dreamdance.scene.removal import fill_background, person_masks
from tools.bench_common import BenchOptions, bench_main, make_row, median_time, quick_repeats

DANCER = (230, 20, 200)
WINDOW = 12


def walk(frames: int, width: int, height: int, pan: int = 2, seed: int = 0):
    """The synthetic driving video.

    Returns:
        ``(video [T, H, W, 3] uint8, background [T, H, W, 3] uint8, dancer [T, H, W] bool,
        poses at W x H)``
    """
    rng = np.random.default_rng(seed)
    wide = width + pan * frames + 1
    y, x = np.mgrid[0:height, 0:wide].astype(np.float32)
    base = np.stack([60 + 0.3 * x % 120, 90 + 0.5 * y, 140 - 0.1 * x + 0.3 * y], -1)
    stripes = 35 * np.sin(2 * np.pi * (x + 0.5 * y) / 9.0)[..., None]
    noise = cv2.GaussianBlur(rng.normal(0, 30, (height, wide, 3)).astype(np.float32), (0, 0), 1)
    scene = np.clip(base + stripes + noise, 0, 255).astype(np.uint8)
    background = np.stack([scene[:, pan * t:pan * t + width] for t in range(frames)])
    video, dancer = background.copy(), np.zeros((frames, height, width), bool)
    rx, ry = int(0.08 * height), int(0.28 * height)
    parts = {part: np.zeros((frames, 1, k, 3), np.float32) for part, k in PARTS.items()}
    for t in range(frames):
        cx, cy = int(0.12 * width + 0.76 * width * t / max(frames - 1, 1)), int(0.52 * height)
        canvas = np.zeros((height, width), np.uint8)
        cv2.ellipse(canvas, (cx, cy), (rx, ry), 0, 0, 360, 1, -1)
        dancer[t] = canvas.astype(bool)
        video[t][dancer[t]] = DANCER
        # a standing skeleton inside the ellipse: head, neck, shoulders, hips, knees, ankles
        for k, (dx, dy) in {0: (0, -0.75), 1: (0, -0.5), 2: (-0.5, -0.45), 5: (0.5, -0.45),
                            8: (-0.3, 0.1), 11: (0.3, 0.1), 9: (-0.3, 0.45), 12: (0.3, 0.45),
                            10: (-0.3, 0.8), 13: (0.3, 0.8)}.items():
            parts["body"][t, 0, k] = (cx + dx * rx, cy + dy * ry, 0.9)
    return video, background, dancer, PoseSequence(**parts, width=width, height=height,
                                                   fps=8.0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def per_frame_inpaint(video: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The baseline: every frame inpainted alone (OpenCV Telea, radius 3)."""
    return np.stack([cv2.inpaint(f, m.astype(np.uint8), 3, cv2.INPAINT_TELEA)
                     for f, m in zip(video, masks, strict=True)])


def run(repeats: int = 3, quick: bool = False) -> dict:
    frames, width, height = (7, 192, 108) if quick else (49, 512, 288)
    video, background, dancer, poses = walk(frames, width, height)
    masks_s = median_time(lambda: person_masks(video, poses, 0.03), repeats)
    masks = person_masks(video, poses, 0.03)
    fill_s = median_time(lambda: fill_background(video, masks, WINDOW), repeats)
    alone_s = median_time(lambda: per_frame_inpaint(video, masks), repeats)
    filled, source = fill_background(video, masks, WINDOW)
    alone = per_frame_inpaint(video, masks)
    return {"repeats": repeats, "frames": frames, "size": [width, height], "window": WINDOW,
            "masks_s": masks_s, "fill_s": fill_s, "per_frame_inpaint_s": alone_s,
            "cover": float((masks & dancer).sum() / dancer.sum()),
            "from_frames": float((source[masks] == 1).mean()),
            "psnr_db": psnr(filled[dancer], background[dancer]),
            "per_frame_inpaint_psnr_db": psnr(alone[dancer], background[dancer])}


def suite(repeats: int = 5, gpu: bool = False, quick: bool = False) -> list[dict]:
    """Rows for ``tools.bench_all`` (CPU only; ``gpu`` has nothing to add)."""
    n = quick_repeats(repeats, quick)
    r = run(n, quick)
    case = f"{r['frames']} frames {r['size'][0]}x{r['size'][1]}, panning walk"
    return [
        make_row("removal", f"person masks ({case})", "time", "s", r["masks_s"], repeats=n,
                 notes=f"GrabCut per pose box; {100 * r['cover']:.1f}% of the dancer covered"),
        make_row("removal", f"fill from other frames ({case})", "time", "s", r["fill_s"],
                 r["per_frame_inpaint_s"], "inpaint each frame alone", repeats=n,
                 notes=f"window {r['window']}; {100 * r['from_frames']:.1f}% of the masked "
                       "pixels seen in other frames"),
        make_row("removal", f"PSNR in the dancer's region ({case})", "quality", "dB",
                 r["psnr_db"], r["per_frame_inpaint_psnr_db"], "inpaint each frame alone",
                 target=">= 1.5", repeats=1, notes="against the known background"),
    ]


def measure(opts: BenchOptions) -> dict:
    """:func:`run` as the options ask, with its wall time."""
    start = time.perf_counter()
    r = run(quick_repeats(opts.repeats, opts.quick), opts.quick)
    r["wall_s"] = time.perf_counter() - start
    return r


def show(r: dict) -> None:
    """The figures, in two lines."""
    print(f"{r['frames']} frames {r['size'][0]}x{r['size'][1]}: masks {r['masks_s']:.2f} s, "
          f"fill {r['fill_s']:.2f} s (window {r['window']}), per-frame inpainting "
          f"{r['per_frame_inpaint_s']:.2f} s")
    print(f"PSNR in the dancer's region: ours {r['psnr_db']:.1f} dB, per-frame inpainting "
          f"{r['per_frame_inpaint_psnr_db']:.1f} dB; {100 * r['from_frames']:.1f}% from other "
          f"frames; dancer covered {100 * r['cover']:.1f}%")


def main(argv: list[str] | None = None) -> dict | None:
    """The command line (see the module's docstring); returns the figures."""
    return bench_main(__doc__, BenchOptions, measure, show, argv, "tools.bench_removal")


if __name__ == "__main__":
    main()
