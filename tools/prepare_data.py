"""Make a training dataset (dreamdance.train.layout) from a folder of videos.

    python -m tools.prepare_data videos=DIR out=DATA [clip_frames=120] [min_frames=49]
        [fps=null] [max_side=768] [scenes=DIR] [val=0.05] [seed=0] [force=false]
        [min_pose_frames=0.5] [crf=18]
        [pose=dwpose|vitpose|none pose.KEY=...] [segmenter=grabcut|birefnet|none
        segmenter.KEY=...] [weights.KEY=DIR] [device=auto|cpu|cuda] [motion.smooth.KEY=...]

The tool's own keys are listed above; the pose backend, segmenter, weights, device and pose
smoothing are the run config's (``conf/config.yaml``, groups ``conf/pose/`` and
``conf/segmenter/``) and take the same keys as ``python -m dreamdance.run``. A video with a
pose file ``NAME.poses.json`` beside it uses that file; ``pose=none`` uses pose files only (a
video without one is skipped). ``segmenter=grabcut`` (the default) seeds GrabCut with each
frame's pose box, at a long side of 256 px unless ``segmenter.max_side`` says otherwise (about
0.1 s a frame on one core; ``segmenter=birefnet`` for the paper's masks, on a GPU);
``segmenter=none`` writes no masks (the dataset then uses the pose masks).
An existing non-empty ``out`` is refused unless ``force=true``, which replaces its ``clips/``
and ``metadata.jsonl``. Bad arguments: one line on stderr, exit code 2, nothing written.
"""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

from dreamdance.errors import InputError
from tools.cli import compose_config, key_values, tool_main

log = logging.getLogger("dreamdance.prepare_data")
REQUIRED = ("videos", "out")
PASSED_ON = ("pose", "pose.", "segmenter.", "weights.", "device", "motion.smooth.")  # run config
SEGMENTERS = ("grabcut", "birefnet", "none")  # the ones that segment any video frame
DEFAULT_SEGMENTER = "grabcut"
GRABCUT_MAX_SIDE = 256  # GrabCut per frame at this long side: ~0.1 s a 768-px frame on one core


def parse_args(argv: list[str]) -> tuple[Any, list[str]]:
    """Split ``key=value`` arguments into the tool's options and the run config's overrides.

    Returns:
        ``(PrepareOptions, overrides)``; ``overrides`` are ``pose=…``, ``pose.*``,
        ``segmenter.*``, ``weights.*``, ``device=…`` and ``motion.smooth.*`` in given order
        (``segmenter=`` is returned as the first item, ``segmenter=<name>``).

    Raises:
        InputError: an argument that is not ``key=value``, an unknown or repeated key, a value
            of the wrong type, or a missing ``videos=`` / ``out=``.
    """
    from dreamdance.train.prepare import PrepareOptions

    types = {f.name: f.type for f in fields(PrepareOptions)}
    given, overrides = key_values(argv, [*types, "segmenter"], PASSED_ON, "tools.prepare_data",
                                  REQUIRED)
    segmenter = given.pop("segmenter", DEFAULT_SEGMENTER)
    values = {key: _parse(key, value, types[key]) for key, value in given.items()}
    if segmenter not in SEGMENTERS:
        raise InputError(f"segmenter={segmenter}", "cannot segment video frames; choose one of "
                                                   + ", ".join(SEGMENTERS))
    return PrepareOptions(**values), [f"segmenter={segmenter}", *overrides]


def _parse(key: str, text: str, kind: str) -> Any:
    """One value of the tool's keys, by the option's annotated type."""
    nullable = "None" in kind
    if text in ("null", "None", "~", ""):
        if nullable:
            return None
        raise InputError(f"{key}={text}", "needs a value")
    try:
        if kind.startswith("Path"):
            return Path(text)
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        if kind == "int":
            return int(text)
        return float(text)
    except ValueError:
        expected = {"bool": "true or false", "int": "an integer"}.get(kind, "a number")
        raise InputError(f"{key}={text}", f"must be {expected}") from None


def compose_components(overrides: list[str]) -> Any:
    """The run config with the pose/segmenter overrides (``segmenter=none``: no segmenter
    group); a bad key or option is an :class:`InputError`."""
    group = overrides[0].partition("=")[2]
    rest = overrides[1:]
    if group == "grabcut" and not any(o.startswith("segmenter.max_side=") for o in rest):
        rest = [f"segmenter.max_side={GRABCUT_MAX_SIDE}", *rest]
    if group != "none":
        rest = [f"+segmenter={group}", *rest]
    elif any(o.startswith("segmenter.") for o in rest):
        key = next(o for o in rest if o.startswith("segmenter."))
        raise InputError(key.partition("=")[0], "given with segmenter=none")
    return compose_config(rest)


def build_components(cfg: Any, need_pose: bool) -> Any:
    """The pose backend (when ``need_pose`` and not ``pose=none``) and the segmenter."""
    from hydra.utils import instantiate

    from dreamdance.inputs import build, builds
    from dreamdance.scene.segment import GrabCutSegmenter
    from dreamdance.train.prepare import Components

    pose = None
    if need_pose:
        pose = build(cfg.pose)
    segmenter = grabcut_box = None
    if "segmenter" in cfg:
        segmenter = build(cfg.segmenter)
        if builds(cfg.segmenter, GrabCutSegmenter):
            def grabcut_box(box):
                return instantiate(cfg.segmenter, box=box)
    return Components(pose=pose, segmenter=segmenter, grabcut_box=grabcut_box,
                      smooth=cfg.motion.smooth)


def run(argv: list[str]) -> list[str]:
    """Parse, check, build and prepare; returns the summary lines (raises InputError)."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from dreamdance.train.prepare import (
        check_names,
        check_options,
        check_out,
        list_videos,
        pose_file,
        prepare,
    )

    pose_none = any(a in ("pose=none", "pose=null") for a in argv)
    argv = [a for a in argv if a not in ("pose=none", "pose=null")]
    opt, overrides = parse_args(argv)
    check_options(opt)
    videos = list_videos(opt.videos, "videos")
    check_names(videos + (list_videos(opt.scenes, "scenes") if opt.scenes else []))
    check_out(opt.out, opt.force)
    if pose_none and any(o.startswith("pose.") for o in overrides):
        raise InputError(next(o for o in overrides if o.startswith("pose.")).partition("=")[0],
                         "given with pose=none")
    cfg = compose_components(overrides)
    need_pose = not pose_none and any(not pose_file(v).is_file() for v in videos)
    comp = build_components(cfg, need_pose)
    with logging_redirect_tqdm():
        summary = prepare(opt, comp, progress=lambda jobs: tqdm(jobs, desc="videos",
                                                                unit="video"))
    return summary.lines()


def main(argv: list[str] | None = None) -> None:
    """The command line (see the module's docstring)."""
    tool_main(__doc__, run, argv, report=_print_lines,
              log_format="%(levelname)s %(name)s: %(message)s")


def _print_lines(lines: list[str]) -> None:
    """The summary, one line each."""
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
