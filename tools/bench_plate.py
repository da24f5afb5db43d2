"""How well the CPU inpainters fill a character-sized hole, against the true pixels behind it.

    python -m tools.bench_plate [inpainters=opencv,exemplar] [size=512] [repeats=1] [json=OUT]

Cases with known truth:

- ``sample``: the bundled sample's landscape as ``tools.make_sample`` draws it before the figure
  is put on it (the true plate), with the figure's mask grown as the scene stage grows it
  (``stage.plate_dilate``);
- ``astronaut``, ``coffee``, ``chelsea``, ``rocket``: photos from scikit-image's data, resized
  to ``size x size``, with the same character-shaped hole.

For each inpainter (``inpainter=NAME``, composed and built as the scene stage builds it) and
case: the PSNR inside the hole, and the ratio of the mean gradient magnitude inside the hole,
filled over true (about 1 for texture like the true one; a smooth fill scores well under 1).
``inpainters=`` names CPU ones of ``conf/inpainter/``. The seconds per fill are the median of
``repeats``. ``json=``: the table is also written there. :func:`suite` gives the rows of
``tools.bench_all``: the new default against Telea (``opencv``) in the same run.
"""

from __future__ import annotations

import functools
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dreamdance.scene.warp import plate_hole
from tools.bench_common import bench_main, make_row

# scikit-image's bundled colour photos; the last four were held out while the exemplar fill's
# settings were chosen on the sample and the first four
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina", "motorcycle")
PLATE_DILATE = 0.02  # as conf/stage/scene.yaml's plate_dilate


@functools.cache
def sample_case() -> tuple[np.ndarray, np.ndarray]:
    """The sample's true plate ``[512, 512, 3]`` float32 in [0, 1] and the hole ``[512, 512]``
    bool the scene stage fills (the figure's mask, grown)."""
    import tools.make_sample as sample

    rng = np.random.default_rng(7)  # make_sample's seed: its first draw is the landscape
    background = sample.draw_background(rng)
    pose, height = sample.character_pose()
    _, mask = sample.draw_character(pose["body"][:, :2], height)
    plate = sample._downsample(background).astype(np.float32) / 255
    hole = plate_hole(sample._downsample(mask).astype(np.float32) / 255, PLATE_DILATE)
    return plate, hole


def cases(size: int = 512) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (true image [size, size, 3] float32, hole [size, size] bool)}``."""
    import skimage.data

    plate, hole = sample_case()
    hole = cv2.resize(hole.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
    out = {"sample": (cv2.resize(plate, (size, size), interpolation=cv2.INTER_AREA), hole)}
    for name in PHOTOS:
        img = (skimage.data.stereo_motorcycle()[0] if name == "motorcycle"
               else getattr(skimage.data, name)())[..., :3]
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        out[name] = (img.astype(np.float32) / 255, hole)
    return out


def plate_errors(filled: np.ndarray, true: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    """PSNR (dB, data range 1) and the filled/true ratio of the mean gradient magnitude (Sobel
    on the grey image) inside ``hole``. Images ``[H, W, 3]`` in [0, 1]."""
    import torch

    from dreamdance.eval.frames import psnr

    def frames(img: np.ndarray) -> torch.Tensor:  # [1, C, H, W]
        return torch.from_numpy(np.ascontiguousarray(img, np.float32)).permute(2, 0, 1)[None]

    value = psnr(frames(filled), frames(true), frames(hole[..., None]))
    return {"psnr": float(value[0]),
            "gradient_ratio": float(_gradient(filled)[hole].mean() / _gradient(true)[hole].mean())}


def _gradient(img: np.ndarray) -> np.ndarray:
    grey = img.astype(np.float32).mean(2)
    return np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))


def inpainter(name: str, seed: int = 0):
    """The scene stage's inpainter ``inpainter=NAME`` with ``seed=SEED``."""
    from dreamdance.inputs import build
    from tools.cli import compose_config

    return build(compose_config(["stage=scene", f"inpainter={name}", f"seed={seed}"]).inpainter)


def run(names: tuple[str, ...] = ("opencv", "exemplar"), size: int = 512, repeats: int = 1
        ) -> dict[str, dict[str, dict[str, float]]]:
    """``{inpainter: {case: {psnr, gradient_ratio, seconds}}}``; a case's image keeps its true
    pixels outside the hole and the figure's grey inside, so nothing of the truth leaks in."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        fill = inpainter(name)
        table[name] = {}
        for case, (true, hole) in cases(size).items():
            given = np.where(hole[..., None], np.float32(0.5), true)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                filled = fill(given, hole)
                times.append(time.perf_counter() - start)
            table[name][case] = {**plate_errors(filled, true, hole),
                                 "seconds": statistics.median(times)}
    return table


def suite(repeats: int = 3, gpu: bool = False, quick: bool = False) -> list[dict]:
    """Rows for ``tools.bench_all``: per case, the default (exemplar) fill's PSNR and gradient
    ratio beside Telea's. ``quick`` works at 128 x 128 once; ``gpu`` changes nothing."""
    size, n = (128, 1) if quick else (512, repeats)
    table = run(("opencv", "exemplar"), size, n)
    rows = []
    for case, ours in table["exemplar"].items():
        telea = table["opencv"][case]
        where = f"{case}, {size}x{size}"
        rows.append(make_row("plate", where, "psnr", "dB", ours["psnr"], telea["psnr"],
                             "opencv (Telea)", repeats=n,
                             notes="PSNR inside the character's hole"))
        rows.append(make_row("plate", where, "gradient ratio", "", ours["gradient_ratio"],
                             target=None if case == "sample" else "0.7-1.3", repeats=n,
                             notes=f"filled/true mean gradient; Telea "
                                   f"{telea['gradient_ratio']:.2f}"))
        rows.append(make_row("plate", where, "time", "s", ours["seconds"], telea["seconds"],
                             "opencv (Telea)", repeats=n))
    return rows


@dataclass
class Options:
    """The command line's keys (see the module's docstring)."""

    inpainters: tuple[str, ...] = ("opencv", "exemplar")
    size: int = 512
    repeats: int = 1
    json: Path | None = None  # also write the table here


def show(table: dict[str, dict[str, dict[str, float]]]) -> None:
    """The table: a line per inpainter and case."""
    print(f"{'inpainter':10s} {'case':10s} {'PSNR dB':>8s} {'grad ratio':>10s} {'s':>6s}")
    for name, rows in table.items():
        for case, r in rows.items():
            print(f"{name:10s} {case:10s} {r['psnr']:8.2f} {r['gradient_ratio']:10.2f} "
                  f"{r['seconds']:6.2f}")


def main(argv: list[str] | None = None) -> dict | None:
    """The command line (see the module's docstring); returns the table."""
    return bench_main(__doc__, Options, lambda o: run(o.inpainters, o.size, o.repeats), show,
                      argv, "tools.bench_plate")


if __name__ == "__main__":
    main()
