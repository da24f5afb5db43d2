"""Run every benchmark suite and write one table of results.

    python -m tools.bench_all [repeats=5] [gpu=false] [quick=false] [only=animate,scene]
        [json=FILE]

Each ``tools/bench_<name>.py`` exposes ``suite(repeats, gpu, quick) -> list[dict]`` (rows as
made by :func:`tools.bench_common.make_row`); ``only=`` runs the named ones (default: all of
rasterizer, scene, animate, puppet, removal, camtrack, wan_animate, train), ``repeats=`` is the
runs per median, ``gpu=true`` adds the full-size CUDA variants, ``quick=true`` small sizes
(seconds in all). A suite whose module does not exist is reported as unavailable. The rows and
the machine they ran on go to ``json=`` (default ``benchmarks/latest.json``) and the table as
markdown next to it (``latest.md``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dreamdance.errors import InputError
from dreamdance.io import write_json, write_text
from tools.bench_common import bench_options, machine
from tools.cli import tool_main

SUITES = ("rasterizer", "scene", "animate", "puppet", "removal", "camtrack", "wan_animate",
          "train", "prepare")
COLUMNS = ("benchmark", "case", "ours", "baseline", "ratio", "target", "met")
DEFAULT_JSON = Path("benchmarks/latest.json")


def load_suite(name: str) -> Callable[..., list[dict]] | None:
    """The ``suite`` function of ``tools.bench_<name>``, None when that module does not exist.

    An import error from inside an existing module (a missing dependency) is raised."""
    module = f"tools.bench_{name}"
    try:
        return importlib.import_module(module).suite
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        return None


def run_suites(names: list[str], repeats: int = 5, gpu: bool = False,
               quick: bool = False) -> tuple[list[dict], dict[str, str]]:
    """Rows of every named suite, and ``{name: reason}`` for those that are unavailable."""
    rows, unavailable = [], {}
    for name in names:
        suite = load_suite(name)
        if suite is None:
            unavailable[name] = f"no module tools.bench_{name}"
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += suite(repeats=repeats, gpu=gpu, quick=quick)
    return rows, unavailable


def table(rows: list[dict], unavailable: dict[str, str]) -> list[list[str]]:
    """The table's cells: a header, then one line per row and per unavailable suite."""
    lines = [list(COLUMNS)]
    for r in rows:
        lines.append([r["benchmark"], r["case"] + ("" if r["device"] == "cpu" else
                                                   f" [{r['device']}]"),
                      _value(r["ours"], r["unit"]), _baseline(r), _number(r["ratio"], "x"),
                      r["target"] or "", _met(r)])
    for name, reason in unavailable.items():
        lines.append([name, f"unavailable ({reason})", "", "", "", "", ""])
    return lines


def format_text(cells: list[list[str]]) -> str:
    """Aligned plain-text table."""
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in cells) + "\n"


def format_markdown(cells: list[list[str]], info: dict) -> str:
    """Markdown table with a line naming the machine."""
    head, *body = cells
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in body]
    gpu = f", {info['gpu']}" if info.get("gpu") else ""
    mem = f"{info['memory_gb']:.0f} GB" if info.get("memory_gb") is not None else "? GB"
    out += ["", f"{info['cpu']}, {info['cores']} cores, {mem}{gpu}; torch {info['torch']}, "
                f"{info['threads']} threads; {info['date']}. Ours and baseline are medians "
                f"measured in the same run; ratio = ours / baseline."]
    return "\n".join(out) + "\n"


def _number(x: float | None, suffix: str = "") -> str:
    return "" if x is None else f"{x:.3g}{suffix}"


def _value(x: float | None, unit: str) -> str:
    return "skipped" if x is None else _number(x, f" {unit}")


def _baseline(row: dict) -> str:
    if row["baseline_name"] is None:
        return ""
    value = "-" if row["baseline"] is None else _number(row["baseline"], f" {row['unit']}")
    return f"{value} ({row['baseline_name']})"


def _met(row: dict) -> str:
    return {True: "yes", False: "no", None: ""}[row["met"]]


@dataclass
class Options:
    """The command line's keys (see the module's docstring)."""

    repeats: int = 5
    gpu: bool = False
    quick: bool = False
    only: tuple[str, ...] = ()  # the suites to run; all when empty
    json: Path = DEFAULT_JSON


def suites(only: tuple[str, ...]) -> list[str]:
    """The suites named by ``only=`` (all without it); an InputError for an unknown name."""
    if not only:
        return list(SUITES)
    unknown = [n for n in only if n not in SUITES]
    if unknown:
        raise InputError(f"only={','.join(only)}", f"unknown suite(s) {', '.join(unknown)}; "
                                                   f"choose from {', '.join(SUITES)}")
    return list(only)


def run(argv: list[str]) -> dict:
    """Run the suites, print the table, write the JSON and the markdown; return the JSON's
    contents."""
    opts, _ = bench_options(Options, argv, "tools.bench_all")
    names = suites(opts.only)
    rows, unavailable = run_suites(names, opts.repeats, opts.gpu, opts.quick)
    info = machine()
    cells = table(rows, unavailable)
    print(format_text(cells), end="")
    result = {"machine": info, "options": {"repeats": opts.repeats, "gpu": opts.gpu,
                                           "quick": opts.quick, "suites": names},
              "rows": rows, "unavailable": unavailable}
    write_json(opts.json, result)
    write_text(opts.json.with_suffix(".md"), format_markdown(cells, info))
    print(f"wrote {opts.json} and {opts.json.with_suffix('.md')}", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> dict | None:
    """The command line (see the module's docstring); returns what the JSON holds."""
    return tool_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
