"""Precomputed latents (``train.cache.samples`` > 0): encode a fixed set of samples once.

The VAE and CLIP encoders are frozen, so their outputs for a sample never change. With the
cache on, the first ``samples`` samples of the dataset (their clip windows, references and
degradations fixed by the seed) are encoded once — both background variants, plain and with
the black character boxes — and written to ``folder/NNNNNNN.safetensors``; training then
cycles over them and skips the VAE and CLIP. This trades the variety of on-the-fly sampling
for speed, as precomputation does in other CogVideoX trainers; a large ``samples`` keeps most
of the variety. ``meta.json`` records what the cache was made from; a cache made from another
dataset, config or model is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from dreamdance.io import atomic_path, read_json, write_json

log = logging.getLogger(__name__)

KEYS = ("latents", "background", "background_boxed", "pose", "character", "image_embeds",
        "mask")


def fingerprint(**what) -> str:
    """A short hash of everything the cached latents depend on (JSON-able values)."""
    text = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file(folder: Path, index: int) -> Path:
    return Path(folder) / f"{index:07d}.safetensors"


def prepare(folder: str | Path, key: str, is_main: bool) -> Path:
    """Make ``folder`` hold a cache for ``key``: kept when it matches, emptied otherwise."""
    folder = Path(folder)
    meta = folder / "meta.json"
    if is_main:
        if meta.is_file() and read_json(meta).get("key") != key:
            log.warning("the latent cache in %s was made from another dataset, config or model: "
                        "rebuilding it", folder)
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(meta, {"key": key})
    return folder


def write(folder: Path, index: int, latents: dict[str, torch.Tensor]) -> None:
    """Write one sample's latents (each without the batch axis) atomically."""
    with atomic_path(file(folder, index)) as tmp:
        save_file({k: latents[k].detach().cpu().contiguous() for k in KEYS}, tmp)


class CachedLatents(Dataset):
    """The cached samples, cycled: item ``i`` is sample ``i mod samples``."""

    def __init__(self, folder: str | Path, samples: int):
        self.folder, self.samples = Path(folder), samples

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return load_file(file(self.folder, index % self.samples))
