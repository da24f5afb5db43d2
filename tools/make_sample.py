"""Make the bundled sample: character art, its mask and pose, a driving dance and a camera path.

    python -m tools.make_sample [out=dreamdance/assets]

Everything is drawn procedurally and deterministically, so the committed assets can be
regenerated (and are checked against this script by the tests). Writes:

- ``art.png``       512×512 RGB: an anime-style figure in front of a landscape with a house and
  a tree (depth cues for the scene stage);
- ``art_mask.png``  the figure's mask (L, 255 = character);
- ``art_pose.json`` the figure's own pose (one frame, our pose-file format);
- ``dance.json``    49 frames at 8 fps of a procedural dance by a driver of other proportions;
- ``camera.json``   49 cameras of a gentle orbit (our trajectory JSON);
- ``scene.png``     768×432 RGB: a second scene, a seaside promenade at dusk with lamp posts
  down a paved walk (``scene_image=``: the character put into another scene).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from dreamdance.camera import intrinsics_from_fov, preset
from dreamdance.camera.files import write_trajectory
from dreamdance.io import atomic_path
from dreamdance.media import save_image
from dreamdance.motion.poses import PoseSequence, write_poses
from dreamdance.motion.skeleton import Angles, Proportions, whole_body
from tools.cli import parse_options, tool_main

SIZE = 512
FRAMES = 49
FPS = 8.0
SS = 2  # supersampling for anti-aliased drawing
FOV = 55.0
SCENE_DEPTH = 4.0  # metres to the look-at point, used for the sample camera path

PALETTE = {
    "outline": (40, 30, 45), "skin": (255, 222, 200), "hair": (90, 60, 160),
    "shirt": (235, 90, 110), "skirt": (60, 70, 140), "legs": (250, 240, 235),
    "shoes": (70, 50, 50), "eye": (60, 140, 210), "white": (255, 255, 255),
}


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * SS)), int(round(p[1] * SS))


def draw_background(rng: np.random.Generator) -> np.ndarray:
    """The landscape ``[S*SS, S*SS, 3]`` uint8: sky, mountains, hills, a house, a tree, a path."""
    n = SIZE * SS
    y = np.linspace(0, 1, n)[:, None, None]
    sky = (1 - y) * np.array([120, 180, 250]) + y * np.array([230, 240, 255])
    img = np.broadcast_to(sky, (n, n, 3)).astype(np.uint8).copy()
    cv2.circle(img, (int(0.8 * n), int(0.15 * n)), int(0.06 * n), (255, 240, 180), -1, cv2.LINE_AA)
    for _ in range(5):  # clouds
        cx, cy = rng.uniform(0.05, 0.7) * n, rng.uniform(0.05, 0.25) * n
        for j in range(4):
            cv2.ellipse(img, (int(cx + j * 0.03 * n), int(cy + (j % 2) * 0.01 * n)),
                        (int(0.04 * n), int(0.02 * n)), 0, 0, 360, (250, 252, 255), -1,
                        cv2.LINE_AA)
    xs = np.linspace(0, n, 12)
    ridge = 0.42 * n + rng.uniform(-0.06, 0.04, 12) * n
    poly = np.array([[0, n]] + np.stack([xs, ridge], 1).tolist() + [[n, n]], np.int32)
    cv2.fillPoly(img, [poly], (130, 140, 185), cv2.LINE_AA)
    hill = 0.55 * n + 0.04 * n * np.sin(np.linspace(0, 3 * np.pi, 40))
    poly = np.array([[0, n]] + np.stack([np.linspace(0, n, 40), hill], 1).tolist() + [[n, n]], np.int32)
    cv2.fillPoly(img, [poly], (110, 170, 90), cv2.LINE_AA)
    ground = img[int(0.6 * n):]
    yy, xx = np.mgrid[0:ground.shape[0], 0:n]
    stripes = ((xx - n / 2) / (yy + 40) * 6).astype(int) % 2
    ground[:] = np.where(stripes[..., None] == 1, (95, 160, 75), (105, 175, 85))
    noise = rng.normal(0, 6, ground.shape[:2])[..., None]
    ground[:] = np.clip(ground + noise, 0, 255).astype(np.uint8)
    path = np.array([[0.45 * n, 0.6 * n], [0.55 * n, 0.6 * n], [0.75 * n, n], [0.25 * n, n]],
                    np.int32)
    cv2.fillPoly(img, [path], (205, 185, 150), cv2.LINE_AA)
    # house (left) with a roof, door and windows
    x0, y0, w, h = int(0.06 * n), int(0.42 * n), int(0.24 * n), int(0.18 * n)
    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), (240, 230, 205), -1)
    roof = np.array([[x0 - 10 * SS, y0], [x0 + w // 2, y0 - int(0.1 * n)], [x0 + w + 10 * SS, y0]],
                    np.int32)
    cv2.fillPoly(img, [roof], (180, 70, 60), cv2.LINE_AA)
    cv2.rectangle(img, (x0 + w // 2 - 12 * SS, y0 + h - 36 * SS), (x0 + w // 2 + 12 * SS, y0 + h),
                  (120, 80, 50), -1)
    for wx in (x0 + 14 * SS, x0 + w - 40 * SS):
        cv2.rectangle(img, (wx, y0 + 16 * SS), (wx + 26 * SS, y0 + 40 * SS), (150, 200, 240), -1)
        cv2.rectangle(img, (wx, y0 + 16 * SS), (wx + 26 * SS, y0 + 40 * SS), (90, 70, 60), 2 * SS)
    # tree (right)
    tx, ty = int(0.86 * n), int(0.68 * n)
    cv2.rectangle(img, (tx - 8 * SS, ty - int(0.14 * n)), (tx + 8 * SS, ty), (110, 75, 45), -1)
    for dx, dy, r in ((0, -0.2, 0.08), (-0.05, -0.15, 0.06), (0.05, -0.15, 0.06)):
        cv2.circle(img, (int(tx + dx * n), int(ty + dy * n)), int(r * n), (60, 130, 60), -1,
                   cv2.LINE_AA)
    return img


def draw_scene(rng: np.random.Generator, width: int = 768, height: int = 432) -> np.ndarray:
    """A seaside promenade at dusk: sky, sun, sea, a paved walk in perspective, lamp posts
    and a railing that shrink towards the horizon. [height, width, 3] uint8"""
    w, h = width * SS, height * SS
    horizon = int(0.46 * h)
    y = np.linspace(0, 1, horizon)[:, None, None]
    sky = (1 - y) * np.array([70, 60, 130]) + y * np.array([250, 160, 110])
    img = np.zeros((h, w, 3), np.float64)
    img[:horizon] = sky
    sun = (int(0.68 * w), int(0.40 * h))
    cv2.circle(img, sun, int(0.05 * h), (255, 215, 150), -1, cv2.LINE_AA)
    sea_y = np.linspace(0, 1, int(0.62 * h) - horizon)[:, None, None]
    img[horizon:int(0.62 * h)] = (1 - sea_y) * np.array([200, 130, 120]) + sea_y * np.array(
        [40, 70, 120])
    for _ in range(160):  # shimmer on the water, denser under the sun
        yy = rng.uniform(horizon + 2, 0.62 * h)
        xx = rng.normal(sun[0], 0.12 * w * (yy - horizon) / (0.16 * h) + 20)
        half = rng.uniform(4, 16) * SS * (yy - horizon) / (0.16 * h) + SS
        cv2.line(img, (int(xx - half), int(yy)), (int(xx + half), int(yy)), (250, 200, 150),
                 SS, cv2.LINE_AA)
    ground = img[int(0.62 * h):]
    gy, gx = np.mgrid[0:ground.shape[0], 0:w].astype(np.float64)
    depth = (gy + 30 * SS) / (ground.shape[0] + 30 * SS)  # near = 1
    u = (gx - w / 2) / (depth * w)
    tiles = ((np.floor(u * 10) + np.floor(1.2 / depth)) % 2)[..., None]
    ground[:] = (np.array([150, 130, 115]) * (0.75 + 0.25 * depth[..., None])
                 + 14 * tiles + rng.normal(0, 5, gy.shape)[..., None])
    top = int(0.62 * h)
    cv2.line(img, (0, top), (w, top), (60, 55, 70), 3 * SS, cv2.LINE_AA)  # the sea wall
    for i, dist in enumerate((1.0, 1.6, 2.6, 4.2, 7.0)):  # lamp posts along the walk
        base_y = top + int((h - top) * 0.9 / dist)
        post_h = int(0.55 * h / dist)
        x = int(w * (0.5 + 0.42 / dist * (1 if i % 2 == 0 else -1)))
        lw = max(SS, int(6 * SS / dist))
        cv2.line(img, (x, base_y), (x, base_y - post_h), (45, 40, 55), lw, cv2.LINE_AA)
        cv2.circle(img, (x, base_y - post_h), max(SS, int(10 * SS / dist)), (255, 235, 170),
                   -1, cv2.LINE_AA)
    return cv2.resize(np.clip(img, 0, 255).astype(np.uint8), (width, height),
                      interpolation=cv2.INTER_AREA)


def draw_character(kp: np.ndarray, height: float) -> tuple[np.ndarray, np.ndarray]:
    """The figure drawn from COCO-18 keypoints ``[18,2]``: RGB and mask ``[S*SS, S*SS]``."""
    n = SIZE * SS
    rgb = np.zeros((n, n, 3), np.uint8)
    mask = np.zeros((n, n), np.uint8)
    o = max(2, int(0.006 * height * SS))  # outline width
    P = PALETTE

    def limb(a, b, width, colour):
        w = int(width * height * SS)
        for img, c, extra in ((rgb, P["outline"], o), (mask, 255, o)):
            cv2.line(img, _pt(a), _pt(b), c, w + 2 * extra, cv2.LINE_AA)
        cv2.line(rgb, _pt(a), _pt(b), colour, w, cv2.LINE_AA)

    def poly(points, colour):
        pts = np.array([_pt(p) for p in points], np.int32)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA)
        cv2.polylines(mask, [pts], True, 255, 2 * o, cv2.LINE_AA)
        cv2.polylines(rgb, [pts], True, P["outline"], 2 * o, cv2.LINE_AA)
        cv2.fillPoly(rgb, [pts], colour, cv2.LINE_AA)

    neck, hip_r, hip_l = kp[1], kp[8], kp[11]
    hip_c = (hip_r + hip_l) / 2
    # legs, then skirt, torso, arms, head: painter's order
    for a, b, c in ((8, 9, 10), (11, 12, 13)):
        limb(kp[a], kp[b], 0.05, P["legs"])
        limb(kp[b], kp[c], 0.045, P["legs"])
        limb(kp[c], kp[c] + np.array([0.0, 0.02 * height]), 0.05, P["shoes"])
    flare = 0.16 * height
    poly([hip_r + (hip_r - hip_c) * 0.4 + [0, -0.05 * height], hip_l + (hip_l - hip_c) * 0.4
          + [0, -0.05 * height], hip_l + [flare * 0.9, 0.15 * height],
          hip_r + [-flare * 0.9, 0.15 * height]], P["skirt"])
    poly([kp[2], kp[5], hip_l + (hip_l - hip_c) * 0.2, hip_r + (hip_r - hip_c) * 0.2], P["shirt"])
    for a, b, c in ((2, 3, 4), (5, 6, 7)):
        limb(kp[a], kp[b], 0.045, P["shirt"])
        limb(kp[b], kp[c], 0.035, P["skin"])
        cv2.circle(rgb, _pt(kp[c]), int(0.025 * height * SS), P["skin"], -1, cv2.LINE_AA)
        cv2.circle(mask, _pt(kp[c]), int(0.025 * height * SS) + o, 255, -1, cv2.LINE_AA)
    limb(neck, neck + (kp[0] - neck) * 0.5, 0.035, P["skin"])
    head = kp[0] + (kp[0] - neck) * 0.15
    r = int(0.075 * height * SS)
    c = _pt(head)
    for img, col, extra in ((rgb, P["hair"], 0), (mask, 255, o)):  # back hair
        cv2.ellipse(img, (c[0], c[1] + r // 8), (int(r * 1.2) + extra, int(r * 1.2) + extra),
                    0, 0, 360, col, -1, cv2.LINE_AA)
    cv2.circle(rgb, c, r + o, P["outline"], -1, cv2.LINE_AA)
    cv2.circle(rgb, c, r, P["skin"], -1, cv2.LINE_AA)
    cv2.ellipse(rgb, (c[0], c[1] - r // 3), (int(r * 1.1), int(r * 0.8)), 0, 180, 360,
                P["hair"], -1, cv2.LINE_AA)  # fringe
    for sx in (-1, 1):
        e = (c[0] + sx * int(r * 0.4), c[1] + int(r * 0.15))
        cv2.ellipse(rgb, e, (int(r * 0.2), int(r * 0.28)), 0, 0, 360, P["white"], -1, cv2.LINE_AA)
        cv2.ellipse(rgb, e, (int(r * 0.15), int(r * 0.24)), 0, 0, 360, P["eye"], -1, cv2.LINE_AA)
        cv2.circle(rgb, (e[0] - int(r * 0.05), e[1] - int(r * 0.08)), max(1, int(r * 0.06)),
                   P["white"], -1, cv2.LINE_AA)
    cv2.ellipse(rgb, (c[0], c[1] + int(r * 0.55)), (int(r * 0.15), int(r * 0.07)), 0, 0, 180,
                P["outline"], max(1, o // 2), cv2.LINE_AA)
    return rgb, mask


def _downsample(img: np.ndarray) -> np.ndarray:
    return cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def character_pose() -> tuple[dict[str, np.ndarray], float]:
    """The figure's own pose in the art: standing, arms a little out; and its height in pixels."""
    height = 0.62 * SIZE
    neck = np.array([0.5 * SIZE, 0.34 * SIZE])
    return whole_body(neck, height, Angles()), height


