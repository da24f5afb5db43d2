"""Check that an environment holds exactly the locked versions, and that the lock covers setup.cfg.

    python -m tools.check_lock [lock=requirements.lock]

``make install`` runs it last: every distribution installed in the environment must be in the
lock at the locked version, and every locked package must be installed (``pip`` itself and the
project are left out; torch's local build tag, ``+cpu``, is part of the version). ``lock=``
defaults to the project's ``requirements.lock``. Exit code 0 when they agree, 1 with one line per
difference, 2 for a missing or unreadable lock (or another bad argument).

The lock is regenerated with ``make lock`` (see the README's "Installs").
"""

from __future__ import annotations

import configparser
import importlib.metadata
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from dreamdance.errors import InputError
from tools.cli import parse_options, tool_main

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
NOT_LOCKED = {"pip", "dreamdance"}  # the installer, and the project (installed editable)


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(text: str) -> dict[str, str]:
    """``{normalised name: version}`` of a pip-compile lock's ``name==version`` lines.

    Raises:
        ValueError: a requirement line that is not an exact ``==`` pin.
    """
    pins: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        if len(spec) != 1 or spec[0].operator != "==":
            raise ValueError(f"line {n}: {line!r} is not pinned with ==")
        pins[normalise(req.name)] = spec[0].version
    return pins


def installed() -> dict[str, str]:
    """``{normalised name: version}`` of the distributions this interpreter sees."""
    return {normalise(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}


def differences(lock: Mapping[str, str], have: Mapping[str, str],
                skip: Iterable[str] = NOT_LOCKED) -> list[str]:
    """One line per package whose installed version is not the locked one (sorted by name)."""
    skip = {normalise(s) for s in skip}
    out = []
    for name in sorted((lock.keys() | have.keys()) - skip):
        want, got = lock.get(name), have.get(name)
        if want is None:
            out.append(f"{name}=={got}: installed but not in the lock")
        elif got is None:
            out.append(f"{name}=={want}: locked but not installed")
        elif Version(want) != Version(got):
            out.append(f"{name}: {got} installed, {want} locked")
    return out


def direct_requirements(setup_cfg: Path, extras: Iterable[str] = ("test",)) -> list[Requirement]:
    """``install_requires`` plus the named extras of a ``setup.cfg``."""
    cfg = configparser.ConfigParser()
    cfg.read(setup_cfg)
    lines = cfg.get("options", "install_requires").splitlines()
    for extra in extras:
        lines += cfg.get("options.extras_require", extra).splitlines()
    return [Requirement(s) for s in (line.strip() for line in lines) if s]


def uncovered(requirements: Iterable[Requirement], lock: Mapping[str, str]) -> list[str]:
    """Direct requirements the lock lacks or pins outside their range (one line each)."""
    out = []
    for req in requirements:
        pin = lock.get(normalise(req.name))
        if pin is None:
            out.append(f"{req}: not in the lock (run make lock)")
        elif not req.specifier.contains(pin, prereleases=True):
            out.append(f"{req}: locked at {pin}, outside the range (run make lock)")
    return out


@dataclass
class Options:
    """The command line's keys (see the module's docstring)."""

    lock: Path = LOCK


def check(argv: list[str]) -> list[str]:
    """Print and return the differences between the environment and the lock.

    Raises:
        InputError: a bad argument, a missing or unreadable lock.
    """
    path = parse_options(Options, argv, "tools.check_lock")[0].lock
    try:
        lock = read_lock(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"lock={path}", str(e)) from None
    problems = differences(lock, installed())
    if not problems:
        print(f"environment equals {path.name}: {len(lock)} packages")
        return []
    for line in problems:
        print(line, file=sys.stderr)
    print(f"{len(problems)} difference(s) from {path}: run make clean install", file=sys.stderr)
    return problems


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); the exit code: 1 when there are
    differences, else 0 (bad input exits with 2)."""
    return 1 if tool_main(__doc__, check, argv) else 0


if __name__ == "__main__":
    sys.exit(main())
