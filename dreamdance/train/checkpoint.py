"""Training checkpoints: atomic, resumable, pruned, and loadable by the animate stage.

A checkpoint is a folder ``checkpoints/step-000500/``:

    accelerate state        the trainable weights (``trainable.safetensors``), the optimiser,
                            the learning-rate scheduler and every process's RNG states
                            (``accelerator.save_state``)
    ema.safetensors         the EMA of the trainable weights (with ``train.ema.enabled``)
    state.json              the step and the samples consumed (the data position)
    transformer/            the whole DreamDance transformer (LoRA merged, EMA weights when
                            enabled) as ``save_pretrained`` writes it: what
                            ``stage=animate model=cogvideox model.transformer=...`` loads

It is written under a hidden temporary name and renamed into place when complete, so a crash
never leaves a half checkpoint under a final name; only the last ``keep`` are kept.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from dreamdance.io import read_json, write_json

log = logging.getLogger(__name__)

PATTERN = re.compile(r"^step-(\d+)$")
TRAINABLE = "trainable.safetensors"


def name(step: int) -> str:
    """``step-000500``: the folder of the checkpoint after ``step`` optimiser steps."""
    return f"step-{step:06d}"


def checkpoints(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """The complete checkpoints in ``folder``, oldest first: ``[(step, path)]``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = PATTERN.match(path.name)
        if match and path.is_dir() and (path / "state.json").is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest(folder: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in ``folder``, or None."""
    found = checkpoints(folder)
    return found[-1][1] if found else None


def temporary(folder: str | os.PathLike, step: int) -> Path:
    """A fresh hidden folder to write the checkpoint of ``step`` into."""
    path = Path(folder) / f".{name(step)}.tmp"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def finish(tmp: Path, step: int, state: dict, keep: int) -> Path:
    """Write ``state.json``, rename ``tmp`` to its final name and prune to the last ``keep``."""
    write_json(tmp / "state.json", state)
    final = tmp.parent / name(step)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for _, old in checkpoints(tmp.parent)[:-keep] if keep > 0 else []:
        shutil.rmtree(old)
    return final


def read_state(path: str | os.PathLike) -> dict:
    return read_json(Path(path) / "state.json")


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that train (LoRA and the new layers, or everything), detached."""
    return {k: p.detach().contiguous() for k, p in model.named_parameters() if p.requires_grad}


def save_trainable(model: nn.Module, folder: str | os.PathLike) -> None:
    save_file({k: v.cpu() for k, v in trainable_state(model).items()}, Path(folder) / TRAINABLE)


def load_trainable(model: nn.Module, folder: str | os.PathLike) -> None:
    """Load ``trainable.safetensors`` into ``model``; its keys must be exactly the trainable
    parameters (a checkpoint of another model or trainable set is refused)."""
    state = load_file(Path(folder) / TRAINABLE)
    params = dict(model.named_parameters())
    expected = {k for k, p in params.items() if p.requires_grad}
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(f"{folder}: the checkpoint's trainable weights do not match this model "
                         f"(missing {missing[:3]}, unexpected {extra[:3]}): was it made with "
                         "another model or train.trainable?")
    with torch.no_grad():
        for key, value in state.items():
            params[key].copy_(value)


def merged_state_dict(model: nn.Module,
                      dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The model's weights with every LoRA adapter merged into its base layer, under the
    base model's names (``…to_q.weight``, not ``…to_q.base_layer.weight``); the model itself
    is not changed.

    Args:
        dtype: cast floating-point weights to this dtype (None keeps them).
    """
    deltas = {}
    for module_name, module in model.named_modules():
        if hasattr(module, "get_delta_weight") and hasattr(module, "base_layer"):
            for adapter in module.active_adapters:
                delta = module.get_delta_weight(adapter).detach()
                key = f"{module_name}.base_layer.weight"
                deltas[key] = deltas.get(key, 0) + delta
    out = {}
    for key, value in model.state_dict().items():
        if ".lora_" in key:
            continue
        value = value.detach()
        if key in deltas:
            value = value.float() + deltas[key].float()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        out[key.replace(".base_layer.", ".")] = value.contiguous().cpu()
    return out


def export_transformer(model: nn.Module, folder: str | os.PathLike,
                       dtype: torch.dtype | None = None) -> Path:
    """Write the whole transformer (LoRA merged) as a ``save_pretrained`` folder that
    ``DreamDanceTransformer3DModel.from_pretrained`` loads.

    Args:
        model: the (unwrapped) DreamDance transformer, with or without LoRA adapters.
        folder: created; ``config.json`` and ``diffusion_pytorch_model*.safetensors``.
    """
    from huggingface_hub import save_torch_state_dict

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_config(folder)
    save_torch_state_dict(merged_state_dict(model, dtype), folder,
                          filename_pattern="diffusion_pytorch_model{suffix}.safetensors",
                          max_shard_size="10GB")
    return folder
