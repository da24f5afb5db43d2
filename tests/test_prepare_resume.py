"""tools.prepare_data at scale: a stopped run resumes to the same dataset, byte for byte; shards
run apart and merged, and processes sharing the work, give the dataset of one run; one progress
bar over all videos; bad shard and merge arguments are one line and exit 2."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dreamdance.train import prepare_run, prepare_units
from dreamdance.train.layout import read_metadata
from dreamdance.train.prepare import Source
from tools import prepare_data
from tools.synthetic_videos import add_video

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).parents[1]
CLIP = ["clip_frames=6", "min_frames=5"]


def make_sources(root: Path, grabcut: bool = False) -> list[str]:
    """Six person videos (one too short, one with a pose file of the wrong length) and a scene;
    returns the tool's arguments without ``out=``."""
    videos, scenes = root / "videos", root / "scenes"
    for name, n in (("a", 13), ("b", 6), ("c", 12), ("d", 3), ("f", 11)):
        add_video(videos, name, n)
    add_video(videos, "e", 8, poses="short")
    add_video(scenes, "room", 7, poses=None)
    seg = ["segmenter=grabcut", "segmenter.iterations=2"] if grabcut else ["segmenter=none"]
    return [f"videos={videos}", f"scenes={scenes}", *CLIP, "val=0.3", "seed=2", "pose=none",
            *seg]


def run_tool(*args) -> list[str]:
    return prepare_data.run([str(a) for a in args])


