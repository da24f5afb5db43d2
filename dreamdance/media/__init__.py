"""Images and videos in, images and videos out, and resizing.

One module a concept: :mod:`~dreamdance.media.images`, :mod:`~dreamdance.media.videos`,
:mod:`~dreamdance.media.resize`; their public names are importable from here.

Canonical forms used across DreamDance:

- image: ``rgb`` float32 ``[H, W, 3]`` in [0, 1] and ``alpha`` float32 ``[H, W]`` in [0, 1]
  or ``None`` (:class:`LoadedImage`);
- video: :class:`Video`, ``frames`` uint8 ``[T, H, W, 3]`` and ``fps``;
- intrinsics: ``K`` in pixels, ``[..., 3, 3]``, in continuous image coordinates where the image
  spans ``[0, W] x [0, H]`` and pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``
  (gsplat's convention). Resizing by ``(sx, sy)`` maps ``u -> u * sx``, and
  :func:`~dreamdance.camera.scale_intrinsics` applies the same map to ``K``.

Everything read from a user's file is checked on entry and a problem is raised as
:class:`~dreamdance.errors.InputError` naming the input; every file written goes through
:func:`~dreamdance.io.atomic_path`.
"""

from dreamdance.media.images import (
    LoadedImage,
    PathLike,
    apply_orientation,
    load_image,
    save_image,
    to_uint8,
)
from dreamdance.media.resize import fit_size, resize
from dreamdance.media.videos import (
    FRAME_SUFFIXES,
    Video,
    VideoInfo,
    probe_video,
    read_video,
    read_video_sampled,
    write_video,
)

__all__ = [
    "FRAME_SUFFIXES", "LoadedImage", "PathLike", "Video", "VideoInfo", "apply_orientation",
    "fit_size", "load_image", "probe_video", "read_video", "read_video_sampled", "resize",
    "save_image", "to_uint8", "write_video",
]
