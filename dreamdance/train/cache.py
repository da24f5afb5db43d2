"""Precomputed latents (``train.cache.samples`` > 0): encode a fixed set of samples once.

The VAE and CLIP encoders are frozen, so their outputs for a sample never change. With the
cache on, the first ``samples`` samples of the dataset (their clip windows, references and
degradations fixed by the seed) are encoded once — both background variants, plain and with
the black character boxes — and written to ``folder/NNNNNNN.safetensors``; training then
cycles over them and skips the VAE and CLIP. This trades the variety of on-the-fly sampling
for speed, as precomputation does in other CogVideoX trainers; a large ``samples`` keeps most
of the variety. ``meta.json`` marks the folder as this cache's (its ``format``) and records what
the cache was made from; a cache made from another dataset, config or model is rebuilt. Only the
cache's own files are ever deleted, and a folder that holds anything but a cache is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from dreamdance.errors import InputError
from dreamdance.io import TMP_MARK, atomic_path, read_json, write_json

log = logging.getLogger(__name__)

KEYS = ("latents", "background", "background_boxed", "pose", "character", "image_embeds",
        "mask")
META = "meta.json"
FORMAT = "dreamdance-latent-cache/1"
# the files the cache writes: NNNNNNN.safetensors, and their temporaries while being written
OWN = re.compile(rf"^(\d{{7}}|\.\d{{7}}{re.escape(TMP_MARK)}[0-9a-f]+)\.safetensors$")


def fingerprint(**what) -> str:
    """A short hash of everything the cached latents depend on (JSON-able values)."""
    text = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file(folder: Path, index: int) -> Path:
    return Path(folder) / f"{index:07d}.safetensors"


def prepare(folder: str | Path, key: str, is_main: bool) -> Path:
    """Make ``folder`` hold a cache for ``key``: kept when it matches, its files replaced
    otherwise (nothing else in the folder is touched).

    Raises:
        InputError: (naming ``train.cache.folder``) not a folder, or one that holds files and
            no ``meta.json`` that this cache wrote.
    """
    folder = Path(folder)
    if is_main:
        if folder.exists() and not folder.is_dir():
            raise InputError(f"train.cache.folder={folder}", "exists and is not a folder")
        meta = _meta(folder)
        if meta is None and folder.is_dir() and any(folder.iterdir()):
            raise InputError(f"train.cache.folder={folder}", "holds files the latent cache did "
                             f"not write (no {META} of format {FORMAT}): choose a new or empty "
                             "folder")
        if meta is not None and meta.get("key") != key:
            log.warning("the latent cache in %s was made from another dataset, config or model: "
                        "rebuilding it", folder)
            _clear(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / META, {"format": FORMAT, "key": key})
    return folder


def _meta(folder: Path) -> dict | None:
    """The cache's ``meta.json`` in ``folder``, or None when there is none this cache wrote.

    Raises:
        InputError: (naming ``train.cache.folder``) a ``meta.json`` that is not JSON.
    """
    path = folder / META
    if not path.is_file():
        return None
    try:
        meta = read_json(path)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"train.cache.folder={folder}", "holds files the latent cache did "
                         f"not write ({META} is not JSON: {e}): choose a new or empty "
                         "folder") from None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def _clear(folder: Path) -> None:
    """Delete the cache's files in ``folder`` (its latents, their temporaries, ``meta.json``)."""
    for path in folder.iterdir():
        if OWN.match(path.name) and path.is_file():
            path.unlink()
    (folder / META).unlink()


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
