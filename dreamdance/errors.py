"""The one error type for bad user input.

Every stage and library function that checks something a user gave (a path, a file's contents,
a config value) raises :class:`InputError`. The command line prints it as one line and exits
with code 2; library callers can catch it as a ``ValueError``.
"""


class InputError(ValueError):
    """Bad input: ``name`` is the input as the user knows it, ``problem`` what is wrong with it.

    >>> str(InputError("image=art.png", "file not found"))
    'image=art.png: file not found'
    """

    def __init__(self, name: str, problem: str):
        self.name = name
        self.problem = problem
        super().__init__(f"{name}: {problem}")
