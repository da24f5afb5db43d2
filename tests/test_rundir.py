"""Atomic writes and the run directory's skip/resume behaviour."""

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dreamdance.io import atomic_path, read_json, remove_stale_temporaries, write_array, write_json
from dreamdance.rundir import MANIFEST, RunDir, deps_digest


def test_atomic_write_lands_complete(tmp_path):
    target = tmp_path / "a" / "x.npy"
    write_array(target, np.arange(5))
    np.testing.assert_array_equal(np.load(target), np.arange(5))
    assert [p.name for p in target.parent.iterdir()] == ["x.npy"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_atomic_write_failure_leaves_nothing(tmp_path, exc):
    target = tmp_path / "x.json"
    with pytest.raises(exc):
        with atomic_path(target) as tmp:
            tmp.write_text("{half")
            raise exc()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_failure_keeps_previous_version(tmp_path):
    target = tmp_path / "x.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{half")
            raise RuntimeError
    assert read_json(target) == {"v": 1}


def test_killed_writer_leaves_no_final_file(tmp_path):
    """SIGKILL mid-write: only a hidden temporary remains, which the next RunDir removes."""
    script = textwrap.dedent(f"""
        import time
        from dreamdance.io import atomic_path
        with atomic_path({str(tmp_path / "big.bin")!r}) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"x" * 1000)
                f.flush()
                print("writing", flush=True)
                time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "big.bin").exists()
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".big.tmp-")
    RunDir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", ".lock.json"]  # the lock


def test_remove_stale_temporaries_keeps_real_files(tmp_path):
    (tmp_path / "keep.json").write_text("{}")
    (tmp_path / ".keep.tmp-1234abcd.json").write_text("{")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".keep.tmp-1234abcd.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]


class Counter:
    def __init__(self, run, rel, text="x"):
        self.run, self.rel, self.text, self.calls = run, rel, text, 0

    def __call__(self):
        self.calls += 1
        write_json(self.run.path(self.rel), {"text": self.text, "call": self.calls})


def test_step_skipped_when_unchanged_and_redone_on_change(tmp_path):
    src = tmp_path / "input.txt"
    src.write_text("one")
    run = RunDir(tmp_path / "run", config={"a": 1})
    work = Counter(run, "s/out.json")
    deps = {"k": 3, "src": src}
    assert run.step("s", ["s/out.json"], deps, work) is True
    assert run.step("s", ["s/out.json"], deps, work) is False
    assert work.calls == 1

    # a new RunDir over the same folder (a re-run) sees the manifest
    run2 = RunDir(tmp_path / "run")
    work2 = Counter(run2, "s/out.json")
    assert run2.step("s", ["s/out.json"], deps, work2) is False
    # changed config value, changed input contents, deleted output: each redoes the step
    assert run2.step("s", ["s/out.json"], {**deps, "k": 4}, work2) is True
    src.write_text("two")
    assert run2.step("s", ["s/out.json"], {**deps, "k": 4}, work2) is True
    run2.path("s/out.json").unlink()
    assert run2.step("s", ["s/out.json"], {**deps, "k": 4}, work2) is True
    assert work2.calls == 3


def test_force_redoes_every_step(tmp_path):
    run = RunDir(tmp_path)
    work = Counter(run, "o.json")
    run.step("s", ["o.json"], {}, work)
    forced = RunDir(tmp_path, force=True)
    work.run = forced
    assert forced.step("s", ["o.json"], {}, work) is True
    assert work.calls == 2


def test_failed_step_is_recorded_and_redone(tmp_path):
    run = RunDir(tmp_path)

    def boom():
        with atomic_path(run.path("o.json")) as tmp:
            tmp.write_text("{")
            raise RuntimeError("crash mid-step")

    with pytest.raises(RuntimeError):
        run.step("s", ["o.json"], {}, boom)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["steps"]["s"]["status"] == "failed"
    assert not run.path("o.json").exists()
    work = Counter(run, "o.json")
    assert RunDir(tmp_path).step("s", ["o.json"], {}, work) is True


def test_step_that_writes_nothing_fails(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(RuntimeError, match="did not write o.json"):
        run.step("s", ["o.json"], {}, lambda: None)


def test_manifest_contents(tmp_path):
    run = RunDir(tmp_path, config={"frames": 9})
    run.step("s", ["o.json"], {"k": 1}, Counter(run, "o.json"))
    m = read_json(tmp_path / MANIFEST)
    assert m["config"] == {"frames": 9}
    assert m["versions"]["numpy"] == np.__version__
    assert m["versions"]["python"]
    rec = m["steps"]["s"]
    assert rec["status"] == "done" and rec["outputs"] == ["o.json"]
    assert rec["deps"] == deps_digest({"k": 1}) and rec["seconds"] >= 0


def test_deps_digest_hashes_file_contents_not_names(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("same")
    b.write_text("same")
    assert deps_digest({"f": a}) == deps_digest({"f": b})
    b.write_text("other")
    assert deps_digest({"f": a}) != deps_digest({"f": b})
    assert deps_digest({"f": Path(a)}) != deps_digest({"f": str(a)})
