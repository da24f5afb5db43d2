"""Benchmark the dataset preparation: source videos per minute with one process and with two.

    python -m tools.bench_prepare [repeats=3] [quick=true] [json=FILE]

The videos are the synthetic ones of :mod:`tools.synthetic_videos` (a figure with its pose
file beside it, so no weights are needed): 16 videos of 96 frames at 128x128 (``quick=true``: 4
of 12 at 64x64), prepared with the tool's defaults (GrabCut masks; clips of 24 frames) by

- one process: ``python -m tools.prepare_data videos=DIR out=NEW``;
- two processes: ``accelerate launch --multi_gpu --num_processes 2 -m tools.prepare_data …
  device=cpu`` (gloo), each process doing every other video.

Each measurement is the wall time of the whole command into a new ``out`` (start-up included:
Python, the config, and for two processes the launcher, torch and the process group, about 6 s
of CPU time more than one process), timed in alternation; the figures are medians. The two
datasets are checked to be the same bytes. Ratio = the rate with two processes over the rate
with one. Other work on the machine takes cores from the two processes first: the notes give
the load average before the run.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tools.bench_common import (
    BenchOptions,
    bench_main,
    make_row,
    median_times_paired,
    quick_repeats,
)

BENCH = "prepare"
ROOT = Path(__file__).resolve().parents[1]
FULL = {"videos": 16, "frames": 96, "size": 128}
QUICK = {"videos": 4, "frames": 12, "size": 64}
CLIP = ("clip_frames=24", "min_frames=6")  # 4 clips of a 96-frame video, 1 of a 12-frame one


def make_videos(folder: Path, videos: int, frames: int, size: int) -> Path:
    """``videos`` synthetic videos with pose files in ``folder``; returns it."""
    from tools.synthetic_videos import add_video

    for i in range(videos):
        add_video(folder, f"dance-{i:03d}", frames, size=size)
    return folder


def command(videos: Path, out: Path, processes: int) -> list[str]:
    """The command that prepares ``videos`` into ``out`` with ``processes`` processes."""
    args = ["tools.prepare_data", f"videos={videos}", f"out={out}", *CLIP]
    if processes == 1:
        return [sys.executable, "-m", *args]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
            str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend",
            "no", "--main_process_ip", "127.0.0.1", "--main_process_port", str(port), "-m", *args,
            "device=cpu"]


def run_command(cmd: list[str]) -> None:
    """Run ``cmd`` from the repository root; a failure raises with the end of its stderr."""
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "TQDM_DISABLE": "1"})
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} … failed ({result.returncode}):\n"
                           + result.stderr[-3000:])


def time_runs(videos: Path, work: Path, repeats: int, warmup: int,
              run: Callable[[list[str]], None] | None = None,
              timer: Callable[[], float] = time.perf_counter) -> tuple[float, float, list[Path]]:
    """Median seconds of the whole command with 1 and with 2 processes (``run(command)``,
    :func:`run_command` by default), each call into a new folder under ``work``; returns them
    and the folders written, in call order (1 process, 2 processes, 1, 2, …)."""
    run = run or run_command
    counter = itertools.count()
    outs: list[Path] = []

    def prepare(processes: int) -> Callable[[], None]:
        def call() -> None:
            out = work / f"run-{next(counter):03d}-p{processes}"
            outs.append(out)
            run(command(videos, out, processes))
        return call

    one, two = median_times_paired([prepare(1), prepare(2)], repeats, warmup, timer)
    return one, two, outs


def same_dataset(a: Path, b: Path) -> bool:
    """Whether two datasets have the same ``metadata.jsonl`` and clip files, byte for byte."""
    def files(root: Path) -> dict[str, bytes]:
        paths = [root / "metadata.jsonl", *(p for p in (root / "clips").rglob("*")
                                            if p.is_file())]
        return {str(p.relative_to(root)): p.read_bytes() for p in paths}

    return files(a) == files(b)


def rows(one_s: float, two_s: float, spec: dict, repeats: int,
         load: float | None = None) -> list[dict]:
    """The rows: videos per minute with 1 process, and with 2 against it (``load``: the load
    average before the run, for the notes)."""
    n = spec["videos"]
    case = f"{n} videos of {spec['frames']} frames {spec['size']}x{spec['size']}, GrabCut masks"
    per_min_1, per_min_2 = n * 60 / one_s, n * 60 / two_s
    before = "" if load is None else f", load average {load:.1f} before"
    notes = f"wall time of the whole command, start-up included; {os.cpu_count()} cores{before}"
    return [make_row(BENCH, f"1 process ({case})", "throughput", "videos/min", per_min_1,
                     repeats=repeats, notes=notes),
            make_row(BENCH, f"2 processes, accelerate + gloo ({case})", "throughput",
                     "videos/min", per_min_2, per_min_1, "1 process", repeats=repeats,
                     notes=notes)]


def suite(repeats: int = 5, gpu: bool = False, quick: bool = False) -> list[dict]:
    """Rows for ``tools.bench_all``: one process and two on the CPU (``gpu`` adds nothing: the
    pose files make the work the same on any device)."""
    n = quick_repeats(repeats, quick)
    spec = QUICK if quick else FULL
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        work = Path(tmp)
        videos = make_videos(work / "videos", **spec)
        one, two, outs = time_runs(videos, work, n, warmup=0 if quick else 1)
        if not same_dataset(outs[0], outs[1]):
            raise RuntimeError(f"1 and 2 processes wrote different datasets: {outs[0]}, "
                               f"{outs[1]}")
    return rows(one, two, spec, n, load)


def main(argv: list[str] | None = None) -> list[dict] | None:
    """The command line (see the module's docstring); returns the figures."""
    return bench_main(__doc__, BenchOptions,
                      lambda opts: suite(opts.repeats, quick=opts.quick), show, argv,
                      "tools.bench_prepare")


def show(result: list[dict]) -> None:
    """One line per case."""
    for row in result:
        ratio = "" if row["ratio"] is None else f"  ratio {row['ratio']:.2f}"
        print(f"{row['case']:<82} {row['ours']:8.1f} {row['unit']}{ratio}")

if __name__ == "__main__":
    main()
