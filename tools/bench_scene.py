"""Benchmark the whole scene stage on the bundled sample at the default (CPU) settings.

    python -m tools.bench_scene [--repeats 3] [--json OUT] [-- extra overrides ...]

Each repeat runs ``python -m dreamdance.run stage=scene force=true`` in a fresh process into a
temporary run directory and records its wall time, the per-step seconds from the manifest and
the child's peak resident memory. Reports medians, each step's share of the total and the
ratio to the 3-minute CPU target. :func:`suite` gives the rows of ``tools.bench_all``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.bench_common import make_row

TARGET_S = 180.0
QUICK = ["frames=5", "resolution=128", "stage.build_resolution=64",
         "stage.build.reference_steps=40", "stage.build.view_steps=5",
         "stage.spiral.candidates=12", "stage.spiral.views=2", "stage.custom.views=2"]


def run(repeats: int = 3, overrides: list[str] | None = None) -> dict:
    """Median wall seconds, per-step medians and peak RSS (MB) of ``repeats`` stage runs."""
    walls, steps, peaks = [], {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            out = Path(tmp) / f"run{i}"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dreamdance.run", "stage=scene", f"out={out}",
                            "force=true", *(overrides or [])], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls.append(time.perf_counter() - start)
            peaks.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
            manifest = json.loads((out / "manifest.json").read_text())
            for name, rec in manifest["steps"].items():
                steps.setdefault(name, []).append(rec.get("seconds", 0.0))
    wall = statistics.median(walls)
    step_medians = {k: statistics.median(v) for k, v in steps.items()}
    return {
        "repeats": repeats, "overrides": overrides or [], "wall_s": wall, "walls_s": walls,
        "steps_s": step_medians, "step_share": {k: v / wall for k, v in step_medians.items()},
        "peak_rss_mb": max(peaks), "target_s": TARGET_S, "ratio_to_target": wall / TARGET_S,
        "cpus": os.cpu_count(), "loadavg": os.getloadavg(),
    }


def suite(repeats: int = 5, gpu: bool = False, quick: bool = False) -> list[dict]:
    """Rows for ``tools.bench_all``: the scene stage's wall time (against the 3-minute CPU
    target) and peak memory. ``quick`` runs small settings once (the target then does not
    apply); the stage has no GPU variant, so ``gpu`` changes nothing."""
    n = 1 if quick else repeats
    return rows_of(run(n, QUICK if quick else None), quick)


def rows_of(result: dict, quick: bool = False) -> list[dict]:
    """Rows of one :func:`run` result."""
    n = result["repeats"]
    case = "sample, " + ("quick (frames=5, resolution=128)" if quick else "default CPU settings")
    overrides = f"; overrides: {' '.join(result['overrides'])}" if result["overrides"] else ""
    slowest = sorted(result["step_share"].items(), key=lambda kv: -kv[1])[:3]
    shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in slowest)
    return [
        make_row("scene", case, "time", "s", result["wall_s"],
                 target=None if quick else f"<= {TARGET_S:g}", repeats=n,
                 notes=f"fresh process per run; slowest steps: {shares}{overrides}"),
        make_row("scene", case, "memory", "GB", result["peak_rss_mb"] / 1024, repeats=n,
                 notes="peak RSS of the stage process"),
    ]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("overrides", nargs="*", help="extra config overrides, e.g. frames=16")
    args = ap.parse_args(argv)
    result = run(args.repeats, args.overrides)
    print(f"scene stage on the sample, median of {args.repeats}: {result['wall_s']:.1f} s "
          f"({result['ratio_to_target']:.2f}x the {TARGET_S:.0f} s target), "
          f"peak RSS {result['peak_rss_mb']:.0f} MB")
    for name, s in result["steps_s"].items():
        print(f"  {name:<16} {s:7.2f} s  {100 * result['step_share'][name]:5.1f} %")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
