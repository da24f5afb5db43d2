"""Benchmark the camera trackers (``camtrack=opencv`` and ``camtrack=colmap``) on synthetic
driving videos whose cameras are known.

    python -m tools.bench_camtrack [backends=opencv,colmap] [quick=false] [cases=false] [json=OUT]

The videos are :mod:`tools.camera_suite`'s: photos on planes at depths 3, 5 and 10, 384 x 384,
25 frames — pans, a turn about three axes, sideways moves, an orbit, a forward move, a
hand-held walk; with a dancer (masked or not), a blank frame, sensor noise — plus a noise-only
video and one long video (the hand-held walk with the dancer, 120 frames). Each backend runs
with its configuration file's defaults. Reported per backend: the largest rotation error and
direction error over the suite (degrees), the frames it had to hold (frozen), ATE and RPE
(:mod:`dreamdance.eval.trajectory`, the definitions of ``evo``), seconds per frame (median over
the cases), and the same on the long video; COLMAP's time against OpenCV's in the same run.
``quick=true``: 5 cases and a 40-frame long video; ``cases=true``: every case's figures too;
``json=``: the figures are also written there. :func:`suite` gives ``tools.bench_all``'s rows.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from dreamdance.errors import InputError
from dreamdance.eval.trajectory import path_errors
from tools import camera_suite
from tools.bench_common import bench_main, make_row

Backend = Literal["opencv", "colmap"]
BACKENDS: tuple[str, ...] = get_args(Backend)
QUICK_CASES = [("pan", "dancer"), ("yaw_pitch_roll", ""), ("sideways_1.0", "dancer"),
               ("orbit", "dancer_unmasked"), ("sideways_0.5", "blank")]
MAX_ROTATION, MAX_DIRECTION = 0.5, 3.0  # degrees: what every frame must meet


@dataclass
class Outcome:
    """One backend on one video."""

    case: str
    frames: int
    seconds: float
    max_rotation: float
    max_direction: float
    ate: float
    rpe_rotation: float
    held: int  # frames that hold an earlier pose (frozen)
    bridged: int  # frames placed between their neighbours
    warnings: int
    still: bool  # identity poses throughout


def tracker(backend: str):
    """The backend built from its configuration file, as ``camtrack=BACKEND`` builds it."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    path = Path(__file__).parents[1] / "conf" / "camtrack" / f"{backend}.yaml"
    return instantiate(OmegaConf.load(path))


def measure(track, v: camera_suite.Video, masked: bool) -> Outcome:
    """Run ``track`` on ``v`` (its masks given when ``masked``) and compare with the truth."""
    start = time.perf_counter()
    result = track(np.array(v.frames), v.K, np.array(v.masks) if masked else None)
    seconds = time.perf_counter() - start
    e = path_errors(result.trajectory.w2c, v.w2c)
    held = sum("held" in w for w in result.warnings)
    bridged = sum("interpolated" in w for w in result.warnings)
    still = bool(np.allclose(result.trajectory.w2c, np.eye(4)))
    return Outcome(v.name, len(v.frames), seconds, e.max_rotation, e.max_direction, e.ate,
                   e.rpe_rotation, held, bridged, len(result.warnings), still)


def run(backends=BACKENDS, quick: bool = False) -> dict:
    """Every backend on the suite (or its quick part), the noise video and the long video."""
    cases = QUICK_CASES if quick else camera_suite.CASES
    long_path, long_variant, long_frames = camera_suite.LONG
    if quick:
        long_frames = 40
    videos = [(camera_suite.video(p, variant), variant == "dancer") for p, variant in cases]
    long_video = camera_suite.video(long_path, long_variant, frames=long_frames)
    noise = camera_suite.noise_video()
    out: dict = {"cases": [v.name for v, _ in videos], "long": long_video.name,
                 "long_frames": long_frames, "backends": {}}
    for backend in backends:
        track = tracker(backend)
        suite_runs = [measure(track, v, masked) for v, masked in videos]
        noise_run = measure(track, noise, False)
        long_run = measure(track, long_video, True)
        out["backends"][backend] = {
            "suite": [vars(o) for o in suite_runs], "noise": vars(noise_run),
            "long": vars(long_run),
            "max_rotation": max(o.max_rotation for o in suite_runs),
            "max_direction": max(o.max_direction for o in suite_runs),
            "held": sum(o.held for o in suite_runs),
            "seconds_per_frame": statistics.median(o.seconds / o.frames for o in suite_runs),
        }
    return out


def _met(o: dict) -> bool:
    return o["max_rotation"] <= MAX_ROTATION and o["max_direction"] <= MAX_DIRECTION \
        and o["held"] == 0


