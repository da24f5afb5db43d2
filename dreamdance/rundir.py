"""The run directory: the only hand-off between stages, with a manifest that makes re-runs cheap.

``manifest.json`` holds the resolved config, the package versions and one record per step::

    {"config": {...}, "versions": {...},
     "steps": {"motion/camera": {"status": "done", "deps": "<sha256>", "outputs": [...],
                                 "started": "...", "seconds": 0.12}}}

A step is *cached* when its record says ``done``, the hash of everything it depends on (its
config values and the contents of its input files) is unchanged, and every output exists. A
cached step is skipped; ``force=True`` redoes every step. Outputs are written atomically and
flushed to the disk (:mod:`dreamdance.io`) before the step is recorded as done, so a crash or
a power cut mid-step leaves the step ``failed`` or ``running`` and no partial file under a
final name; the next run redoes it.

**One run at a time.** Opening a run directory takes an exclusive lock on ``out/.lock``
(``filelock``; released when the process ends or :func:`release_run_dirs` is called, which the
command line does after each stage). A second process that opens the same directory is refused
with one line saying which process holds it (``out/.lock.json``); within one process the
stages share the lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from dreamdance.errors import InputError
from dreamdance.io import read_json, remove_stale_temporaries, write_json

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LOCK, HOLDER = ".lock", ".lock.json"
_HELD: dict[Path, Any] = {}  # resolved root -> the FileLock this process holds on it
VERSIONED_PACKAGES = (
    "dreamdance", "torch", "numpy", "diffusers", "transformers", "gsplat", "peft", "accelerate",
    "hydra-core", "opencv-contrib-python-headless", "imageio", "imageio-ffmpeg", "pillow",
)


def package_versions(names: tuple[str, ...] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when absent), plus Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, or of every file below a folder (names and contents)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode())
        with open(p, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    return h.hexdigest()


def hold_run_dir(root: Path) -> None:
    """Take this process's exclusive lock on the run directory ``root`` (created if need be);
    a no-op when this process holds it already.

    Raises:
        InputError: (naming ``out=root``) another process holds it.
    """
    from filelock import FileLock, Timeout

    key = Path(root).resolve()
    if key in _HELD:
        return
    key.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(key / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise InputError(f"out={root}", f"in use by another run ({_holder(key)}); wait for it "
                                        "to finish or choose another out=") from None
    _HELD[key] = lock
    write_json(key / HOLDER, {"pid": os.getpid(), "host": platform.node(),
                              "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
                              "command": " ".join(sys.argv)})


def release_run_dirs() -> None:
    """Release every run-directory lock this process holds."""
    while _HELD:
        key, lock = _HELD.popitem()
        lock.release()


def _holder(root: Path) -> str:
    """Who holds ``root``'s lock, from its holder file, in words."""
    try:
        h = read_json(root / HOLDER)
        return f"process {h['pid']} on {h['host']} since {h['since']}: {h['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said which"


def deps_digest(deps: Mapping[str, Any]) -> str:
    """One hash over a step's dependencies: ``Path`` values by content, the rest by value (JSON)."""
    canonical = {
        k: {"file": file_digest(v)} if isinstance(v, Path) else v for k, v in sorted(deps.items())
    }
    blob = json.dumps(canonical, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


class RunDir:
    """A run directory and its manifest.

    Args:
        root: the folder (``out=DIR``); created on the first write.
        config: the resolved config, stored in the manifest.
        force: redo every step even when cached.
    """

    def __init__(self, root: str | os.PathLike, config: Mapping[str, Any] | None = None,
                 force: bool = False):
        self.root = Path(root)
        self.force = force
        hold_run_dir(self.root)
        self._manifest: dict[str, Any] = {"config": {}, "versions": {}, "steps": {}}
        if (self.root / MANIFEST).is_file():
            self._manifest = read_json(self.root / MANIFEST)
            self._manifest.setdefault("steps", {})
        folders = sorted({str(Path(o).parent) for record in self.steps.values()
                          for o in record.get("outputs", [])})
        for p in remove_stale_temporaries(self.root, folders):
            log.warning("removed a temporary file left by an interrupted run: %s", p)
        if config is not None:
            self._manifest["config"] = dict(config)
        self._manifest["versions"] = package_versions()

    def path(self, rel: str) -> Path:
        """Absolute path of a run-directory file, e.g. ``run.path("motion/camera.json")``."""
        return self.root / rel

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        return self._manifest["steps"]

    def is_cached(self, name: str, outputs: list[str], deps: Mapping[str, Any]) -> bool:
        record = self.steps.get(name)
        return (
            not self.force
            and record is not None
            and record.get("status") == "done"
            and record.get("deps") == deps_digest(deps)
            and all(self.path(o).exists() for o in outputs)
        )

    def step(self, name: str, outputs: list[str], deps: Mapping[str, Any],
             fn: Callable[[], None]) -> bool:
        """Run ``fn`` (which writes ``outputs``) unless the step is cached; return whether it ran.

        Args:
            name: the step's name in the manifest, e.g. ``"scene/depth"``.
            outputs: run-directory paths the step writes; all must exist afterwards.
            deps: what the result depends on: config values, and input files as ``Path``.
            fn: does the work; called with no arguments.
        """
        digest = deps_digest(deps)
        if self.is_cached(name, outputs, deps):
            log.info("step %s: unchanged, skipped", name)
            self.steps[name]["status"] = "done"
            return False
        log.info("step %s: running", name)
        start = time.time()
        self.steps[name] = {"status": "running", "deps": digest, "outputs": list(outputs),
                            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.save()
        try:
            fn()
            missing = [o for o in outputs if not self.path(o).exists()]
            if missing:
                raise RuntimeError(f"step {name} did not write {', '.join(missing)}")
        except BaseException:
            self.steps[name]["status"] = "failed"
            self.save()
            raise
        self.steps[name].update(status="done", seconds=round(time.time() - start, 3))
        self.save()
        return True

    def save(self) -> None:
        write_json(self.root / MANIFEST, self._manifest)
