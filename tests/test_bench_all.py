"""The benchmark entry point: shared helpers, the suites' rows in quick mode, and the files
``python -m tools.bench_all`` writes."""

import json

import pytest

from tools import bench_all, bench_common
from tools.bench_common import ROW_KEYS, make_row, median_time, target_met

pytestmark = pytest.mark.usefixtures("one_thread")


def check_rows(rows, benchmark):
    """Every row has exactly the documented keys, and consistent ratio, met and repeats."""
    assert rows, benchmark
    for r in rows:
        assert tuple(r) == ROW_KEYS, r
        assert r["benchmark"] == benchmark and r["device"] in ("cpu", "cuda")
        if r["ours"] is None:  # a skipped measurement says why
            assert r["notes"] and r["ratio"] is None and r["met"] is None
            continue
        assert r["ours"] > 0 and r["repeats"] >= 1, r
        if r["baseline"] is None:
            assert r["ratio"] is None
        else:
            assert r["baseline_name"] and r["baseline"] > 0
            assert r["ratio"] == pytest.approx(r["ours"] / r["baseline"], rel=1e-12)
        compared = r["ours"] if r["ratio"] is None else r["ratio"]
        assert r["met"] == target_met(r["target"], compared)


def fake_suite(name, ratio=2.0):
    def suite(repeats=5, gpu=False, quick=False):
        return [make_row(name, f"case ({'quick' if quick else 'full'})", "time", "s", ratio * 0.5,
                         0.5, "base", "<= 1.05", repeats=repeats)]
    return suite


def test_median_time_is_the_median_of_timed_calls_after_warmup():
    ticks = iter([0.0, 1.0,  # call 1: 1 s
                  10.0, 15.0,  # call 2: 5 s
                  20.0, 22.0])  # call 3: 2 s
    calls = []
    got = median_time(lambda: calls.append(1), repeats=3, warmup=2, timer=lambda: next(ticks))
    assert got == 2.0 and len(calls) == 5  # two untimed warm-ups, then three timed calls
    ticks = iter([0.0, 1.0, 1.0, 4.0])  # an even count: the mean of the middle two
    assert median_time(lambda: None, repeats=2, warmup=0, timer=lambda: next(ticks)) == 2.0
    with pytest.raises(ValueError, match="repeats"):
        median_time(lambda: None, repeats=0)


def test_rows_compute_ratio_and_target():
    row = make_row("x", "c", "time", "s", 3.0, 2.0, "base", "<= 1.05")
    assert row["ratio"] == 1.5 and row["met"] is False
    assert make_row("x", "c", "time", "s", 2.0, 2.0, "base", "<= 1.05")["met"] is True
    absolute = make_row("x", "c", "time", "s", 170.0, target="<= 180")  # target on ours
    assert absolute["ratio"] is None and absolute["met"] is True
    assert make_row("x", "c", "time", "s", 1.0)["met"] is None
    with pytest.raises(ValueError, match="target"):
        target_met("about 1", 1.0)
    with pytest.raises(ValueError, match="baseline"):
        make_row("x", "c", "time", "s", 1.0, baseline=2.0)


def test_peak_memory_and_machine():
    assert bench_common.peak_memory_gb(lambda: bytearray(64 << 20)) > 0.06  # 64 MB touched
    info = bench_common.machine()
    assert info["cores"] >= 1 and info["torch"] and info["cpu"] and info["date"]
    assert info["memory_gb"] is None or info["memory_gb"] > 0


@pytest.mark.slow
def test_rasterizer_and_animate_suites_quick():
    from tools import bench_animate, bench_rasterizer

    raster = bench_rasterizer.suite(repeats=1, quick=True)
    check_rows(raster, "rasterizer")
    assert any(r["baseline_name"] and "dense" in r["baseline_name"] for r in raster)
    animate = bench_animate.suite(repeats=1, gpu=True, quick=True)  # gpu rows skip without CUDA
    check_rows(animate, "animate")
    cpu = [r for r in animate if r["device"] == "cpu"]
    assert [r["target"] for r in cpu] == ["<= 1.05", "<= 1.1", "<= 1.1"]
    assert len(animate) == len(cpu) + 4  # time and memory, resident and with CPU offload


@pytest.mark.slow
def test_removal_suite_quick():
    from tools import bench_removal

    rows = bench_removal.suite(repeats=1, quick=True)
    check_rows(rows, "removal")
    quality = rows[-1]
    assert quality["unit"] == "dB" and quality["ours"] >= 30 and quality["baseline"] <= 20
    assert quality["met"] is True


