"""A small 3D world of known shape, for measuring the scene stage's depth priors.

A textured ground plane (grass), a far backdrop (a sky painted on a wall at ``FAR`` metres, where
the ground ends) and three upright photo cards standing on the ground at 3, 4.6 and 6.2 metres
(one lower than the camera, two taller, two turned), from scikit-image's bundled photos. The
world's frame is level: x right, y down (gravity), z forward; the ground is ``y = 0``.

The reference camera stands ``HEIGHT`` above the foot of the world, level, pitched down so that
the horizon is at ``HORIZON`` of the image height and the bottom edge of its view meets the
ground at a z-depth of ``NEAR`` — the defaults of ``depth=ramp`` (``near=2, far=8,
horizon=0.45``), so that prior is exact on the ground and wrong only on what stands on it. The
field of view is the run config's default ``fov`` (55 degrees).

Any camera (``K [3, 3]``, world-to-camera ``[4, 4]``) sees each plane through one homography;
the planes are drawn back to front, 3x supersampled and area-averaged, and the z-depth of each
pixel is the plane's, exactly, at the pixel's centre (the middle sub-sample).

``orbit`` is the scene stage's ``camera=orbit`` preset (:func:`dreamdance.camera.preset`) around
the look-at point at the reference view's median depth (as ``stage.scale=auto`` places it),
in the reference camera's frame, so a field built from :func:`reference` and rendered along
that trajectory can be compared frame by frame with the true views.

``python -m tools.scene_world out=DIR [size=512] [frames=9] [report=false]`` writes
``reference.png``, ``depth.npy`` (the true z-depth), ``K.npy``, ``orbit_XX.png``,
``orbit_depth.npy`` and ``orbit.json``; with ``report=true`` it also prints the depth priors'
AbsRel (:func:`depth_report`) and the orbit PSNR of fields built with each prior
(:func:`orbit_report`, with Telea and the exemplar fill; seconds per setup on two CPU cores).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dreamdance.camera import Trajectory, intrinsics_from_fov, look_at, preset
from dreamdance.eval.depth import depth_errors
from tools.camera_suite import _panel, _photo

SIZE = 512
FOV = 55.0       # conf/config.yaml's fov
HORIZON = 0.45   # the horizon's row, fraction of the height (depth=ramp's default)
NEAR = 2.0       # z-depth where the bottom edge of the reference view meets the ground
FAR = 8.0        # the backdrop's distance: the ground ends there
PRIORS = ("plane", "ramp", "popup")

# the reference camera: pitched so the horizon is at HORIZON (square image, fov along x)
PITCH = float(np.arctan((0.5 - HORIZON) * 2.0 * np.tan(np.deg2rad(FOV) / 2)))
_HALF = np.deg2rad(FOV) / 2  # the bottom edge's ray is this far below the optical axis
HEIGHT = float(NEAR * np.sin(PITCH + _HALF) / np.cos(_HALF))  # camera above the ground, metres


@dataclass(frozen=True, eq=False)
class Plane:
    """A textured rectangle: texel ``(u, v)`` (centres at integers) lies at
    ``origin + u * axis_u + v * axis_v`` in the world.

    Attributes:
        name: what it is.
        rgba: the texture, alpha last, float32 in [0, 1]. [h, w, 4]
        origin: the world point of texel (0, 0). [3]
        axis_u: one texel to the right. [3]
        axis_v: one texel down the texture. [3]
    """

    name: str
    rgba: np.ndarray
    origin: np.ndarray
    axis_u: np.ndarray
    axis_v: np.ndarray

    @property
    def normal(self) -> np.ndarray:
        """The unit normal (world). [3]"""
        n = np.cross(self.axis_u, self.axis_v)
        return n / np.linalg.norm(n)

    def corner(self, u: float, v: float) -> np.ndarray:
        """The world point of texture coordinates ``(u, v)`` in [0, 1] (0: first texel's
        centre, 1: last one's). [3]"""
        h, w = self.rgba.shape[:2]
        return self.origin + u * (w - 1) * self.axis_u + v * (h - 1) * self.axis_v


@dataclass(frozen=True)
class Card:
    """An upright card standing on the ground: its bottom edge's centre at ``(x, 0, z)``,
    turned by ``yaw`` degrees about the vertical (its right side away from the camera for
    ``yaw > 0``)."""

    photo: str
    x: float
    z: float
    width: float
    height: float
    yaw: float = 0.0


CARDS = (
    Card("chelsea", -0.85, 3.0, 1.2, 0.9),            # lower than the camera: below the horizon
    Card("astronaut", 0.45, 4.6, 1.1, 1.9, -15.0),
    Card("brick", 2.2, 6.2, 2.2, 2.2, 25.0),
)


def _fit_photo(name: str, w: int, h: int) -> np.ndarray:
    """A photo cropped to the aspect ``w : h`` about its centre and resized. [h, w, 3] float32"""
    img = _photo(name)[..., :3].astype(np.float32) / 255.0
    ih, iw = img.shape[:2]
    if iw * h > ih * w:
        cw = max(1, round(ih * w / h))
        img = img[:, (iw - cw) // 2:(iw - cw) // 2 + cw]
    else:
        ch = max(1, round(iw * h / w))
        img = img[(ih - ch) // 2:(ih - ch) // 2 + ch]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def _rgba(rgb: np.ndarray) -> np.ndarray:
    return np.concatenate([rgb, np.ones((*rgb.shape[:2], 1), np.float32)], 2).astype(np.float32)


def _sky(w: int, h: int, seed: int = 0) -> np.ndarray:
    """Blue at the top paling towards the bottom, with faint soft clouds. [h, w, 3] float32"""
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top, low = np.array([0.30, 0.52, 0.86], np.float32), np.array([0.78, 0.86, 0.95], np.float32)
    rgb = top + (low - top) * t ** 1.5
    noise = np.random.default_rng(seed).normal(0.0, 1.0, (h, w)).astype(np.float32)
    clouds = cv2.GaussianBlur(noise, (0, 0), 6.0)
    clouds = np.clip(clouds / (clouds.std() + 1e-6) - 0.8, 0.0, None) * 0.12
    return np.clip(rgb + clouds[..., None], 0.0, 1.0)


@functools.lru_cache(maxsize=1)
def world() -> tuple[Plane, ...]:
    """The planes: backdrop, ground, then the cards (each drawn in a camera's back-to-front
    order by :func:`render`)."""
    sky_texel, ground_texel = 0.05, 0.01
    sw, sh = round(32.0 / sky_texel), round(12.0 / sky_texel)
    sky = Plane("sky", _rgba(_sky(sw, sh)), np.array([-16.0, -12.0 + sky_texel / 2, FAR]),
                np.array([sky_texel, 0.0, 0.0]), np.array([0.0, sky_texel, 0.0]))
    x0, x1, z0 = -12.0, 12.0, 0.0
    grass = _panel("grass", 0.0, (x0, z0, x1, FAR), ground_texel).rgba.copy()
    grass[..., :3] = grass[..., :3] ** 0.8 * np.array([0.55, 0.75, 0.30], np.float32) + \
        np.array([0.05, 0.06, 0.02], np.float32)
    grass[..., 3] = 1.0
    ground = Plane("ground", grass, np.array([x0, 0.0, z0]), np.array([ground_texel, 0.0, 0.0]),
                   np.array([0.0, 0.0, ground_texel]))
    planes = [sky, ground]
    for card in CARDS:
        texel = 0.004
        w, h = round(card.width / texel), round(card.height / texel)
        a = np.deg2rad(card.yaw)
        right = np.array([np.cos(a), 0.0, np.sin(a)])
        top_left = np.array([card.x, -card.height, card.z]) - right * card.width / 2
        origin = top_left + (right + np.array([0.0, 1.0, 0.0])) * texel / 2
        planes.append(Plane(card.photo, _rgba(_fit_photo(card.photo, w, h)), origin,
                            right * texel, np.array([0.0, texel, 0.0])))
    return tuple(planes)


def reference_camera(size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``(K [3, 3], w2c [4, 4])`` of the reference camera for a ``size`` x ``size`` image."""
    eye = np.array([0.0, -HEIGHT, 0.0])
    return intrinsics_from_fov(FOV, size, size), look_at(
        eye, eye + np.array([0.0, np.sin(PITCH), np.cos(PITCH)]))


def homography(K: np.ndarray, w2c: np.ndarray, plane: Plane, ss: int = 1) -> np.ndarray:
    """Texel indices of ``plane`` to pixel indices (centres at integers) of the ``ss`` times
    supersampled view of camera ``(K, w2c)``. [3, 3]"""
    R, t = w2c[:3, :3], w2c[:3, 3]
    A = np.stack([R @ plane.axis_u, R @ plane.axis_v, R @ plane.origin + t], axis=1)
    S = np.diag([ss, ss, 1.0])
    shift = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    return shift @ S @ K @ A


def plane_depth(K: np.ndarray, w2c: np.ndarray, plane: Plane, width: int, height: int
                ) -> np.ndarray:
    """The z-depth at each pixel centre of the (infinite) plane, ``<= 0`` where the ray misses
    it (parallel, or behind the camera). [height, width]"""
    R, t = w2c[:3, :3], w2c[:3, 3]
    n = R @ plane.normal
    c = float(n @ (R @ plane.origin + t))  # plane: n . X = c (camera frame)
    # X = z K^-1 [u, v, 1]: 1 / z = n . K^-1 [u, v, 1] / c, affine in the pixel (u, v)
    a, b, d = (np.linalg.inv(K).T @ n) / c if abs(c) > 1e-12 else (0.0, 0.0, 0.0)
    u = (np.arange(width, dtype=np.float64) + 0.5) * a
    v = (np.arange(height, dtype=np.float64) + 0.5) * b + d
    inverse = (v[:, None] + u[None, :]).astype(np.float32)  # [height, width]
    with np.errstate(divide="ignore"):
        return np.where(inverse > 0, 1.0 / inverse, -1.0).astype(np.float32)


def render(K: np.ndarray, w2c: np.ndarray, size: int, planes: tuple[Plane, ...] | None = None,
           ss: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The world seen by camera ``(K, w2c)`` (square ``size`` image).

    Args:
        K: intrinsics of the ``size`` x ``size`` image. [3, 3]
        w2c: world-to-camera pose. [4, 4]
        size: image side in pixels.
        planes: what to draw (default: :func:`world`).
        ss: supersampling factor, odd (the middle sub-sample is the pixel centre).

    Returns:
        ``rgb [size, size, 3]`` float32 in [0, 1], ``depth [size, size]`` float32 z-depth (0
        where nothing is), ``covered [size, size]`` bool (something drawn at the centre).
    """
    assert ss % 2 == 1, ss
    planes = world() if planes is None else planes
    K, w2c = np.asarray(K, np.float64), np.asarray(w2c, np.float64)
    big = size * ss
    Kb = np.diag([ss, ss, 1.0]) @ K
    R, t = w2c[:3, :3], w2c[:3, 3]

    def distance(p: Plane) -> float:  # of its centre from the camera, for back-to-front
        return float(np.linalg.norm(R @ p.corner(0.5, 0.5) + t))

    order = [planes[0], planes[1], *sorted(planes[2:], key=distance, reverse=True)] \
        if planes[0].name == "sky" else sorted(planes, key=distance, reverse=True)
    rgb = np.zeros((big, big, 3), np.float32)
    depth = np.zeros((big, big), np.float32)
    for p in order:
        z = plane_depth(Kb, w2c, p, big, big)  # [big, big]
        H = homography(K, w2c, p, ss)
        warped = cv2.warpPerspective(p.rgba, H, (big, big), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        a = warped[..., 3] * (z > 0)  # the homography also maps rays that miss the plane
        rgb += a[..., None] * (warped[..., :3] - rgb)
        np.copyto(depth, z, where=a >= 0.5)
    small = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    mid = ss // 2
    d = depth[mid::ss, mid::ss]
    return np.clip(small, 0.0, 1.0), d, d > 0


def reference(size: int = SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference view: ``(rgb [H, W, 3] float32, depth [H, W] float32, K [3, 3])``."""
    return tuple(x.copy() for x in _reference(size))


@functools.lru_cache(maxsize=4)
def _reference(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    K, w2c = reference_camera(size)
    rgb, depth, _ = render(K, w2c, size)
    return rgb, depth, K


def orbit_trajectory(frames: int, size: int, amplitude: float = 1.0) -> Trajectory:
    """``camera=orbit`` in the reference camera's frame, around the reference view's median
    true depth (first pose: the identity)."""
    _, depth, K = reference(size)
    return preset("orbit", frames, K, size, size, float(np.median(depth[depth > 0])), amplitude)


def orbit(frames: int = 9, size: int = SIZE, amplitude: float = 1.0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Trajectory]:
    """The true views along :func:`orbit_trajectory`.

    Returns:
        ``rgb [T, H, W, 3]`` float32, ``depth [T, H, W]`` float32, ``covered [T, H, W]`` bool,
        and the trajectory (reference camera's frame).
    """
    traj = orbit_trajectory(frames, size, amplitude)
    _, ref_w2c = reference_camera(size)
    views = [render(traj.K[i], traj.w2c[i] @ ref_w2c, size) for i in range(frames)]
    return (np.stack([v[0] for v in views]), np.stack([v[1] for v in views]),
            np.stack([v[2] for v in views]), traj)


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


def prior(name: str):
    """The scene stage's depth prior ``depth=NAME`` with its settings."""
    from dreamdance.inputs import build
    from tools.cli import compose_config

    return build(compose_config(["stage=scene", f"depth={name}"]).depth)


def depth_report(priors: tuple[str, ...] = PRIORS, size: int = SIZE) -> dict[str, dict]:
    """AbsRel (raw and median-aligned) and the time of each prior on the reference view.

    Returns:
        ``{prior: {"abs_rel", "abs_rel_aligned", "scale", "seconds"}}``.
    """
    rgb, true, _ = reference(size)
    out = {}
    for name in priors:
        model = prior(name)
        start = time.perf_counter()
        pred = model(rgb).depth
        seconds = time.perf_counter() - start
        e = depth_errors(pred, true)
        out[name] = {"abs_rel": e.abs_rel, "abs_rel_aligned": e.abs_rel_aligned,
                     "scale": e.scale, "seconds": seconds}
    return out


ORBIT_SETUPS = ("ramp+opencv", "popup+opencv", "popup+exemplar")  # the old and new defaults


def orbit_report(setups: tuple[str, ...] = ORBIT_SETUPS, frames: int = 9,
                 build_size: int = 128, render_size: int = 256, spiral_views: int = 2,
                 custom_views: int = 2, steps: int = 10, seed: int = 0) -> dict[str, dict]:
    """The orbit PSNR of a field built from the reference view with each depth prior and
    inpainter (``"PRIOR+INPAINTER"``: the scene stage's ``depth=`` and ``inpainter=``).

    For each setup: the prior's depth of the reference view (median-aligned to the true depth,
    as a monocular depth's scale is unknown), the reference field grown along the scene stage's
    spiral and then along the orbit (the inpainter filling each view's holes, the prior's depth
    for each inpainted view, ``steps`` optimisation steps per view), rendered along the orbit at
    ``render_size`` and compared with the true views (PSNR over the pixels the true view
    covers).

    Returns:
        ``{setup: {"psnr": [T], "mean", "min", "moved", "uncovered": [T], "seconds"}}``:
        per-frame PSNR (dB), its mean and minimum, its mean over the frames away from the
        reference pose (the orbit returns there at its middle and end), the fraction of each
        rendered frame with alpha < 0.5, and the time taken.
    """
    import torch

    from dreamdance.camera import rescale_intrinsics, scale_intrinsics
    from dreamdance.eval.frames import psnr
    from dreamdance.inputs import build
    from dreamdance.scene import world
    from tools.cli import compose_config

    rgb, true, K = reference(render_size)
    truth, _, covered, traj = orbit(frames, render_size)
    s = build_size / render_size
    plate = cv2.resize(rgb, (build_size, build_size), interpolation=cv2.INTER_AREA)
    true_b = cv2.resize(true, (build_size, build_size), interpolation=cv2.INTER_NEAREST)
    K_b = scale_intrinsics(K, s, s)
    cfg = world.build_config({"reference_steps": 2 * steps, "view_steps": steps}, seed=seed)
    spiral_cfg = {"candidates": 12, "r": None, "s": None}
    moved = np.abs(traj.w2c - np.eye(4)).max(axis=(1, 2)) > 1e-9  # not at the reference [T]
    ref = torch.from_numpy(truth).permute(0, 3, 1, 2).float()  # [T, 3, H, W]
    mask = torch.from_numpy(covered)[:, None].float()  # [T, 1, H, W]
    out = {}
    for setup in setups:
        name, _, fill = setup.partition("+")
        torch.manual_seed(seed)
        model = prior(name)
        inpainter = build(compose_config(["stage=scene", f"inpainter={fill or 'opencv'}",
                                          f"seed={seed}"]).inpainter)
        start = time.perf_counter()
        pred = cv2.resize(model(rgb).depth, (build_size, build_size),
                          interpolation=cv2.INTER_NEAREST)
        depth_b = pred * depth_errors(pred, true_b).scale
        cams = world.spiral_cameras(depth_b, K_b, build_size, build_size, spiral_cfg)
        g, _ = world.build_spiral(plate, depth_b, K_b, cams, spiral_views, inpainter, model,
                                  None, cfg)
        g = world.build_custom(g, rescale_intrinsics(traj, build_size, build_size),
                               custom_views, inpainter, model, None, cfg,
                               reference=world.reference_view(plate, depth_b, K_b))
        video, _, uncovered = world.render_video(g, traj)
        pred_v = torch.from_numpy(video.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
        values = psnr(pred_v, ref, mask).tolist()
        out[setup] = {"psnr": values, "mean": float(np.mean(values)),
                     "min": float(np.min(values)),
                     "moved": float(np.mean([v for v, m in zip(values, moved, strict=True)
                                             if m])) if moved.any() else float("nan"),
                     "uncovered": uncovered, "seconds": time.perf_counter() - start}
    return out


def print_reports(depth: dict[str, dict] | None, orbits: dict[str, dict] | None) -> None:
    if depth:
        print("depth prior  AbsRel  AbsRel(median-aligned)  seconds")
        for name, r in depth.items():
            print(f"{name:<11} {r['abs_rel']:7.3f} {r['abs_rel_aligned']:10.3f} "
                  f"{r['seconds']:17.3f}")
    if orbits:
        print("orbit PSNR (dB)   mean    min  moved   per frame")
        for name, r in orbits.items():
            frames = " ".join(f"{v:.1f}" for v in r["psnr"])
            print(f"{name:<15} {r['mean']:6.2f} {r['min']:6.2f} {r['moved']:6.2f}   {frames}")


def write(out: Path, size: int = SIZE, frames: int = 9) -> list[Path]:
    """The reference view and the orbit's true views into ``out``; the files written."""
    from dreamdance.io import write_array, write_json
    from dreamdance.media import save_image

    out.mkdir(parents=True, exist_ok=True)
    rgb, depth, K = reference(size)
    views, depths, _, traj = orbit(frames, size)
    files = [out / "reference.png", out / "depth.npy", out / "K.npy"]
    save_image(files[0], rgb)
    write_array(files[1], depth)
    write_array(files[2], K)
    for i, v in enumerate(views):
        files.append(out / f"orbit_{i:02d}.png")
        save_image(files[-1], v)
    files.append(out / "orbit_depth.npy")
    write_array(files[-1], depths)
    files.append(out / "orbit.json")
    write_json(files[-1], {"w2c": traj.w2c, "K": traj.K, "width": size, "height": size,
                           "frame": "reference camera"})
    return files


def main(argv: list[str] | None = None) -> None:
    from dreamdance.errors import InputError
    from tools.cli import key_values, tool_main

    def run(args: list[str]):
        values, _ = key_values(args, ["out", "size", "frames", "report"],
                               tool="tools.scene_world")
        ints = {}
        for key, default in (("size", SIZE), ("frames", 9)):
            try:
                ints[key] = int(values.get(key) or default)
            except ValueError:
                raise InputError(f"{key}={values[key]}", "must be an integer") from None
            if ints[key] < (16 if key == "size" else 2):
                raise InputError(f"{key}={values[key]}", "too small")
        report = (values.get("report") or "false").lower()
        if report not in ("true", "false"):
            raise InputError(f"report={values['report']}", "must be true or false")
        files = write(Path(values.get("out") or "runs/scene_world"), ints["size"],
                      ints["frames"])
        reports = (depth_report(size=ints["size"]), orbit_report(frames=ints["frames"])) \
            if report == "true" else (None, None)
        return files, reports

    def show(result) -> None:
        files, reports = result
        print("\n".join(map(str, files)))
        print_reports(*reports)

    tool_main(__doc__, run, argv, report=show)


if __name__ == "__main__":
    main()
