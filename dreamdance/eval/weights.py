"""Loading metric networks' weight files: local files only, one clear error when one is wrong."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from dreamdance.errors import InputError


def load_state_dict(path: str | Path, key: str, what: str) -> dict[str, torch.Tensor]:
    """Read a PyTorch state dict from a local file (``torch.load``, tensors only).

    Args:
        path: the file.
        key: the command-line key that named it, e.g. ``"lpips_weights"``.
        what: the expected file and where it comes from, for the error message.

    Raises:
        InputError: the file is missing, is not a state dict, or holds pickled Python objects
            other than tensors (refused: unpickling them could run code).
    """
    path = Path(str(path)).expanduser()
    name = f"{key}={path}"
    if not path.is_file():
        raise InputError(name, f"file not found; expected {what}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(name, "refused: it holds pickled Python objects other than tensors "
                         f"(unpickling them could run code); expected {what}") from None
    except (RuntimeError, OSError, ValueError, EOFError) as e:
        raise InputError(name, f"not a PyTorch state dict ({type(e).__name__}); "
                         f"expected {what}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(name, f"not a state dict of tensors; expected {what}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], name: str, what: str) -> None:
    """``module.load_state_dict(state)`` (strict); a key or shape mismatch is an ``InputError``."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[1:2] or [str(e)[:200]]
        raise InputError(name, f"weights do not fit ({first[0].strip()}); expected {what}") from None
