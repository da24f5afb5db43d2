"""stage=train: fine-tune the DreamDance transformer on a dataset folder.

Reads ``data=DIR`` (the layout of :mod:`dreamdance.train.layout`), builds the model (``model=``
cogvideox from local folders, or tiny), and trains with :class:`dreamdance.train.trainer.Trainer`
under accelerate; writes ``out/train/checkpoints/``, ``out/train/logs/`` and
``out/train/validation/``. ``force=true`` without ``train.resume`` moves the earlier run's
checkpoints to ``out/train/checkpoints.earlier-N`` first; ``train.resume`` takes only
checkpoints this output folder wrote (:func:`dreamdance.train.checkpoint.verify`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dreamdance.errors import InputError
from dreamdance.inputs import build, check_common, resolve_device
from dreamdance.train import checkpoint

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> None:
    check_common(cfg)
    if cfg.data is None:
        raise InputError("data", "missing: name the dataset folder (data=DIR, made with "
                                 "python -m tools.prepare_data)")
    t = cfg.train
    resolve_device(cfg.device)
    folder = Path(cfg.out) / "train"
    resume = _resume_path(t.resume, folder / "checkpoints", cfg.force, t.resume_untrusted)

    from dreamdance.train.dataset import ClipDataset, DatasetConfig

    # the dataset (every metadata line checked) before the model is built: seconds, not minutes
    data_cfg = DatasetConfig(**OmegaConf.to_container(t.data, resolve=True))
    dataset = ClipDataset(cfg.data, data_cfg, seed=cfg.seed, split="train")
    validation = _validation_sample(cfg, data_cfg)
    backend = build(cfg.model)
    if not hasattr(backend, "components"):
        raise InputError(f"model={backend.name}", "cannot be trained (choose a diffusion "
                                                  "backend: tiny or cogvideox)")

    from dreamdance.train.trainer import Trainer

    cpu = resolve_device(cfg.device) == "cpu"
    trainer = Trainer(t, backend.components(cfg.seed), dataset, folder, seed=cfg.seed, validation=validation,
                      cpu=cpu)
    if resume is not None:
        trainer.resume(resume)
    elif cfg.force:
        moved = trainer.start_over()
        if moved is not None:
            log.warning("force=true: the earlier run's checkpoints moved to %s (delete it when "
                        "it is no longer needed)", moved)
    losses = trainer.train()
    if dataset.skipped:
        log.warning("skipped clips: %s", dict(dataset.skipped))
    if losses:
        log.info("trained to step %d: loss %.5f (first %.5f)", trainer.step, losses[-1], losses[0])
    latest = checkpoint.latest(folder / "checkpoints")
    if latest is not None and (latest / "transformer").is_dir():
        log.info("animate with: python -m dreamdance.run stage=animate model=cogvideox "
                 "model.transformer=%s ...", latest / "transformer")


def _resume_path(resume, folder: Path, force: bool, untrusted: bool) -> Path | None:
    """The checkpoint to resume from; refuses to silently start over existing checkpoints, and
    a checkpoint folder outside this output folder's ``folder`` unless ``untrusted``."""
    if resume in (None, ""):
        if checkpoint.checkpoints(folder) and not force:
            raise InputError(f"out={folder.parent.parent}", "holds training checkpoints: continue "
                             "with train.resume=latest, or start over with force=true (which "
                             f"moves them to {folder.name}.earlier-N)")
        return None
    if resume == "latest":
        found = checkpoint.latest(folder)
        if found is None:
            log.info("train.resume=latest: no checkpoint in %s yet, starting at step 0", folder)
        return found
    path = Path(str(resume)).expanduser()
    if not (path / "state.json").is_file():
        raise InputError(f"train.resume={resume}", "not a checkpoint folder (no state.json)")
    if not untrusted and path.resolve().parent != folder.resolve():
        raise InputError(f"train.resume={resume}", f"not a checkpoint of this output folder "
                         f"({folder}): {checkpoint.UNTRUSTED}")
    return path


def _validation_sample(cfg: DictConfig, data_cfg):
    """The first clip of the dataset's ``val`` split, built once; None when there is none."""
    from dreamdance.train.dataset import ClipDataset
    from dreamdance.train.layout import read_metadata

    if not cfg.train.validation.every:
        return None
    if not any(r.split == "val" for r in read_metadata(cfg.data)):
        log.warning("no clip with split \"val\" in %s: validation videos are off", cfg.data)
        return None
    return ClipDataset(cfg.data, data_cfg, seed=cfg.seed, split="val").sample(0)

