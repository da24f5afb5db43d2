"""The built wheel carries the configs and the sample, and runs outside the source tree."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path):
    src = tmp_path / "src"  # a copy, so no stale build/ folder leaks into the wheel
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "runs", "*.egg-info", "__pycache__", ".*cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("dreamdance-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("dreamdance/conf/config.yaml", "dreamdance/conf/stage/motion.yaml",
                   "dreamdance/assets/art.png", "dreamdance/assets/dance.json",
                   "dreamdance/run.py", "stages/motion.py", "dreamdance/scene/warp.py"):
        assert needed in names, needed
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", "import dreamdance, sys; print(dreamdance.__file__); "
         "sys.argv = ['dreamdance', 'frames=5', 'resolution=64', 'out=" + str(out) + "']; "
         "from dreamdance.run import main; main()"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(str(site))  # not the source tree
    assert (out / "motion/camera.json").is_file()