def suite(repeats: int = 5, gpu: bool = False, quick: bool = False) -> list[dict]:
    """Rows for ``tools.bench_all`` (CPU only; each case runs once, its time is one run)."""
    r = run(quick=quick)
    rows, n = [], len(r["cases"])
    base = r["backends"].get("opencv")
    for backend, b in r["backends"].items():
        name = f"camtrack={backend}"
        rows += [
            make_row("camtrack", f"{name}: largest rotation error ({n} videos)", "error",
                     "deg", b["max_rotation"], target=f"<= {MAX_ROTATION}"),
            make_row("camtrack", f"{name}: largest direction error ({n} videos)", "error",
                     "deg", b["max_direction"], target=f"<= {MAX_DIRECTION}"),
            make_row("camtrack", f"{name}: frozen frames ({n} videos)", "count", "frames",
                     b["held"], target="<= 0"),
            make_row("camtrack", f"{name}: noise-only video gives a still camera and a warning",
                     "check", "bool", float(b["noise"]["still"] and b["noise"]["warnings"] > 0),
                     target=">= 1"),
        ]
        sec = b["seconds_per_frame"]
        if base is not None and backend != "opencv":
            rows.append(make_row("camtrack", f"{name}: time per frame (median, 384x384)",
                                 "time", "s", sec, base["seconds_per_frame"], "camtrack=opencv"))
        else:
            rows.append(make_row("camtrack", f"{name}: time per frame (median, 384x384)",
                                 "time", "s", sec))
        lo = b["long"]
        long_case = f"{name}: {r['long']}, {r['long_frames']} frames"
        rows += [
            make_row("camtrack", f"{long_case}, largest rotation error", "error", "deg",
                     lo["max_rotation"], target=f"<= {MAX_ROTATION}",
                     notes=f"ATE {lo['ate']:.4f}, RPE {lo['rpe_rotation']:.3f} deg"),
            make_row("camtrack", f"{long_case}, largest direction error", "error", "deg",
                     lo["max_direction"], target=f"<= {MAX_DIRECTION}",
                     notes=f"{lo['held']} frozen frames"),
            make_row("camtrack", f"{long_case}, time per frame", "time", "s",
                     lo["seconds"] / lo["frames"]),
        ]
    return rows


def report(r: dict, cases: bool) -> None:
    for backend, b in r["backends"].items():
        verdict = "meets" if _met(b) else "MISSES"
        print(f"camtrack={backend}: {len(r['cases'])} videos, rotation error max "
              f"{b['max_rotation']:.3f} deg, direction error max {b['max_direction']:.2f} deg, "
              f"{b['held']} frozen frames ({verdict} <= {MAX_ROTATION} deg, <= "
              f"{MAX_DIRECTION} deg, none frozen); {b['seconds_per_frame']:.3f} s per frame")
        n = b["noise"]
        print(f"  noise only: {'still camera' if n['still'] else 'MOVED'}, "
              f"{n['warnings']} warning(s)")
        lo = b["long"]
        print(f"  {lo['case']} ({lo['frames']} frames): rotation max {lo['max_rotation']:.3f} "
              f"deg, direction max {lo['max_direction']:.2f} deg, ATE {lo['ate']:.4f}, "
              f"RPE {lo['rpe_rotation']:.3f} deg, {lo['held']} frozen, "
              f"{lo['seconds'] / lo['frames']:.3f} s per frame")
        if cases:
            for o in b["suite"]:
                print(f"    {o['case']:30s} rot {o['max_rotation']:6.3f}  dir "
                      f"{o['max_direction']:6.2f}  ATE {o['ate']:.4f}  held {o['held']}  "
                      f"bridged {o['bridged']}  {o['seconds'] / o['frames']:.3f} s/frame")
    if "opencv" in r["backends"] and "colmap" in r["backends"]:
        ratio = r["backends"]["colmap"]["seconds_per_frame"] / \
            r["backends"]["opencv"]["seconds_per_frame"]
        print(f"colmap / opencv time per frame: {ratio:.1f}x")


@dataclass
class Options:
    """The command line's keys (see the module's docstring)."""

    backends: tuple[Backend, ...] = BACKENDS
    quick: bool = False
    cases: bool = False  # print every case's figures
    json: Path | None = None  # also write the figures here


def run_and_report(opts: Options) -> dict:
    """:func:`run` as the options ask, printed (:func:`report`)."""
    if not opts.backends:
        raise InputError("backends=", "needs a value")
    r = run(opts.backends, opts.quick)
    report(r, opts.cases)
    return r


def main(argv: list[str] | None = None) -> dict | None:
    """The command line (see the module's docstring); returns the figures."""
    return bench_main(__doc__, Options, run_and_report, None, argv, "tools.bench_camtrack")


if __name__ == "__main__":
    main()
