"""Training checkpoints: atomic, resumable, pruned, and loadable by the animate stage.

A checkpoint is a folder ``checkpoints/step-000500/``:

    accelerate state        the trainable weights (``trainable.safetensors``), the optimiser,
                            the learning-rate scheduler and every process's RNG states
                            (``accelerator.save_state``)
    ema.safetensors         the EMA of the trainable weights (with ``train.ema.enabled``)
    state.json              the step and the samples consumed (the data position), and the
                            rest of the EMA's state (its step count, which sets the decay)
    transformer/            the whole DreamDance transformer (LoRA merged, EMA weights when
                            enabled) as ``save_pretrained`` writes it: what
                            ``stage=animate model=cogvideox model.transformer=...`` loads

It is written under a hidden temporary name and renamed into place when complete, so a crash
never leaves a half checkpoint under a final name; only the last ``keep`` are kept.

Resuming unpickles accelerate's files (optimiser, RNG states; with FSDP the sharded state's
``.metadata`` too), which can run any code. So ``checkpoints/manifest.json`` records the sha256
of every file of each checkpoint this training wrote, and :func:`verify` refuses a checkpoint
that is not recorded there or whose files changed (one added, missing or altered). Weights are
shared as the exported ``transformer/`` (safetensors), never as a checkpoint to resume.
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

from dreamdance.errors import InputError
from dreamdance.io import fsync_path, read_json, write_json
from dreamdance.rundir import file_digest

log = logging.getLogger(__name__)

PATTERN = re.compile(r"^step-(\d+)$")
TRAINABLE = "trainable.safetensors"
EMA = "ema.safetensors"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "dreamdance-checkpoints/1"
UNTRUSTED = ("resuming unpickles its files, which can run any code: resume a checkpoint this "
             "output folder wrote, or set train.resume_untrusted=true if you trust its source")


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
    """Write ``state.json``, record the checkpoint's files in the manifest, rename ``tmp`` to
    its final name and prune to the last ``keep``.

    The record is written before the rename: a crash in between leaves a record without a
    folder (ignored), never a complete checkpoint that :func:`verify` refuses.
    """
    write_json(tmp / "state.json", state)
    folder = tmp.parent
    final = folder / name(step)
    _fsync_tree(tmp)  # every file on the disk before the checkpoint takes its final name
    recorded = read_manifest(folder)
    recorded[final.name] = file_hashes(tmp)
    _write_manifest(folder, recorded)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_path(folder)
    for _, old in checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old)
    _write_manifest(folder, {k: v for k, v in recorded.items() if (folder / k).is_dir()})
    return final


def _fsync_tree(root: Path) -> None:
    """Flush every file below ``root`` and every folder (``root`` included) to the disk."""
    for path in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):
        if not path.is_symlink():
            fsync_path(path)
    fsync_path(root)


def set_aside(folder: str | os.PathLike) -> Path | None:
    """Move a checkpoints ``folder`` that holds any checkpoint (its manifest with it) to the
    first free ``<folder>.earlier-N`` beside it; returns where it went, or None when it held
    none."""
    folder = Path(folder)
    if not checkpoints(folder):
        return None
    n = 1
    while (target := folder.with_name(f"{folder.name}.earlier-{n}")).exists():
        n += 1
    os.replace(folder, target)
    return target


# -- the manifest: which checkpoints this training wrote -------------------------------------

def file_hashes(folder: str | os.PathLike) -> dict[str, str]:
    """The sha256 of every file below ``folder``, by its ``/``-separated path relative to it;
    a symbolic link is listed as ``"symlink"`` (a checkpoint this training writes has none)."""
    folder = Path(folder)
    hashes = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            hashes[rel] = "symlink"
        elif path.is_file():
            hashes[rel] = file_digest(path)
    return hashes


def read_manifest(folder: str | os.PathLike) -> dict[str, dict[str, str]]:
    """The checkpoints recorded in ``folder/manifest.json``: ``{name: {file: sha256}}`` ({}
    when there is no manifest).

    Raises:
        InputError: the file is not a manifest this module wrote.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = read_json(path)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(str(path), f"not a checkpoint manifest ({e})") from None
    ours = isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT
    recorded = data.get("checkpoints") if ours else None
    if not isinstance(recorded, dict) or not all(isinstance(v, dict) for v in recorded.values()):
        raise InputError(str(path), f"not a checkpoint manifest (format {MANIFEST_FORMAT})")
    return recorded


def _write_manifest(folder: Path, recorded: dict[str, dict[str, str]]) -> None:
    write_json(folder / MANIFEST, {"format": MANIFEST_FORMAT, "checkpoints": recorded})


def verify(path: str | os.PathLike) -> None:
    """Refuse a checkpoint this training did not write: ``path`` must be recorded in the
    manifest of the folder that holds it, with the same files and the same sha256 of each.

    Raises:
        InputError: (naming ``train.resume=path``) not recorded, or its files changed.
    """
    path = Path(path)
    recorded = read_manifest(path.parent).get(path.name)
    if recorded is None:
        raise InputError(f"train.resume={path}",
                         f"not recorded in {path.parent / MANIFEST}: {UNTRUSTED}")
    found = file_hashes(path)
    changed = sorted(k for k in recorded.keys() | found.keys() if recorded.get(k) != found.get(k))
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise InputError(f"train.resume={path}", f"files changed since it was saved "
                         f"({', '.join(changed[:3])}{more}): {UNTRUSTED}")


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


def save_ema(ema, names: list[str], folder: str | os.PathLike) -> dict:
    """Write the EMA's shadow weights to ``ema.safetensors`` and return the rest of its state
    (step count, decay, warm-up settings: JSON values, for ``state.json``).

    Args:
        ema: a diffusers ``EMAModel`` of the trainable parameters.
        names: the trainable parameters' names, in the EMA's order.
    """
    state = ema.state_dict()
    shadow = state.pop("shadow_params")
    save_file({k: p.detach().cpu().contiguous() for k, p in zip(names, shadow, strict=True)},
              Path(folder) / EMA)
    return state


def load_ema(ema, names: list[str], folder: str | os.PathLike, state: dict) -> None:
    """Restore the whole EMA: the shadow weights from ``ema.safetensors`` and ``state`` (as
    :func:`save_ema` returned it), so that its decay warm-up continues where it was."""
    shadow = load_file(Path(folder) / EMA)
    if set(shadow) != set(names):
        raise ValueError(f"{folder}: the checkpoint's EMA weights do not match this model's "
                         "trainable weights: was it made with another model or train.trainable?")
    with torch.no_grad():
        for s, key in zip(ema.shadow_params, names, strict=True):
            s.copy_(shadow[key])
    ema.load_state_dict(state)


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
