"""Benchmark the whole scene stage on the bundled sample at the default (CPU) settings.

    python -m tools.bench_scene [repeats=3] [quick=false] [json=OUT] [RUN KEY=VALUE ...]

Each repeat runs ``python -m dreamdance.run stage=scene force=true`` in a fresh process into a
temporary run directory and records its wall time, the per-step seconds from the manifest and
the child's peak resident memory. Reports medians, each step's share of the total and the
ratio to the 3-minute CPU target. Every other key of the run config passes on to the stage
(``frames=16``, ``inpainter=opencv``, ``stage.spiral.views=3``; not ``out``, ``force`` or
``stage``, which the benchmark sets) and is checked before the first run. ``quick=true``: one run
at small settings (``frames=5 resolution=128`` ...; the run keys given still apply).
``json=``: the figures are also written there. :func:`suite` gives the rows of
``tools.bench_all``.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dreamdance.io import write_json
from tools.bench_common import BenchOptions, bench_options, make_row
from tools.cli import compose_config, tool_main

TARGET_S = 180.0
SET_HERE = ("out", "force", "stage")  # run keys the benchmark sets (stage.* passes on)
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


def run_keys() -> tuple[str, ...]:
    """The run config's keys passed on to the stage: each key of ``conf/config.yaml``
    (``frames``; a section's as ``scene.`` for its sub-keys) and each config group (``inpainter``
    and ``inpainter.``), except :data:`SET_HERE`; ``stage.`` too."""
    from omegaconf import DictConfig, OmegaConf

    conf = Path(__file__).parents[1] / "conf"
    top = OmegaConf.load(conf / "config.yaml")
    keys = [f"{k}." if isinstance(top[k], DictConfig) else k for k in top if k != "defaults"]
    groups = sorted(p.name for p in conf.iterdir() if p.is_dir() and not p.name.startswith("_"))
    keys += [k for g in groups for k in (g, f"{g}.")]
    return (*(k for k in keys if k.rstrip(".") not in SET_HERE), "stage.")


def measure(argv: list[str]) -> dict:
    """Parse the command line, check the run keys, and :func:`run` as asked."""
    opts, overrides = bench_options(BenchOptions, argv, "tools.bench_scene", run_keys())
    if opts.quick:
        overrides = [*QUICK, *overrides]
    compose_config(["stage=scene", *overrides])  # a bad run key: one line, before any run
    result = run(1 if opts.quick else opts.repeats, overrides)
    if opts.json is not None:
        write_json(opts.json, result)
    return result


def show(result: dict) -> None:
    """The median and each step's share, one line each."""
    print(f"scene stage on the sample, median of {result['repeats']}: {result['wall_s']:.1f} s "
          f"({result['ratio_to_target']:.2f}x the {TARGET_S:.0f} s target), "
          f"peak RSS {result['peak_rss_mb']:.0f} MB")
    for name, s in result["steps_s"].items():
        print(f"  {name:<16} {s:7.2f} s  {100 * result['step_share'][name]:5.1f} %")


def main(argv: list[str] | None = None) -> dict | None:
    """The command line (see the module's docstring); returns the figures."""
    return tool_main(__doc__, measure, argv, report=show)


if __name__ == "__main__":
    main()
