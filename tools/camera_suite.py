"""Synthetic driving videos with known cameras, for measuring the camera trackers.

The world is layered: real photos (scikit-image's bundled data) on planes facing the first
camera at depths 3, 5 and 10 — a full backdrop at 10, panels at 5 and 3 that hide parts of it.
A camera ``[R | t]`` sees a plane ``z = d`` through one homography per plane, so each frame is
the planes warped back to front (2x supersampled, area-averaged down): the cameras, and the
depth of every pixel, are known exactly. On top of that a video can carry

- a **dancer**: a figure drawn from textured limbs, swaying and walking by itself, with its
  masks (given to the tracker, or not: ``masked=False``);
- a **blank** frame (black) in the middle;
- or be **noise** only: flat grey with sensor noise, nothing to track.

``python -m tools.camera_suite out=DIR`` writes every case as an MP4 with its true path
(``camera.json``) and its dancer masks (``masks.mp4``), for a look or for another tool.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dreamdance.camera import intrinsics_from_fov, look_at, pose_from_rotation_center

SIZE = 384
FRAMES = 25
FOV = 60.0
DEPTHS = (3.0, 5.0, 10.0)


@dataclass(frozen=True, eq=False)
class Video:
    """A synthetic video and the truth about it.

    Attributes:
        name: the case's name.
        frames: RGB. [T, H, W, 3] uint8
        masks: True on the dancer (all False without one). [T, H, W] bool
        w2c: the true world-to-camera poses (first: identity). [T, 4, 4]
        K: intrinsics, pixel centres at +0.5. [3, 3]
        moving: whether the true camera centre moves (else a pure rotation, or still).
    """

    name: str
    frames: np.ndarray
    masks: np.ndarray
    w2c: np.ndarray
    K: np.ndarray
    moving: bool


# ---------------------------------------------------------------------------------------------
# Camera paths, world-to-camera [T, 4, 4]; the world is the first camera's frame
# ---------------------------------------------------------------------------------------------


def _euler(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Camera-to-world rotations: yaw about y, then pitch about x, then roll about z. [T, 3, 3]"""
    def rot(axis, a):
        c, s = np.cos(a), np.sin(a)
        R = np.zeros((len(a), 3, 3))
        i, j = [k for k in range(3) if k != axis]
        R[:, axis, axis] = 1.0
        R[:, i, i], R[:, j, j], R[:, i, j], R[:, j, i] = c, c, -s, s
        return R
    return rot(1, yaw) @ rot(0, pitch) @ rot(2, roll)


def rotating(n: int, yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """A camera turning about its centre by the given angles (degrees), smoothly. [n, 4, 4]"""
    u = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))
    c2w = _euler(*(np.deg2rad(a) * u for a in (yaw, pitch, roll)))
    return pose_from_rotation_center(np.swapaxes(c2w, -1, -2), np.zeros((n, 3)))


def sideways(n: int, length: float, turn: float = 0.0) -> np.ndarray:
    """A camera moving ``length`` to the right (and a little up), turning ``turn`` degrees
    towards the way it goes. [n, 4, 4]"""
    u = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))
    c = np.stack([length * u, -0.15 * length * u, np.zeros(n)], axis=1)
    c2w = _euler(np.deg2rad(turn) * u, np.zeros(n), np.zeros(n))
    return pose_from_rotation_center(np.swapaxes(c2w, -1, -2), c)


def orbit(n: int, degrees: float, distance: float = 5.0) -> np.ndarray:
    """A camera on an arc around ``(0, 0, distance)``, looking at it, speeding up. [n, 4, 4]"""
    u = np.linspace(0.0, 1.0, n)
    a = np.deg2rad(degrees) * (0.4 * u + 0.6 * u**2)
    eyes = np.stack([distance * np.sin(a), -0.2 * np.sin(u * np.pi / 2),
                     distance - distance * np.cos(a)], axis=1)
    return np.stack([look_at(e, np.array([0.0, 0.0, distance])) for e in eyes])


