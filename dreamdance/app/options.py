"""Which options of each swappable component the app offers, and what the others need.

An option is its YAML file in ``conf/<group>/``; it needs the weights folders its YAML
interpolates (``${weights.NAME}``) and the keys it leaves ``null`` that its comment says to pass
(pose models). An option is enabled when every one of them is set in the app's config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from omegaconf import OmegaConf

# component groups the page offers: (group, label, the stage that reads it)
GROUPS = (("segmenter", "cut-out"), ("inpainter", "inpainting"), ("depth", "depth"),
          ("captioner", "caption"), ("pose", "poses from a video"), ("model", "animation"))
# options meant for tests and debugging only, not offered
HIDDEN = {"segmenter": {"mask"}, "model": {"tiny"}}
_WEIGHTS = re.compile(r"\$\{weights\.(\w+)\}")


@dataclass(frozen=True)
class Option:
    """One option of a group: ``needs`` lists the config keys that must be set, ``missing``
    those of them that are not (empty: it can run)."""

    group: str
    name: str
    needs: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def enabled(self) -> bool:
        return not self.missing

    def label(self) -> str:
        """The option's name, and what it needs when it cannot run."""
        return self.name if self.enabled else f"{self.name} (needs {', '.join(self.missing)})"


def group_options(group: str, cfg: Any) -> list[Option]:
    """The options of ``group`` (``conf/<group>/*.yaml``) checked against ``cfg`` (the app's
    composed config), in file-name order."""
    folder = resources.files("dreamdance.conf") / group
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        name = entry.name.removesuffix(".yaml")
        if not entry.name.endswith(".yaml") or name in HIDDEN.get(group, ()):
            continue
        needs = required_keys(group, OmegaConf.create(entry.read_text()))
        missing = tuple(k for k in needs if OmegaConf.select(cfg, k) in (None, ""))
        out.append(Option(group, name, needs, missing))
    return out


def required_keys(group: str, node: Any) -> tuple[str, ...]:
    """The config keys an option's YAML ``node`` needs set: each ``${weights.NAME}`` it
    interpolates, and for a pose backend its model files left ``null``."""
    text = OmegaConf.to_yaml(node, resolve=False)
    keys = [f"weights.{m}" for m in _WEIGHTS.findall(text)]
    if group == "pose":
        keys += [f"pose.{k}" for k, v in OmegaConf.to_container(node, resolve=False).items()
                 if k.endswith("_model") and v is None]
    return tuple(dict.fromkeys(keys))


def stage_choices(overrides: list[str], stages: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Each stage's component groups and their configured options, ``{stage: {group:
    option}}``, from composing the command line's config with ``overrides``."""
    from hydra import compose, initialize_config_module

    out = {}
    with initialize_config_module("dreamdance.conf", version_base="1.3"):
        for stage in stages:
            cfg = compose("config", overrides=[f"stage={stage}", *overrides],
                          return_hydra_config=True)
            choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
            out[stage] = {g: str(o) for g, o in choices.items() if g in dict(GROUPS)}
    return out
