"""Make a training dataset (dreamdance.train.layout) from a folder of videos.

    python -m tools.prepare_data videos=DIR out=DATA [clip_frames=120] [min_frames=49]
        [fps=null] [max_side=768] [scenes=DIR] [val=0.05] [seed=0] [force=false]
        [min_pose_frames=0.5] [crf=18] [shard=i/n]
        [pose=dwpose|vitpose|none pose.KEY=...] [segmenter=grabcut|birefnet|none
        segmenter.KEY=...] [weights.KEY=DIR] [device=auto|cpu|cuda] [motion.smooth.KEY=...]
    python -m tools.prepare_data merge=true out=DATA [videos=DIR] [scenes=DIR]
    accelerate launch --num_processes N -m tools.prepare_data videos=DIR out=DATA ...

The tool's own keys are listed above; the pose backend, segmenter, weights, device and pose
smoothing are the run config's (``conf/config.yaml``, groups ``conf/pose/`` and
``conf/segmenter/``) and take the same keys as ``python -m dreamdance.run``. A video with a
pose file ``NAME.poses.json`` beside it uses that file; ``pose=none`` uses pose files only (a
video without one is skipped). ``segmenter=grabcut`` (the default) seeds GrabCut with each
frame's pose box, at a long side of 256 px unless ``segmenter.max_side`` says otherwise (about
0.1 s a frame on one core; ``segmenter=birefnet`` for the paper's masks, on a GPU);
``segmenter=none`` writes no masks (the dataset then uses the pose masks).

Resuming: each source video is a unit of work, recorded in ``DATA/units/`` when its clips are
written; a run that stopped (Ctrl-C, a crash, a killed job) continues where it stopped when run
again with the same arguments, and ``metadata.jsonl`` is written when every video is done: the
same file as an uninterrupted run's. The settings that change the dataset are kept in
``DATA/prepare.json``; a run with other settings is refused, naming the key. ``force=true``
replaces the dataset (its ``clips/``, ``units/``, ``prepare.json`` and ``metadata.jsonl``); a
non-empty ``out`` that holds no dataset is always refused.

Spreading: under ``accelerate launch`` each process does every N-th video on its own device
(``device=auto``: the GPU accelerate gives it), and process 0 writes ``metadata.jsonl`` once all
are done. ``shard=i/n`` (``i`` counted from 0: ``shard=0/4`` … ``shard=3/4``) does every n-th
video from the i-th on, as a job of its own (e.g. an array job on shared storage), and writes no
``metadata.jsonl``: ``merge=true out=DATA`` joins the shards once all are done (with the
settings in ``prepare.json``; ``videos=``/``scenes=`` only where the folders are mounted
elsewhere). Bad arguments: one line on stderr, exit code 2, nothing written.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from dreamdance.errors import InputError
from tools.cli import compose_config, key_values, parse_options, tool_main, typed_value

log = logging.getLogger("dreamdance.prepare_data")
PASSED_ON = ("pose", "pose.", "segmenter.", "weights.", "device", "motion.smooth.")  # run config
SEGMENTERS = ("grabcut", "birefnet", "none")  # the ones that segment any video frame
DEFAULT_SEGMENTER = "grabcut"
GRABCUT_MAX_SIDE = 256  # GrabCut per frame at this long side: ~0.1 s a 768-px frame on one core
MERGE_KEYS = ("merge", "out", "videos", "scenes")  # what merge=true takes
WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")  # set by the launchers


def parse_args(argv: list[str]) -> tuple[Any, list[str], tuple[int, int] | None]:
    """Split ``key=value`` arguments into the tool's options and the run config's overrides.

    Returns:
        ``(PrepareOptions, overrides, shard)``; ``overrides`` are ``pose=…``, ``pose.*``,
        ``segmenter.*``, ``weights.*``, ``device=…`` and ``motion.smooth.*`` in given order
        (``segmenter=`` is returned as the first item, ``segmenter=<name>``); ``shard`` is
        ``(i, n)`` of ``shard=i/n``, or None.

    Raises:
        InputError: an argument that is not ``key=value``, an unknown or repeated key, a value
            of the wrong type, a bad ``shard=``, or a missing ``videos=`` / ``out=``.
    """
    from dreamdance.train.prepare import PrepareOptions
    from dreamdance.train.prepare_run import parse_shard

    opts, passed = parse_options(PrepareOptions, argv, "tools.prepare_data",
                                 (*PASSED_ON, "segmenter", "shard"))
    own: dict[str, str] = {}  # segmenter=, shard=: read here, not passed on
    overrides = []
    for arg in passed:
        key, _, value = arg.partition("=")
        if key in ("segmenter", "shard"):
            if key in own:
                raise InputError(key, "given twice")
            own[key] = value
        else:
            overrides.append(arg)
    segmenter, shard = own.get("segmenter", DEFAULT_SEGMENTER), own.get("shard")
    if segmenter not in SEGMENTERS:
        raise InputError(f"segmenter={segmenter}", "cannot segment video frames; choose one of "
                                                   + ", ".join(SEGMENTERS))
    return (opts, [f"segmenter={segmenter}", *overrides],
            None if shard is None else parse_shard(shard))


def parse_merge(argv: list[str]) -> tuple[Path, Path | None, Path | None] | None:
    """The arguments of ``merge=true``: ``(out, videos, scenes)``; None for ``merge=false``.

    Raises:
        InputError: a key ``merge=true`` does not take, ``merge=`` not true or false, no ``out=``.
    """
    values = [a.partition("=")[2] for a in argv if a.partition("=")[0] == "merge"]
    if len(values) > 1:
        raise InputError("merge", "given twice")
    if not typed_value("merge", values[0], bool):
        return None
    for arg in argv:
        key, sep, _ = arg.partition("=")
        if sep and key and key not in MERGE_KEYS:
            raise InputError(key, "not taken with merge=true: the merge uses the settings the "
                                  "dataset was started with (it takes out=, and videos=, "
                                  "scenes= where the folders are mounted elsewhere)")
    given, _ = key_values(argv, MERGE_KEYS, (), "tools.prepare_data")
    if not given.get("out"):
        raise InputError("out=", "required (see python -m tools.prepare_data --help)")
    paths = [Path(given[k]) if given.get(k) else None for k in ("videos", "scenes")]
    return Path(given["out"]), *paths


def compose_components(overrides: list[str]) -> Any:
    """The run config with the pose/segmenter overrides; the segmenter is chosen on top of
    ``stage=scene``, the stage that reads it, as on the command line (``segmenter=none``: no
    segmenter group). A bad key or option is an :class:`InputError`."""
    group = overrides[0].partition("=")[2]
    rest = overrides[1:]
    if group == "grabcut" and not any(o.startswith("segmenter.max_side=") for o in rest):
        rest = [f"segmenter.max_side={GRABCUT_MAX_SIDE}", *rest]
    if group != "none":
        rest = ["stage=scene", f"segmenter={group}", *rest]
    elif any(o.startswith("segmenter.") for o in rest):
        key = next(o for o in rest if o.startswith("segmenter."))
        raise InputError(key.partition("=")[0], "given with segmenter=none")
    return compose_config(rest)


def build_components(cfg: Any, need_pose: bool, pose_none: bool = False) -> Any:
    """The pose backend (when ``need_pose``), the segmenter and their settings."""
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
                      smooth=cfg.motion.smooth,
                      settings=component_settings(cfg, pose_none))


def component_settings(cfg: Any, pose_none: bool = False) -> dict[str, Any]:
    """The pose backend's, segmenter's and smoothing's settings as flat keys (recorded with the
    dataset; a resumed run must have the same); with ``pose_none`` the pose backend is null."""
    from dreamdance.inputs import plain
    from dreamdance.train.prepare_units import flat_settings

    pose = None if pose_none else plain(cfg.pose)
    segmenter = plain(cfg.segmenter) if "segmenter" in cfg else None
    return {**flat_settings("pose", pose), **flat_settings("segmenter", segmenter),
            **flat_settings("motion.smooth", plain(cfg.motion.smooth))}


def launched_processes() -> int:
    """The processes a launcher (``accelerate launch``, torchrun, MPI) started, 1 without one."""
    for var in WORLD_SIZE_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


def make_share(shard: tuple[int, int] | None, device: str) -> Any:
    """This process's :class:`~dreamdance.train.prepare_run.Share`: with several processes
    launched, accelerate's state (each process on its own device: ``PartialState`` sets the
    current CUDA device, which the backends use with ``device=auto`` or ``cuda``)."""
    from dreamdance.train.prepare_run import Share

    i, n = shard if shard is not None else (None, 1)
    if launched_processes() <= 1:
        return Share(shard=i, shards=n)
    from accelerate import PartialState
    from accelerate.utils import gather_object

    state = PartialState(cpu=device == "cpu")
    log.info("process %d of %d on %s", state.process_index, state.num_processes, state.device)
    return Share(shard=i, shards=n, process=state.process_index,
                 processes=state.num_processes, wait=state.wait_for_everyone,
                 gather=lambda value: gather_object([value]))


def run(argv: list[str]) -> list[str]:
    """Parse, check, build and prepare (or merge); returns the summary lines (raises
    InputError). Under a launcher with several processes only process 0 returns lines."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from dreamdance.train.prepare import check_options, pose_file
    from dreamdance.train.prepare_run import list_sources, merge_dataset, prepare
    from dreamdance.train.prepare_units import check_out

    if any(a.partition("=")[0] == "merge" for a in argv):
        merging = parse_merge(argv)
        if merging is not None:
            if launched_processes() > 1:
                raise InputError("merge=true", "runs as one process: python -m "
                                               "tools.prepare_data merge=true out=DATA")
            return merge_dataset(*merging).lines()
        argv = [a for a in argv if a.partition("=")[0] != "merge"]
    pose_none = any(a in ("pose=none", "pose=null") for a in argv)
    argv = [a for a in argv if a not in ("pose=none", "pose=null")]
    opt, overrides, shard = parse_args(argv)
    check_options(opt)
    sources = list_sources(opt.videos, opt.scenes)
    check_out(opt.out, opt.force)
    if pose_none and any(o.startswith("pose.") for o in overrides):
        raise InputError(next(o for o in overrides if o.startswith("pose.")).partition("=")[0],
                         "given with pose=none")
    cfg = compose_components(overrides)
    need_pose = not pose_none and any(not pose_file(s.path).is_file() for s in sources
                                      if s.kind == "person")
    share = make_share(shard, cfg.device)
    comp = build_components(cfg, need_pose, pose_none)

    def bar(total: int, initial: int) -> Any:
        return tqdm(total=total, initial=initial, desc="videos", unit="video")

    with logging_redirect_tqdm():
        summary = prepare(opt, comp, share, bar=bar)
    if share.processes > 1:
        from accelerate import PartialState

        PartialState().destroy_process_group()
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
