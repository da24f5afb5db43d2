"""stage=motion from a driving video end to end: poses by the DWPose backend (tiny ONNX models
made in the test), the camera tracked in the video, alignment, pose and mask videos."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from test_camera_track import W, make_scene, orbit_path, render, rotation_errors
from test_dwpose import BOX_A, detector, pose_model

from dreamdance.media import read_video, write_video
from dreamdance.motion.poses import read_poses

ROOT = Path(__file__).resolve().parents[1]


def test_motion_from_a_driving_video(tmp_path):
    true = orbit_path(n=12)
    scene = make_scene()
    write_video(tmp_path / "dance.mp4", np.stack([render(scene, p) for p in true]), fps=8)
    det = detector(tmp_path / "yolox_l.onnx", [BOX_A])
    pose = pose_model(tmp_path / "dw-ll_ucoco_384.onnx")
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "dreamdance.run", "stage=motion", f"out={out}", "frames=12",
         "fps=8", "resolution=128", "fov=60", f"driving={tmp_path / 'dance.mp4'}",
         f"pose.det_model={det}", f"pose.pose_model={pose}"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    poses = read_poses(out / "motion/poses.json")
    assert len(poses) == 12 and poses.num_people == 1 and poses.width == W
    assert (poses.body[:, 0, :, 2] > 0).sum() > 0
    cams = json.loads((out / "motion/camera.json").read_text())["frames"]
    w2c = np.array([f["w2c"] for f in cams])
    assert len(w2c) == 12
    errors = rotation_errors(w2c, true)  # through H.264 at 160x120: 1.6 deg measured at the end
    assert errors.max() < 2.5, errors
    for name in ("pose_body", "pose_face", "pose_hand", "mask"):
        assert len(read_video(out / f"animate/{name}.mp4").frames) == 12


def test_extract_motion_tool_runs_the_motion_stage(tmp_path):
    out = tmp_path / "run"
    ok = subprocess.run([sys.executable, "-m", "tools.extract_motion", f"out={out}", "frames=5",
                         "resolution=96"], capture_output=True, text=True, timeout=120,
                        cwd=ROOT)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert len(read_poses(out / "motion/poses_aligned.json")) == 5
    bad = subprocess.run([sys.executable, "-m", "tools.extract_motion", "stage=scene"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "always runs stage=motion" in bad.stderr


def test_a_video_with_no_person_is_refused(tmp_path):
    write_video(tmp_path / "empty.mp4", np.full((4, 64, 96, 3), 90, np.uint8), fps=8)
    det = detector(tmp_path / "yolox_l.onnx", [])
    pose = pose_model(tmp_path / "dw-ll_ucoco_384.onnx")
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "dreamdance.run", "stage=motion", f"out={out}", "frames=4",
         f"driving={tmp_path / 'empty.mp4'}", "camera=static", f"pose.det_model={det}",
         f"pose.pose_model={pose}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [  # (the progress bar of the extraction shares stderr)
        f"error: driving={tmp_path / 'empty.mp4'}: no person found in the video (check the pose "
        "backend's weights, or give poses=)"]
    assert not (out / "motion/poses.json").exists()
