"""The bundled sample: character art, its mask and pose, a driving dance, a camera path and
a second scene to put the character into (``scene_image=``).

Made by ``python -m tools.make_sample``; used whenever a stage is run without ``image=``,
``poses=``, ``driving=`` or ``camera=``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

ART = "art.png"
ART_MASK = "art_mask.png"
ART_POSE = "art_pose.json"
DANCE = "dance.json"
CAMERA = "camera.json"
SCENE = "scene.png"


def sample_path(name: str) -> Path:
    """Filesystem path of a bundled sample file, e.g. ``sample_path(ART)``."""
    path = resources.files(__name__) / name
    if not path.is_file():
        raise FileNotFoundError(f"bundled sample file {name!r} is missing from the installation")
    return Path(str(path))
