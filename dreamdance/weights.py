"""Local model weights: never downloaded at run time, always loaded from a folder the user names.

Each learned backend calls :func:`require_dir` before loading anything, so a missing or wrong
folder is one clear error that names the expected model and how to obtain it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dreamdance.errors import InputError


@dataclass(frozen=True)
class ModelSpec:
    """What a weights folder must hold.

    Attributes:
        key: the config key, e.g. ``"weights.depthpro"``.
        name: the model as users know it, e.g. ``"Apple DepthPro (apple/DepthPro-hf)"``.
        repo: where to get it (a hub id users download themselves).
        marker: a file the folder must contain, relative to it (e.g. ``"config.json"``).
        accept: substrings, one of which must occur in the marker's ``model_type`` or
            ``architectures`` / ``_class_name`` (empty: any).
    """

    key: str
    name: str
    repo: str
    marker: str = "config.json"
    accept: tuple[str, ...] = ()


def require_dir(path: str | Path | None, spec: ModelSpec) -> Path:
    """Check that ``path`` is a folder holding ``spec``'s model; return it as a ``Path``.

    Raises:
        InputError: not set, not a folder, no marker file, or a marker naming another model.
    """
    how = (f"download {spec.name} yourself (e.g. `huggingface-cli download {spec.repo} "
           f"--local-dir DIR`) and pass {spec.key}=DIR")
    if path is None or str(path) == "":
        raise InputError(spec.key, f"not set; {how}")
    folder = Path(str(path)).expanduser()
    if not folder.is_dir():
        raise InputError(f"{spec.key}={path}", f"no such folder; {how}")
    marker = folder / spec.marker
    if not marker.is_file():
        raise InputError(f"{spec.key}={path}",
                         f"{spec.marker} not found: not a {spec.name} folder; {how}")
    if spec.accept and marker.suffix == ".json":
        try:
            meta = json.loads(marker.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise InputError(f"{spec.key}={path}",
                             f"{spec.marker} is not valid JSON ({e}); {how}") from None
        names = [str(meta.get("model_type", "")), str(meta.get("_class_name", ""))]
        names += [str(a) for a in meta.get("architectures") or []]
        if not any(a.lower() in n.lower() for a in spec.accept for n in names if n):
            found = ", ".join(n for n in names if n) or "no model type"
            raise InputError(f"{spec.key}={path}",
                             f"holds {found}, not {spec.name}; {how}")
    return folder
