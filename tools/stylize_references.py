"""Give each person clip of a training dataset a stylised reference frame.

    python -m tools.stylize_references data=DATA sdxl=DIR controlnet_depth=DIR \\
        controlnet_edge=DIR [depth=depthpro weights.depthpro=DIR] [key=value ...]

One frame of each ``person`` clip is re-drawn by SDXL image-to-image with a depth and a Canny
ControlNet (:mod:`dreamdance.train.stylize`) and written to ``DATA/clips/NAME/style.png`` at the
frame's size; ``metadata.jsonl`` records ``style`` and ``style_frame``. Clips that already have
a style are skipped unless ``force=true``. Weights are local folders, never downloaded:
stabilityai/stable-diffusion-xl-base-1.0, diffusers/controlnet-depth-sdxl-1.0 and
diffusers/controlnet-canny-sdxl-1.0 (and apple/DepthPro-hf for ``depth=depthpro``).

Keys (default):
    data                the dataset folder (required)
    sdxl                SDXL base pipeline folder (required)
    controlnet_depth    SDXL depth ControlNet folder (required)
    controlnet_edge     SDXL Canny ControlNet folder (required)
    prompt              "anime illustration, flat colours, clean line art"
    negative_prompt     "photo, photorealistic, 3d render, blurry, lowres, ..."
    steps               30       denoising steps of the full schedule
    strength            0.75     how far the frame is noised, in (0, 1]
    guidance            7.0      classifier-free guidance scale
    conditioning_scale  0.5,0.5  depth and edge ControlNet weights
    edges               100,200  cv2.Canny thresholds
    resolution          1024     long side of the working size (multiple of 64)
    frame               middle   middle | first | N (a frame index)
    device              auto     auto | cpu | cuda
    dtype               auto     auto (CUDA: float16, CPU: float32) | float32 | float16 | bfloat16
    seed                0
    force               false    redo clips that already have a style
    depth               ramp     plane | ramp | depthpro (conf/depth/); depth.KEY=VALUE sets
                                 its options, weights.depthpro=DIR the DepthPro folder
"""

from __future__ import annotations

from typing import Any

from dreamdance.errors import InputError
from tools.cli import compose_config, key_values, tool_main

REQUIRED = ("data", "sdxl", "controlnet_depth", "controlnet_edge")
OPTIONAL = {"prompt": None, "negative_prompt": None, "steps": "30", "strength": "0.75",
            "guidance": "7.0", "conditioning_scale": "0.5,0.5", "edges": "100,200",
            "resolution": "1024", "frame": "middle", "device": "auto", "dtype": "auto",
            "seed": "0", "force": "false", "depth": "ramp"}


def parse_args(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """``key=value`` arguments -> (this tool's settings, the depth model's Hydra overrides).

    Raises:
        InputError: an argument without ``=``, an unknown or repeated key, a missing required key.
    """
    args, depth = key_values(argv, (*REQUIRED, *OPTIONAL), ("depth.", "weights.depthpro"),
                             "tools.stylize_references", REQUIRED)
    for key, default in OPTIONAL.items():
        if default is not None:
            args.setdefault(key, default)
    return args, ["stage=scene", f"depth={args['depth']}", f"device={args['device']}", *depth]


def settings_from(args: dict[str, str]) -> Any:
    """The :class:`~dreamdance.train.stylize.StyleSettings` the arguments ask for.

    Raises:
        InputError: a value of the wrong type or out of range (names the key).
    """
    from dreamdance.train.stylize import StyleSettings

    defaults = StyleSettings()
    steps = _number(args, "steps", int, lambda v: v >= 1, "a positive integer")
    strength = _number(args, "strength", float, lambda v: 0 < v <= 1, "a number in (0, 1]")
    if int(steps * strength) < 1:
        raise InputError(f"strength={args['strength']}",
                         f"with steps={steps} no denoising step is run (needs steps x strength "
                         ">= 1)")
    resolution = _number(args, "resolution", int, lambda v: v >= 64 and v % 64 == 0,
                         "a multiple of 64, at least 64")
    return StyleSettings(
        prompt=args.get("prompt", defaults.prompt),
        negative_prompt=args.get("negative_prompt", defaults.negative_prompt),
        steps=steps, strength=strength,
        guidance=_number(args, "guidance", float, lambda v: v >= 0, "a number >= 0"),
        conditioning_scale=_pair(args, "conditioning_scale", float, lambda v: v >= 0),
        edges=_pair(args, "edges", int, lambda v: 0 <= v <= 255),
        resolution=resolution,
        seed=_number(args, "seed", int, lambda v: v >= 0, "an integer >= 0"),
    )


def _number(args: dict[str, str], key: str, kind: type, ok: Any, what: str) -> Any:
    try:
        value = kind(args[key])
    except ValueError:
        raise InputError(f"{key}={args[key]}", f"must be {what}") from None
    if not ok(value):
        raise InputError(f"{key}={args[key]}", f"must be {what}")
    return value


def _pair(args: dict[str, str], key: str, kind: type, ok: Any) -> tuple[Any, Any]:
    parts = args[key].split(",")
    try:
        values = tuple(kind(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or not all(ok(v) for v in values):
        raise InputError(f"{key}={args[key]}", f"must be two {kind.__name__} values A,B in range")
    return values


def _flag(args: dict[str, str], key: str) -> bool:
    value = args[key].lower()
    if value not in ("true", "false"):
        raise InputError(f"{key}={args[key]}", "must be true or false")
    return value == "true"


def build_depth(overrides: list[str]) -> Any:
    """The depth estimator of ``conf/depth/`` the overrides name, built as stage=scene does.

    Raises:
        InputError: an unknown depth backend or key, or a missing DepthPro folder.
    """
    from dreamdance.inputs import build

    return build(compose_config(overrides).depth)


def run(argv: list[str]) -> list[str]:
    """Check every argument and weights folder, then stylise; return the clips written.

    Raises:
        InputError: any bad argument, dataset or folder, before anything is written.
    """
    from dreamdance.inputs import resolve_device, resolve_dtype
    from dreamdance.train import stylize
    from dreamdance.train.layout import read_metadata
    from dreamdance.weights import require_dir

    args, depth_overrides = parse_args(argv)
    settings = settings_from(args)
    frame = stylize.parse_frame(args["frame"])
    force = _flag(args, "force")
    if args["device"] not in ("auto", "cpu", "cuda"):
        raise InputError(f"device={args['device']}", "must be auto, cpu or cuda")
    device = resolve_device(args["device"])
    dtype = resolve_dtype(args["dtype"], device, "dtype")
    read_metadata(args["data"])
    for spec in (stylize.SDXL, stylize.CONTROLNET_DEPTH, stylize.CONTROLNET_EDGE):
        require_dir(args[spec.key], spec)
    depth_model = build_depth(depth_overrides)

    def make_stylizer() -> stylize.Stylizer:
        pipe = stylize.load_pipeline(args["sdxl"], args["controlnet_depth"],
                                     args["controlnet_edge"], device, dtype)
        return stylize.Stylizer(pipe, depth_model, settings)

    return stylize.stylize_dataset(args["data"], make_stylizer, frame, force)


def main(argv: list[str] | None = None) -> None:
    """The command line (see the module's docstring)."""
    tool_main(__doc__, run, argv, report=lambda done: print(f"stylised {len(done)} clips"))


if __name__ == "__main__":
    main()
