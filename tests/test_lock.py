"""The lock: exact pins that cover setup.cfg, and the check ``make install`` ends with."""

from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tools.check_lock import (
    LOCK,
    differences,
    direct_requirements,
    main,
    read_lock,
    uncovered,
)

ROOT = Path(__file__).resolve().parents[1]


def test_lock_pins_every_direct_requirement_within_its_range():
    lock = read_lock(LOCK.read_text())
    assert uncovered(direct_requirements(ROOT / "setup.cfg"), lock) == []
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):  # the lock obeys constraints.txt too
            assert uncovered([Requirement(line)], lock) == [], line


def test_read_lock_takes_exact_pins_only():
    text = "# header\nfoo-Bar==1.2\n    # via x\ntorch==2.13.0+cpu\n--index-url x\n"
    assert read_lock(text) == {"foo-bar": "1.2", "torch": "2.13.0+cpu"}
    with pytest.raises(ValueError, match="line 2"):
        read_lock("a==1\nb>=2\n")


def test_differences_name_each_package_once():
    lock = {"a": "1.0", "b": "2.0", "c": "3.0", "torch": "2.13.0+cpu"}
    have = {"a": "1.0", "b": "2.1", "d": "4.0", "torch": "2.13.0+cpu", "pip": "23.2.1",
            "dreamdance": "0.1.0"}
    assert differences(lock, have) == ["b: 2.1 installed, 2.0 locked",
                                       "c==3.0: locked but not installed",
                                       "d==4.0: installed but not in the lock"]
    assert differences({"x": "1.0"}, {"x": "1"}) == []  # versions compare as versions
    assert differences({"torch": "2.13.0+cpu"}, {"torch": "2.13.0"}) != []  # not the CPU build


def test_uncovered_names_missing_and_out_of_range():
    reqs = [Requirement("numpy>=2"), Requirement("scipy"), Requirement("Pillow>=10")]
    assert uncovered(reqs, {"numpy": "1.26.4", "pillow": "11.0"}) == [
        "numpy>=2: locked at 1.26.4, outside the range (run make lock)",
        "scipy: not in the lock (run make lock)"]


def test_main_reports_and_exits(tmp_path, capsys):
    bad = tmp_path / "bad.lock"
    bad.write_text("no-such-package-xyz==1.0\n")
    assert main([f"lock={bad}"]) == 1
    assert "no-such-package-xyz==1.0: locked but not installed" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([f"lock={tmp_path / 'missing.lock'}"])
    assert e.value.code == 2
