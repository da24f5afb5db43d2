"""Benchmark the CPU puppet animator on the bundled sample.

    python -m tools.bench_puppet [repeats=3] [quick=false] [json=OUT]

The sample art (art.png cut by art_mask.png, 512x512) is rigged once on its own pose
(art_pose.json), then animated with the sample dance (dance.json, 49 frames) aligned onto it
bone by bone (``limbs``) over a grey background. Times are medians over ``repeats`` runs after
one warm-up: the rig, and the 49 frames with that rig (target: rig + frames <= 15 s on a 2-core
CPU). Quality, from the same run: the mean and largest distance between the rest joints posed
by the rig and the driver's joints; triangles turned over by the skinning before and after
untangling, and the median change of triangle area (limbs alignment); and, with the dance
aligned by one similarity for the whole body (``box``), how far the driver's proportions
stretch the character's limbs (largest and smallest posed / rest bone length). ``quick=true``:
9 frames, at most 2 repeats. ``json=``: the figures are also written there. :func:`suite` gives
the rows of ``tools.bench_all``.
"""

from __future__ import annotations

import time

import numpy as np

from dreamdance import assets
from dreamdance.media import load_image
from dreamdance.motion.align import CharacterFrame, align_poses
from dreamdance.motion.poses import PARTS, PoseSequence, read_poses
from dreamdance.puppet import animate, build_rig, deform, deform_points, frame_transforms
from dreamdance.puppet.deform import pivots, skin
from dreamdance.puppet.mesh import signed_areas
from dreamdance.puppet.skeleton import BONE_JOINTS, confident
from tools.bench_common import BenchOptions, bench_main, make_row, median_time, quick_repeats

TARGET_S = 15.0  # rig once + 49 frames at 512x512 on 2 cores


def sample() -> tuple[np.ndarray, PoseSequence, PoseSequence]:
    """The sample cut-out [H, W, 4], its own pose and the dance (driver's frame)."""
    art = load_image(assets.sample_path(assets.ART)).rgb
    mask = load_image(assets.sample_path(assets.ART_MASK))
    alpha = mask.alpha if mask.alpha is not None else mask.rgb[..., 0]
    character = np.concatenate([art, alpha[..., None]], -1).astype(np.float32)
    return (character, read_poses(assets.sample_path(assets.ART_POSE)),
            read_poses(assets.sample_path(assets.DANCE)))


def run(repeats: int = 3, frames: int | None = None) -> dict:
    """Rig and animate the sample; timings (medians) and quality figures.

    Args:
        repeats: timed runs per median, after one warm-up.
        frames: animate only the first ``frames`` of the dance (all 49 when None).
    """
    character, own, dance = sample()
    rest, face = own.body[0, 0], own.face[0, 0]
    char_frame = CharacterFrame.from_pose(own)
    limbs = align_poses(dance, char_frame, "limbs")
    box = align_poses(dance, char_frame, "box")
    n = len(limbs) if frames is None else min(frames, len(limbs))
    limbs = PoseSequence(**{p: getattr(limbs, p)[:n] for p in PARTS}, width=limbs.width,
                         height=limbs.height, fps=limbs.fps, driver=limbs.driver)
    background = np.broadcast_to(np.float32(0.5), (n, *character.shape[:2], 3))

    rig_s = median_time(lambda: build_rig(character, rest, face), repeats)
    rig = build_rig(character, rest, face)
    frames_s = median_time(lambda: animate(character, rest, face, limbs, background, rig=rig,
                                           progress=False), repeats)

    errors, flipped_skin, flipped, changes = [], 0, 0, []
    rest_area = signed_areas(rig.vertices, rig.triangles)
    for t in range(n):
        body, landmarks = limbs.body[t, limbs.driver], limbs.face[t, limbs.driver]
        transforms = frame_transforms(rig, body, landmarks)
        ok = confident(rig.rest) & confident(body)
        posed_joints = deform_points(rig, transforms, rig.rest[ok, :2])
        errors.append(np.linalg.norm(posed_joints - body[ok, :2], axis=1))
        skinned = skin(rig.vertices, rig.weights, transforms, pivots(rig.rest))
        flipped_skin += int((signed_areas(skinned, rig.triangles) * rest_area <= 0).sum())
        posed = deform(rig, transforms)
        area = signed_areas(posed, rig.triangles)
        flipped += int((area * rest_area <= 0).sum())
        changes.append(np.abs(area / rest_area - 1))
    errors = np.concatenate(errors)
    stretch = bone_stretch(rest, box.body[:, box.driver], rig.rigged)
    return {"repeats": repeats, "frames": n, "size": list(character.shape[:2]),
            "rig_s": rig_s, "frames_s": frames_s, "total_s": rig_s + frames_s,
            "per_frame_ms": 1e3 * frames_s / n, "target_s": TARGET_S,
            "vertices": len(rig.vertices), "triangles": len(rig.triangles),
            "joint_error_mean_px": float(errors.mean()),
            "joint_error_max_px": float(errors.max()),
            "flipped_before_untangling": flipped_skin, "flipped": flipped,
            "area_change_median": float(np.median(np.concatenate(changes))),
            "box_stretch_max": stretch[0], "box_stretch_min": stretch[1]}