def test_scene_suite_rows_from_a_run(monkeypatch):
    from tools import bench_scene

    def fake_run(repeats=3, overrides=None):
        return {"repeats": repeats, "overrides": overrides or [], "wall_s": 120.0,
                "steps_s": {"scene/depth": 90.0, "scene/video": 30.0},
                "step_share": {"scene/depth": 0.75, "scene/video": 0.25},
                "peak_rss_mb": 2048.0}

    monkeypatch.setattr(bench_scene, "run", fake_run)
    full = bench_scene.suite(repeats=3)
    check_rows(full, "scene")
    assert [r["metric"] for r in full] == ["time", "memory"]
    assert full[0]["target"] == "<= 180" and full[0]["met"] is True and full[0]["repeats"] == 3
    assert full[1]["ours"] == 2.0 and "scene/depth 75%" in full[0]["notes"]
    quick = bench_scene.suite(repeats=3, quick=True)
    assert quick[0]["target"] is None and quick[0]["repeats"] == 1
    assert "frames=5" in quick[0]["case"]


def test_main_writes_json_and_markdown(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench_all, "SUITES", ("rasterizer", "fast", "nope"))
    real_load = bench_all.load_suite
    monkeypatch.setattr(bench_all, "load_suite",
                        lambda name: fake_suite(name) if name == "fast" else real_load(name))
    out = tmp_path / "bench" / "latest.json"
    written = bench_all.main(["quick=true", "repeats=1", f"json={out}"])
    data = json.loads(out.read_text())
    assert written == data
    assert set(data) == {"machine", "options", "rows", "unavailable"}
    assert data["machine"]["cores"] >= 1 and data["options"]["quick"] is True
    assert {r["benchmark"] for r in data["rows"]} == {"rasterizer", "fast"}
    for name in ("rasterizer", "fast"):
        check_rows([r for r in data["rows"] if r["benchmark"] == name], name)
    assert data["unavailable"] == {"nope": "no module tools.bench_nope"}
    md = (tmp_path / "bench" / "latest.md").read_text().splitlines()
    assert md[0] == "| benchmark | case | ours | baseline | ratio | target | met |"
    assert sum(line.startswith("| ") for line in md) == 1 + len(data["rows"]) + 1
    assert "| fast | case (quick) | 1 s | 0.5 s (base) | 2x | <= 1.05 | no |" in md
    assert any("unavailable" in line and "nope" in line for line in md)
    printed = capsys.readouterr().out
    assert "case (quick)" in printed and "unavailable" in printed
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no temporary left


def test_only_filters_and_rejects_unknown_names(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench_all, "SUITES", ("a", "b", "c"))
    monkeypatch.setattr(bench_all, "load_suite", fake_suite)
    out = tmp_path / "r.json"
    bench_all.main(["only=c,a", f"json={out}"])
    data = json.loads(out.read_text())
    assert [r["benchmark"] for r in data["rows"]] == ["c", "a"]
    assert data["rows"][0]["case"] == "case (full)" and data["rows"][0]["repeats"] == 5
    with pytest.raises(SystemExit) as e:
        bench_all.main(["only=a,zzz", f"json={out}"])
    assert e.value.code == 2 and "zzz" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        bench_all.main(["repeats=0", f"json={out}"])
    assert e.value.code == 2


def test_missing_module_is_unavailable_but_broken_import_raises(monkeypatch):
    assert bench_all.load_suite("no_such_suite") is None
    assert callable(bench_all.load_suite("rasterizer"))
    rows, unavailable = bench_all.run_suites(["no_such_suite"])
    assert rows == [] and unavailable == {"no_such_suite": "no module tools.bench_no_such_suite"}

    def broken(name):
        raise ModuleNotFoundError("No module named 'gsplat_missing'", name="gsplat_missing")

    monkeypatch.setattr(bench_all.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="gsplat_missing"):
        bench_all.load_suite("rasterizer")


def test_every_suite_module_exposes_suite():
    import inspect

    for name in bench_all.SUITES:
        suite = bench_all.load_suite(name)
        if suite is None:
            continue  # reported as unavailable by run_suites
        params = inspect.signature(suite).parameters
        assert list(params) == ["repeats", "gpu", "quick"], name
        assert [params[k].default for k in params] == [5, False, False], name
