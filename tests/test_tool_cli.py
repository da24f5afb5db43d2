"""The command line shared by the tools (tools/cli.py): key=value arguments and main()."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from dreamdance.errors import InputError
from tools.cli import key_values, parse_options, tool_main


@dataclass
class Opts:
    out: Path
    repeats: int = 5
    scale: float = 1.0
    quick: bool = False
    scene: Literal["depth", "deep"] = "depth"
    only: tuple[str, ...] = ()
    sizes: tuple[int, ...] = (64,)
    json: Path | None = Path("latest.json")


def test_own_keys_and_passed_on_overrides_are_split_in_order():
    values, overrides = key_values(
        ["pose=vitpose", "out=D", "pose.thresh=0.3", "n=2", "weights.dwpose=W", "poser=x=y"],
        known=("out", "n", "poser"), passthrough=("pose", "pose.", "weights."))
    assert values == {"out": "D", "n": "2", "poser": "x=y"}
    assert overrides == ["pose=vitpose", "pose.thresh=0.3", "weights.dwpose=W"]


def test_a_prefix_ending_in_a_dot_takes_only_dotted_keys():
    with pytest.raises(InputError) as e:
        key_values(["depthx=1"], known=("out",), passthrough=("depth.",), tool="tools.t")
    assert e.value.name == "depthx"
    assert e.value.problem == "unknown key; known: out, depth.*"


def test_a_repeated_key_is_refused():
    with pytest.raises(InputError) as e:
        key_values(["n=1", "out=D", "n=2"], known=("n", "out"))
    assert (e.value.name, e.value.problem) == ("n", "given twice")


def test_a_repeated_override_is_passed_on():
    assert key_values(["pose.a=1", "pose.a=2"], (), ("pose.",))[1] == ["pose.a=1", "pose.a=2"]


@pytest.mark.parametrize("argv, name, problem", [
    (["colour=red"], "colour", "unknown key; known: out, n"),
    (["frames"], "frames", "expected key=value (see python -m tools.t --help)"),
    (["=3"], "=3", "expected key=value (see python -m tools.t --help)"),
    (["n=1"], "out=", "required (see python -m tools.t --help)"),
    (["out=", "n=1"], "out=", "required (see python -m tools.t --help)"),
])
def test_bad_arguments_name_the_input(argv, name, problem):
    with pytest.raises(InputError) as e:
        key_values(argv, known=("out", "n"), tool="tools.t", required=("out",))
    assert (e.value.name, e.value.problem) == (name, problem)


def test_options_are_read_by_their_types_and_the_rest_passed_on():
    opts, overrides = parse_options(Opts, ["out=D", "repeats=3", "frames=16", "quick=TRUE",
                                           "only=a, b,,", "json=null", "scale=0.5",
                                           "sizes=8,16", "scene=deep"],
                                    passthrough=("frames",))
    assert opts == Opts(Path("D"), 3, 0.5, True, "deep", ("a", "b"), (8, 16), None)
    assert overrides == ["frames=16"]
    assert parse_options(Opts, ["out=D", "quick=false", "json=", "only="])[0] == Opts(
        Path("D"), json=None)


@pytest.mark.parametrize("argv, name, problem", [
    (["out=D", "repeats=x"], "repeats=x", "must be an integer"),
    (["out=D", "repeats=2.5"], "repeats=2.5", "must be an integer"),
    (["out=D", "scale=big"], "scale=big", "must be a number"),
    (["out=D", "quick=yes"], "quick=yes", "must be true or false"),
    (["out=D", "quick="], "quick=", "needs a value"),
    (["out=D", "scene=flat"], "scene=flat", "must be one of depth, deep"),
    (["out=D", "sizes=8,x"], "sizes=8,x", "each comma-separated item must be an integer"),
    (["out=D", "repeats=1", "repeats=2"], "repeats", "given twice"),
    (["out=D", "--quick"], "--quick", "expected key=value (see python -m tools.t --help)"),
    (["out=D", "colour=red"], "colour",
     "unknown key; known: out, repeats, scale, quick, scene, only, sizes, json"),
    (["repeats=1"], "out=", "required (see python -m tools.t --help)"),
])
def test_bad_options_name_the_input(argv, name, problem):
    with pytest.raises(InputError) as e:
        parse_options(Opts, argv, "tools.t")
    assert (e.value.name, e.value.problem) == (name, problem)


def test_tool_main_bad_input_is_one_line_and_exit_2(capsys):
    def run(argv):
        key_values(argv, known=("out",), tool="tools.t")

    with pytest.raises(SystemExit) as e:
        tool_main("usage", run, ["colour=red"], report=lambda r: print("done"))
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "error: colour: unknown key; known: out\n"


def test_tool_main_ctrl_c_is_exit_130(capsys):
    def run(argv):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as e:
        tool_main("usage", run, [])
    assert e.value.code == 130 and capsys.readouterr().err == "interrupted\n"


def test_tool_main_reports_the_result_or_prints_help(capsys, monkeypatch):
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: None)
    calls = []
    tool_main("usage", lambda argv: calls.append(argv) or len(argv), ["a=1", "b=2"],
              report=lambda n: print(f"{n} arguments"))
    assert calls == [["a=1", "b=2"]] and capsys.readouterr().out == "2 arguments\n"
    tool_main("usage", calls.append, ["a=1", "--help"], report=print)
    assert calls == [["a=1", "b=2"]] and capsys.readouterr().out == "usage\n"