def bone_stretch(rest: np.ndarray, bodies: np.ndarray, rigged: np.ndarray) -> tuple[float, float]:
    """Largest and smallest posed / rest length of the rigged limb bones over the frames.

    Args:
        rest: the rest pose. [18, 3]
        bodies: the posed frames. [T, 18, 3]
        rigged: which parts are rigged. [B] bool
    """
    ratios = []
    for part in np.flatnonzero(rigged[2:]) + 2:
        a, b = BONE_JOINTS[part]
        ok = (bodies[:, a, 2] >= 0.3) & (bodies[:, b, 2] >= 0.3)
        length = np.linalg.norm(rest[b, :2] - rest[a, :2])
        ratios.append(np.linalg.norm(bodies[ok, b, :2] - bodies[ok, a, :2], axis=1) / length)
    ratios = np.concatenate(ratios)
    return float(ratios.max()), float(ratios.min())


def suite(repeats: int = 5, gpu: bool = False, quick: bool = False) -> list[dict]:
    """Rows for ``tools.bench_all``: rig and frame times, joint error (CPU only; ``gpu`` has
    nothing to add)."""
    n = quick_repeats(repeats, quick)
    r = run(n, frames=9 if quick else None)
    case = f"sample {r['size'][0]}x{r['size'][1]}"
    mesh = f"{r['vertices']} vertices, {r['triangles']} triangles"
    target = None if quick else f"<= {TARGET_S:g}"
    return [
        make_row("puppet", f"rig ({case})", "time", "s", r["rig_s"], repeats=n, notes=mesh),
        make_row("puppet", f"rig + {r['frames']} frames ({case})", "time", "s", r["total_s"],
                 target=target, repeats=n,
                 notes=f"{r['per_frame_ms']:.0f} ms per frame after the rig"),
        make_row("puppet", f"joint error, limbs alignment ({case})", "error", "px",
                 r["joint_error_mean_px"], target="<= 2", repeats=1,
                 notes=f"max {r['joint_error_max_px']:.2f} px; {r['flipped']} triangles turned "
                       f"over ({r['flipped_before_untangling']} before untangling); median "
                       f"area change {100 * r['area_change_median']:.2f}%; box alignment "
                       f"stretches limbs x{r['box_stretch_min']:.2f}..x"
                       f"{r['box_stretch_max']:.2f}"),
    ]


def measure(opts: BenchOptions) -> dict:
    """:func:`run` as the options ask, with its wall time."""
    start = time.perf_counter()
    result = run(quick_repeats(opts.repeats, opts.quick), frames=9 if opts.quick else None)
    result["wall_s"] = time.perf_counter() - start
    return result


def show(result: dict) -> None:
    """The figures, in three lines."""
    print(f"rig {result['rig_s']:.2f} s ({result['vertices']} vertices, "
          f"{result['triangles']} triangles); {result['frames']} frames "
          f"{result['frames_s']:.2f} s ({result['per_frame_ms']:.0f} ms/frame); total "
          f"{result['total_s']:.2f} s (target <= {TARGET_S:g} s)")
    print(f"joint error mean {result['joint_error_mean_px']:.3f} px, max "
          f"{result['joint_error_max_px']:.2f} px; turned over {result['flipped']} "
          f"(before untangling {result['flipped_before_untangling']}); median area change "
          f"{100 * result['area_change_median']:.2f}%")
    print(f"box alignment: limb length x{result['box_stretch_min']:.2f} .. "
          f"x{result['box_stretch_max']:.2f} of the rest")


def main(argv: list[str] | None = None) -> dict | None:
    """The command line (see the module's docstring); returns the figures."""
    return bench_main(__doc__, BenchOptions, measure, show, argv, "tools.bench_puppet")


if __name__ == "__main__":
    main()
