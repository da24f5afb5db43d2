"""The preparation benchmark: its commands, its figures from the measured times, and (slow) a
quick run of both commands for real."""

import sys
from pathlib import Path

import pytest
from test_bench_all import check_rows

from tools import bench_prepare


def test_the_commands_are_timed_in_alternation_into_new_folders(tmp_path):
    ran = []
    ticks = iter([0.0, 12.0, 12.0, 18.0,   # repeat 1: 1 process 12 s, 2 processes 6 s
                  20.0, 28.0, 28.0, 32.0,  # repeat 2: 8 s, 4 s
                  40.0, 50.0, 50.0, 55.0])  # repeat 3: 10 s, 5 s (the warm-up is not timed)
    one, two, outs = bench_prepare.time_runs(tmp_path / "videos", tmp_path, repeats=3,
                                             warmup=1, run=ran.append,
                                             timer=lambda: next(ticks))
    assert (one, two) == (10.0, 5.0)  # the medians of the timed calls only
    assert len(ran) == len(outs) == len(set(outs)) == 8  # a new out= each call
    for cmd, out in zip(ran, outs, strict=True):
        assert f"out={out}" in cmd and f"videos={tmp_path / 'videos'}" in cmd
    single, launched = ran[2], ran[3]
    assert single[:3] == [sys.executable, "-m", "tools.prepare_data"]
    assert launched[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert launched[launched.index("--num_processes") + 1] == "2" and "device=cpu" in launched
    assert launched[launched.index("--main_process_port") + 2:][:2] == ["-m", "tools.prepare_data"]


def test_rows_are_rates_from_the_times():
    spec = {"videos": 12, "frames": 48, "size": 128}
    rows = bench_prepare.rows(30.0, 20.0, spec, repeats=3, load=1.25)
    check_rows(rows, "prepare")
    one, two = rows
    assert (one["ours"], one["unit"], one["baseline"]) == (24.0, "videos/min", None)  # 12 in 30 s
    assert (two["ours"], two["baseline"], two["baseline_name"]) == (36.0, 24.0, "1 process")
    assert two["ratio"] == pytest.approx(1.5) and "12 videos of 48 frames 128x128" in two["case"]
    assert "load average 1.2 before" in one["notes"]


def test_same_dataset_compares_metadata_and_clip_bytes(tmp_path):
    for root in ("a", "b"):
        (tmp_path / root / "clips/x-000").mkdir(parents=True)
        (tmp_path / root / "metadata.jsonl").write_text("{}\n")
        (tmp_path / root / "clips/x-000/video.mp4").write_bytes(b"frames")
    assert bench_prepare.same_dataset(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b/clips/x-000/.video.tmp-1.mp4").write_bytes(b"")
    assert not bench_prepare.same_dataset(tmp_path / "a", tmp_path / "b")


@pytest.mark.slow
def test_quick_suite_runs_both_commands():
    rows = bench_prepare.suite(repeats=1, quick=True)
    check_rows(rows, "prepare")
    one, two = rows
    assert one["repeats"] == two["repeats"] == 1
    assert two["baseline"] == one["ours"] and two["ratio"] == two["ours"] / one["ours"]
    assert Path(bench_prepare.ROOT, "tools/prepare_data.py").is_file()