def dance(frames: int = FRAMES, fps: float = FPS) -> PoseSequence:
    """A procedural dance: side steps, a hip sway, arm waves and a bounce (beat = 2 Hz / 2)."""
    prop = Proportions(torso=0.29, upper_arm=0.15, thigh=0.24, shin=0.22)  # not the figure's
    height = 0.56 * SIZE
    parts = {k: [] for k in ("body", "face", "left_hand", "right_hand")}
    for i in range(frames):
        t = i / fps
        ph = 2 * np.pi * 0.5 * t
        bounce = 0.02 * height * (1 - np.cos(2 * ph)) / 2
        neck = np.array([0.52 * SIZE + 0.06 * SIZE * np.sin(ph), 0.36 * SIZE + bounce])
        wave = np.sin(ph)
        ang = Angles(
            lean=0.12 * np.sin(ph + 0.5), head_turn=0.1 * np.sin(2 * ph),
            r_upper=np.pi / 2 + 0.4 + 1.6 * max(0.0, wave), r_fore=np.pi / 2 + 0.3 + 2.4 * max(0, wave),
            l_upper=np.pi / 2 - 0.4 - 1.6 * max(0.0, -wave),
            l_fore=np.pi / 2 - 0.3 - 2.4 * max(0.0, -wave),
            r_thigh=np.pi / 2 + 0.12 + 0.15 * np.sin(ph), r_shin=np.pi / 2 + 0.05 - 0.2 * max(0, np.sin(ph)),
            l_thigh=np.pi / 2 - 0.12 + 0.15 * np.sin(ph), l_shin=np.pi / 2 - 0.05 + 0.2 * max(0, -np.sin(ph)),
        )
        for k, v in whole_body(neck, height, ang, prop).items():
            parts[k].append(v)
    arrays = {k: np.stack(v)[:, None].astype(np.float32) for k, v in parts.items()}
    return PoseSequence(**arrays, width=SIZE, height=SIZE, fps=fps)


