"""Atomic writes: every file lands under its final name complete, or not at all.

A writer gets a temporary path in the same folder (same extension, so format-sniffing writers
such as imageio still work); on success it is renamed into place with ``os.replace`` (atomic on
POSIX), on any exception — ``KeyboardInterrupt`` included — it is removed. Before the rename
the file's data is flushed to the disk (``fsync``), and after it the folder's entry, so once a
write returns the file survives a power cut (the run directory records a step as done only
after its files were written this way). A process killed outright (SIGKILL, power loss) can
leave a temporary file behind, never a partial final file; :func:`remove_stale_temporaries`
clears those when a run directory is opened again.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

TMP_MARK = ".tmp-"


def temporary_name(final: Path) -> Path:
    """``dir/name.ext`` -> ``dir/.name.tmp-<random>.ext`` (hidden, same folder, same suffix)."""
    final = Path(final)
    return final.with_name(f".{final.stem}{TMP_MARK}{secrets.token_hex(4)}{final.suffix}")


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``final`` when the block succeeds.

    >>> with atomic_path("out/scene/depth.npy") as tmp:   # doctest: +SKIP
    ...     np.save(tmp, depth)
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(final)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"writer produced no file for {final}")
        fsync_path(tmp)
        os.replace(tmp, final)
        fsync_path(final.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's data, or a folder's entries, to the disk."""
    flags = os.O_RDONLY
    if Path(path).is_dir():
        flags |= getattr(os, "O_DIRECTORY", 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Pretty JSON with a trailing newline; numpy scalars and arrays become plain numbers/lists."""
    return write_text(path, json.dumps(obj, indent=1, default=_to_jsonable) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_array(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``.npy`` file, written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array), allow_pickle=False)
    return Path(path)


def remove_stale_temporaries(root: str | os.PathLike,
                             folders: list[str] | None = None) -> list[Path]:
    """Delete temporary files left by a killed process in ``root`` and in its sub-``folders``
    (relative; not below them, and never outside ``root``); return what was removed."""
    root = Path(root)
    removed = []
    for rel in ["", *(folders or [])]:
        folder = (root / rel).resolve()
        if not folder.is_dir() or not folder.is_relative_to(root.resolve()):
            continue
        for p in folder.glob(f".*{TMP_MARK}*"):
            if p.is_file():
                p.unlink()
                removed.append(p)
    return removed


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