def dataset_bytes(out: Path) -> dict[str, bytes]:
    """``metadata.jsonl`` and every file under ``clips/`` (hidden ones too), by relative path."""
    files = [out / "metadata.jsonl", *(p for p in (out / "clips").rglob("*") if p.is_file())]
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sources and the dataset of one uninterrupted run."""
    root = tmp_path_factory.mktemp("reference")
    args = make_sources(root)
    run_tool(*args, f"out={root / 'data'}")
    data = dataset_bytes(root / "data")
    assert len(read_metadata(root / "data")) == 8  # a 2, b 1, c 2, f 2 (6 + 5 frames), room 1
    return args, data


def assert_same(out: Path, reference: dict[str, bytes]) -> None:
    got = dataset_bytes(out)
    assert sorted(got) == sorted(reference)
    for name, data in reference.items():
        assert got[name] == data, name


# --------------------------------------------------------------------------------------------
# Shares


@pytest.mark.parametrize("text, problem", [
    ("3/2", "shard=3/2: share i is counted from 0: shard=0/2 to shard=1/2"),
    ("2/2", "shard=2/2: share i is counted from 0"),
    ("x", "shard=x: expected i/n"),
    ("1/0", "shard=1/0: n, the number of shares, must be at least 1"),
    ("-1/2", "shard=-1/2: expected i/n"),
    ("1/2/3", "shard=1/2/3: expected i/n"),
])
def test_a_bad_shard_is_one_line_and_exit_2(tmp_path, capsys, text, problem):
    add_video(tmp_path / "videos", "a", 6)
    out = tmp_path / "data"
    with pytest.raises(SystemExit) as e:
        prepare_data.main([f"videos={tmp_path / 'videos'}", f"out={out}", f"shard={text}"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {problem}"), err
    assert not out.exists()


def test_shares_split_the_sorted_list_among_shards_and_processes():
    sources = [Source(Path(f"{i:02d}.mp4"), "person") for i in range(11)]
    got = []
    for i in range(3):
        for p in range(2):
            share = prepare_run.Share(shard=i, shards=3, process=p, processes=2)
            mine = share.mine(sources)
            assert mine == sources[i::3][p::2]
            got += mine
    assert sorted(got, key=lambda s: s.name) == sources  # each exactly once
    assert prepare_run.Share().mine(sources) == sources
    assert prepare_run.Share(process=1, processes=2).label(1) == "process 1/2"
    assert prepare_run.Share(shard=2, shards=3).label(0) == "shard 2/3"


# --------------------------------------------------------------------------------------------
# Resuming


def test_a_run_stopped_halfway_resumes_to_the_same_dataset(reference, tmp_path, monkeypatch):
    """Stopped inside the third video (its first clip written, no record), with a temporary
    file such as a killed writer leaves: the next run gives the same bytes."""
    args, expected = reference
    out = tmp_path / "data"
    real = prepare_run.prepare_video
    calls = []

    def stopped(src, opt, comp):
        calls.append(src.name)
        if len(calls) == 3:
            unit = real(src, opt, comp)  # its clips are written ...
            (opt.out / "clips" / unit.clips[0].name / ".video.tmp-0badf00d.mp4").write_bytes(b"x")
            raise KeyboardInterrupt  # ... but the unit is never recorded
        return real(src, opt, comp)

    monkeypatch.setattr(prepare_run, "prepare_video", stopped)
    with pytest.raises(KeyboardInterrupt):
        run_tool(*args, f"out={out}")
    assert calls == ["a", "b", "c"] and not (out / "metadata.jsonl").exists()
    assert prepare_units.recorded(out) and sorted(prepare_units.recorded(out)) == ["a", "b"]
    monkeypatch.setattr(prepare_run, "prepare_video", real)

    lines = run_tool(*args, f"out={out}")
    assert lines[-1] == "this run: 5 videos prepared, 2 already done, 5 clips written, 2 skipped"
    assert_same(out, expected)


def two_videos(root: Path) -> list[str]:
    for name, n in (("a", 12), ("b", 6)):
        add_video(root / "videos", name, n)
    return [f"videos={root / 'videos'}", *CLIP, "segmenter=none", "val=0"]


def test_a_changed_video_is_done_again_and_its_old_clips_removed(tmp_path):
    args = two_videos(tmp_path)
    out = tmp_path / "data"
    run_tool(*args, f"out={out}")
    assert [r.name for r in read_metadata(out)] == ["a-000", "a-001", "b-000"]
    time.sleep(0.01)  # a new modification time even on coarse clocks
    add_video(tmp_path / "videos", "a", 6)  # now one clip instead of two
    lines = run_tool(*args, f"out={out}")
    assert lines[-1] == "this run: 1 videos prepared, 1 already done, 1 clips written, 0 skipped"
    fresh = tmp_path / "fresh"
    run_tool(*args, f"out={fresh}")
    assert_same(out, dataset_bytes(fresh))
    assert not (out / "clips/a-001").exists()


def test_records_of_a_video_no_longer_there_are_refused(tmp_path):
    args = two_videos(tmp_path)
    out = tmp_path / "data"
    run_tool(*args, f"out={out}")
    (tmp_path / "videos/b.mp4").unlink()
    with pytest.raises(prepare_data.InputError, match=r"holds the clips of 1 source videos .*"
                                                      r"\(first: b\).*force=true"):
        run_tool(*args, f"out={out}")
    run_tool(*args, f"out={out}", "force=true")
    assert [r.name for r in read_metadata(out)] == ["a-000", "a-001"]
    assert prepare_units.recorded(out) == ["a"] and not (out / "clips/b-000").exists()


def test_one_bar_over_all_videos_counts_clips_and_skips(reference, tmp_path, monkeypatch):
    args, _ = reference
    out = tmp_path / "data"
    bars = []

    class Bar:
        def __init__(self, total, initial, **kwargs):
            self.total, self.n, self.postfix = total, initial, {}
            bars.append(self)

        def update(self, n):
            self.n += n

        def set_postfix(self, refresh=True, **values):
            self.postfix = values

        def close(self):
            pass

    monkeypatch.setattr("tqdm.tqdm", Bar)
    real = prepare_run.prepare_video
    monkeypatch.setattr(prepare_run, "prepare_video", lambda src, opt, comp: (
        _stop() if src.name == "d" else real(src, opt, comp)))
    with pytest.raises(KeyboardInterrupt):
        run_tool(*args, f"out={out}")
    monkeypatch.setattr(prepare_run, "prepare_video", real)
    run_tool(*args, f"out={out}")
    first, second = bars
    assert (first.total, first.n, first.postfix) == (7, 3, {"clips": 5, "skipped": 0})
    assert (second.total, second.n) == (7, 7)  # 3 already done at the start, then 4 more
    assert second.postfix == {"clips": 8, "skipped": 2}  # clips and skips of the whole dataset


def _stop():
    raise KeyboardInterrupt


# --------------------------------------------------------------------------------------------
# Shards and merging


def test_shards_run_apart_then_merged_give_the_dataset_of_one_run(reference, tmp_path, capsys,
                                                                  monkeypatch):
    args, expected = reference
    out = tmp_path / "data"
    lines = run_tool(*args, f"out={out}", "shard=1/2")
    assert lines[0] == "shard 1/2: 3 videos prepared, 0 already done, 3 clips written, 1 skipped"
    assert "merge=true out=" in lines[-1]
    assert not (out / "metadata.jsonl").exists()
    with pytest.raises(prepare_data.InputError, match=r"4 of 7 source videos have no record "
                                                      r"yet \(first: a.mp4\)"):
        run_tool("merge=true", f"out={out}")
    with pytest.raises(prepare_data.InputError, match="force=true: not with shard=0/2"):
        run_tool(*args, f"out={out}", "shard=0/2", "force=true")
    with pytest.raises(prepare_data.InputError, match="clip_frames=5: differs"):
        run_tool(*[a for a in args if not a.startswith("clip_frames")], "clip_frames=5",
                 f"out={out}", "shard=0/2")
    run_tool(*args, f"out={out}", "shard=0/2")
    assert not (out / "metadata.jsonl").exists()
    lines = run_tool("merge=true", f"out={out}")
    assert lines[0].startswith("8 clips in metadata.jsonl (")
    assert_same(out, expected)
    capsys.readouterr()
    for bad, named in ((["merge=true", f"out={out}", "clip_frames=6"], "clip_frames: not taken "
                        "with merge=true"), (["merge=maybe", f"out={out}"], "merge=maybe: must be "
                        "true or false"), (["merge=true", f"out={tmp_path / 'none'}"], "folder "
                        "not found"), (["merge=true"], "out=: required")):
        with pytest.raises(SystemExit) as e:
            prepare_data.main(bad)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0], err
    monkeypatch.setenv("WORLD_SIZE", "2")  # under a launcher: one process merges, not each
    with pytest.raises(prepare_data.InputError, match="merge=true: runs as one process"):
        run_tool("merge=true", f"out={out}")


def test_two_processes_share_the_work_and_process_0_merges(reference, tmp_path):
    """The coordination of a launch (shares, waiting for every record, gathering the counts,
    process 0 merging) with two threads standing in for the processes."""
    args, expected = reference
    out = tmp_path / "data"
    opt, overrides, _ = prepare_data.parse_args([a for a in args if a != "pose=none"]
                                                + [f"out={out}"])
    comp = prepare_data.build_components(prepare_data.compose_components(overrides), False,
                                         pose_none=True)
    barrier, gathered = threading.Barrier(2), [None, None]

    def gather(rank):
        def gather_value(value):
            gathered[rank] = value
            barrier.wait()
            return list(gathered)
        return gather_value

    results, errors = [None, None], []

    def process(rank):
        share = prepare_run.Share(process=rank, processes=2, wait=barrier.wait,
                                  gather=gather(rank))
        try:
            results[rank] = prepare_run.prepare(opt, comp, share).lines()
        except BaseException as e:  # reported below, after both threads end
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=process, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert results[1] == []
    assert results[0][-2:] == [
        "process 0/2: 4 videos prepared, 0 already done, 5 clips written, 1 skipped",  # a c e room
        "process 1/2: 3 videos prepared, 0 already done, 3 clips written, 1 skipped"]  # b d f
    assert_same(out, expected)


# --------------------------------------------------------------------------------------------
# Real processes (slow)


def cli(*args, launcher=(sys.executable, "-m")) -> subprocess.Popen:
    return subprocess.Popen([*launcher, "tools.prepare_data", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_processes_under_accelerate_give_the_dataset_of_one(reference, tmp_path):
    args, expected = reference
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = (sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1",
                "--main_process_port", str(port), "-m")
    out = tmp_path / "data"
    proc = cli(*args, f"out={out}", "device=cpu", launcher=launcher)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    lines = stdout.strip().splitlines()
    assert lines[-2:] == [
        "process 0/2: 4 videos prepared, 0 already done, 5 clips written, 1 skipped",
        "process 1/2: 3 videos prepared, 0 already done, 3 clips written, 1 skipped"], stdout
    assert_same(out, expected)


@pytest.mark.slow
def test_a_killed_process_resumes_to_the_same_dataset(tmp_path):
    """SIGKILL (no clean-up at all) once the first video is recorded, then the same command."""
    args = make_sources(tmp_path, grabcut=True)
    ref = tmp_path / "reference"
    done = cli(*args, f"out={ref}")
    assert done.wait(timeout=600) == 0, done.stderr.read()[-3000:]
    out = tmp_path / "data"
    proc = cli(*args, f"out={out}")
    deadline = time.monotonic() + 300
    while not prepare_units.recorded(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not (out / "metadata.jsonl").exists()  # killed before the end
    again = cli(*args, f"out={out}")
    assert again.wait(timeout=600) == 0, again.stderr.read()[-3000:]
    assert_same(out, dataset_bytes(ref))
