"""Benchmark ``model=wan_animate``: our backend's overhead over calling diffusers directly.

    python -m tools.bench_wan_animate [repeats=3] [quick=false] [json=OUT]

On a CPU, with the tiny random pipeline (:mod:`dreamdance.animate.wan_tiny`) at 64x64 and 13
frames of the sample dance: our backend (conditions built from the run directory's inputs:
the Wan pose drawing, face crops, padding, then one pipeline call) against diffusers'
``WanAnimatePipeline`` called directly with the same, already built, conditions; medians timed
in alternation (``quick=true``: at most 2 repeats), target ours / baseline <= 1.05; ``json=``:
the figures are also written there. The full-size figures (14B config in bf16 at
832x480 and 77 frames: seconds per step and peak GPU memory with ``model.offload``
none / model / group) need CUDA and are reported as not run without it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from dreamdance import assets
from dreamdance.animate.backend import AnimateInputs
from dreamdance.motion.align import CharacterFrame, align_poses
from dreamdance.motion.poses import read_poses
from tools.bench_common import (
    BenchOptions,
    bench_main,
    make_row,
    median_times_paired,
    quick_repeats,
    skipped_row,
)

SIZE, FRAMES = 64, 13


def sample_inputs(size: int = SIZE, frames: int = FRAMES) -> AnimateInputs:
    """The sample dance aligned onto the sample character at ``size``², a grey scene."""
    from dreamdance.media import load_image, resize

    own = read_poses(assets.sample_path(assets.ART_POSE))
    scale = np.array([size / own.width, size / own.height, 1], np.float32)
    own_small = type(own)(**{p: getattr(own, p) * scale for p in
                             ("body", "face", "left_hand", "right_hand")},
                          width=size, height=size, fps=own.fps)
    dance = read_poses(assets.sample_path(assets.DANCE))
    poses = align_poses(dance, CharacterFrame.from_pose(own_small), "box")
    poses = type(poses)(**{p: getattr(poses, p)[:frames] for p in
                           ("body", "face", "left_hand", "right_hand")},
                        width=size, height=size, fps=poses.fps)
    art = resize(load_image(assets.sample_path(assets.ART)).rgb, (size, size))
    mask = resize(load_image(assets.sample_path(assets.ART_MASK)).rgb[..., 0], (size, size))
    character = np.concatenate([art, mask[..., None]], -1).astype(np.float32)
    return AnimateInputs(
        background=np.full((frames, size, size, 3), 0.5, np.float32),
        masks=np.ones((frames, size, size), bool), poses=poses, pose_videos={},
        character=character, character_pose={p: getattr(own_small, p)[0, 0] for p in
                                             ("body", "face", "left_hand", "right_hand")},
        caption="a scenic background", driving=None, driving_poses=None,
        art=art.astype(np.float32), fps=8.0, seed=0, device="cpu")


def run(repeats: int = 3) -> dict:
    """Median seconds of our backend and of the direct pipeline call on the same inputs."""
    import torch

    from dreamdance.animate.wan import WanAnimate
    from dreamdance.animate.wan_tiny import tiny_wan_animate

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny_wan_animate(Path(tmp) / "wan")
        backend = WanAnimate(path=str(folder), steps=2, segment_frames=9, dtype="fp32")
        pipe = backend.pipeline("cpu")
        pipe.set_progress_bar_config(disable=True)
        inputs = sample_inputs()
        conditions = backend.conditions(inputs, pipe.transformer.config.motion_encoder_size)
        ours, baseline = median_times_paired(
            [lambda: backend.generate(pipe, inputs),
             lambda: pipe(**conditions, **backend.call_kwargs(inputs))], repeats)
    return {"ours_s": ours, "baseline_s": baseline, "ratio": ours / baseline}


def suite(repeats: int = 5, gpu: bool = False, quick: bool = False) -> list[dict]:
    """Rows for ``tools.bench_all``."""
    n = quick_repeats(repeats, quick)
    r = run(n)
    rows = [make_row("wan_animate", f"tiny pipeline call, {SIZE}x{SIZE}, {FRAMES} frames",
                     "time", "s", r["ours_s"], r["baseline_s"], "diffusers WanAnimatePipeline",
                     target=None if quick else "<= 1.05", repeats=n,
                     notes="ours builds the conditions from the run's inputs in the call")]
    for offload in ("none", "model", "group"):
        rows.append(skipped_row("wan_animate", f"14B bf16, 832x480, 77 frames, offload={offload}",
                                "time", "s/step", "needs CUDA and a GPU session; not run here"))
    return rows


def show(r: dict) -> None:
    """The figures, in one line."""
    print(f"ours {r['ours_s']:.3f} s, diffusers directly {r['baseline_s']:.3f} s, "
          f"ratio {r['ratio']:.3f} (target <= 1.05)")


def main(argv: list[str] | None = None) -> dict | None:
    """The command line (see the module's docstring); returns the figures."""
    return bench_main(__doc__, BenchOptions, lambda o: run(quick_repeats(o.repeats, o.quick)),
                      show, argv, "tools.bench_wan_animate")


if __name__ == "__main__":
    main()
