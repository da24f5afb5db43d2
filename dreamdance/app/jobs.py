"""A job: the page's settings as command lines of ``python -m dreamdance.run``, the stages
motion, scene and animate run one after the other in one run directory, with their progress read from the log and a cancel that
leaves the directory resumable.

The run directory is named by what the job's cached steps depend on most: the contents of the
art, driving and camera files. A job with the same inputs and other settings reuses every step
those settings do not reach (the run directory's manifest decides, as on the command line).
Cancel interrupts the running stage (SIGINT: the step is recorded as failed, the lock released);
the next job in the same directory redoes only that step and what follows it.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

STAGES = ("motion", "scene", "animate")  # each redoes only the steps whose inputs changed
# the run-directory files the page shows, each as soon as a step has written it
SHOWN = ("motion/preview.png", "scene/preview.png", "scene/background.mp4", "scene/gaussians.ply",
         "animate/rig.png", "animate/preview.png", "animate/animation.mp4")
_STEP = re.compile(r"step (\S+): (running|unchanged, skipped)")
CAMERA_FROM_DRIVING = "from the driving video"
SAMPLE_CAMERA = "the sample's camera"


@dataclass
class Settings:
    """What the page asks. ``art``, ``driving`` and ``camera_file`` are paths (None: the
    bundled sample's art and dance); ``camera`` is a preset name, :data:`SAMPLE_CAMERA`,
    ``"file"`` or :data:`CAMERA_FROM_DRIVING`; ``components`` maps a group to its option;
    ``groups`` maps each stage to the groups it reads (a stage is given only its own);
    ``extra`` are the app's own overrides (weights folders and the like)."""

    art: str | None = None
    driving: str | None = None
    camera: str = SAMPLE_CAMERA
    camera_file: str | None = None
    frames: int = 49
    fps: int = 8
    resolution: int = 512
    components: dict[str, str] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    extra: tuple[str, ...] = ()

    def overrides(self, stage: str) -> list[str]:
        """The ``key=value`` arguments of ``stage``."""
        out = [f"frames={int(self.frames)}", f"fps={int(self.fps)}",
               f"resolution={int(self.resolution)}"]
        if self.art:
            out.append(f"image={self.art}")
        if self.driving:
            key = "poses" if Path(self.driving).suffix.lower() == ".json" else "driving"
            out.append(f"{key}={self.driving}")
        if self.camera == "file":
            out.append(f"camera={self.camera_file}")
        elif self.camera not in (SAMPLE_CAMERA, CAMERA_FROM_DRIVING):
            out.append(f"camera={self.camera}")
        mine = self.groups.get(stage, ())
        out += [f"{g}={o}" for g, o in sorted(self.components.items()) if g in mine]
        return [*out, *self.extra]

    def run_dir(self, root: Path) -> Path:
        """``root/<12 hex>``: named by the input files' contents."""
        digest = hashlib.sha256()
        for path in (self.art, self.driving, self.camera_file if self.camera == "file" else None):
            digest.update(b"\0" if path is None else Path(path).read_bytes())
            digest.update(b"|")
        return root / digest.hexdigest()[:12]


@dataclass
class Event:
    """Something the page shows: a step started or was reused (``step``, ``status``), a file
    to show (``shown``: its run-directory path, e.g. ``"scene/preview.png"``, and the file),
    the end (``done``; ``error`` holds the one-line message of
    a stage that refused its input or failed; ``cancelled``)."""

    step: str | None = None
    status: str | None = None
    shown: tuple[str, Path] | None = None
    done: bool = False
    error: str | None = None
    cancelled: bool = False


class Job:
    """One run of the stages in ``out`` with ``settings``; iterate :meth:`events` to run it,
    call :meth:`cancel` from another thread to stop it."""

    def __init__(self, settings: Settings, out: Path):
        self.settings, self.out = settings, Path(out)
        self._proc: subprocess.Popen | None = None
        self._cancelled = threading.Event()
        self._seen: dict[str, int] = {}  # shown file -> its mtime when shown
        self.log: list[str] = []

    def command(self, stage: str) -> list[str]:
        return [sys.executable, "-m", "dreamdance.run", f"stage={stage}", f"out={self.out}",
                *self.settings.overrides(stage)]

    def events(self) -> Iterator[Event]:
        """Run each stage; yield what the page shows as it happens."""
        for stage in STAGES:
            if self._cancelled.is_set():
                break
            self._proc = subprocess.Popen(
                self.command(stage), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, bufsize=1, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
            error = None
            for line in self._proc.stdout:  # type: ignore[union-attr]
                line = line.rstrip()
                self.log.append(line)
                if line.startswith("error: "):
                    error = line.removeprefix("error: ")
                match = _STEP.search(line)
                if match:
                    yield from self._new_files()
                    yield Event(step=match.group(1), status=match.group(2))
            code = self._proc.wait()
            if self._cancelled.is_set():
                yield Event(done=True, cancelled=True)
                return
            if code != 0:
                yield Event(done=True, error=error or f"stage={stage} failed (exit code {code}); "
                                                      f"see {self.out / 'logs'}")
                return
            yield from self._new_files()
        yield Event(done=True, cancelled=self._cancelled.is_set())

    def _new_files(self) -> Iterator[Event]:
        """The shown files written (or rewritten) since they were last shown."""
        for rel in SHOWN:
            path = self.out / rel
            if path.is_file() and self._seen.get(rel) != path.stat().st_mtime_ns:
                self._seen[rel] = path.stat().st_mtime_ns
                yield Event(shown=(rel, path))

    def cancel(self) -> None:
        """Interrupt the running stage (as Ctrl-C would) and run no further stage."""
        self._cancelled.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
