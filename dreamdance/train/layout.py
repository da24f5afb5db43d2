"""The training-data layout: one folder per clip and a metadata file.

A dataset folder ``DATA/`` looks like::

    DATA/metadata.jsonl            one JSON object per line, one line per clip
    DATA/clips/NAME/video.mp4      the clip (any video ffmpeg reads, or a folder of frames)
    DATA/clips/NAME/poses.json     its poses, in the pose-file format (dreamdance.motion.poses);
                                   absent for a scene-only clip
    DATA/clips/NAME/mask.mp4       optional: the character mask per frame (white = character)
    DATA/clips/NAME/style.png      optional: a stylised copy of frame ``style_frame`` of the clip
                                   (tools.stylize_references), used as a reference character
    DATA/prepare.json, DATA/units/ written by tools.prepare_data to resume and to merge shares
                                   (dreamdance.train.prepare_units); not read by training

A metadata line::

    {"name": "dance-0001-000", "video": "clips/dance-0001-000/video.mp4",
     "poses": "clips/dance-0001-000/poses.json", "mask": "clips/dance-0001-000/mask.mp4",
     "style": null, "style_frame": null, "frames": 120, "fps": 24.0, "width": 720, "height": 1280,
     "kind": "person", "split": "train", "source": "dance-0001.mp4"}

``kind`` is ``"person"`` (a person drives the clip: poses required) or ``"scene"`` (no person:
poses absent, the pose videos are black and the inpainting mask empty). ``split`` is
``"train"`` or ``"val"``. Paths are relative to ``DATA/``. ``tools/prepare_data.py`` makes the
layout from a folder of videos; users may also write it by hand.

The metadata is untrusted input: :func:`read_metadata` checks the type and range of every
field, and every path must stay inside ``DATA/`` once resolved (no absolute paths, no ``..``
or symlink leading out). A clip's ``name`` is one folder name (no ``/``, not ``.`` or ``..``),
since files of the clip are written to ``DATA/clips/NAME/``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from dreamdance.errors import InputError
from dreamdance.io import write_text

METADATA = "metadata.jsonl"
KINDS = ("person", "scene")
SPLITS = ("train", "val")


@dataclass(frozen=True)
class ClipRecord:
    """One clip of the dataset (one line of ``metadata.jsonl``); paths relative to the root."""

    name: str
    video: str
    poses: str | None
    mask: str | None = None
    style: str | None = None
    style_frame: int | None = None
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    kind: str = "person"
    split: str = "train"
    source: str | None = None


_DEFAULTS = {f.name: f.default for f in fields(ClipRecord)}
_INT_MAX = 2**31 - 1  # the largest frame count, size or rate a record may hold
_SHOWN = 60  # characters of a bad value quoted in a message


def read_metadata(root: str | os.PathLike, name: str | None = None) -> list[ClipRecord]:
    """The clips of the dataset at ``root``, in file order.

    Args:
        root: the dataset folder.
        name: the input as the user knows it, for errors (default ``data=<root>``).

    Raises:
        InputError: no folder, no ``metadata.jsonl``, a line that is not a clip record (names
            the line and the field), a path leading out of ``root``, or two clips with the
            same name.
    """
    root = Path(root)
    name = f"data={root}" if name is None else name
    path = root / METADATA
    if not root.is_dir():
        raise InputError(name, "not a folder")
    if not path.is_file():
        raise InputError(name, f"no {METADATA} (make the layout with python -m tools.prepare_data)")
    records, seen = [], set()
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        if not raw.strip():
            continue
        where = f"{name}: {METADATA} line {number}"
        record = parse_record(_json_line(raw, where), root, where)
        if record.name in seen:
            raise InputError(where, f"clip name {record.name!r} appears twice")
        seen.add(record.name)
        records.append(record)
    return records


def _json_line(raw: bytes, where: str) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(where, "not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise InputError(where, f"not JSON ({e.msg})") from None
    except (ValueError, RecursionError) as e:  # an integer of too many digits, deep nesting
        raise InputError(where, f"not usable JSON ({type(e).__name__})") from None


def parse_record(entry: object, root: Path, where: str) -> ClipRecord:
    """One metadata line (its parsed JSON) as a :class:`ClipRecord`, every field checked.

    Args:
        entry: the line's JSON value.
        root: the dataset folder; the paths must resolve inside it.
        where: the line as the user knows it, for errors.

    Raises:
        InputError: not an object, a missing or unknown key, or a field of the wrong type or
            out of range (names the field and its value).
    """
    if not isinstance(entry, dict):
        raise InputError(where, "not a JSON object")
    missing = {"name", "video"} - set(entry)
    if missing:
        raise InputError(where, f"missing {', '.join(sorted(missing))}")
    unknown = set(entry) - set(_DEFAULTS)
    if unknown:
        raise InputError(where, f"unknown keys {', '.join(sorted(map(repr, unknown)))}")
    value = {**_DEFAULTS, "poses": None, **entry}
    base = root.resolve()

    def path(key: str, optional: bool = True) -> str | None:
        return _path(value[key], base, f"{where}: {key}={_show(value[key])}", optional)

    record = ClipRecord(
        name=check_clip_name(value["name"], f"{where}: name={_show(value['name'])}"),
        video=path("video", optional=False), poses=path("poses"), mask=path("mask"),
        style=path("style"),
        style_frame=_count(value, "style_frame", where, optional=True),
        frames=_count(value, "frames", where), fps=_rate(value, "fps", where),
        width=_count(value, "width", where), height=_count(value, "height", where),
        kind=_choice(value, "kind", KINDS, where), split=_choice(value, "split", SPLITS, where),
        source=_text(value, "source", where))
    if record.kind == "person" and record.poses is None:
        raise InputError(where, f"clip {record.name!r} of kind person has no poses")
    return record


def dataset_path(root: str | os.PathLike, relative: str, name: str) -> Path:
    """``root / relative`` with symlinks resolved, refused unless it lies inside ``root``.

    Args:
        root: the dataset folder.
        relative: a path relative to it (``/`` separated).
        name: the input as the user knows it, for errors.

    Raises:
        InputError: ``relative`` is absolute, cannot be a file name, or leads out of ``root``
            (by ``..`` or a symlink) or to ``root`` itself.
    """
    base = Path(os.path.realpath(root))
    _check_file_name(relative, name)
    if Path(relative).is_absolute():
        raise InputError(name, f"an absolute path; paths are relative to the dataset folder {base}")
    target = Path(os.path.realpath(base / relative))
    if target == base:
        raise InputError(name, "names the dataset folder itself, not a file in it")
    if not target.is_relative_to(base):
        raise InputError(name, f"leads out of the dataset folder {base} (resolves to {target})")
    return target


def _show(value: object) -> str:
    """``value`` as JSON, shortened to one short line."""
    text = json.dumps(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


def check_clip_name(value: object, name: str) -> str:
    """A clip name: non-empty text that is one folder name (the clip's files are written to
    ``clips/NAME/``); returns it.

    Raises:
        InputError: anything else (``name`` is the input as the user knows it).
    """
    if not isinstance(value, str) or not value:
        raise InputError(name, "must be non-empty text")
    if "/" in value or "\\" in value or value in (".", ".."):
        raise InputError(name, "must be one folder name (no / or \\, not . or ..): clip files "
                               "are written to clips/NAME/")
    _check_file_name(value, name)
    return value


def _check_file_name(text: str, name: str) -> None:
    if "\0" in text:
        raise InputError(name, "contains a NUL character")
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        raise InputError(name, "cannot be a file name (not encodable)") from None


def _path(value: object, base: Path, name: str, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise InputError(name, "must be a non-empty path relative to the dataset folder"
                               + (" or null" if optional else ""))
    dataset_path(base, value, name)
    return value


def _count(value: dict, key: str, where: str, optional: bool = False) -> int | None:
    v = value[key]
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _INT_MAX:
        raise InputError(f"{where}: {key}={_show(v)}", f"must be an integer in [0, {_INT_MAX}]"
                                                       + (" or null" if optional else ""))
    return v


def _rate(value: dict, key: str, where: str) -> float:
    v = value[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= _INT_MAX:
        raise InputError(f"{where}: {key}={_show(v)}", f"must be a number in [0, {_INT_MAX}]")
    return float(v)


def _choice(value: dict, key: str, choices: tuple[str, ...], where: str) -> str:
    v = value[key]
    if not isinstance(v, str) or v not in choices:
        raise InputError(f"{where}: {key}={_show(v)}", f"must be one of {', '.join(choices)}")
    return v


def _text(value: dict, key: str, where: str) -> str | None:
    v = value[key]
    if v is not None and not isinstance(v, str):
        raise InputError(f"{where}: {key}={_show(v)}", "must be text or null")
    return v


def write_metadata(root: str | os.PathLike, records: list[ClipRecord]) -> Path:
    """Write ``root/metadata.jsonl`` atomically, one line per record."""
    text = "".join(json.dumps(asdict(r)) + "\n" for r in records)
    return write_text(Path(root) / METADATA, text)
