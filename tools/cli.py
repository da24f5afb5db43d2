"""The command line shared by the tools: ``key=value`` arguments, the run config and ``main()``.

Every tool takes ``key=value`` arguments; bad input ends with one line on stderr naming the input
and the problem, and exit code 2 (as ``python -m dreamdance.run`` does). A tool declares its keys
as a dataclass of typed options (:func:`parse_options`), and its module docstring is its
``--help``.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from dreamdance.errors import InputError

EXIT_INTERRUPTED = 130
NULLS = ("null", "None", "~", "")  # a value that means None for an ``X | None`` option
T = TypeVar("T")


def key_values(argv: Sequence[str], known: Iterable[str], passthrough: Iterable[str] = (),
               tool: str = "tools", required: Iterable[str] = ()) -> tuple[dict[str, str],
                                                                          list[str]]:
    """Split ``key=value`` arguments into the tool's own keys and overrides passed on.

    Args:
        argv: the arguments, each ``key=value``.
        known: the tool's own keys.
        passthrough: keys passed on unchanged (to the run config): an entry ending in ``.``
            takes every key that starts with it (``"pose."``), any other entry that key alone.
        tool: the tool's module, named in the messages (``python -m TOOL --help``).
        required: own keys that must be given a non-empty value.

    Returns:
        ``({key: value} of the own keys, the passed-on arguments in given order)``.

    Raises:
        InputError: an argument that is not ``key=value``, an unknown key, a key given twice,
            a missing required key.
    """
    known, passthrough = tuple(known), tuple(passthrough)
    values: dict[str, str] = {}
    overrides: list[str] = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise InputError(arg, f"expected key=value (see python -m {tool} --help)")
        if key in known:
            if key in values:
                raise InputError(key, "given twice")
            values[key] = value
        elif any(key.startswith(p) if p.endswith(".") else key == p for p in passthrough):
            overrides.append(arg)
        else:
            shown = [p + "*" if p.endswith(".") else p for p in passthrough]
            raise InputError(key, "unknown key; known: " + ", ".join(dict.fromkeys(
                [*known, *shown])))
    for key in required:
        if not values.get(key):
            raise InputError(f"{key}=", f"required (see python -m {tool} --help)")
    return values, overrides


def parse_options(options: type[T], argv: Sequence[str], tool: str = "tools",
                  passthrough: Iterable[str] = ()) -> tuple[T, list[str]]:
    """``key=value`` arguments -> the dataclass ``options`` (one key a field), and the overrides
    passed on, each value read by its field's annotation.

    ``bool``: ``true`` or ``false``; ``int``, ``float``, ``str``, ``Path``; ``Literal[...]``: one
    of its strings; ``tuple[X, ...]``: comma-separated items, each an ``X`` (empty ones
    dropped); ``X | None``: ``null`` (or an empty value) for None. A field without a default is
    required.

    Args:
        options: a dataclass; its fields are the tool's keys.
        argv, passthrough, tool: as :func:`key_values`.

    Returns:
        ``(options instance, the passed-on arguments in given order)``.

    Raises:
        InputError: as :func:`key_values` (not ``key=value``, an unknown or repeated key, a
            missing required key), and a value that is not of its type
            (``repeats=x: must be an integer``).
    """
    fields = [f for f in dataclasses.fields(options) if f.init]
    required = [f.name for f in fields if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]
    given, overrides = key_values(argv, [f.name for f in fields], passthrough, tool, required)
    hints = typing.get_type_hints(options)
    values = {key: typed_value(key, text, hints[key]) for key, text in given.items()}
    return options(**values), overrides


def typed_value(key: str, text: str, kind: Any) -> Any:
    """One value of :func:`parse_options`; an :class:`InputError` naming ``key=text``."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None
        if text in NULLS:
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    many = typing.get_origin(kind) is tuple
    if text == "" and not many:
        raise InputError(f"{key}=", "needs a value")
    try:
        if many:
            item = typing.get_args(kind)[0]
            return tuple(_scalar(t.strip(), item) for t in text.split(",") if t.strip())
        return _scalar(text, kind)
    except ValueError as e:
        raise InputError(f"{key}={text}",
                         f"{'each comma-separated item ' if many else ''}must be {e}") from None


def _scalar(text: str, kind: Any) -> Any:
    """``text`` as a ``kind``; a ValueError saying what it must be."""
    if typing.get_origin(kind) is Literal:
        if text not in typing.get_args(kind):
            raise ValueError("one of " + ", ".join(map(str, typing.get_args(kind))))
        return text
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError("true or false")
        return text.lower() == "true"
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ValueError("an integer" if kind is int else "a number") from None
    if kind in (str, Path):
        return kind(text)
    raise TypeError(f"parse_options cannot read a {kind!r}")


def compose_config(overrides: list[str]) -> Any:
    """The run config (``conf/config.yaml``) with Hydra ``overrides``.

    Raises:
        InputError: an unknown key or option, in one line (see
            :func:`dreamdance.run.check_overrides`).
    """
    from hydra import compose, initialize_config_module

    from dreamdance.run import check_overrides

    check_overrides(overrides)
    with initialize_config_module("dreamdance.conf", version_base="1.3"):
        return compose("config", overrides=overrides)


def tool_main(doc: str | None, run: Callable[[list[str]], Any], argv: list[str] | None = None,
              report: Callable[[Any], None] | None = None,
              log_format: str = "%(message)s") -> Any:
    """A tool's ``main()``: ``doc`` on ``-h``/``--help``, else ``report(run(argv))``; returns
    what ``run`` returned (None after ``--help``).

    Args:
        doc: the tool's usage, printed for ``-h`` or ``--help`` anywhere in ``argv``.
        run: the tool's work; raises :class:`InputError` for bad input.
        argv: the arguments; ``sys.argv[1:]`` when None.
        report: prints the result of ``run`` (nothing is printed when None).
        log_format: the format of the INFO-level log lines.

    Bad input ends with ``error: NAME: PROBLEM`` on stderr and exit code 2; Ctrl-C with
    ``interrupted`` and exit code 130.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(doc)
        return None
    logging.basicConfig(level=logging.INFO, format=log_format)
    try:
        result = run(args)
    except InputError as e:
        from dreamdance.run import EXIT_BAD_INPUT

        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    if report is not None:
        report(result)
    return result
