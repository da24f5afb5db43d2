"""Evaluate predicted videos against references with the metrics of the paper's Table 1.

    python -m tools.evaluate pred=DIR_OR_VIDEO ref=DIR_OR_VIDEO [mask=DIR_OR_VIDEO] \\
        out=FILE.json [metrics=ssim,psnr,l1,lpips,fid,fid_vid,fvd] \\
        [lpips_weights=FILE [lpips_backbone=FILE]] [inception_weights=FILE] [i3d_weights=FILE] \\
        [allow_torchscript=false] [device=cpu|cuda] [clip_length=16]

Prints a table (metric, whole frame, foreground — the latter with ``mask=``) and writes the
JSON atomically. A learned metric whose weights are not given is skipped with a logged note;
nothing is downloaded. Bad input: one line on stderr naming it, exit code 2, nothing written.

Weight files are read as PyTorch state dicts of tensors only (a file holding other pickled
Python objects is refused). ``i3d_weights=`` may also be StyleGAN-V's TorchScript
``i3d_torchscript.pt`` (FVD only): TorchScript is a program that runs when loaded, so it is
refused unless ``allow_torchscript=true`` (give it only for a file you trust).
"""

from __future__ import annotations

import logging

from dreamdance.errors import InputError
from tools.cli import key_values, tool_main

log = logging.getLogger("dreamdance.eval")

KEYS = ("pred", "ref", "mask", "out", "metrics", "lpips_weights", "lpips_backbone",
        "inception_weights", "i3d_weights", "allow_torchscript", "device", "clip_length")
DEFAULTS = {"metrics": "ssim,psnr,l1,lpips,fid,fid_vid,fvd", "device": "cpu", "clip_length": "16",
            "allow_torchscript": "false"}
NEEDS = {"lpips": "lpips_weights", "fid": "inception_weights", "fid_vid": "i3d_weights",
         "fvd": "i3d_weights"}


def parse_args(argv: list[str]) -> dict:
    """``key=value`` arguments -> a checked dict (``metrics`` a list, ``clip_length`` an int).

    Raises:
        InputError: an argument that is not key=value, an unknown or repeated key, a missing
            ``pred``/``ref``/``out``, an unknown metric or device, a bad clip length, an
            ``allow_torchscript`` other than true or false.
    """
    from dreamdance.eval.evaluate import METRICS

    args: dict = key_values(argv, KEYS, tool="tools.evaluate", required=("pred", "ref", "out"))[0]
    args = {**DEFAULTS, **args}
    metrics = [m.strip() for m in args["metrics"].split(",") if m.strip()]
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise InputError(f"metrics={args['metrics']}", f"choose from {','.join(METRICS)}")
    args["metrics"] = list(dict.fromkeys(metrics))
    if args["allow_torchscript"] not in ("true", "false"):
        raise InputError(f"allow_torchscript={args['allow_torchscript']}", "must be true or false")
    args["allow_torchscript"] = args["allow_torchscript"] == "true"
    if args["device"] not in ("cpu", "cuda"):
        raise InputError(f"device={args['device']}", "must be cpu or cuda")
    if args["device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("device=cuda", "no CUDA device available")
    try:
        args["clip_length"] = int(args["clip_length"])
    except ValueError:
        args["clip_length"] = 0
    if args["clip_length"] < 1:
        raise InputError("clip_length",
                         "must be a positive integer")
    return args


def load_networks(args: dict):
    """Load the networks the requested metrics need and have weights for; log what is skipped.

    Returns:
        ``(Networks, {metric: reason skipped})``.
    """
    from dreamdance.eval.evaluate import Networks
    from dreamdance.eval.i3d import load_i3d
    from dreamdance.eval.inception import load_inception
    from dreamdance.eval.lpips import load_lpips

    nets, skipped = Networks(), {}
    for metric in args["metrics"]:
        key = NEEDS.get(metric)
        if key is not None and not args.get(key):
            skipped[metric] = f"no {key}= given"
            log.warning("skipping %s: no %s= given", metric, key)
    device = args["device"]
    if "lpips" in args["metrics"] and args.get("lpips_weights"):
        nets.lpips = load_lpips(args["lpips_weights"], args.get("lpips_backbone")).to(device)
    if "fid" in args["metrics"] and args.get("inception_weights"):
        nets.inception = load_inception(args["inception_weights"]).to(device)
    if {"fid_vid", "fvd"} & set(args["metrics"]) and args.get("i3d_weights"):
        nets.i3d = load_i3d(args["i3d_weights"], args["allow_torchscript"]).to(device)
        if "fid_vid" in args["metrics"] and not hasattr(nets.i3d, "Mixed_5c"):
            skipped["fid_vid"] = "TorchScript I3D gives no pooled features"
            log.warning("skipping fid_vid: the TorchScript I3D gives only logits (use "
                        "pytorch-i3d's rgb_imagenet.pt for FID-VID)")
    return nets, skipped


def run(argv: list[str]) -> dict:
    """Parse, evaluate, print the table and write the JSON; return the written report.

    Raises:
        InputError: any bad input (nothing is written then).
    """
    from dreamdance.eval.evaluate import evaluate
    from dreamdance.eval.report import format_table, write_report
    from dreamdance.eval.videos import match_videos

    args = parse_args(argv)
    pairs = match_videos(args["pred"], args["ref"], args.get("mask"))
    nets, skipped = load_networks(args)
    metrics = [m for m in args["metrics"] if m not in skipped]
    result = evaluate(pairs, metrics, nets, args["device"], args["clip_length"])
    result["skipped"] = skipped
    inputs = {k: args[k] for k in KEYS if args.get(k) is not None}
    inputs["metrics"] = ",".join(args["metrics"])
    write_report(args["out"], result, inputs)
    print(format_table(result))
    print(f"wrote {args['out']}")
    return {"inputs": inputs, **result}


def main(argv: list[str] | None = None) -> None:
    """The command line (see the module's docstring)."""
    tool_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