def make_sample(out: Path) -> None:
    rng = np.random.default_rng(7)
    bg = draw_background(rng)
    pose, height = character_pose()
    fig, mask = draw_character(pose["body"][:, :2], height)
    m = mask[..., None].astype(np.float32) / 255
    art = _downsample((bg * (1 - m) + fig * m).round().astype(np.uint8))
    mask = _downsample(mask)
    out.mkdir(parents=True, exist_ok=True)
    save_image(out / "art.png", art)
    with atomic_path(out / "art_mask.png") as tmp:
        Image.fromarray(mask, mode="L").save(tmp)
    one = {k: v[None, None] for k, v in pose.items()}
    write_poses(out / "art_pose.json", PoseSequence(**one, width=SIZE, height=SIZE, fps=FPS))
    write_poses(out / "dance.json", dance())
    K = intrinsics_from_fov(FOV, SIZE, SIZE)
    cams = preset("orbit", FRAMES, K, SIZE, SIZE, depth=SCENE_DEPTH, amplitude=0.6)
    write_trajectory(out / "camera.json", cams, format="json", fps=FPS)
    save_image(out / "scene.png", draw_scene(rng))


@dataclass
class Options:
    """The command line's keys (see the module's docstring)."""

    out: Path = Path(__file__).parents[1] / "dreamdance/assets"


def run(argv: list[str]) -> Path:
    """Parse the arguments and make the sample; returns its folder (raises InputError)."""
    out = parse_options(Options, argv, "tools.make_sample")[0].out
    make_sample(out)
    return out


def main(argv: list[str] | None = None) -> None:
    """The command line (see the module's docstring)."""
    tool_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