def forward(n: int, length: float) -> np.ndarray:
    """A camera moving ``length`` towards the scene, drifting a little right. [n, 4, 4]"""
    u = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))
    c = np.stack([0.2 * length * u, np.zeros(n), length * u], axis=1)
    return pose_from_rotation_center(np.repeat(np.eye(3)[None], n, 0), c)


def wander(n: int) -> np.ndarray:
    """A hand-held walk: the camera drifts right and forward and back, turning left and right
    and nodding, all at once. [n, 4, 4]"""
    u = np.linspace(0.0, 1.0, n)
    ease = 0.5 - 0.5 * np.cos(np.pi * u)
    c = np.stack([0.9 * ease, -0.1 * np.sin(np.pi * u), 0.5 * np.sin(np.pi * u)], axis=1)
    c2w = _euler(np.deg2rad(8.0) * np.sin(2 * np.pi * u), np.deg2rad(-3.0) * np.sin(np.pi * u),
                 np.deg2rad(2.0) * np.sin(3 * np.pi * u))
    return pose_from_rotation_center(np.swapaxes(c2w, -1, -2), c)


# ---------------------------------------------------------------------------------------------
# The layered world
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Layer:
    """A photo on the plane ``z = depth``: texel ``(u, v)`` lies at
    ``(x0 + texel * u, y0 + texel * v, depth)`` (texel centres at integers)."""

    rgba: np.ndarray  # [h, w, 4] float32 in [0, 1], alpha last
    depth: float
    x0: float
    y0: float
    texel: float


def _photo(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    return img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)


def _panel(name: str, depth: float, box: tuple[float, float, float, float],
           texel: float) -> Layer:
    """A photo filling ``box = (x0, y0, x1, y1)`` (plane units) of the plane ``z = depth``,
    mirrored to tile it when the photo is too small. Texels of ``texel`` units."""
    x0, y0, x1, y1 = box
    w, h = int(np.ceil((x1 - x0) / texel)), int(np.ceil((y1 - y0) / texel))
    img = _photo(name)[..., :3]
    scale = max(1.0, 0.5 * min(w / img.shape[1], h / img.shape[0]))
    if scale > 1.0:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    reps = (int(np.ceil(h / img.shape[0])), int(np.ceil(w / img.shape[1])))
    tile = np.concatenate([np.concatenate([img if (i + j) % 2 == 0 else img[:, ::-1]
                                           for j in range(reps[1])], axis=1)
                           for i in range(reps[0])], axis=0)[:h, :w]
    rgba = np.concatenate([tile.astype(np.float32) / 255.0, np.ones((h, w, 1), np.float32)], 2)
    rgba[:, [0, -1], 3] = rgba[[0, -1], :, 3] = 0.5  # a soft edge
    return Layer(rgba, depth, x0, y0, texel)


@functools.lru_cache(maxsize=4)
def world(size: int = SIZE, fov: float = FOV) -> tuple[Layer, ...]:
    """The layers, back to front, with texels about 0.8 of a pixel of the first camera."""
    f = 0.5 * size / np.tan(np.deg2rad(fov) / 2)
    far, mid, near = DEPTHS[2], DEPTHS[1], DEPTHS[0]
    return (
        _panel("rocket", far, (-16.0, -14.0, 16.0, 14.0), 0.8 * far / f),
        _panel("coffee", mid, (-3.4, -2.6, -0.6, 0.4), 0.8 * mid / f),
        _panel("chelsea", mid, (1.2, -1.0, 3.6, 2.4), 0.8 * mid / f),
        _panel("astronaut", near, (-1.7, 0.3, -0.5, 1.6), 0.8 * near / f),
        _panel("immunohistochemistry", near, (0.6, -1.7, 1.5, -0.6), 0.8 * near / f),
    )


def plane_homography(K: np.ndarray, w2c: np.ndarray, layer: Layer, ss: int) -> np.ndarray:
    """Texel indices of ``layer`` to pixel indices (centres at integers) of the ``ss`` times
    supersampled view of camera ``w2c``. [3, 3]"""
    R, t = w2c[:3, :3], w2c[:3, 3]
    A = np.stack([layer.texel * R[:, 0], layer.texel * R[:, 1],
                  layer.x0 * R[:, 0] + layer.y0 * R[:, 1] + layer.depth * R[:, 2] + t], axis=1)
    S = np.diag([ss, ss, 1.0])
    shift = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    return shift @ S @ K @ A


