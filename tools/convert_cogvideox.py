"""Make a DreamDance transformer from a local CogVideoX image-to-video checkpoint.

    python -m tools.convert_cogvideox base=DIR/CogVideoX-5b-I2V out=DIR/dreamdance-init \\
        [dtype=bfloat16|float16|float32]

``base=`` is a CogVideoX image-to-video pipeline folder (its ``transformer/`` is used) or a
transformer folder; nothing is downloaded. Every base weight is copied exactly (in ``dtype=``:
``float32``, ``float16`` or ``bfloat16``, or ``fp32``, ``fp16``, ``bf16``; default ``bfloat16``,
as CogVideoX ships), the patch embedding gains zero mask channels and the new layers start with
zero gates, so the result computes what the base computes. ``out=`` (a new or empty folder)
receives ``config.json`` and safetensors weights, loadable with
``DreamDanceTransformer3DModel.from_pretrained``; it is written under a temporary name and
renamed into place when complete. Bad input: one line on stderr naming it, exit code 2,
nothing written.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tools.cli import parse_options, tool_main


@dataclass
class Options:
    """The command line's keys (see the module's docstring)."""

    base: Path  # a CogVideoX image-to-video pipeline or transformer folder
    out: Path  # a new or empty folder for the result
    dtype: str = "bfloat16"  # of every saved tensor


def convert(base: str | Path, out: str | Path, dtype: str = "bfloat16") -> Path:
    """Convert ``base`` and save it to ``out`` with every tensor in ``dtype``; return ``out``.

    Raises:
        InputError: ``base`` is not a CogVideoX image-to-video folder, ``out`` is not empty,
            or ``dtype`` is not a dtype's name.
    """
    from dreamdance.animate.components import COGVIDEOX
    from dreamdance.animate.convert import from_cogvideox
    from dreamdance.errors import InputError
    from dreamdance.inputs import resolve_dtype

    saved_dtype = resolve_dtype(dtype, None, "dtype")
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"out={out}", "exists and is not an empty folder; choose a new one")
    try:
        model = from_cogvideox(base, torch_dtype=saved_dtype)
    except InputError as e:  # name the option as this tool's users know it
        problem = e.problem.replace(f"pass {COGVIDEOX.key}=DIR", "pass base=DIR")
        raise InputError(f"base={base}", problem) from None

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def run(argv: list[str]) -> Path:
    """Parse the arguments and convert; returns the written folder (raises InputError)."""
    opts = parse_options(Options, argv, "tools.convert_cogvideox")[0]
    return convert(opts.base, opts.out, opts.dtype)


def main(argv: list[str] | None = None) -> Path | None:
    """The command line (see the module's docstring); returns the written folder."""
    return tool_main(__doc__, run, argv, report=lambda out: print(f"wrote {out}"))


if __name__ == "__main__":
    main()
