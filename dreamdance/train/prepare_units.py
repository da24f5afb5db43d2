"""The records of a dataset made by ``tools.prepare_data``, beside its layout
(:mod:`dreamdance.train.layout`), and the checks of the ``out`` folder::

    DATA/prepare.json       how the dataset is made: the settings that change its contents (the
                            tool's options, the pose backend's and the segmenter's), written when
                            the first run starts; a later run must give the same ones
    DATA/units/NAME.json    one per finished source video, written atomically as the unit's last
                            act: its clips' metadata rows (without the split), its skips per
                            reason, and the size and modification time of the video and of its
                            pose file

A record is valid while its video and pose file are unchanged; one that is not is dropped with
the clips it lists (:func:`drop_stale`), and its source is done again. The run that uses these
records is :mod:`dreamdance.train.prepare_run`.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dreamdance.errors import InputError, show
from dreamdance.io import TMP_MARK, read_json, write_json
from dreamdance.train.layout import METADATA, parse_record
from dreamdance.train.prepare import CLIPS, PrepareOptions, Source, Unit, clear_clips, pose_file

log = logging.getLogger(__name__)

FORMAT = 1  # of prepare.json and the unit records
RUN_FILE = "prepare.json"
UNITS = "units"
OPTION_KEYS = ("clip_frames", "min_frames", "fps", "max_side", "min_pose_frames", "crf", "val",
               "seed")  # the tool's options that change the dataset (beside scenes=)
NEW, RESUME, REBUILD = "new", "resume", "rebuild"  # what a run does with out=


# --------------------------------------------------------------------------------------------
# Settings and the out folder (nothing written)


def flat_settings(prefix: str, node: Any) -> dict[str, Any]:
    """A component's config (plain values) as flat keys: ``{prefix: _target_ or None,
    prefix.KEY: value, …}``; ``device`` is left out (it does not change the output)."""
    if node is None:
        return {prefix: None}
    out = {prefix: node["_target_"]} if "_target_" in node else {}
    for key, value in node.items():
        if key in ("_target_", "device"):
            continue
        if isinstance(value, dict):
            out.update(flat_settings(f"{prefix}.{key}", value))
        else:
            out[f"{prefix}.{key}"] = value
    return out


def run_settings(opt: PrepareOptions, components: dict[str, Any]) -> dict[str, Any]:
    """The settings that change a dataset's contents: the tool's options, whether ``scenes=``
    was given, and the components' settings (flat keys, see :func:`flat_settings`)."""
    return {**{k: getattr(opt, k) for k in OPTION_KEYS}, "scenes": opt.scenes is not None,
            **components}


def check_out(out: Path, force: bool, settings: dict[str, Any] | None = None) -> str:
    """What a run does with ``out``: :data:`NEW` (absent or empty), :data:`RESUME` (a dataset
    this tool started there, with the same ``settings``) or :data:`REBUILD` (``force`` over a
    dataset). ``force`` never touches a folder that holds no dataset.

    Raises:
        InputError: ``out`` is a file; holds something that is not a dataset; holds a dataset
            that cannot be resumed (no ``prepare.json``) and no ``force``; was started with
            other settings (names the first that differs) and no ``force``.
    """
    name = f"out={out}"
    if out.exists() and not out.is_dir():
        raise InputError(name, "exists and is not a folder")
    if not out.is_dir() or not [p for p in out.iterdir() if TMP_MARK not in p.name]:
        return NEW
    ours, dataset = (out / RUN_FILE).is_file(), (out / METADATA).is_file()
    if not ours and not dataset:
        raise InputError(name, f"is not empty and holds no dataset (no {METADATA} or {RUN_FILE})"
                               ": force=true rebuilds only a dataset this tool made; choose a new "
                               "or empty folder")
    if force:
        return REBUILD
    if not ours:
        raise InputError(name, f"holds a dataset this tool cannot resume (no {RUN_FILE}); give "
                               f"force=true to rebuild it (its {CLIPS}/ and {METADATA} are "
                               "replaced)")
    if settings is not None:
        check_settings(out, settings)
    return RESUME


def read_run(out: Path) -> dict[str, Any]:
    """``out/prepare.json``, checked.

    Raises:
        InputError: missing, not JSON, or not a file this tool writes.
    """
    name, path = f"out={out}", out / RUN_FILE
    if not path.is_file():
        raise InputError(name, f"no {RUN_FILE}: not a dataset started by python -m "
                               "tools.prepare_data")
    try:
        run = read_json(path)
    except (OSError, ValueError) as e:
        raise InputError(name, f"{RUN_FILE} is unreadable ({type(e).__name__}); give "
                               "force=true to rebuild the dataset") from None
    if not isinstance(run, dict) or run.get("format") != FORMAT \
            or not isinstance(run.get("settings"), dict):
        raise InputError(name, f"{RUN_FILE} is not one this version of the tool writes; give "
                               "force=true to rebuild the dataset")
    return run


