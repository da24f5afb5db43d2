"""The packaged configuration (``conf/``, the package ``dreamdance.conf``) as plain values.

The YAML files are the one source of every setting's default; code that needs the defaults
outside a Hydra run (a library call with no config, a benchmark) reads them here rather than
repeating them.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any, ClassVar

from omegaconf import OmegaConf


def conf_values(file: str, key: str | None = None) -> dict[str, Any]:
    """The mapping of one config file, or of the node ``key`` (dotted) in it, as plain values;
    Hydra's keys (``_target_`` …) left out. Interpolations are not resolved.

    Args:
        file: the file under ``conf/`` without ``.yaml``, e.g. ``"camtrack/opencv"``.
        key: e.g. ``"stage.build"``; None: the whole file.
    """
    node = OmegaConf.create(_text(file))
    for part in (key.split(".") if key else []):
        node = node[part]
    values = OmegaConf.to_container(node, resolve=False)
    return {k: v for k, v in values.items() if not k.startswith("_")}


@cache
def _text(file: str) -> str:
    """A config file's text (read once)."""
    return files("dreamdance.conf").joinpath(f"{file}.yaml").read_text()


class FromConf:
    """A settings dataclass whose values are a packaged config file's (``conf_file``):
    ``Settings.from_conf(**changes)``."""

    conf_file: ClassVar[str]

    @classmethod
    def from_conf(cls, **changes):
        """The settings of ``conf/<conf_file>.yaml`` (their one source), with ``changes``."""
        return cls(**{**conf_values(cls.conf_file), **changes})
