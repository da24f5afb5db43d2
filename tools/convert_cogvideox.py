"""Make a DreamDance transformer from a local CogVideoX image-to-video checkpoint.

    python -m tools.convert_cogvideox --base DIR/CogVideoX-5b-I2V --out DIR/dreamdance-init \\
        [--dtype bfloat16|float16|float32]

``--base`` is a CogVideoX image-to-video pipeline folder (its ``transformer/`` is used) or a
transformer folder; nothing is downloaded. Every base weight is copied exactly (in ``--dtype``),
the patch embedding gains zero mask channels and the new layers start with zero gates, so the
result computes what the base computes. ``--out`` (a new or empty folder) receives
``config.json`` and safetensors weights, loadable with
``DreamDanceTransformer3DModel.from_pretrained``; it is written under a temporary name and
renamed into place when complete.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.convert_cogvideox",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True,
                        help="CogVideoX image-to-video pipeline or transformer folder")
    parser.add_argument("--out", required=True, help="new or empty folder for the result")
    parser.add_argument("--dtype", default="bfloat16",
                        help="dtype of every saved tensor: float32, float16 or bfloat16 (or "
                             "fp32, fp16, bf16; default: bfloat16, as CogVideoX ships)")
    return parser.parse_args(argv)


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

    saved_dtype = resolve_dtype(dtype, None, "--dtype")
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out={out}", "exists and is not an empty folder; choose a new one")
    try:
        model = from_cogvideox(base, torch_dtype=saved_dtype)
    except InputError as e:  # name the option as this tool's users know it
        problem = e.problem.replace(f"pass {COGVIDEOX.key}=DIR", "pass --base DIR")
        raise InputError(f"--base={base}", problem) from None

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


def main(argv: list[str] | None = None) -> None:
    from dreamdance.errors import InputError
    from dreamdance.run import EXIT_BAD_INPUT

    args = parse_args(argv)
    try:
        out = convert(args.base, args.out, args.dtype)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
