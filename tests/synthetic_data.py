"""A tiny training dataset in the layout of :mod:`dreamdance.train.layout`, for tests.

Each person clip is a textured background (a smooth gradient with a checker pattern, shifted
a little each frame like a slow camera pan) with a coloured stick figure drawn from a
synthetic whole-body skeleton (:func:`dreamdance.motion.skeleton.whole_body`) that walks
across the frame and swings its arms; its pose file holds exactly the drawn keypoints and its
optional ``mask.mp4`` is the figure's silhouette (white). Scene clips have the background
only. A corrupt clip's ``video.mp4`` is garbage bytes; a short clip has 3 frames.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from dreamdance.media import write_video
from dreamdance.motion.poses import PoseSequence, write_poses
from dreamdance.motion.render import BODY_LIMBS
from dreamdance.motion.skeleton import Angles, whole_body
from dreamdance.train.layout import ClipRecord, write_metadata

FPS = 8.0
SHORT_FRAMES = 3


def figure_poses(frames: int, size: tuple[int, int], rng: np.random.Generator) -> PoseSequence:
    """A figure walking left to right with swinging arms, in pixels of ``size = (H, W)``.

    Returns:
        One person, ``[frames, 1, K, 3]`` per part, confidence 1.
    """
    h, w = size
    height = 0.7 * h
    x0, x1 = rng.uniform(0.3, 0.4) * w, rng.uniform(0.6, 0.7) * w
    phase = rng.uniform(0, 2 * np.pi)
    parts = {"body": [], "face": [], "left_hand": [], "right_hand": []}
    for t in range(frames):
        u = t / max(frames - 1, 1)
        swing = 0.6 * np.sin(phase + 2 * np.pi * 2 * u)
        ang = Angles(r_upper=np.pi / 2 + 0.3 + swing, r_fore=np.pi / 2 + 0.2 + swing,
                     l_upper=np.pi / 2 - 0.3 - swing, l_fore=np.pi / 2 - 0.2 - swing)
        neck = np.array([x0 + (x1 - x0) * u, 0.22 * h])
        for part, pts in whole_body(neck, height, ang).items():
            parts[part].append(pts)
    arrays = {k: np.stack(v)[:, None].astype(np.float32) for k, v in parts.items()}
    return PoseSequence(**arrays, width=w, height=h, fps=FPS)


def background(frames: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A textured, slowly panning background.  [frames, H, W, 3] uint8"""
    h, w = size
    base = rng.uniform(0.2, 0.8, 3)
    period = max(4, min(h, w) // 8)
    out = np.empty((frames, h, w, 3), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for t in range(frames):
        x = xx + t  # one pixel per frame to the left
        checker = ((x // period + yy // period) % 2)[..., None]
        ramp = (yy / h)[..., None]
        img = base * (0.7 + 0.3 * ramp) + 0.15 * (checker - 0.5)
        out[t] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return out


def draw_figure(frame: np.ndarray, pose: dict[str, np.ndarray], colour: tuple[int, int, int],
                thickness: int) -> np.ndarray:
    """Draw the figure's limbs and head on ``frame`` (in place) and return its silhouette.

    Args:
        frame: [H, W, 3] uint8.
        pose: one person's ``{part: [K, 3]}``.

    Returns:
        [H, W] uint8, 255 on the figure.
    """
    sil = np.zeros(frame.shape[:2], np.uint8)
    body = pose["body"][:, :2]
    for a, b in BODY_LIMBS:
        p, q = (tuple(int(round(v)) for v in body[i]) for i in (a, b))
        cv2.line(sil, p, q, 255, thickness)
    for hand in ("left_hand", "right_hand"):
        pts = np.round(pose[hand][:, :2]).astype(np.int32)
        cv2.fillConvexPoly(sil, cv2.convexHull(pts), 255)
    face = np.round(pose["face"][:, :2]).astype(np.int32)
    cv2.fillConvexPoly(sil, cv2.convexHull(face), 255)
    frame[sil > 0] = colour
    return sil


def make_dataset(root: str | os.PathLike, clips: int = 2, frames: int = 24,
                 size: tuple[int, int] = (64, 64), scene_clips: int = 0, corrupt: int = 0,
                 short: int = 0, masks: bool = True, seed: int = 0) -> Path:
    """Write a tiny dataset at ``root`` (created) and return ``Path(root)``.

    Args:
        root: the dataset folder.
        clips: person clips (``person-000``, …), each ``frames`` long at ``size = (H, W)``,
            with poses and, when ``masks``, a ``mask.mp4``.
        scene_clips: scene-only clips (``scene-000``, …; no poses).
        corrupt: person clips whose video is garbage bytes (``corrupt-000``, …).
        short: person clips of :data:`SHORT_FRAMES` frames (``short-000``, …).
        seed: everything is deterministic in it.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    h, w = size
    records = []

    def add(name: str, n: int, person: bool, bad: bool = False) -> None:
        folder = root / "clips" / name
        folder.mkdir(parents=True, exist_ok=True)
        video = background(n, size, rng)
        rel = f"clips/{name}"
        poses_rel = mask_rel = None
        if person:
            poses = figure_poses(n, size, rng)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            thickness = max(2, min(h, w) // 16)
            sils = np.stack([draw_figure(video[t], {k: getattr(poses, k)[t, 0] for k in
                                                    ("body", "face", "left_hand", "right_hand")},
                                         colour, thickness) for t in range(n)])
            write_poses(folder / "poses.json", poses)
            poses_rel = f"{rel}/poses.json"
            if masks:
                write_video(folder / "mask.mp4", np.repeat(sils[..., None], 3, axis=-1), FPS)
                mask_rel = f"{rel}/mask.mp4"
        if bad:
            (folder / "video.mp4").write_bytes(rng.integers(0, 256, 4096, np.uint8).tobytes())
        else:
            write_video(folder / "video.mp4", video, FPS)
        records.append(ClipRecord(name=name, video=f"{rel}/video.mp4", poses=poses_rel,
                                  mask=mask_rel, frames=n, fps=FPS, width=w, height=h,
                                  kind="person" if person else "scene", split="train",
                                  source=f"synthetic-{seed}"))

    for i in range(clips):
        add(f"person-{i:03d}", frames, person=True)
    for i in range(scene_clips):
        add(f"scene-{i:03d}", frames, person=False)
    for i in range(corrupt):
        add(f"corrupt-{i:03d}", frames, person=True, bad=True)
    for i in range(short):
        add(f"short-{i:03d}", SHORT_FRAMES, person=True)
    write_metadata(root, records)
    return root
