"""Synthetic source videos for ``tools.prepare_data``: a figure with its pose file, no weights.

Each video is a red figure (the hull of a standing whole-body skeleton that sways sideways, in
the left half) and a red block with no pose (``DISTRACTOR``: not the character) on a noisy green
background; its pose file ``NAME.poses.json`` holds exactly the drawn keypoints. The tests of
the tool and its benchmark (``tools.bench_prepare``) make their videos with these functions.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from dreamdance.media import write_video
from dreamdance.motion.mask import pose_masks
from dreamdance.motion.poses import PoseSequence, write_poses
from dreamdance.motion.skeleton import Angles, whole_body

SIZE = 64
FPS = 8.0


def distractor(width: int = SIZE, height: int = SIZE) -> tuple[slice, slice]:
    """The red block with no pose, ``(rows, columns)``: right of the figure."""
    return (slice(round(height * 20 / 64), round(height * 40 / 64)),
            slice(round(width * 46 / 64), round(width * 58 / 64)))


DISTRACTOR = distractor()


def skeleton_poses(n: int, width: int = SIZE, height: int = SIZE, fps: float = FPS,
                   confidence: float = 1.0) -> PoseSequence:
    """A standing figure in the left half, swaying sideways, one person.  [n, 1, K, 3]"""
    parts = defaultdict(list)
    for t in range(n):
        neck = np.array([0.3 * width + 3 * np.sin(t / 3), 0.25 * height])
        for part, a in whole_body(neck, 0.7 * height, Angles()).items():
            a = a.copy()
            a[:, 2] *= confidence
            if confidence == 0:
                a[:] = 0
            parts[part].append(a[None])
    return PoseSequence(**{k: np.stack(v).astype(np.float32) for k, v in parts.items()},
                        width=width, height=height, fps=fps)


def figure_frames(poses: PoseSequence, seed: int = 0) -> np.ndarray:
    """A red figure (the poses' hull) and a red block (:func:`distractor`) on a noisy green
    background.  [T, H, W, 3] uint8"""
    rng = np.random.default_rng(seed)
    inside = pose_masks(poses, dilate=0.02)  # [T, H, W]
    t, h, w = inside.shape
    frames = np.empty((t, h, w, 3), np.uint8)
    frames[:] = (30, 140, 40)
    frames = np.clip(frames + rng.integers(-12, 12, frames.shape), 0, 255).astype(np.uint8)
    frames[inside] = (220, 40, 50)
    frames[(slice(None), *distractor(w, h))] = (220, 40, 50)
    return frames


def add_video(folder: Path, name: str, n: int, poses: str | None = "good",
              size: int = SIZE) -> Path:
    """Write ``folder/NAME.mp4`` of ``n`` frames (``size`` square, 8 fps) and, per ``poses``, a
    pose file beside it: "good", "empty" (no confident keypoint), "short" (one frame too few)
    or None (no pose file). Returns the video's path."""
    folder.mkdir(parents=True, exist_ok=True)
    seq = skeleton_poses(n, size, size)
    path = write_video(folder / f"{name}.mp4", figure_frames(seq), fps=FPS)
    if poses == "empty":
        write_poses(folder / f"{name}.poses.json", skeleton_poses(n, size, size, confidence=0.0))
    elif poses == "short":
        write_poses(folder / f"{name}.poses.json", skeleton_poses(n - 1, size, size))
    elif poses == "good":
        write_poses(folder / f"{name}.poses.json", seq)
    return path
