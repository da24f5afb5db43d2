"""The page: inputs and settings on the left, each stage's results on the right as its steps
finish. One job at a time per device (Gradio's queue, which shows a waiting user their place);
Cancel stops the session's running job. (No ``from __future__ import annotations`` here:
Gradio finds the ``gr.Request`` parameter by its annotation.)"""

import hashlib
import shutil
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from dreamdance import assets
from dreamdance.app.jobs import CAMERA_FROM_DRIVING, SAMPLE_CAMERA, STAGES, Job, Settings
from dreamdance.app.options import GROUPS, group_options, stage_choices

PRESETS = ("static", "orbit", "dolly", "pan", "zoom", "spiral")
# output component of each shown file
TARGETS = {"motion/preview.png": "motion", "scene/preview.png": "scene",
           "scene/background.mp4": "background", "scene/gaussians.ply": "splats",
           "animate/rig.png": "rig", "animate/animation.mp4": "animation"}
_JOBS: dict[str, Job] = {}  # session -> its running job
_LOCK = threading.Lock()


def build_page(cfg: Any, runs: Path, extra: tuple[str, ...] = ()) -> gr.Blocks:
    """The Gradio app. ``cfg``: the composed config (what weights are configured); ``runs``:
    where run directories go; ``extra``: overrides passed to every stage."""
    choices = stage_choices(list(extra), STAGES)  # {stage: {group: configured option}}
    defaults = {g: o for stage in STAGES for g, o in choices[stage].items()}
    groups = {stage: tuple(c) for stage, c in choices.items()}
    with gr.Blocks(title="DreamDance", analytics_enabled=False) as page:
        gr.Markdown("# DreamDance\nAnimate character art with the body and camera motion of a "
                    "dance. The sample art and dance are loaded; drop in your own.")
        with gr.Row():
            with gr.Column(scale=1):
                art = gr.File(label="character art (image)", value=str(assets.sample_path(
                    assets.ART)), file_types=["image"], elem_id="art")
                driving = gr.File(label="driving video, or a pose file (.json)",
                                  value=str(assets.sample_path(assets.DANCE)), elem_id="driving")
                camera = gr.Dropdown([SAMPLE_CAMERA, *PRESETS, "file", CAMERA_FROM_DRIVING],
                                     value=SAMPLE_CAMERA, label="camera")
                camera_file = gr.File(label="camera file (with camera = file)")
                with gr.Row():
                    frames = gr.Number(49, label="frames", precision=0, minimum=1,
                                       elem_id="frames")
                    fps = gr.Number(8, label="fps", precision=0, minimum=1)
                    resolution = gr.Number(512, label="resolution (long side)", precision=0,
                                           minimum=16, elem_id="resolution")
                components = [_component(group, label, cfg, defaults.get(group))
                              for group, label in GROUPS]
                with gr.Row():
                    run = gr.Button("Run", variant="primary", elem_id="run")
                    cancel = gr.Button("Cancel", elem_id="cancel")
            with gr.Column(scale=2):
                status = gr.Markdown("Ready.", elem_id="status")
                log = gr.Textbox(label="steps", lines=8, max_lines=8, autoscroll=True)
                with gr.Row():
                    motion = gr.Image(label="motion", interactive=False)
                    rig = gr.Image(label="rig", interactive=False)
                scene = gr.Image(label="scene", interactive=False)
                with gr.Row():
                    background = gr.Video(label="background video", interactive=False)
                    animation = gr.Video(label="animation", interactive=False,
                                         elem_id="animation")
                splats = gr.Model3D(label="Gaussian scene (gaussians.ply)")
                download = gr.File(label="run directory (zip)", interactive=False)
        shown = {"motion": motion, "scene": scene, "background": background, "splats": splats,
                 "rig": rig, "animation": animation}
        outputs = [status, log, *shown.values(), download]

        def start(art_file, driving_file, camera_value, camera_path, n_frames, n_fps, size,
                  segmenter, inpainter, depth, captioner, pose, model, request: gr.Request):
            picks = (segmenter, inpainter, depth, captioner, pose, model)  # GROUPS' order
            settings = Settings(
                art=_own_file(art_file, assets.ART), driving=_own_file(driving_file, assets.DANCE),
                camera=camera_value, camera_file=camera_path, frames=int(n_frames or 1),
                fps=int(n_fps or 1), resolution=int(size or 16),
                components={g: c for (g, _), c in zip(GROUPS, picks, strict=True) if c},
                groups=groups, extra=extra)
            yield from _run(settings, runs, request.session_hash, list(shown))

        run.click(start, [art, driving, camera, camera_file, frames, fps, resolution,
                          *components], outputs, concurrency_limit=1, concurrency_id="device")
        def stop(request: gr.Request):
            return _cancel(request.session_hash)

        cancel.click(stop, None, status, queue=False)
    return page


def _component(group: str, label: str, cfg: Any, default: str | None) -> gr.Dropdown:
    """A group's dropdown: the options that can run (the configured one chosen); the others
    listed with what they need."""
    options = group_options(group, cfg)
    enabled = [o.name for o in options if o.enabled]
    value = default if default in enabled else (enabled[0] if enabled else None)
    needs = "; ".join(o.label() for o in options if not o.enabled)
    return gr.Dropdown(enabled, value=value, label=label,
                       info=f"not available here: {needs}" if needs else None)


def _own_file(upload: str | None, sample: str) -> str | None:
    """The uploaded file's path, or None when it is the bundled sample's (the stages then use
    the sample with what comes with it: the art's mask, its own pose)."""
    if not upload:
        return None
    same = _digest(Path(upload)) == _digest(assets.sample_path(sample))
    return None if same else str(upload)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(settings: Settings, runs: Path, session: str, names: list[str]):
    """Run a job, yielding the page's outputs (status, log, the shown files, the download)."""
    out = settings.run_dir(runs)
    job = Job(settings, out)
    with _LOCK:
        _JOBS[session] = job
    files: dict[str, Any] = dict.fromkeys(names, gr.skip())
    lines: list[str] = []
    try:
        for event in job.events():
            if event.step:
                lines.append(f"{event.step}: {event.status}")
                yield _outputs(f"Running **{event.step}** …", lines, files, names)
            elif event.shown:
                rel, path = event.shown
                key = TARGETS.get(rel)
                if key:
                    files[key] = str(path)
                    yield _outputs(None, lines, files, names)
            elif event.done:
                if event.error:
                    yield _outputs(f"**error:** {event.error}", lines, files, names)
                elif event.cancelled:
                    lines.append("cancelled: finished steps are kept; Run again resumes")
                    yield _outputs("Cancelled. Run again to resume from the finished steps.",
                                   lines, files, names)
                else:
                    archive = shutil.make_archive(str(out), "zip", out)
                    yield _outputs(f"Done: {out}", lines, files, names, archive)
    finally:
        with _LOCK:
            if _JOBS.get(session) is job:
                del _JOBS[session]
        job.cancel()  # the page went away mid-job: stop it


def _outputs(status: str | None, lines: list[str], files: dict[str, Any], names: list[str],
             archive: str | None = None) -> list[Any]:
    return [gr.skip() if status is None else status, "\n".join(lines[-200:]),
            *(files[n] for n in names), archive if archive else gr.skip()]


def _cancel(session: str) -> str:
    with _LOCK:
        job = _JOBS.get(session)
    if job is None:
        return "Nothing is running."
    job.cancel()
    return "Cancelling …"
