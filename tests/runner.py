"""Run a stage in the test process: the config composed as the command line composes it.

A subprocess pays for importing torch, diffusers and transformers (several seconds on 2 cores)
at every call; the command line's own behaviour (exit code 2, one line on stderr) is checked by
the few tests that still start one.
"""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from dreamdance.errors import InputError
from dreamdance.run import run_stage


def config(*overrides: str) -> DictConfig:
    """The run config for ``python -m dreamdance.run *overrides``."""
    with initialize_config_module("dreamdance.conf", version_base="1.3"):
        return compose("config", overrides=[str(o) for o in overrides])


def run(*overrides: str) -> DictConfig:
    """Run the stage the overrides name; returns its config (bad input raises InputError)."""
    cfg = config(*overrides)
    run_stage(cfg)
    return cfg


def refused(*overrides: str) -> str:
    """The one-line message of the stage's :class:`InputError` (fails when it runs through)."""
    with pytest.raises(InputError) as info:
        run(*overrides)
    message = str(info.value)
    assert "\n" not in message.strip(), message
    return message
