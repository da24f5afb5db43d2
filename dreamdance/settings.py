"""The packaged configuration (``conf/``, the package ``dreamdance.conf``) as plain values.

The YAML files are the one source of every setting's default; code that needs the defaults
outside a Hydra run (a library call with no config, a benchmark) reads them here rather than
repeating them.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib.resources import files
from typing import Any, ClassVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

GLOBAL = "# @package _global_"


def conf_values(file: str, key: str | None = None) -> dict[str, Any]:
    """The settings one config file states, as plain values with their interpolations resolved
    against the run config's top level (``conf/config.yaml``); Hydra's keys (``_target_``,
    ``defaults`` …) left out.

    Args:
        file: the file under ``conf/`` without ``.yaml``: a group option such as
            ``"camtrack/opencv"`` (its mapping), or a stage such as ``"stage/train"``.
        key: a dotted node: in a group option's mapping, or in the run config a stage file
            writes to (``"train.data"``); None: the whole mapping.
    """
    return copy.deepcopy(_values(file, key))


@cache
def _values(file: str, key: str | None) -> dict[str, Any]:
    """:func:`conf_values`, read and resolved once per ``(file, key)``."""
    root = _mapping("config")
    node = _mapping(file)
    if file == "config" or _text(file).startswith(GLOBAL):
        merged = OmegaConf.merge(root, node)
        selected = OmegaConf.select(merged, key) if key else merged
    else:
        group = file.split("/")[0]
        merged = OmegaConf.merge(root, {group: node})
        selected = OmegaConf.select(merged, f"{group}.{key}" if key else group)
    if not isinstance(selected, DictConfig):
        raise KeyError(f"conf/{file}.yaml has no mapping {key!r}")
    return {k: _value(selected, k) for k in selected if not str(k).startswith("_")}


class FromConf:
    """A settings dataclass whose values are a packaged config file's (``conf_file``, and the
    node ``conf_key`` in it): ``Settings.from_conf(**changes)``."""

    conf_file: ClassVar[str]
    conf_key: ClassVar[str | None] = None

    @classmethod
    def from_conf(cls, **changes):
        """The settings of the config file (their one source), with ``changes``."""
        return cls(**{**conf_values(cls.conf_file, cls.conf_key), **changes})


def _value(node: DictConfig, key: str) -> Any:
    """``node[key]`` as plain values, resolved; an interpolation into a part of the run config
    that only a stage composes (``${stage.prompt}`` in a captioner) is left as written."""
    try:
        value = node[key]
        return OmegaConf.to_container(value, resolve=True) if isinstance(
            value, DictConfig | ListConfig) else value
    except InterpolationResolutionError:
        return OmegaConf.to_container(node, resolve=False)[key]


def _mapping(file: str) -> DictConfig:
    """A config file without its ``defaults`` list and Hydra's own section."""
    node = OmegaConf.create(_text(file))
    for hydra_key in ("defaults", "hydra"):
        node.pop(hydra_key, None)
    return node


@cache
def _text(file: str) -> str:
    """A config file's text (read once)."""
    return files("dreamdance.conf").joinpath(f"{file}.yaml").read_text()
