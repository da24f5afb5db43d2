"""A run of the dataset preparation: one unit of work per source video, recorded when done so
that a stopped run resumes (the records: :mod:`dreamdance.train.prepare_units`), and shares of
the units for several processes, machines or jobs.

A run does the sources that have no record and skips the others. When every source of the run
has its record, :func:`merge` writes ``metadata.jsonl`` from the records in the order of the
full list (videos by name, then scenes by name), with the ``val`` split drawn from the full list
of names and the seed: the same bytes whether the work was done at once, resumed after a stop,
spread over processes, or over separate jobs.

Shares (:class:`Share`): process ``p`` of the ``P`` that ``accelerate launch`` starts does
``sources[p::P]``; the processes wait until every unit of the run has its record (one bar over
all of them on process 0: :class:`Progress`), then process 0 merges. ``shard=i/n`` (``i``
counted from 0) does ``sources[i::n]`` (split again among its processes) and does not merge:
:func:`merge_dataset` (``merge=true``) joins the shards.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dreamdance.errors import InputError
from dreamdance.io import read_json, remove_stale_temporaries, write_json
from dreamdance.train.layout import METADATA, write_metadata
from dreamdance.train.prepare import (
    POSE_SUFFIX,
    Components,
    PrepareOptions,
    Source,
    Unit,
    check_names,
    check_options,
    list_videos,
    pose_file,
    prepare_video,
)
from dreamdance.train.prepare_units import (
    FORMAT,
    REBUILD,
    RESUME,
    RUN_FILE,
    UNITS,
    check_foreign,
    check_out,
    check_settings,
    clear_dataset,
    drop_stale,
    read_record,
    read_run,
    record_path,
    recorded,
    run_settings,
    write_record,
)

log = logging.getLogger(__name__)

POLL_S = 1.0  # seconds between looks at units/ while the other processes finish
MERGE_COMMAND = "python -m tools.prepare_data merge=true out={out}"


def _alone() -> None:
    """The barrier of a single process."""


def _gather_alone(value: Any) -> list[Any]:
    return [value]


@dataclass(frozen=True)
class Share:
    """The units this process does, and how it meets the other processes of its launch.

    Args:
        shard: ``i`` of ``shard=i/n`` (counted from 0), or None: the run does every unit and
            merges.
        shards: ``n``.
        process: this process's index among the ``processes`` of one launch.
        processes: the processes of the launch (``accelerate launch --num_processes``).
        wait: a barrier over the launch's processes.
        gather: ``gather(x) -> [x of process 0, x of process 1, …]`` on every process.
    """

    shard: int | None = None
    shards: int = 1
    process: int = 0
    processes: int = 1
    wait: Callable[[], None] = _alone
    gather: Callable[[Any], list] = _gather_alone

    @property
    def main(self) -> bool:
        return self.process == 0

    def part(self, sources: list[Source]) -> list[Source]:
        """The units of this launch: the shard's (``sources[i::n]``) or all."""
        return sources if self.shard is None else sources[self.shard::self.shards]

    def mine(self, sources: list[Source]) -> list[Source]:
        """The units of this process: ``part(sources)[process::processes]``."""
        return self.part(sources)[self.process::self.processes]

    def label(self, process: int) -> str:
        """``shard 1/4 process 0/2``, ``process 0/2``, ``shard 1/4`` or ``this run``."""
        words = [] if self.shard is None else [f"shard {self.shard}/{self.shards}"]
        if self.processes > 1:
            words.append(f"process {process}/{self.processes}")
        return " ".join(words) or "this run"


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)``: share ``i`` (counted from 0) of ``n``.

    Raises:
        InputError: not two whole numbers ``i/n`` with ``0 <= i < n``.
    """
    name = f"shard={text}"
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if match is None:
        raise InputError(name, "expected i/n, share i (counted from 0) of n, e.g. shard=0/4")
    i, n = int(match[1]), int(match[2])
    if n < 1:
        raise InputError(name, "n, the number of shares, must be at least 1")
    if i >= n:
        raise InputError(name, f"share i is counted from 0: shard=0/{n} to shard={n - 1}/{n}")
    return i, n


@dataclass
class Tally:
    """What one process did in this run."""

    videos: int = 0  # units it prepared
    resumed: int = 0  # units of its share recorded before it started
    clips: int = 0  # clips it wrote
    skipped: int = 0  # videos and clips it skipped (see prepare.UNREADABLE …)

    def add(self, unit: Unit) -> None:
        self.videos += 1
        self.clips += len(unit.clips)
        self.skipped += sum(unit.skipped.values())

    def line(self, label: str) -> str:
        return (f"{label}: {self.videos} videos prepared, {self.resumed} already done, "
                f"{self.clips} clips written, {self.skipped} skipped")


@dataclass
class Summary:
    """The closing lines of a run: the dataset's clips per (kind, split) and skips per reason
    (when it merged), one line per process, and a note."""

    clips: Counter = field(default_factory=Counter)  # (kind, split) -> clips in metadata.jsonl
    skipped: Counter = field(default_factory=Counter)  # reason -> videos or clips skipped
    sources: int = 0  # source videos of the dataset
    processes: list[str] = field(default_factory=list)
    merged: bool = False
    note: str = ""

    def lines(self) -> list[str]:
        out = []
        if self.merged:
            total = sum(self.clips.values())
            parts = ", ".join(f"{n} {kind}/{split}"
                              for (kind, split), n in sorted(self.clips.items()))
            out.append(f"{total} clips in {METADATA}" + (f" ({parts})" if parts else "")
                       + f" from {self.sources} source videos")
            out += [f"skipped: {n} x {reason}" for reason, n in sorted(self.skipped.items())]
        return out + self.processes + ([self.note] if self.note else [])


# --------------------------------------------------------------------------------------------
# The sources


def list_sources(videos: Path, scenes: Path | None) -> list[Source]:
    """Every unit of the dataset in the merge order: the videos by name, then the scenes.

    Raises:
        InputError: a folder that is missing or holds no video, a stem that is no clip name,
            two sources with one stem.
    """
    people = list_videos(videos, "videos")
    places = list_videos(scenes, "scenes") if scenes is not None else []
    check_names(people + places)
    return [Source(p, "person") for p in people] + [Source(p, "scene") for p in places]


# --------------------------------------------------------------------------------------------
# Progress over every process's units


class Progress:
    """The units of a run recorded so far, looked up in ``out/units/`` (every process writes its
    own records there): for one bar over all of them and for waiting until they are done.

    Args:
        out: the dataset folder.
        sources: the units of the run.
        bar: ``bar(total, initial) -> tqdm-like`` (``update``, ``set_postfix``, ``close``), or
            None for no bar.
    """

    def __init__(self, out: Path, sources: list[Source], bar: Callable[..., Any] | None = None):
        self.out = out
        self.pending = {s.name for s in sources}
        self.clips = self.skipped = 0
        done = self._take()
        self.bar = bar(total=len(sources), initial=done) if bar is not None else None
        self._show(0)

    def poll(self) -> bool:
        """Take in the records written since the last look; True when every unit has one."""
        self._show(self._take())
        return not self.pending

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _take(self) -> int:
        new = sorted(self.pending.intersection(recorded(self.out)))
        for name in new:
            try:
                rec = read_json(record_path(self.out, name))
                self.clips += len(rec["clips"])
                self.skipped += sum(rec["skipped"].values())
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
                log.warning("%s: unreadable (%s); counted as done, the merge checks it",
                            record_path(self.out, name), e)
        self.pending.difference_update(new)
        return len(new)

    def _show(self, done: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix(clips=self.clips, skipped=self.skipped, refresh=False)
            self.bar.update(done)


# --------------------------------------------------------------------------------------------
# The run


def prepare(opt: PrepareOptions, comp: Components, share: Share = Share(),
            bar: Callable[..., Any] | None = None,
            on_unit: Callable[[Source], None] | None = None) -> Summary:
    """Write the dataset at ``opt.out``, or this process's share of it (see the module).

    Args:
        opt: the tool's options.
        comp: the pose backend, segmenter and their settings (``comp.settings``).
        share: which units this process does; the default does all of them and merges.
        bar: ``bar(total, initial)``, a progress bar over the run's units (process 0 only).
        on_unit: called with each source once its unit is recorded.

    Returns:
        On process 0 the closing summary (the dataset's totals when the run merges, one line per
        process); on the others an empty one.

    Raises:
        InputError: bad options, folders, names or ``out`` (see :func:`check_out`), before
            anything is written.
    """
    check_options(opt)
    sources = list_sources(opt.videos, opt.scenes)
    if share.shard is not None and opt.force:
        raise InputError("force=true", f"not with shard={share.shard}/{share.shards}: each "
                                       "shard would remove the work of the others; start the "
                                       "shards in a new or empty out=")
    settings = run_settings(opt, comp.settings)
    state = check_out(opt.out, opt.force, settings)
    if state == RESUME:
        check_foreign(opt.out, sources)
    part = share.part(sources)
    share.wait()  # every process has checked out= before it changes
    if share.main:
        _start(opt, comp, state, settings, part)
    share.wait()

    progress = Progress(opt.out, part, bar if share.main else None)
    tally = Tally()
    for src in share.mine(sources):
        if record_path(opt.out, src.name).is_file():
            tally.resumed += 1
            continue
        unit = prepare_video(src, opt, comp)
        write_record(opt.out, src, unit)
        tally.add(unit)
        if on_unit is not None:
            on_unit(src)
        progress.poll()
    while not progress.poll():  # the other processes' units
        time.sleep(POLL_S)
    progress.close()
    share.wait()
    lines = [t.line(share.label(p)) for p, t in enumerate(share.gather(tally))]
    if not share.main:
        return Summary()
    if share.shard is not None:
        return Summary(processes=lines, note=f"shard {share.shard}/{share.shards} done; once "
                       "every shard is, join them: " + MERGE_COMMAND.format(out=opt.out))
    return replace(merge(opt.out, sources, opt.val, opt.seed), processes=lines)


def _start(opt: PrepareOptions, comp: Components, state: str, settings: dict[str, Any],
           part: list[Source]) -> None:
    """Process 0 before the work: clear a dataset to rebuild, record the settings of a new
    one, drop the records of the run's units whose sources changed."""
    if state == REBUILD:
        clear_dataset(opt.out)
    if state != RESUME:
        write_json(opt.out / RUN_FILE, {
            "format": FORMAT, "videos": str(opt.videos.resolve()),
            "scenes": str(opt.scenes.resolve()) if opt.scenes is not None else None,
            "settings": settings})
        check_settings(opt.out, settings)  # a shard started at the same time with others
    if comp.pose is None and not any(pose_file(s.path).is_file() for s in part
                                     if s.kind == "person"):
        log.warning("pose=none and no video has a %s file: no person clip will be written",
                    POSE_SUFFIX)
    dropped = drop_stale(opt.out, part)
    if dropped:
        log.info("%d source videos changed since their clips were made: done again", dropped)


