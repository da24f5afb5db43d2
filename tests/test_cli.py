"""The command line end to end: the sample run, resume, --help/--cfg, and every kind of bad input
(exit code 2, one line naming the input, nothing written under a final name)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dreamdance import assets
from dreamdance.camera import intrinsics_from_fov, preset
from dreamdance.camera.files import write_trajectory
from dreamdance.media import read_video
from dreamdance.motion.align import pose_box, pose_frame
from dreamdance.motion.poses import read_poses

FAST = ["frames=9", "resolution=128"]


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dreamdance.run", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def artifacts(out: Path) -> list[str]:
    """Everything under ``out`` except the logs folder and the run directory's lock."""
    if not out.exists():
        return []
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if p.is_file() and p.relative_to(out).parts[0] != "logs"
                  and p.name not in (".lock", ".lock.json"))


def test_sample_run_then_resume_then_force(tmp_path):
    out = tmp_path / "run"
    first = cli(f"out={out}", *FAST)
    assert first.returncode == 0, first.stderr
    assert artifacts(out) == ["animate/mask.mp4", "animate/pose_body.mp4",
                             "animate/pose_face.mp4", "animate/pose_hand.mp4", "manifest.json",
                             "motion/camera.json", "motion/character_pose.json", "motion/poses.json",
                             "motion/poses_aligned.json", "motion/preview.png"]
    cams = json.loads((out / "motion/camera.json").read_text())
    assert len(cams["frames"]) == 9 and cams["frames"][0]["width"] == 128
    np.testing.assert_allclose(cams["frames"][0]["w2c"], np.eye(4), atol=1e-12)
    poses = json.loads((out / "motion/poses.json").read_text())
    assert len(poses["frames"]) == 9 and poses["fps"] == 8
    # the dance is aligned onto the sample character: same height, feet at the same place
    aligned = read_poses(out / "motion/poses_aligned.json")
    own = read_poses(assets.sample_path(assets.ART_POSE))
    assert (aligned.width, aligned.height) == (128, 128)
    a = np.array(pose_box(pose_frame(aligned, 0)))
    c = np.array(pose_box(pose_frame(own, 0))) * 128 / 512
    np.testing.assert_allclose(a[3] - a[1], c[3] - c[1], rtol=1e-3)   # height
    np.testing.assert_allclose([(a[0] + a[2]) / 2, a[3]], [(c[0] + c[2]) / 2, c[3]], atol=0.05)
    assert len(read_video(out / "animate/mask.mp4").frames) == 9
    stamp = (out / "motion/camera.json").stat().st_mtime_ns

    again = cli(f"out={out}", *FAST)
    assert again.returncode == 0
    assert again.stdout.count("unchanged, skipped") == 6
    assert (out / "motion/camera.json").stat().st_mtime_ns == stamp

    changed = cli(f"out={out}", "frames=9", "resolution=160")  # camera changes, poses do not
    assert "step motion/camera: running" in changed.stdout
    assert "step motion/poses: unchanged, skipped" in changed.stdout
    assert "step motion/preview: running" in changed.stdout  # its input file changed

    forced = cli(f"out={out}", "frames=9", "resolution=160", "force=true")
    assert forced.stdout.count(": running") == 6
    assert list((out / "logs").glob("*-motion.log"))


def test_preset_and_user_files(tmp_path):
    K = intrinsics_from_fov(50, 64, 48)
    write_trajectory(tmp_path / "cam.txt", preset("pan", 20, K, 64, 48, depth=3.0), format="tum")
    result = cli(f"out={tmp_path / 'run'}", f"camera={tmp_path / 'cam.txt'}", *FAST)
    assert result.returncode == 0, result.stderr
    assert "20 cameras resampled to frames=9" in result.stdout
    refused = cli(f"out={tmp_path / 'run2'}", f"camera={tmp_path / 'cam.txt'}",
                  "motion.camera_length=refuse", *FAST)
    assert refused.returncode == 2 and "20 cameras for frames=9" in refused.stderr
    zoom = cli(f"out={tmp_path / 'run3'}", "camera=zoom", *FAST)
    assert zoom.returncode == 0, zoom.stderr
    fx = [f["K"][0][0] for f in json.loads((tmp_path / "run3/motion/camera.json").read_text())
          ["frames"]]
    assert fx[0] < max(fx)


def test_help_and_cfg(tmp_path):
    help_ = cli("--help")
    assert help_.returncode == 0
    for word in ("stage: animate, motion, scene", "name: motion", "image", "camera",
                 "Usage: python -m dreamdance.run"):
        assert word in help_.stdout
    cfg = cli("frames=7", "--cfg", "job")
    assert cfg.returncode == 0 and "frames: 7" in cfg.stdout


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    (tmp / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    (tmp / "empty.mp4").write_bytes(b"")
    (tmp / "text.mp4").write_text("this is not a video\n" * 10)
    (tmp / "nan.txt").write_text("0 0 0 0 0 0 0 1\n1 nan 0 0 0 0 0 1\n")
    (tmp / "inf.txt").write_text("0 0 0 0 0 0 0 1\n1 inf 0 0 0 0 0 1\n")
    (tmp / "cols.txt").write_text("0 0 0 0 0 0 0 1\n1 0 0 0 0 0 1\n")
    w2c = np.eye(4)
    w2c[0, 0] = 2.0
    (tmp / "rot.json").write_text(json.dumps({"format": "dreamdance-camera", "version": 1,
        "frames": [{"w2c": w2c.tolist(), "K": np.eye(3).tolist(), "width": 8, "height": 8}]}))
    return {
        "missing image": ([f"image={tmp / 'nope.png'}"], "file not found"),
        "corrupt image": ([f"image={tmp / 'corrupt.png'}"], "not a readable image"),
        "zero-byte video": ([f"driving={tmp / 'empty.mp4'}"], "empty file"),
        "undecodable video": ([f"driving={tmp / 'text.mp4'}"], "no decodable video frames"),
        "NaN trajectory": ([f"camera={tmp / 'nan.txt'}"], "line 2"),
        "inf trajectory": ([f"camera={tmp / 'inf.txt'}"], "line 2"),
        "wrong columns": ([f"camera={tmp / 'cols.txt'}"], "7"),
        "non-rotation": ([f"camera={tmp / 'rot.json'}"], "not a rotation matrix"),
        "unknown preset": (["camera=spinny"], "not a preset"),
        "unknown key": (["colour=red"], "unknown config key"),
        "unknown stage": (["stage=dance"], "unknown option"),
        "bad frames": (["frames=0"], "positive integer"),
    }




@pytest.mark.parametrize("case", [
    "missing image", "corrupt image", "zero-byte video", "undecodable video", "NaN trajectory",
    "inf trajectory", "wrong columns", "non-rotation", "unknown preset", "unknown key",
    "unknown stage", "bad frames",
])
def test_bad_input_exits_2_with_one_line(tmp_path, case):
    args, expected = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    result = cli(f"out={out}", *FAST, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert args[0].split("=")[0] in lines[0]  # names the input
    assert artifacts(out) == []
    assert not list(out.rglob(".*tmp-*"))


def test_driving_video_needs_the_pose_backend_weights(tmp_path):
    from dreamdance.media import write_video

    write_video(tmp_path / "dance.mp4", np.zeros((3, 32, 32, 3), np.uint8), fps=8)
    result = cli(f"out={tmp_path / 'out'}", f"driving={tmp_path / 'dance.mp4'}", *FAST,
                 "motion.too_short=hold")
    assert result.returncode == 2
    assert "pose.det_model: not set" in result.stderr
    assert artifacts(tmp_path / "out") == []
