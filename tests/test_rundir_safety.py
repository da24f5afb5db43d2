"""The run directory under stress: two runs at once, a power cut after a step, a temporary-file
sweep that stays inside the run."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dreamdance.errors import InputError
from dreamdance.io import write_array
from dreamdance.rundir import RunDir, release_run_dirs


def test_a_second_process_is_refused_and_told_who_holds_the_run(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from dreamdance.rundir import RunDir
        RunDir({str(out)!r})
        print("holding", flush=True)
        sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(InputError) as e:
            RunDir(out)
        message = str(e.value)
        assert message.startswith(f"out={out}: in use by another run (process {holder.pid} on ")
        assert "\n" not in message
    finally:
        holder.communicate("done\n", timeout=30)
    RunDir(out)  # released when the holder ended
    RunDir(out)  # and this process may open it again


def test_the_same_process_shares_its_lock_until_released(tmp_path):
    RunDir(tmp_path / "run")
    RunDir(tmp_path / "run")  # a stage that runs another stage's steps
    release_run_dirs()
    probe = subprocess.run([sys.executable, "-c", f"from dreamdance.rundir import RunDir; "
                            f"RunDir({str(tmp_path / 'run')!r})"], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr


def test_files_and_folders_reach_the_disk_before_the_step_is_done(tmp_path, monkeypatch):
    """Every fsync, in order: the output's data, its folder's entry, then the manifest."""
    calls = []
    real = os.fsync

    def recording(fd):
        calls.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        return real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    run = RunDir(tmp_path / "run")
    calls.clear()
    run.step("a/b", ["a/b.npy"], {"v": 1},
             lambda: write_array(run.path("a/b.npy"), np.zeros(3)))
    names = [p.name for p in calls]
    data = next(i for i, p in enumerate(calls) if p.name.startswith(".b.tmp-"))
    folder = names.index("a")
    done = max(i for i, n in enumerate(names) if n.startswith(".manifest.tmp-"))
    assert data < folder < done, names
    assert "run" in names  # the manifest's own folder entry


def test_the_temporary_sweep_stays_in_the_run_folders(tmp_path):
    out = tmp_path / "run"
    (out / "scene").mkdir(parents=True)
    (out / "elsewhere/deep").mkdir(parents=True)
    stale = [out / ".manifest.tmp-0.json", out / "scene/.x.tmp-1.png"]
    kept = [out / "elsewhere/deep/.y.tmp-2.png", tmp_path / ".z.tmp-3.png"]
    for p in stale + kept:
        p.write_text("")
    run = RunDir(out)
    run.step("scene/x", ["scene/x.png"], {}, lambda: run.path("scene/x.png").write_text(""))
    release_run_dirs()
    stale[1].write_text("")
    RunDir(out)  # the manifest names scene/: swept, the rest of the tree is not walked
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)


CRASH = """
import errno, sys
import stages.motion

def boom(cfg):
    {raise_}

stages.motion.run = boom
sys.argv = ["dreamdance", "stage=motion", "out={out}"]
from dreamdance.run import main
main()
"""


@pytest.mark.parametrize("kind", ["crash", "disk full"])
def test_failures_reach_the_log_and_a_full_disk_is_one_line(tmp_path, kind):
    out = tmp_path / "run"
    raise_ = {"crash": "raise RuntimeError('a bug')",
              "disk full": "raise OSError(errno.ENOSPC, 'No space left on device', "
                           f"{str(out / 'scene/x.png')!r})"}[kind]
    proc = subprocess.run([sys.executable, "-c", CRASH.format(raise_=raise_, out=out)],
                          capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert proc.returncode == 1, proc.stderr
    logs = list((out / "logs").glob("*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "Traceback" in text and "boom" in text
    if kind == "crash":
        assert "RuntimeError: a bug" in proc.stderr and "RuntimeError: a bug" in text
    else:
        assert proc.stderr.strip() == (f"error: no space left on the device (writing "
                                       f"{out / 'scene/x.png'}): free some and run again "
                                       "(finished steps are kept)")


@pytest.mark.parametrize("args", [
    ["stage=motion", "motion.align=bogus"], ["stage=motion", "mask.shape=star"],
    ["stage=scene", "stage.scale=huge"], ["stage=scene", "stage.renderer=vulkan"],
    ["stage=animate", "motion.transition=-2"], ["stage=scene", "scene.removal.window=1.5"],
    ["stage=motion", "one-frame video"], ["stage=motion", "short video"]])
def test_settings_and_inputs_are_checked_before_the_first_step(tmp_path, args):
    """Each of these used to surface only after some steps had written their files."""
    from PIL import Image
    from runner import refused

    out = tmp_path / "run"
    if args[1].endswith("video"):
        frames = tmp_path / "frames"
        frames.mkdir()
        for i in range(1 if args[1] == "one-frame video" else 3):
            Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(frames / f"{i}.png")
        expected = "one frame" if args[1] == "one-frame video" else "fewer than frames=49"
        message = refused(args[0], f"driving={frames}", f"out={out}")
        assert message.startswith(f"driving={frames}:") and expected in message, message
    else:
        key = args[1].split("=")[0]
        assert refused(*args, f"out={out}").startswith(f"{key}=")
    assert not out.exists()