def merge(out: Path, sources: list[Source], val: float, seed: int) -> Summary:
    """Write ``out/metadata.jsonl`` from the records of every source, in their order, with the
    split of :func:`val_sources`; returns the dataset's totals.

    Raises:
        InputError: a source with no valid record (says how many and names the first).
    """
    units, missing = {}, []
    for src in sources:
        unit = read_record(out, src)
        if unit is None:
            missing.append(src)
        units[src.name] = unit
    if missing:
        raise InputError(f"out={out}", f"{len(missing)} of {len(sources)} source videos have no "
                                       f"record yet (first: {missing[0].path.name}): run the "
                                       "shards that hold them (or a run without shard= does "
                                       "what is left), then merge")
    val_names = val_sources([s.path.name for s in sources], val, seed)
    summary = Summary(sources=len(sources), merged=True)
    rows = []
    for src in sources:
        split = "val" if src.path.name in val_names else "train"
        rows += [replace(c, split=split) for c in units[src.name].clips]
        summary.clips[(src.kind, split)] += len(units[src.name].clips)
        summary.skipped.update(units[src.name].skipped)
    write_metadata(out, rows)
    remove_stale_temporaries(out, [UNITS])  # left by a killed process; nothing writes now
    return summary


def merge_dataset(out: Path, videos: Path | None = None, scenes: Path | None = None) -> Summary:
    """Join the shards of a dataset (``merge=true``): check that every source has its record and
    write ``metadata.jsonl`` with the settings in ``out/prepare.json``.

    Args:
        out: the dataset folder.
        videos, scenes: the source folders when they are not where ``prepare.json`` says (another
            mount point); None: as recorded.

    Raises:
        InputError: no dataset started by this tool in ``out``, missing source folders, a
            source with no record, or records of sources not in the folders.
    """
    if not out.is_dir():
        raise InputError(f"out={out}", "not a folder" if out.exists() else "folder not found")
    run = read_run(out)
    stored = run["settings"]
    if scenes is not None and not stored.get("scenes"):
        raise InputError(f"scenes={scenes}", f"the dataset in out={out} was started without "
                                             "scenes=")
    videos = videos if videos is not None else Path(run["videos"])
    if scenes is None and run.get("scenes"):
        scenes = Path(run["scenes"])
    sources = list_sources(videos, scenes)
    check_foreign(out, sources)
    return merge(out, sources, stored["val"], stored["seed"])


def val_sources(names: list[str], val: float, seed: int) -> set[str]:
    """The source names of the ``val`` split: ``round(val * n)`` of them, at least one when
    ``val > 0`` and there are two sources or more, drawn with ``seed`` (independent of the
    order ``names`` come in)."""
    names = sorted(set(names))
    n_val = 0 if val <= 0 else round(val * len(names))
    if val > 0 and len(names) >= 2:
        n_val = max(n_val, 1)
    order = np.random.default_rng(seed).permutation(len(names))
    return {names[i] for i in order[:n_val]}

