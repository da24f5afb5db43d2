"""Where the background comes from, and so which picture the working frame is.

- ``art`` (the paper's main use, the default): the Gaussian world is built from the art's own
  background; the working frame is the art's.
- ``driving`` (``scene.source=driving``, character replacement): the driving video, its dancer
  painted out, is the background; the working frame is the video's, and its camera is the
  video's own (no Gaussian world is built).
- ``image`` (``scene_image=PATH``, a character in another scene): the Gaussian world is built
  from that image; the working frame is the image's.

In the last two the character is placed into the working frame
(:mod:`dreamdance.motion.placement`); in the first it already stands in it.
"""

from __future__ import annotations

from typing import Any

from dreamdance.errors import InputError
from dreamdance.inputs import input_file, limit_size
from dreamdance.media import fit_size, load_image, read_video

SOURCES = ("art", "driving")  # the values of scene.source; scene_image= makes it "image"
ART, DRIVING, IMAGE = "art", "driving", "image"


def background_source(cfg: Any) -> str:
    """``art``, ``driving`` or ``image``, the combination of keys checked.

    Raises:
        InputError: an unknown ``scene.source``; ``scene_image=`` with ``scene.source=driving``;
            ``scene.source=driving`` without ``driving=`` or with a moving ``camera=``.
    """
    source = cfg.scene.source
    if source not in SOURCES:
        raise InputError(f"scene.source={source}", f"must be one of {', '.join(SOURCES)}")
    if source == DRIVING:
        if cfg.scene_image is not None:
            raise InputError(f"scene_image={cfg.scene_image}",
                             "cannot be used with scene.source=driving (the driving video is "
                             "the scene then); give one or the other")
        if cfg.driving is None:
            raise InputError("scene.source=driving", "needs driving=VIDEO: the video whose "
                                                     "dancer the character replaces")
        if cfg.camera is not None and str(cfg.camera) != "static":
            raise InputError(f"camera={cfg.camera}", "scene.source=driving keeps the video's "
                                                     "own camera; leave camera= out")
        return DRIVING
    return IMAGE if cfg.scene_image is not None else ART


def load_scene_image(cfg: Any) -> Any:
    """``scene_image=`` read (checked like ``image=``): a :class:`~dreamdance.media.LoadedImage`.
    """
    path = input_file(cfg.scene_image, "scene_image")
    name = f"scene_image={cfg.scene_image}"
    return limit_size(load_image(path, name=name), name)


def working_size(cfg: Any, source: str, art_size: tuple[int, int]) -> tuple[int, int]:
    """The working frame ``(W, H)``: the art's, the driving video's or the scene image's at
    ``resolution``. ``art_size`` is ``(w, h)`` of the art."""
    if source == DRIVING:
        first = read_video(input_file(cfg.driving, "driving"), name=f"driving={cfg.driving}",
                           max_frames=1).frames[0]
        size = (first.shape[1], first.shape[0])
    elif source == IMAGE:
        rgb = load_scene_image(cfg).rgb
        size = (rgb.shape[1], rgb.shape[0])
    else:
        size = art_size
    return fit_size(size, cfg.resolution)


def art_size(cfg: Any, art: Any) -> tuple[int, int]:
    """The art's own working frame ``(w, h)`` at ``resolution``."""
    return fit_size((art.rgb.shape[1], art.rgb.shape[0]), cfg.resolution)


def placed(source: str) -> bool:
    """Whether the character is placed into another picture's frame."""
    return source in (DRIVING, IMAGE)