def render(layers: tuple[Layer, ...], K: np.ndarray, w2c: np.ndarray, size: int,
           ss: int = 2) -> np.ndarray:
    """The layers seen by camera ``w2c``, composited back to front. [size, size, 3] uint8"""
    big = size * ss
    out = np.full((big, big, 3), 0.5, np.float32)
    for layer in layers:
        H = plane_homography(K, w2c, layer, ss)
        if np.linalg.det(H) == 0:
            continue
        warped = cv2.warpPerspective(layer.rgba, H, (big, big), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        a = warped[..., 3:4]
        out = warped[..., :3] * a + out * (1.0 - a)
    small = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(small * 255.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# The dancer, a blank frame, noise
# ---------------------------------------------------------------------------------------------


def dancer(frames: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured figure (head, torso, swinging arms and legs) walking across the frames
    while it dances, drawn over them; returns the frames and its masks. [T, H, W, 3], [T, H, W]"""
    T, H, W = frames.shape[:3]
    skin = cv2.resize(_photo("coffee")[::-1], (W, H)).astype(np.float32) / 255.0
    cloth = cv2.resize(_photo("chelsea"), (W, H)).astype(np.float32) / 255.0
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, 4)
    out, masks = frames.copy(), np.zeros((T, H, W), bool)
    s = H / 384.0
    for t in range(T):
        cx = W * (0.35 + 0.25 * t / max(T - 1, 1))
        cy = H * 0.45 + 6 * s * np.sin(0.9 * t)
        body = np.zeros((H, W), np.uint8)
        head = np.zeros((H, W), np.uint8)
        cv2.ellipse(body, (int(cx), int(cy)), (int(22 * s), int(55 * s)), 0, 0, 360, 255, -1)
        cv2.circle(head, (int(cx), int(cy - 75 * s)), int(18 * s), 255, -1)
        for k, (side, y, length) in enumerate(((-1, -40, 60), (1, -40, 60), (-1, 50, 80),
                                               (1, 50, 80))):
            angle = 0.6 * np.sin(0.5 * t + phase[k]) + (0.4 if y < 0 else 0.15) * side
            start = (int(cx + side * 15 * s), int(cy + y * s))
            end = (int(start[0] + side * length * s * np.sin(abs(angle)) * np.sign(angle)
                       * side), int(start[1] + length * s * np.cos(angle)))
            cv2.line(body, start, end, 255, max(1, int(14 * s)), cv2.LINE_AA)
        a_body = (body.astype(np.float32) / 255.0)[..., None]
        a_head = (head.astype(np.float32) / 255.0)[..., None]
        roll = int(7 * t)
        f = out[t].astype(np.float32) / 255.0
        f = np.roll(cloth, roll, axis=1) * a_body + f * (1 - a_body)
        f = np.roll(skin, -roll, axis=0) * a_head + f * (1 - a_head)
        out[t] = np.clip(np.rint(f * 255), 0, 255).astype(np.uint8)
        masks[t] = (body > 0) | (head > 0)
    return out, masks


def noise(n: int, size: int, sigma: float = 3.0, seed: int = 0) -> np.ndarray:
    """Flat grey frames with independent sensor noise. [n, size, size, 3] uint8"""
    rng = np.random.default_rng(seed)
    grey = 128.0 + rng.normal(0.0, sigma, (n, size, size, 1))
    return np.clip(np.rint(np.repeat(grey, 3, axis=3)), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# The suite
# ---------------------------------------------------------------------------------------------

#: name -> (path, moving); the paths of the suite, each FRAMES long.
PATHS = {
    "pan": (lambda n: rotating(n, 12.0), False),
    "yaw_pitch_roll": (lambda n: rotating(n, 10.0, -5.0, 4.0), False),
    "sideways_0.5": (lambda n: sideways(n, 0.5), True),
    "sideways_1.0": (lambda n: sideways(n, 1.0), True),
    "sideways_turning": (lambda n: sideways(n, 0.8, 5.0), True),
    "orbit": (lambda n: orbit(n, 12.0), True),
    "forward": (lambda n: forward(n, 1.0), True),
    "wander": (wander, True),
}

#: the long case: the hand-held walk with the masked dancer, 120 frames.
LONG = ("wander", "dancer", 120)

#: the suite's cases: (path, variant); variants: "" plain, "dancer" (masked), "dancer_unmasked"
#: (the masks are not given to the tracker), "blank" (a black frame mid-way), "noisy" (sensor
#: noise of 3 grey levels on every frame).
CASES = [(p, "") for p in PATHS] + [
    ("pan", "dancer"), ("pan", "dancer_unmasked"), ("sideways_0.5", "dancer"),
    ("sideways_1.0", "dancer"), ("sideways_1.0", "dancer_unmasked"), ("orbit", "dancer"),
    ("orbit", "dancer_unmasked"), ("pan", "blank"), ("sideways_0.5", "blank"),
    ("yaw_pitch_roll", "noisy"), ("sideways_0.5", "noisy"),
]


def case_name(path: str, variant: str) -> str:
    return f"{path}+{variant}" if variant else path


@functools.lru_cache(maxsize=32)
def video(path: str, variant: str = "", frames: int = FRAMES, size: int = SIZE) -> Video:
    """One case of the suite (see :data:`PATHS` and :data:`CASES`)."""
    make, moving = PATHS[path]
    w2c = make(frames)
    K = intrinsics_from_fov(FOV, size, size)
    layers = world(size, FOV)
    rgb = np.stack([render(layers, K, p, size) for p in w2c])
    masks = np.zeros(rgb.shape[:3], bool)
    if variant.startswith("dancer"):
        rgb, masks = dancer(rgb)
        if variant == "dancer_unmasked":
            masks = np.zeros_like(masks)
    elif variant == "blank":
        rgb[frames // 2] = 0
    elif variant == "noisy":
        grain = np.random.default_rng(1).normal(0.0, 3.0, rgb.shape)
        rgb = np.clip(np.rint(rgb + grain), 0, 255).astype(np.uint8)
    elif variant:
        raise ValueError(f"unknown variant {variant!r}")
    rgb.setflags(write=False)
    masks.setflags(write=False)
    return Video(case_name(path, variant), rgb, masks, w2c, K, moving)


def noise_video(frames: int = FRAMES, size: int = SIZE) -> Video:
    """Noise only, and a still camera."""
    return Video("noise", noise(frames, size), np.zeros((frames, size, size), bool),
                 np.repeat(np.eye(4)[None], frames, 0), intrinsics_from_fov(FOV, size, size),
                 False)


def write(out: Path) -> list[Path]:
    """Every case (and the noise video) as ``out/NAME/{video,masks}.mp4`` and its true
    ``camera.json``; the folders written."""
    from dreamdance.camera import Trajectory
    from dreamdance.camera.files import write_trajectory
    from dreamdance.media import write_video

    folders = []
    for v in [video(p, variant) for p, variant in CASES] + [noise_video()]:
        folder = out / v.name
        folder.mkdir(parents=True, exist_ok=True)
        write_video(folder / "video.mp4", v.frames, fps=25)
        write_video(folder / "masks.mp4", np.repeat(v.masks[..., None], 3, 3).astype(np.uint8)
                    * 255, fps=25)
        size = v.frames.shape[2], v.frames.shape[1]
        write_trajectory(folder / "camera.json",
                         Trajectory(v.w2c, np.repeat(v.K[None], len(v.w2c), 0), *size),
                         format="json", fps=25)
        folders.append(folder)
    return folders


def main(argv: list[str] | None = None) -> None:
    from tools.cli import key_values, tool_main

    def run(args: list[str]) -> list[Path]:
        values, _ = key_values(args, ["out"], tool="tools.camera_suite")
        return write(Path(values.get("out") or "runs/camera_suite"))

    tool_main(__doc__, run, argv, report=lambda folders: print("\n".join(map(str, folders))))


if __name__ == "__main__":
    main()
