"""The training-data layout: one folder per clip and a metadata file.

A dataset folder ``DATA/`` looks like::

    DATA/metadata.jsonl            one JSON object per line, one line per clip
    DATA/clips/NAME/video.mp4      the clip (any video ffmpeg reads, or a folder of frames)
    DATA/clips/NAME/poses.json     its poses, in the pose-file format (dreamdance.motion.poses);
                                   absent for a scene-only clip
    DATA/clips/NAME/mask.mp4       optional: the character mask per frame (white = character)
    DATA/clips/NAME/style.png      optional: a stylised copy of frame ``style_frame`` of the clip
                                   (tools.stylize_references), used as a reference character

A metadata line::

    {"name": "dance-0001-000", "video": "clips/dance-0001-000/video.mp4",
     "poses": "clips/dance-0001-000/poses.json", "mask": "clips/dance-0001-000/mask.mp4",
     "style": null, "style_frame": null, "frames": 120, "fps": 24.0, "width": 720, "height": 1280,
     "kind": "person", "split": "train", "source": "dance-0001.mp4"}

``kind`` is ``"person"`` (a person drives the clip: poses required) or ``"scene"`` (no person:
poses absent, the pose videos are black and the inpainting mask empty). ``split`` is
``"train"`` or ``"val"``. Paths are relative to ``DATA/``. ``tools/prepare_data.py`` makes the
layout from a folder of videos; users may also write it by hand.
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


def read_metadata(root: str | os.PathLike, name: str | None = None) -> list[ClipRecord]:
    """The clips of the dataset at ``root``, in file order.

    Args:
        root: the dataset folder.
        name: the input as the user knows it, for errors (default ``data=<root>``).

    Raises:
        InputError: no folder, no ``metadata.jsonl``, a line that is not a clip record (names
            the line), or two clips with the same name.
    """
    root = Path(root)
    name = f"data={root}" if name is None else name
    path = root / METADATA
    if not root.is_dir():
        raise InputError(name, "not a folder")
    if not path.is_file():
        raise InputError(name, f"no {METADATA} (make the layout with python -m tools.prepare_data)")
    known = {f.name for f in fields(ClipRecord)}
    records, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{name}: {METADATA} line {number}"
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(where, f"not JSON ({e.msg})") from e
            if not isinstance(entry, dict):
                raise InputError(where, "not a JSON object")
            missing = {"name", "video"} - set(entry)
            if missing:
                raise InputError(where, f"missing {', '.join(sorted(missing))}")
            unknown = set(entry) - known
            if unknown:
                raise InputError(where, f"unknown keys {', '.join(sorted(unknown))}")
            entry.setdefault("poses", None)
            record = ClipRecord(**entry)
            if record.kind not in KINDS:
                raise InputError(where, f"kind={record.kind!r}: expected one of {KINDS}")
            if record.split not in SPLITS:
                raise InputError(where, f"split={record.split!r}: expected one of {SPLITS}")
            if record.kind == "person" and not record.poses:
                raise InputError(where, f"clip {record.name!r} of kind person has no poses")
            if record.name in seen:
                raise InputError(where, f"clip name {record.name!r} appears twice")
            seen.add(record.name)
            records.append(record)
    return records


def write_metadata(root: str | os.PathLike, records: list[ClipRecord]) -> Path:
    """Write ``root/metadata.jsonl`` atomically, one line per record."""
    text = "".join(json.dumps(asdict(r)) + "\n" for r in records)
    return write_text(Path(root) / METADATA, text)
