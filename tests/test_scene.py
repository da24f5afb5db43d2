"""The scene stage: known geometry is reconstructed, the sample run meets the quality bars,
re-runs are skipped, and bad input is refused."""

import json

import numpy as np
import pytest
import torch
from runner import refused, run

from dreamdance.camera import intrinsics_from_fov
from dreamdance.media import load_image, read_video, resize
from dreamdance.run import run_stage
from dreamdance.scene.gaussians import load_ply
from dreamdance.scene.render import render
from dreamdance.scene.world import build_config, reference_field

SMALL = ["frames=5", "resolution=128", "stage.build_resolution=64",
         "stage.build.reference_steps=40", "stage.build.view_steps=5",
         "stage.spiral.candidates=12", "stage.spiral.views=2", "stage.custom.views=2"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def texture(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w] / 64.0
    return np.stack([0.5 + 0.3 * np.sin(2 * np.pi * x * 1.3), 0.5 + 0.3 * np.cos(2 * np.pi * y),
                     0.5 + 0.2 * np.sin(2 * np.pi * (x + y) * 0.7)], -1).astype(np.float32)


def test_textured_plane_novel_view_matches_the_analytic_render():
    """A fronto-parallel plane at depth d, seen from a camera moved by tx, is its texture
    shifted by fx·tx/d pixels: the fitted field must render exactly that."""
    w = h = 64
    d, tx = 3.0, 0.15
    K = intrinsics_from_fov(50, w, h)
    shift = K[0, 0] * tx / d  # pixels
    wide = texture(h, w + 16)  # the plane's texture beyond the reference view's edge
    ref = wide[:, :w]
    g, _ = reference_field(ref, np.full((h, w), d, np.float32), K,
                           build_config({"reference_steps": 60}))
    assert psnr(render(g, torch.eye(4), torch.tensor(K, dtype=torch.float32), w, h)
                .rgb.numpy(), ref) > 35
    w2c = torch.eye(4)
    w2c[0, 3] = -tx  # camera centre at +tx: the plane slides left in the image
    novel = render(g, w2c, torch.tensor(K, dtype=torch.float32), w, h)
    x = np.arange(w) + shift  # analytic: pixel u sees texture column u + shift
    expected = np.stack([np.stack([np.interp(x, np.arange(w + 16), wide[r, :, c])
                                   for c in range(3)], -1) for r in range(h)])
    inside = slice(2, w - int(np.ceil(shift)) - 2)  # columns the reference view covered
    assert novel.alpha.numpy()[:, inside].min() > 0.95
    assert np.allclose(novel.depth.numpy()[:, inside], d, rtol=3e-3)
    assert psnr(novel.rgb.numpy()[:, inside], expected[:, inside]) > 30


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("scene")
    return out, run("stage=scene", f"out={out}", *SMALL)


def test_sample_scene_outputs_and_quality(sample_run):
    out, _ = sample_run
    s = out / "scene"
    for name in ("character.png", "background.png", "depth.npy", "views/views.json",
                 "gaussians.ply", "background.mp4", "background_depth.npy", "preview.png",
                 "camera.json"):
        assert (s / name).is_file(), name
    cut = load_image(s / "character.png")
    assert cut.alpha is not None and 0.05 < (cut.alpha > 0.5).mean() < 0.5
    depth = np.load(s / "depth.npy")
    assert depth.shape == (128, 128) and (depth > 0).all()
    video = read_video(s / "background.mp4")
    assert video.frames.shape == (5, 128, 128, 3)
    coverage = json.loads((s / "coverage.json").read_text())["uncovered_fraction"]
    assert len(coverage) == 5 and max(coverage) <= 0.01  # no black voids
    assert np.load(s / "background_depth.npy").shape == (5, 128, 128)
    # the reference view reproduces the plate (at the build size, 64 px here)
    ref = json.loads((s / "reference.json").read_text())
    K = np.asarray(ref["K"]) * [[0.5], [0.5], [1]]
    g = load_ply(s / "gaussians.ply")
    rgb = render(g, torch.eye(4), torch.tensor(K, dtype=torch.float32), 64, 64).rgb.numpy()
    plate = resize(load_image(s / "background.png").rgb, (64, 64))
    assert psnr(rgb, plate) >= 30


def test_sample_scene_rerun_skips_every_step(sample_run):
    out, cfg = sample_run
    before = {p: p.stat().st_mtime_ns for p in (out / "scene").rglob("*") if p.is_file()}
    run_stage(cfg)
    after = {p: p.stat().st_mtime_ns for p in (out / "scene").rglob("*") if p.is_file()}
    assert before == after


def test_a_malformed_gaussian_field_is_one_line_on_the_command_line(sample_run, tmp_path):
    """A run directory from elsewhere whose gaussians.ply claims 10^12 vertices: the command
    line's video step, which reads it, ends with exit code 2 and one line naming the file, and
    nothing in the run changes."""
    import shutil
    import subprocess
    import sys

    out, _ = sample_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    ply = copy / "scene/gaussians.ply"
    header = ply.read_bytes().split(b"end_header\n")[0]
    lines = [b"element vertex 1000000000000" if line.startswith(b"element vertex") else line
             for line in header.split(b"\n")]
    ply.write_bytes(b"\n".join(lines) + b"end_header\n" + b"\0" * 64)
    before = {p: p.stat().st_mtime_ns for p in (copy / "scene").rglob("*") if p.is_file()}
    proc = subprocess.run([sys.executable, "-m", "dreamdance.run", "stage=scene", f"out={copy}",
                           *SMALL], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert "gaussians.ply" in lines[0] and "1000000000000 vertices" in lines[0], lines[0]
    after = {p: p.stat().st_mtime_ns for p in (copy / "scene").rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.parametrize("case", ["empty mask", "full mask", "tiny image", "missing weights"])
def test_bad_scene_input(tmp_path, case):
    from PIL import Image

    Image.fromarray(np.zeros((96, 96), np.uint8)).save(tmp_path / "black.png")
    Image.fromarray(np.full((96, 96), 255, np.uint8)).save(tmp_path / "white.png")
    Image.fromarray(np.zeros((40, 90, 3), np.uint8)).save(tmp_path / "tiny.png")
    args, expected = {
        "empty mask": (["segmenter=mask", f"segmenter.path={tmp_path / 'black.png'}"],
                       "no character found"),
        "full mask": (["segmenter=mask", f"segmenter.path={tmp_path / 'white.png'}"],
                      "covers the whole image"),
        "tiny image": ([f"image={tmp_path / 'tiny.png'}"], "too small"),
        "missing weights": (["depth=depthpro"], "weights.depthpro"),
    }[case]
    out = tmp_path / "out"
    assert expected in refused("stage=scene", f"out={out}", *SMALL, *args)
    written = [p.relative_to(out) for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert [p for p in written if p.parts[0] != "logs" and p.name not in
            ("manifest.json", ".lock", ".lock.json")] == []


@pytest.mark.slow
def test_scene_benchmark_runs_and_reports():
    from tools.bench_scene import run

    result = run(repeats=1, overrides=SMALL)
    assert result["walls_s"] == [result["wall_s"]]  # one run: its own median
    assert sum(result["steps_s"].values()) <= result["wall_s"]  # the steps run inside it
    for step, seconds in result["steps_s"].items():
        assert result["step_share"][step] == pytest.approx(seconds / result["wall_s"])
    assert result["peak_rss_mb"] > 100  # the stage's process, PyTorch loaded
    assert set(result["steps_s"]) >= {"scene/spiral", "scene/video"}
    assert abs(sum(result["step_share"].values()) - 1) < 0.5  # steps are most of the run
