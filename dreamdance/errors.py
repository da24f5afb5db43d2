"""The one error type for bad user input.

Every stage and library function that checks something a user gave (a path, a file's contents,
a config value) raises :class:`InputError`. The command line prints it as one line and exits
with code 2; library callers can catch it as a ``ValueError``.
"""


import json
from typing import Any

import numpy as np


class InputError(ValueError):
    """Bad input: ``name`` is the input as the user knows it, ``problem`` what is wrong with it.

    >>> str(InputError("image=art.png", "file not found"))
    'image=art.png: file not found'
    """

    def __init__(self, name: str, problem: str):
        self.name = name
        self.problem = problem
        super().__init__(f"{name}: {problem}")


def is_number(value: Any) -> bool:
    """A JSON number: an int or a float, not a bool (``true`` is not 1)."""
    return type(value) in (int, float)


def show(value: Any) -> str:
    """A JSON value (or a token read from a file) for a one-line message: numbers and short
    strings as written, containers and long values by what they are."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, list):
        return f"a {len(value)}-item list"
    if isinstance(value, dict):
        return "an object"
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def number_array(values: Any, name: str, where: str, limit: float) -> np.ndarray:
    """JSON numbers (already checked to be numbers, any nesting) as a float64 array, each
    finite and within ``+-limit``; else an :class:`InputError` naming ``name`` at ``where``."""
    try:
        array = np.array(values, dtype=np.float64)
    except OverflowError:
        raise InputError(name, f"{where}: a number too large") from None
    if not np.isfinite(array).all():
        raise InputError(name, f"{where}: NaN or infinite (non-finite) value")
    if array.size and np.abs(array).max() > limit:
        raise InputError(name, f"{where}: value {np.abs(array).max():g} beyond +-{limit:g}")
    return array
