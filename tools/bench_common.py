"""Helpers shared by the ``tools/bench_*.py`` suites: median timing, peak memory, result rows,
a description of the machine and the command line.

Every suite exposes ``suite(repeats=5, gpu=False, quick=False) -> list[dict]``; each dict is a
row made by :func:`make_row` (or :func:`skipped_row` for a measurement that cannot run here).
Run alone, each takes ``key=value`` options (:func:`bench_main`).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import operator
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dreamdance.errors import InputError
from dreamdance.io import write_json
from tools.cli import parse_options, tool_main

T = TypeVar("T")
ROW_KEYS = ("benchmark", "case", "metric", "unit", "ours", "baseline_name", "baseline", "ratio",
            "target", "met", "device", "repeats", "notes")
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1,
                sync: Callable[[], None] | None = None,
                timer: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls.

    Args:
        fn: the work to time.
        repeats: timed calls, at least 1.
        warmup: untimed calls before them.
        sync: called after each call before the clock is read (``torch.cuda.synchronize``).
        timer: the clock.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
        sync()
    times = []
    for _ in range(repeats):
        start = timer()
        fn()
        sync()
        times.append(timer() - start)
    return statistics.median(times)


def median_times_paired(fns: list[Callable[[], Any]], repeats: int, warmup: int = 1,
                        timer: Callable[[], float] = time.perf_counter) -> list[float]:
    """Median seconds of each of ``fns``, timed in alternation (a, b, a, b, …) so that a
    change of machine load during the run falls on all of them alike."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times, strict=True):
            start = timer()
            fn()
            bucket.append(timer() - start)
    return [statistics.median(bucket) for bucket in times]


def reset_cpu_peak() -> bool:
    """Reset the process's peak resident set (Linux ``clear_refs``); False where the system does
    not allow it, and :func:`cpu_peak_gb` then counts from the process start."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_peak_gb() -> float:
    """Peak resident set of this process in GB: ``VmHWM`` where Linux has it, else
    ``ru_maxrss`` (since the process start)."""
    peak = status_mb("VmHWM:")
    if not math.isnan(peak):
        return peak / 1024
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30


def status_mb(field: str) -> float:
    """A memory line of /proc/self/status (e.g. ``"VmRSS:"``) in MB, NaN where there is none."""
    for line in _read_lines("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_memory_gb(fn: Callable[[], Any], device: str = "cpu") -> float:
    """Run ``fn`` once and return the peak memory in GB while it ran: allocated CUDA memory
    (``torch.cuda.max_memory_allocated``) on ``"cuda"``, the process's peak resident set on
    ``"cpu"`` (see :func:`cpu_peak_gb`)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**30
    reset_cpu_peak()
    fn()
    return cpu_peak_gb()


def cuda_available() -> bool:
    """Whether torch sees a CUDA device."""
    import torch

    return torch.cuda.is_available()


def cuda_sync() -> None:
    """Wait for queued CUDA work (for timing)."""
    import torch

    torch.cuda.synchronize()


def target_met(target: str | None, value: float | None) -> bool | None:
    """Whether ``value`` meets ``target`` (``"<= 1.05"``, ``">= 2"``, ...); None without both."""
    if target is None or value is None:
        return None
    op, _, bound = target.strip().partition(" ")
    if op not in _OPS:
        raise ValueError(f"target must be '<op> <number>' with op in {sorted(_OPS)}, got {target!r}")
    return bool(_OPS[op](value, float(bound)))


def make_row(benchmark: str, case: str, metric: str, unit: str, ours: float,
             baseline: float | None = None, baseline_name: str | None = None,
             target: str | None = None, device: str = "cpu", repeats: int = 1,
             notes: str = "") -> dict:
    """One result row. ``ratio`` is ours / baseline when there is a baseline; ``target`` applies
    to the ratio when there is one, else to ``ours`` itself (an absolute bound in ``unit``)."""
    if (baseline is None) != (baseline_name is None):
        raise ValueError(f"{benchmark}/{case}: baseline and baseline_name go together")
    ratio = ours / baseline if baseline is not None else None
    return {"benchmark": benchmark, "case": case, "metric": metric, "unit": unit,
            "ours": ours, "baseline_name": baseline_name, "baseline": baseline, "ratio": ratio,
            "target": target, "met": target_met(target, ratio if baseline is not None else ours),
            "device": device, "repeats": repeats, "notes": notes}


def skipped_row(benchmark: str, case: str, metric: str, unit: str, notes: str,
                baseline_name: str | None = None, target: str | None = None,
                device: str = "cuda") -> dict:
    """A row for a measurement that did not run here (``ours`` None), saying why in ``notes``."""
    return {"benchmark": benchmark, "case": case, "metric": metric, "unit": unit, "ours": None,
            "baseline_name": baseline_name, "baseline": None, "ratio": None, "target": target,
            "met": None, "device": device, "repeats": 0, "notes": notes}


def quick_repeats(repeats: int, quick: bool) -> int:
    """The repeats a suite uses: at most 2 in quick mode."""
    return min(repeats, 2) if quick else repeats


@dataclasses.dataclass
class BenchOptions:
    """The keys most benchmarks take alone (their docstrings say what ``quick`` shrinks)."""

    repeats: int = 3  # timed runs per median
    quick: bool = False  # small sizes, at most 2 repeats
    json: Path | None = None  # also write the figures here


def bench_options(options: type[T], argv: list[str], tool: str,
                  passthrough: tuple[str, ...] = ()) -> tuple[T, list[str]]:
    """:func:`tools.cli.parse_options` for a benchmark, whose whole-number options (repeats,
    sizes, counts) must each be at least 1."""
    opts, overrides = parse_options(options, argv, tool, passthrough)
    for field in dataclasses.fields(opts):
        value = getattr(opts, field.name)
        if type(value) is int and value < 1:
            raise InputError(f"{field.name}={value}", "must be at least 1")
    return opts, overrides


def bench_main(doc: str | None, options: type[T], measure: Callable[[T], Any],
               show: Callable[[Any], None] | None, argv: list[str] | None, tool: str) -> Any:
    """A benchmark's ``main()``: ``doc`` on ``--help``, else its ``key=value`` options
    (:func:`bench_options`), ``figures = measure(options)``, the figures printed by ``show``
    (unless None) and written to the option ``json=`` where there is one and it is given;
    returns the figures."""

    def run(args: list[str]) -> Any:
        opts, _ = bench_options(options, args, tool)
        figures = measure(opts)
        if getattr(opts, "json", None) is not None:
            write_json(opts.json, figures)
        return figures

    return tool_main(doc, run, argv, report=show)


def machine() -> dict:
    """What the figures were measured on: CPU model, cores, memory, torch, GPU, load, date."""
    import torch

    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _total_memory_gb(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if info["gpu"] is not None:
        info["gpu_memory_gb"] = torch.cuda.get_device_properties(0).total_memory / 2**30
    return info


def _cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what ``platform`` says)."""
    for line in _read_lines("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _total_memory_gb() -> float | None:
    """Physical memory in GB (psutil where installed, else /proc/meminfo); None if unknown."""
    try:
        import psutil
    except ImportError:
        return status_total_gb()
    return psutil.virtual_memory().total / 2**30


def status_total_gb() -> float | None:
    """``MemTotal`` of /proc/meminfo in GB, None where there is none."""
    for line in _read_lines("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return None


def _read_lines(path: str) -> list[str]:
    """The lines of a /proc file, none where the system has no such file."""
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []
