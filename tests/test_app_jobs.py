"""The app's pieces without a browser: which options it offers, the command lines a job runs,
its run directory, its events, a stage's one-line error and a cancel."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from dreamdance.app import jobs
from dreamdance.app.jobs import CAMERA_FROM_DRIVING, SAMPLE_CAMERA, Job, Settings
from dreamdance.app.options import group_options, required_keys, stage_choices


def _config(*overrides: str):
    from dreamdance.app.__main__ import _config

    return _config(list(overrides))


def test_options_enabled_by_the_configured_weights(tmp_path):
    depth = {o.name: o for o in group_options("depth", _config())}
    assert depth["popup"].enabled and depth["ramp"].enabled
    assert not depth["depthpro"].enabled
    assert depth["depthpro"].label() == "depthpro (needs weights.depthpro)"
    depth = {o.name: o for o in group_options("depth", _config(f"weights.depthpro={tmp_path}"))}
    assert depth["depthpro"].enabled and depth["depthpro"].label() == "depthpro"
    model = {o.name: o for o in group_options("model", _config())}
    assert model["cogvideox"].missing == ("weights.cogvideox", "weights.clip")
    assert "tiny" not in model  # for tests only
    pose = {o.name: o for o in group_options("pose", _config())}
    assert pose["dwpose"].missing == ("pose.det_model", "pose.pose_model")
    assert required_keys("depth", {"path": "${weights.depthpro}"}) == ("weights.depthpro",)


def test_each_stage_gets_only_its_own_groups():
    choices = stage_choices([], ("motion", "scene", "animate"))
    assert choices["scene"]["inpainter"] == "exemplar" and choices["scene"]["depth"] == "popup"
    assert choices["animate"]["model"] == "puppet" and "inpainter" not in choices["animate"]
    s = Settings(art="a.png", driving="d.mp4", camera="orbit", frames=5, resolution=64,
                 components={"inpainter": "opencv", "model": "preview"},
                 groups={k: tuple(v) for k, v in choices.items()}, extra=("seed=3",))
    scene, animate = s.overrides("scene"), s.overrides("animate")
    assert scene == ["frames=5", "fps=8", "resolution=64", "image=a.png", "driving=d.mp4",
                     "camera=orbit", "inpainter=opencv", "seed=3"]
    assert "model=preview" in animate and "inpainter=opencv" not in animate
    assert "poses=d.json" in Settings(driving="d.json").overrides("scene")
    assert not any(o.startswith("camera=") for o in Settings(camera=SAMPLE_CAMERA).overrides("x"))
    assert not any(o.startswith("camera=") for o in
                   Settings(camera=CAMERA_FROM_DRIVING).overrides("x"))
    assert "camera=/c.json" in Settings(camera="file", camera_file="/c.json").overrides("x")


def test_run_dir_named_by_the_input_files(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    base = Settings(art=str(a)).run_dir(tmp_path)
    assert base.parent == tmp_path and len(base.name) == 12
    assert Settings(art=str(a), frames=9, resolution=80).run_dir(tmp_path) == base
    assert Settings(art=str(b)).run_dir(tmp_path) != base
    assert Settings().run_dir(tmp_path) != base


class _Fake(Job):
    """A job whose stages are small Python scripts printing what the stages print."""

    def __init__(self, out: Path, scripts: dict[str, str]):
        super().__init__(Settings(), out)
        self.scripts = scripts

    def command(self, stage: str) -> list[str]:
        return [sys.executable, "-c", self.scripts.get(stage, "")]


def test_events_steps_files_and_the_end(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "STAGES", ("motion", "scene"))
    out = tmp_path / "run"
    (out / "scene").mkdir(parents=True)
    write = f"open({str(out / 'scene/preview.png')!r}, 'w').write('x')"
    job = _Fake(out, {
        "motion": "print('[t][dreamdance.rundir][INFO] - step motion/poses: unchanged, skipped')",
        "scene": f"print('[t][dreamdance.rundir][INFO] - step scene/preview: running'); {write}",
    })
    events = list(job.events())
    assert [(e.step, e.status) for e in events if e.step] == [
        ("motion/poses", "unchanged, skipped"), ("scene/preview", "running")]
    assert [e.shown[0] for e in events if e.shown] == ["scene/preview.png"]
    assert events[-1].done and not events[-1].error and not events[-1].cancelled


def test_a_stage_error_is_its_one_line_and_stops_the_job(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "STAGES", ("motion", "scene"))
    job = _Fake(tmp_path, {"motion": "import sys; print('error: image=x.png: not a readable "
                                     "image', file=sys.stderr); sys.exit(2)",
                           "scene": "raise SystemExit('scene must not run')"})
    events = list(job.events())
    assert len(events) == 1 and events[0].error == "image=x.png: not a readable image"


def test_cancel_interrupts_the_running_stage(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "STAGES", ("motion", "scene"))
    job = _Fake(tmp_path, {
        "motion": "import time\ntry:\n"  # the handler is in place before the line is printed
                  "    print('[t] - step motion/poses: running', flush=True)\n"
                  "    time.sleep(60)\nexcept KeyboardInterrupt:\n"
                  "    print('interrupted', flush=True); raise",
        "scene": "raise SystemExit('scene must not run')"})
    start = time.monotonic()
    events = job.events()
    first = next(events)
    assert first.step == "motion/poses"
    job.cancel()
    rest = list(events)
    assert rest[-1].done and rest[-1].cancelled and not rest[-1].error
    assert "interrupted" in job.log and time.monotonic() - start < 30


def test_bad_app_arguments_are_one_line(capsys):
    from dreamdance.app.__main__ import main

    for argv in (["out=/tmp/x"], ["nosuchkey=1"], ["depth=nope"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1, err
