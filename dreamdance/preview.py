"""Preview images: contact sheets a person looks at instead of reading numbers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dreamdance.camera import Trajectory
from dreamdance.media import to_uint8
from dreamdance.motion.poses import PoseSequence
from dreamdance.motion.render import render_pose


def contact_sheet(tiles: list[np.ndarray], labels: list[str], cols: int = 4,
                  tile: int = 192, pad: int = 4) -> np.ndarray:
    """Tiles ``[H_i, W_i, 3]`` uint8, each fitted into a ``tile``×``tile`` cell with its label;
    returns ``[rows·(tile+pad)+pad, cols·(tile+pad)+pad, 3]`` uint8 on a dark grey ground."""
    assert len(tiles) == len(labels) and tiles, (len(tiles), len(labels))
    rows = -(-len(tiles) // cols)
    sheet = np.full((rows * (tile + pad) + pad, cols * (tile + pad) + pad, 3), 32, np.uint8)
    for i, (img, label) in enumerate(zip(tiles, labels, strict=True)):
        h, w = img.shape[:2]
        s = tile / max(h, w)
        small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))),
                           interpolation=cv2.INTER_AREA)
        y = pad + (i // cols) * (tile + pad) + (tile - small.shape[0]) // 2
        x = pad + (i % cols) * (tile + pad) + (tile - small.shape[1]) // 2
        sheet[y:y + small.shape[0], x:x + small.shape[1]] = small
        ty, tx = pad + (i // cols) * (tile + pad), pad + (i % cols) * (tile + pad)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        sheet[ty:ty + th + 8, tx:tx + min(tw + 8, tile)] = 0  # a dark label strip
        cv2.putText(sheet, label, (tx + 4, ty + th + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return sheet


def trajectory_plot(traj: Trajectory, size: int = 256) -> np.ndarray:
    """Top-down view (x right, z up the image) of the camera centres and viewing directions,
    coloured from blue (first) to red (last); ``[size, size, 3]`` uint8."""
    img = np.full((size, size, 3), 245, np.uint8)
    c2w = traj.c2w
    centres, forward = c2w[:, :3, 3], c2w[:, :3, 2]
    xz = centres[:, [0, 2]]
    extent = float(np.abs(xz).max())
    extent = extent if extent > 1e-9 else 1.0  # a camera that only rotates
    arrow = 0.25 * extent
    scale = 0.4 * size / (extent + arrow)

    def px(p: np.ndarray) -> tuple[int, int]:
        return round(size / 2 + p[0] * scale), round(size / 2 - p[1] * scale)

    cv2.line(img, (size // 2, 0), (size // 2, size), (220, 220, 220), 1)
    cv2.line(img, (0, size // 2), (size, size // 2), (220, 220, 220), 1)
    n = len(traj)
    for i in range(n):
        colour = (round(255 * i / max(n - 1, 1)), 60, round(255 * (1 - i / max(n - 1, 1))))
        tip = xz[i] + arrow * forward[i, [0, 2]] / max(np.linalg.norm(forward[i, [0, 2]]), 1e-9)
        cv2.line(img, px(xz[i]), px(tip), colour, 1, cv2.LINE_AA)
        cv2.circle(img, px(xz[i]), 2, colour, -1, cv2.LINE_AA)
    return img


def motion_preview(art: np.ndarray, poses: PoseSequence, cams: Trajectory) -> np.ndarray:
    """The art ``[H, W, 3]`` float, five frames of the (aligned) poses drawn over the dimmed
    art — poses in another frame size are drawn on black — and the camera path, top view."""
    picks = np.linspace(0, len(poses) - 1, 5).round().astype(int)
    same = art.shape[:2] == (poses.height, poses.width)
    tiles = [to_uint8(art)]
    for t in picks:
        pose = render_pose(poses, t)
        ground = to_uint8(0.45 * art) if same else np.zeros_like(pose)
        tiles.append(np.where(pose.any(-1, keepdims=True), pose, ground))
    labels = ["reference"] + [f"pose {t}" for t in picks] + ["camera path, top view"]
    return contact_sheet(tiles + [trajectory_plot(cams)], labels, cols=7)


def animation_preview(frames: np.ndarray, poses: PoseSequence, count: int = 8) -> np.ndarray:
    """``count`` frames of the animation ``[T, H, W, 3]`` float in [0, 1], evenly spread, each
    with the aligned pose it should follow drawn over it (thin, half-transparent), so a user
    sees at a glance whether the character follows the dance. [h, w, 3] uint8"""
    assert len(frames) == len(poses), (len(frames), len(poses))
    picks = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int))
    tiles = []
    for t in picks:
        frame = to_uint8(frames[t])
        pose = render_pose(poses, t, parts=("body",))
        drawn = pose.any(-1, keepdims=True)
        tiles.append(np.where(drawn, (0.5 * frame + 0.5 * pose).astype(np.uint8), frame))
    return contact_sheet(tiles, [f"frame {t}" for t in picks], cols=min(len(tiles), 4))


def depth_colours(depth: np.ndarray) -> np.ndarray:
    """Depth ``[H, W]`` as a colour image (near = warm), robust to outliers. [H, W, 3] uint8"""
    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        return np.zeros((*depth.shape, 3), np.uint8)
    inv = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0)
    lo, hi = np.percentile(inv[valid], [2, 98])
    norm = np.clip((inv - lo) / max(hi - lo, 1e-9), 0, 1)
    bgr = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    return np.where(valid[..., None], bgr[..., ::-1], 0).astype(np.uint8)


def checker_composite(rgb: np.ndarray, alpha: np.ndarray, cell: int = 16) -> np.ndarray:
    """An RGBA cut-out over a grey checkerboard, the usual way to show transparency. uint8"""
    h, w = alpha.shape
    y, x = np.mgrid[0:h, 0:w]
    board = np.where(((y // cell + x // cell) % 2)[..., None] == 0, 0.8, 0.6)
    return to_uint8(rgb * alpha[..., None] + board * (1 - alpha[..., None]))


def scene_preview(scene: Path) -> np.ndarray:
    """The scene stage at a glance, from its folder: reference, cut-out, plate, depth, up to
    four spiral views and four background-video frames. uint8"""
    from dreamdance.io import read_json
    from dreamdance.media import load_image, read_video

    cut = load_image(scene / "character.png")
    tiles = [to_uint8(cut.rgb), checker_composite(cut.rgb, cut.alpha),
             to_uint8(load_image(scene / "background.png").rgb),
             depth_colours(np.load(scene / "depth.npy"))]
    labels = ["reference", "character", "background plate", "depth"]
    views = read_json(scene / "views" / "views.json")["views"][1:]
    for i in np.linspace(0, len(views) - 1, min(4, len(views))).round().astype(int):
        tiles.append(to_uint8(load_image(scene / "views" / views[i]["image"]).rgb))
        labels.append(f"spiral view {i + 1} (holes {100 * views[i]['hole_ratio']:.0f}%)")
    frames = read_video(scene / "background.mp4").frames
    for t in np.linspace(0, len(frames) - 1, 4).round().astype(int):
        tiles.append(frames[t])
        labels.append(f"video frame {t}")
    return contact_sheet(tiles, labels, cols=4)


def removal_preview(frames: np.ndarray, removal, count: int = 3) -> np.ndarray:
    """The person painted out, for ``count`` frames spread over the video, one row each:
    the original, the removed region over it (red: seen in other frames, yellow: inpainted)
    and the filled frame.

    Args:
        frames: the original video.  [T, H, W, 3] uint8
        removal: a :class:`dreamdance.scene.removal.Removal` of it.

    Returns:
        [h, w, 3] uint8
    """
    from dreamdance.scene.removal import FROM_FRAMES, INPAINTED

    picks = np.unique(np.linspace(0, len(frames) - 1, count).round().astype(int))
    tiles, labels = [], []
    for t in picks:
        shown = frames[t].astype(np.float32)
        for value, colour in ((FROM_FRAMES, (255, 40, 40)), (INPAINTED, (255, 220, 0))):
            where = removal.source[t] == value
            shown[where] = 0.4 * shown[where] + 0.6 * np.array(colour, np.float32)
        tiles += [frames[t], shown.astype(np.uint8), removal.filled[t]]
        labels += [f"frame {t}", "mask: red=frames yellow=paint", "filled"]
    return contact_sheet(tiles, labels, cols=3)
