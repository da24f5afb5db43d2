"""The pose videos the animate stage is conditioned on: body, face and hands, drawn apart.

Each is drawn on black at the poses' ``width × height`` in OpenPose's conventions
(:mod:`dreamdance.motion.render`): ``body`` the COCO-18 skeleton, ``face`` the 68 landmarks,
``hand`` both hands. In the run directory they are ``animate/pose_body.mp4``,
``animate/pose_face.mp4`` and ``animate/pose_hand.mp4``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dreamdance.media import write_video
from dreamdance.motion.poses import PoseSequence
from dreamdance.motion.render import render_pose

VIDEO_PARTS = {"body": ("body",), "face": ("face",), "hand": ("left_hand", "right_hand")}
FILENAMES = {key: f"pose_{key}.mp4" for key in VIDEO_PARTS}


def pose_videos(poses: PoseSequence, threshold: float = 0.3,
                person: int | None = None) -> dict[str, np.ndarray]:
    """Render the three pose videos.

    Args:
        poses: ``[T, P, K, 3]`` keypoints in pixels of ``poses.width × poses.height``.
        threshold: keypoints below this confidence are not drawn.
        person: whose keypoints; the driver when None.

    Returns:
        ``{"body": [T, H, W, 3], "face": [T, H, W, 3], "hand": [T, H, W, 3]}`` uint8 RGB.
    """
    out = {}
    for key, parts in VIDEO_PARTS.items():
        out[key] = np.zeros((len(poses), poses.height, poses.width, 3), np.uint8)
        for t in range(len(poses)):
            out[key][t] = render_pose(poses, t, person, parts, threshold)
    return out


def write_pose_videos(folder: str | os.PathLike, poses: PoseSequence, fps: float | None = None,
                      threshold: float = 0.3, person: int | None = None,
                      crf: int = 18) -> dict[str, Path]:
    """Write ``pose_body.mp4``, ``pose_face.mp4`` and ``pose_hand.mp4`` into ``folder``
    (H.264, each written atomically by :func:`dreamdance.media.write_video`).

    Args:
        folder: created if needed.
        fps: frames per second; the poses' own when None.
        crf: x264 constant rate factor (0 is lossless).

    Returns:
        ``{"body": path, "face": path, "hand": path}``.
    """
    folder = Path(folder)
    fps = poses.fps if fps is None else fps
    return {key: write_video(folder / FILENAMES[key], frames, fps, crf=crf)
            for key, frames in pose_videos(poses, threshold, person).items()}
