"""The DreamDance trainer: fine-tune the gated video-inpainting transformer with accelerate.

One optimiser step (``train.grad_accum`` micro-batches per process):

1. a batch of :class:`~dreamdance.train.sample.TrainSample` (the dataset builds them on the
   fly; sample ``i`` is the same on every run, so the data position is just a count);
2. for the first ``train.black_box_steps`` steps the character boxes of the background video
   are filled with black (the paper's guard against copying the background);
3. the frozen VAE encodes the target, background, mask and pose videos and the character (cut-out
   composited on grey as the pipeline does), the frozen CLIP encoder the character's tokens;
4. noise at a uniform timestep, v-prediction target; pose and character dropped per sample with
   ``train.drop_pose`` / ``train.drop_character``, exactly as the pipeline's unconditional branch;
5. the mask-weighted v-loss (:mod:`dreamdance.train.loss`), backward, clip, step.

With ``train.cache.samples`` > 0, step 3 is done once for a fixed set of samples and read back
from disk (:mod:`dreamdance.train.cache`).

Every random draw of a micro-step (noise, timesteps, dropout) comes from a generator seeded by
``(seed, micro-step, process)``, so a resumed run continues exactly as an uninterrupted one.
The distributed engine is accelerate's (DDP, DeepSpeed ZeRO or FSDP from ``accelerate launch``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from dreamdance.animate.pipeline import DreamDancePipeline
from dreamdance.errors import InputError
from dreamdance.inputs import plain, resolve_dtype
from dreamdance.train import cache, checkpoint
from dreamdance.train.adapters import make_optimizer, set_trainable
from dreamdance.train.dropout import keep_masks
from dreamdance.train.loss import fill_boxes, latent_mask, loss_weights, v_loss
from dreamdance.train.sample import POSE_KEYS, collate

log = logging.getLogger(__name__)

GATE_BUCKETS = 10  # timestep buckets for the logged gate values


class IndexSampler(Sampler):
    """Sample indices for one process, from a micro-step on: micro-step ``m`` of process ``r``
    takes samples ``(m·world + r)·B … (m·world + r)·B + B − 1`` — disjoint across processes and
    steps, and a pure function of the position, so resuming needs only the step."""

    def __init__(self, start: int, rank: int, world: int, batch_size: int):
        self.start, self.rank, self.world, self.batch = start, rank, world, batch_size

    def __iter__(self) -> Iterator[int]:
        m = self.start
        while True:
            first = (m * self.world + self.rank) * self.batch
            yield from range(first, first + self.batch)
            m += 1


def step_generator(seed: int, micro: int, rank: int) -> torch.Generator:
    """The generator of one micro-step of one process."""
    state = np.random.SeedSequence([seed, micro, rank]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def check_frames(frames: int, height: int, width: int, transformer, multiple: int) -> None:
    """Refuse, before the first step, a clip size the model cannot take."""
    p_t = transformer.config.patch_size_t
    k = (frames - 1) // 4
    ok = frames >= 1 and (frames - 1) % 4 == 0 and (p_t is None or (k + 1) % p_t == 0)
    if not ok:
        valid = [f for f in range(1, frames + 9) if (f - 1) % 4 == 0
                 and (p_t is None or ((f - 1) // 4 + 1) % p_t == 0)]
        near = sorted(valid, key=lambda f: abs(f - frames))[:2]
        rule = "4k + 1" + (f" with (k + 1) a multiple of {p_t}" if p_t else "")
        raise InputError(f"train.data.frames={frames}", f"the model takes {rule} frames "
                         f"(e.g. {' or '.join(map(str, sorted(near)))})")
    for key, value in (("height", height), ("width", width)):
        if value % multiple:
            raise InputError(f"train.data.{key}={value}", f"must be a multiple of {multiple}")


class Trainer:
    """Fine-tunes a DreamDance transformer.

    Args:
        cfg: the ``train`` section of the config (see ``conf/stage/train.yaml``).
        components: ``vae, transformer, scheduler, image_encoder, feature_extractor``
            (:mod:`dreamdance.animate.components`).
        dataset: indexable by any non-negative int, returning ``TrainSample.tensors()``.
        folder: where checkpoints, logs and validation videos go (``out/train``).
        seed: the run's seed.
        validation: a held-out sample to animate every ``validation.every`` steps, or None.
        cpu: train on the CPU even when CUDA is available.
    """

    def __init__(self, cfg: Any, components: dict, dataset, folder: str | Path, seed: int = 0,
                 validation=None, cpu: bool = False):
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration

        self.cfg, self.seed, self.dataset = cfg, seed, dataset
        self.folder = Path(folder)
        self.pipe = DreamDancePipeline(**components)
        model = self.pipe.transformer
        check_frames(cfg.data.frames, cfg.data.height, cfg.data.width, model,
                     self.pipe.pixel_multiple)
        precision = cfg.mixed_precision
        if precision == "auto":
            precision = "bf16" if torch.cuda.is_available() else "no"
        self.acc = Accelerator(
            cpu=cpu, gradient_accumulation_steps=cfg.grad_accum, mixed_precision=precision,
            log_with="tensorboard" if cfg.tensorboard else None,
            project_config=ProjectConfiguration(project_dir=str(self.folder),
                                                logging_dir=str(self.folder / "logs")))
        self.device = self.acc.device
        for frozen in (self.pipe.vae, self.pipe.image_encoder):
            frozen.requires_grad_(False).eval().to(self.device)
        self.pipe.vae.enable_slicing()
        params = set_trainable(model, cfg.trainable, cfg.lora.rank, cfg.lora.alpha,
                               tuple(cfg.lora.targets))
        if cfg.gradient_checkpointing:
            model.enable_gradient_checkpointing()
        model.to(self.device).train()
        optimizer = make_optimizer(params, cfg.optimizer, cfg.lr, tuple(cfg.betas),
                                   cfg.weight_decay, cfg.eps)
        from diffusers.optimization import get_scheduler

        world = self.acc.num_processes  # accelerate steps the schedule once per process
        lr_scheduler = get_scheduler(cfg.lr_scheduler, optimizer,
                                     num_warmup_steps=cfg.warmup_steps * world,
                                     num_training_steps=cfg.steps * world)
        self.model, self.optimizer, self.lr_scheduler = self.acc.prepare(
            model, optimizer, lr_scheduler)
        self.params = params
        self.ema = self._new_ema() if cfg.ema.enabled else None
        self.acc.register_save_state_pre_hook(self._save_hook)
        self.acc.register_load_state_pre_hook(self._load_hook)
        self.validation = validation
        self.step = 0
        self.history: list[float] = []  # loss per step taken
        self.durations: list[float] = []  # seconds per step taken (checkpoints and validation
        #                                   excluded)

    def _new_ema(self):
        """A diffusers ``EMAModel`` of the trainable parameters, starting from their values."""
        from diffusers.training_utils import EMAModel

        return EMAModel(self.params, decay=self.cfg.ema.decay)

    def _trainable_names(self) -> list[str]:
        """The names of the trainable parameters, in the order of ``self.params``."""
        model = self.acc.unwrap_model(self.model)
        return [k for k, p in model.named_parameters() if p.requires_grad]

    # -- checkpoint hooks: only the trainable weights are stored ------------------------------

    def _save_hook(self, models, weights, output_dir):
        if len(weights) != len(models):  # DeepSpeed / FSDP save the model themselves
            return
        if self.acc.is_main_process:
            checkpoint.save_trainable(self.acc.unwrap_model(models[0]), output_dir)
        weights.clear()

    def _load_hook(self, models, input_dir):
        if models:
            checkpoint.load_trainable(self.acc.unwrap_model(models.pop()), input_dir)

    # -- one step ------------------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, batch: dict[str, torch.Tensor], black_boxes: bool) -> dict[str, torch.Tensor]:
        """VAE latents and CLIP tokens of a batch (the conditions as the pipeline encodes them).

        Returns:
            ``latents [B, F', 16, h, w]``, ``background [B, F', 32, h, w]`` (background then
            mask), ``pose [B, F', 48, h, w]``, ``character [B, F', 16, h, w]``,
            ``image_embeds [B, L, D]``, ``mask [B, F', 1, h, w]`` (the latent inpainting mask).
        """
        pipe, device = self.pipe, self.device
        batch = {k: v.to(device) for k, v in batch.items()}
        background = batch["background"]  # [B, F, 3, H, W]
        if black_boxes:
            background = fill_boxes(background, batch["boxes"])  # [B, F, 3, H, W]
        mask = batch["mask"].unsqueeze(2).expand(-1, -1, 3, -1, -1)  # [B, F, 3, H, W]
        enc = pipe.encode_conditions(batch["character"], background, mask,
                                     {k: batch[f"pose_{k}"] for k in POSE_KEYS},
                                     target=batch["video"])
        enc = {k: v.float() for k, v in enc.items()}
        latents = enc["latents"]  # [B, F', 16, h, w]
        n, h, w = latents.shape[1], latents.shape[-2], latents.shape[-1]
        return {**enc, "mask": latent_mask(batch["mask"], n, h, w)}

    def loss(self, enc: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        """The mask-weighted v-loss of one encoded batch (noise, timesteps and dropout drawn
        from ``generator``)."""
        cfg, scheduler = self.cfg, self.pipe.scheduler
        x0 = enc["latents"]
        b = x0.shape[0]
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=generator)
        keep_pose, keep_character = keep_masks(b, cfg.drop_pose, cfg.drop_character, generator)
        t = t.to(self.device)
        noisy = scheduler.add_noise(x0, noise, t)  # [B, F', 16, h, w]
        target = scheduler.get_velocity(x0, noise, t)  # [B, F', 16, h, w]
        model = self.acc.unwrap_model(self.model)
        rotary = model.rotary_embedding(x0.shape[1], x0.shape[-2], x0.shape[-1], self.device)
        prediction = self.model(
            hidden_states=noisy, background=enc["background"], timestep=t,
            image_embeds=enc["image_embeds"], pose=enc["pose"], character=enc["character"],
            ofs=model.ofs_condition(), image_rotary_emb=rotary,
            keep_pose=keep_pose.bool().to(self.device),
            keep_character=keep_character.bool().to(self.device), return_dict=False)[0]
        return v_loss(prediction, target, loss_weights(enc["mask"], cfg.mask_weight))

    # -- precomputed latents ---------------------------------------------------------------------

    def build_cache(self) -> cache.CachedLatents | None:
        """Encode the first ``cache.samples`` samples once (each process its share), or None
        when the cache is off; see :mod:`dreamdance.train.cache`."""
        cfg, acc = self.cfg, self.acc
        n = cfg.cache.samples
        if not n:
            return None
        folder = Path(cfg.cache.folder) if cfg.cache.folder else self.folder / "cache"
        key = cache.fingerprint(data=plain(cfg.data), seed=self.seed,
                                root=str(getattr(self.dataset, "root", "")),
                                vae=dict(self.pipe.vae.config),
                                clip=self.pipe.image_encoder.config.to_dict())
        cache.prepare(folder, key, acc.is_main_process)
        acc.wait_for_everyone()
        todo = [i for i in range(acc.process_index, n, acc.num_processes)
                if not cache.file(folder, i).is_file()]
        from tqdm.auto import tqdm

        for i in tqdm(todo, desc="cache latents", disable=not acc.is_local_main_process):
            batch = collate([self.dataset[i]])
            enc = self.encode(batch, black_boxes=False)
            boxed = fill_boxes(batch["background"].to(self.device), batch["boxes"].to(self.device))
            enc["background_boxed"] = torch.cat(
                [self.pipe.encode_video(boxed).float(), enc["background"][:, :, 16:]], 2)
            cache.write(folder, i, {k: v[0] for k, v in enc.items()})
        acc.wait_for_everyone()
        return cache.CachedLatents(folder, n)

    def cached(self, batch: dict[str, torch.Tensor], black_boxes: bool) -> dict[str, torch.Tensor]:
        """A batch of cached latents as :meth:`encode` returns them."""
        enc = {k: v.to(self.device) for k, v in batch.items()}
        boxed = enc.pop("background_boxed")
        if black_boxes:
            enc["background"] = boxed
        return enc

    # -- the loop ------------------------------------------------------------------------------

    def train(self) -> list[float]:
        """Train up to ``cfg.steps`` optimiser steps (from the resumed step); returns the loss
        of each step taken (mean over processes and accumulation)."""
        cfg, acc = self.cfg, self.acc
        if cfg.tensorboard:
            acc.init_trackers("dreamdance")
        micro_start = self.step * cfg.grad_accum
        latents = self.build_cache()
        loader = DataLoader(latents or self.dataset, batch_size=cfg.batch_size, collate_fn=collate,
                            sampler=IndexSampler(micro_start, acc.process_index,
                                                 acc.num_processes, cfg.batch_size),
                            num_workers=cfg.num_workers,
                            persistent_workers=cfg.num_workers > 0)
        batches = iter(loader)
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", unit="step",
                   disable=not acc.is_local_main_process)
        start = time.perf_counter()
        while self.step < cfg.steps:
            tick = time.perf_counter()
            total = torch.zeros((), device=self.device)
            for a in range(cfg.grad_accum):
                micro = self.step * cfg.grad_accum + a
                with acc.accumulate(self.model):
                    black = self.step < cfg.black_box_steps
                    batch = next(batches)
                    enc = self.cached(batch, black) if latents else self.encode(batch, black)
                    loss = self.loss(enc, step_generator(self.seed, micro, acc.process_index))
                    acc.backward(loss)
                    if acc.sync_gradients and cfg.max_grad_norm:
                        acc.clip_grad_norm_(self.params, cfg.max_grad_norm)
                    self.optimizer.step()
                    self.lr_scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
                total += loss.detach() / cfg.grad_accum
            if self.ema is not None:
                self.ema.step(self.params)
            self.step += 1
            value = acc.gather(total[None]).mean().item()
            if not math.isfinite(value):
                raise FloatingPointError(f"loss is {value} at step {self.step}: lower train.lr "
                                         "or check the data")
            self.history.append(value)
            self.durations.append(time.perf_counter() - tick)
            bar.update()
            bar.set_postfix(loss=f"{value:.4f}")
            self._log(value, time.perf_counter() - start)
            if cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0:
                self.save()
            if (self.validation is not None and cfg.validation.every
                    and self.step % cfg.validation.every == 0):
                self.validate()
        bar.close()
        if cfg.checkpoint.every and self.step % cfg.checkpoint.every:
            self.save()  # the last step is always saved
        acc.end_training()
        return self.history

    def _log(self, loss: float, elapsed: float) -> None:
        cfg = self.cfg
        if not cfg.log_every or self.step % cfg.log_every:
            return
        values = {"loss": loss, "lr": self.lr_scheduler.get_last_lr()[0]}
        values.update(self.gate_values())
        if self.acc.is_main_process:
            log.info("step %d  loss %.5f  lr %.3g  %.2f s/step", self.step, loss, values["lr"],
                     elapsed / max(1, len(self.history)))
        self.acc.log(values, step=self.step)

    @torch.no_grad()
    def gate_values(self) -> dict[str, float]:
        """tanh of the pose and character gates at the centre of each timestep bucket (mean
        over channels with per-channel gates): ``gate/pose/t0050`` … (the paper's gate plot)."""
        model = self.acc.unwrap_model(self.model)
        n = self.pipe.scheduler.config.num_train_timesteps
        t = ((torch.arange(GATE_BUCKETS) + 0.5) * n / GATE_BUCKETS).long().to(self.device)
        emb = model.timestep_embedding(t, model.ofs_condition(), model.pose_gate.weight.dtype)  # [K, D_t]
        out = {}
        for name, gate in (("pose", model.pose_gate), ("character", model.character_gate)):
            values = torch.tanh(gate(emb)).mean(-1)  # [K]
            out.update({f"gate/{name}/t{int(s):04d}": float(v)
                        for s, v in zip(t, values, strict=True)})
        return out

    # -- checkpoints and validation ------------------------------------------------------------

    def save(self) -> Path:
        """Write ``checkpoints/step-N`` (atomically, pruning to ``checkpoint.keep``)."""
        acc, cfg = self.acc, self.cfg
        folder = self.folder / "checkpoints"
        tmp = folder / f".{checkpoint.name(self.step)}.tmp"
        if acc.is_main_process:
            checkpoint.temporary(folder, self.step)
        acc.wait_for_everyone()
        acc.save_state(str(tmp), safe_serialization=True)
        acc.wait_for_everyone()  # every process's files are in tmp before they are hashed
        final = folder / checkpoint.name(self.step)
        if acc.is_main_process:
            model = acc.unwrap_model(self.model)
            state = {"step": self.step, "samples": self.step * cfg.grad_accum * cfg.batch_size
                     * acc.num_processes, "micro_steps": self.step * cfg.grad_accum,
                     "trainable": cfg.trainable}
            if self.ema is not None:
                state["ema"] = checkpoint.save_ema(self.ema, self._trainable_names(), tmp)
            if cfg.checkpoint.export_transformer:
                name = cfg.checkpoint.export_dtype
                dtype = (None if name is None
                         else resolve_dtype(name, None, "train.checkpoint.export_dtype"))
                with self._ema_weights():
                    checkpoint.export_transformer(model, tmp / "transformer", dtype)
            final = checkpoint.finish(tmp, self.step, state, cfg.checkpoint.keep)
            log.info("checkpoint: %s", final)
        acc.wait_for_everyone()
        return final

    def start_over(self) -> Path | None:
        """Set the earlier run's checkpoints aside (``checkpoints.earlier-N``), so that pruning
        and ``train.resume=latest`` see only this run's; returns where they went (None when
        there were none, and on the other processes)."""
        moved = None
        if self.acc.is_main_process:
            moved = checkpoint.set_aside(self.folder / "checkpoints")
        self.acc.wait_for_everyone()
        return moved

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint folder: weights, optimiser, schedule, RNG, step, EMA.

        The checkpoint must be recorded, unchanged, in the manifest of the folder holding it
        (:func:`dreamdance.train.checkpoint.verify`) unless ``train.resume_untrusted``.
        """
        path = Path(path)
        if self.cfg.resume_untrusted:
            log.warning("train.resume_untrusted=true: loading %s unchecked (its pickled files "
                        "can run any code)", path)
        else:
            checkpoint.verify(path)
        state = checkpoint.read_state(path)
        if state.get("trainable") not in (None, self.cfg.trainable):
            raise InputError(f"train.resume={path}", f"made with train.trainable="
                             f"{state['trainable']}, this run has {self.cfg.trainable}")
        self.acc.load_state(str(path))
        if self.ema is not None:
            self._load_ema(path, state)
        self.step = int(state["step"])
        log.info("resumed from %s at step %d", path, self.step)

    def _load_ema(self, path: Path, state: dict) -> None:
        """Restore the whole EMA (weights and step count); one without EMA state starts the
        EMA from the resumed weights, and says so."""
        if "ema" not in state or not (path / checkpoint.EMA).is_file():
            log.warning("%s holds no EMA state (saved with train.ema.enabled=false or by an "
                        "older version): the EMA starts again from its weights", path)
            self.ema = self._new_ema()
            return
        checkpoint.load_ema(self.ema, self._trainable_names(), path, state["ema"])
        if self.ema.decay != self.cfg.ema.decay:
            log.info("train.ema.decay=%g (the checkpoint's EMA used %g)", self.cfg.ema.decay,
                     self.ema.decay)
            self.ema.decay = self.cfg.ema.decay

    @contextlib.contextmanager
    def _ema_weights(self) -> Iterator[None]:
        """A context in which the model holds its EMA weights (no-op without EMA)."""
        if self.ema is None:
            yield
            return
        self.ema.store(self.params)
        self.ema.copy_to(self.params)
        try:
            yield
        finally:
            self.ema.restore(self.params)

    def validate(self) -> Path | None:
        """Animate the held-out sample and write ``validation/step-N.mp4`` (target | output)."""
        from dreamdance.media import write_video

        acc, cfg, sample = self.acc, self.cfg, self.validation
        path = None
        if acc.is_main_process:
            model = acc.unwrap_model(self.model)
            model.eval()
            with self._ema_weights(), acc.autocast():
                frames = self.pipe(
                    character=sample.character, background_video=sample.background,
                    mask_video=sample.mask, pose_videos=sample.poses,
                    num_inference_steps=cfg.validation.steps,
                    guidance_scale=cfg.validation.guidance,
                    generator=torch.Generator().manual_seed(self.seed), output_type="np",
                ).frames[0]
            model.train()
            side = np.concatenate([sample.video, np.asarray(frames, np.float32)], 2)
            path = write_video(self.folder / "validation" / f"{checkpoint.name(self.step)}.mp4",
                               side, fps=cfg.validation.fps)
            log.info("validation: %s", path)
        acc.wait_for_everyone()
        return path