def check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Refuse settings that differ from those ``out`` was started with, naming the first key
    that differs and both values."""
    stored = read_run(out)["settings"]
    absent = object()
    for key in dict.fromkeys([*settings, *stored]):
        new, old = settings.get(key, absent), stored.get(key, absent)
        if new != old:
            given = "(not set)" if new is absent else show(new)
            before = "(not set)" if old is absent else show(old)
            raise InputError(f"{key}={given}", f"differs from the dataset in out={out}, started "
                                               f"with {key}={before}; give the same to resume "
                                               "it, or force=true to rebuild it")


def check_foreign(out: Path, sources: list[Source]) -> None:
    """Refuse a dataset that holds records of source videos not in ``sources`` (a folder
    other than the one it was made from)."""
    names = {s.name for s in sources}
    foreign = sorted(set(recorded(out)) - names)
    if foreign:
        raise InputError(f"out={out}", f"holds the clips of {len(foreign)} source videos that "
                                       f"are not in videos= or scenes= (first: {foreign[0]}); "
                                       "give the folders the dataset was made from, or "
                                       "force=true to rebuild it")


# --------------------------------------------------------------------------------------------
# Unit records


def record_path(out: Path, name: str) -> Path:
    """The record of the source named ``name``: ``out/units/NAME.json``."""
    return out / UNITS / f"{name}.json"


def recorded(out: Path) -> list[str]:
    """The names of the sources that have a record in ``out/units/``."""
    folder = out / UNITS
    if not folder.is_dir():
        return []
    return [n[:-5] for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")]


def input_stamps(src: Source) -> dict[str, list[int] | None]:
    """Size and modification time (ns) of the video and of its pose file (None without one;
    scenes have none): a record is valid while these are unchanged."""
    def stamp(path: Path) -> list[int]:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]

    side = pose_file(src.path)
    return {"video": stamp(src.path),
            "poses": stamp(side) if src.kind == "person" and side.is_file() else None}


def write_record(out: Path, src: Source, unit: Unit) -> Path:
    """Record a finished unit, atomically (the unit's last act)."""
    rows = [{k: v for k, v in asdict(c).items() if k != "split"} for c in unit.clips]
    return write_json(record_path(out, src.name), {
        "format": FORMAT, "source": src.path.name, "kind": src.kind, "inputs": input_stamps(src),
        "clips": rows, "skipped": dict(sorted(unit.skipped.items()))})


def read_record(out: Path, src: Source) -> Unit | None:
    """The unit recorded for ``src``, or None: no record, an unreadable one, or one whose
    video or pose file has changed since (logged)."""
    path = record_path(out, src.name)
    if not path.is_file():
        return None
    try:
        rec = read_json(path)
        made = (rec["format"], rec["source"], rec["kind"], rec["inputs"])
        if made != (FORMAT, src.path.name, src.kind, input_stamps(src)):
            log.warning("%s: changed since its clips were made; it is done again", src.key)
            return None
        clips = [parse_record({**row, "split": "train"}, out, f"{path}: clip {i}")
                 for i, row in enumerate(rec["clips"])]
        skipped = Counter({str(k): int(v) for k, v in rec["skipped"].items()})
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        log.warning("%s: its record %s is unreadable (%s); it is done again", src.key, path, e)
        return None
    return Unit(clips, skipped)


def drop_stale(out: Path, sources: list[Source]) -> int:
    """Remove the records of ``sources`` that :func:`read_record` refuses, and the clip
    folders they list; returns how many."""
    dropped = 0
    for src in sources:
        path = record_path(out, src.name)
        if path.is_file() and read_record(out, src) is None:
            clear_clips(out, _listed_clips(path, src.name))
            path.unlink()
            dropped += 1
    return dropped


def _listed_clips(path: Path, stem: str) -> list[str]:
    """The clip names a record lists that are clips of ``stem`` (``STEM-k``: one folder name,
    as ``stem`` is one); none when the record cannot be read."""
    try:
        rows = read_json(path)["clips"]
        names = [row["name"] for row in rows]
    except (OSError, ValueError, TypeError, KeyError):
        return []
    return [name for name in names if isinstance(name, str)
            and name.rpartition("-")[0] == stem and name.rpartition("-")[2].isdigit()]


def clear_dataset(out: Path) -> None:
    """Remove what this tool writes in ``out``: ``clips/``, ``units/``, ``metadata.jsonl`` and
    ``prepare.json``; a symlink among them is removed as a link (what it points to is left
    alone)."""
    for stale in (out / CLIPS, out / UNITS, out / METADATA, out / RUN_FILE):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale)
        elif stale.is_symlink() or stale.exists():
            stale.unlink()

