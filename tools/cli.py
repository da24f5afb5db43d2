"""The command line shared by the tools: ``key=value`` arguments, the run config and ``main()``.

Every tool takes ``key=value`` arguments; bad input ends with one line on stderr naming the input
and the problem, and exit code 2 (as ``python -m dreamdance.run`` does).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dreamdance.errors import InputError

EXIT_INTERRUPTED = 130


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
              log_format: str = "%(message)s") -> None:
    """A tool's ``main()``: ``doc`` on ``-h``/``--help``, else ``report(run(argv))``.

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
        return
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
