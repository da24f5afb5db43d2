"""Check that an environment holds exactly the locked versions, and that the lock covers setup.cfg.

    python -m tools.check_lock [requirements.lock]

``make install`` runs it last: every distribution installed in the environment must be in the
lock at the locked version, and every locked package must be installed (``pip`` itself and the
project are left out; torch's local build tag, ``+cpu``, is part of the version). Exit code 0
when they agree, 1 with one line per difference, 2 for a missing or unreadable lock.

The lock is regenerated with ``make lock`` (see the README's "Installs").
"""

from __future__ import annotations

import argparse
import configparser
import importlib.metadata
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lock", nargs="?", type=Path, default=LOCK)
    args = parser.parse_args(argv)
    try:
        lock = read_lock(args.lock.read_text())
    except (OSError, ValueError) as e:
        print(f"error: {args.lock}: {e}", file=sys.stderr)
        return 2
    problems = differences(lock, installed())
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(f"{len(problems)} difference(s) from {args.lock}: run make clean install",
              file=sys.stderr)
        return 1
    print(f"environment equals {args.lock.name}: {len(lock)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
