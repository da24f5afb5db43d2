"""Benchmark a training step: seconds per optimiser step and peak memory.

    python -m tools.bench_train [repeats=5] [gpu=false] [quick=false] [json=OUT]

1. CPU, tiny config (the random parts of ``model=tiny``, 9 frames at 32x32): LoRA and full
   fine-tuning, one clip per step, VAE and CLIP encoding included — the code path of every real
   step, at a size a laptop runs.
2. With a GPU (``gpu=true``): the CogVideoX-5B I2V config with random weights (transformer, VAE and
   CLIP ViT-L/14 at their real sizes), bf16 mixed precision and gradient checkpointing, at
   480x480 and 768x768 with 49 frames, for LoRA and full fine-tuning. For reference, about
   75–78 GB per GPU is reported for fine-tuning CogVideoX-5B-I2V at batch 1.

The steps run through :class:`dreamdance.train.trainer.Trainer` itself on an in-memory clip
(so data loading is not timed); the first step is a warm-up and not counted. ``quick=true``: 5
frames at 16x16 on the CPU, at most 2 repeats. ``json=``: the rows are also written there.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tools.bench_common import (
    BenchOptions,
    bench_main,
    cuda_available,
    make_row,
    quick_repeats,
    skipped_row,
)

BENCH = "train"


def random_sample(frames: int, height: int, width: int, seed: int = 0):
    """A random clip in the training-sample layout (values only matter for their shapes)."""
    from dreamdance.train.sample import TrainSample

    rng = np.random.default_rng(seed)

    def video():
        return rng.random((frames, height, width, 3), dtype=np.float32)

    mask = np.zeros((frames, height, width), np.float32)
    mask[:, height // 4: 3 * height // 4, width // 3: 2 * width // 3] = 1
    character = np.concatenate([video()[0], mask[0][..., None]], -1)
    return TrainSample(name="bench", video=video(), background=video(), boxes=mask, mask=mask,
                       poses={k: video() for k in ("face", "hand", "body")}, character=character)


class _Repeat(torch.utils.data.Dataset):
    def __init__(self, sample):
        self.item = sample.tensors()

    def __len__(self):
        return 1

    def __getitem__(self, index):
        return self.item


def full_size_components(device: str) -> dict:
    """The CogVideoX-5B I2V parts with random weights, built on ``device`` (the VAE and CLIP
    in bf16)."""
    from dreamdance.animate.components import Shapes, random_components
    from tools.bench_animate import CONFIG_5B

    clip = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                num_attention_heads=16, patch_size=14, image_size=224, projection_dim=768)
    with torch.device(device):
        parts = random_components(Shapes(vae={}, base=CONFIG_5B, clip=clip, image_size=224))
    for name in ("vae", "image_encoder"):
        parts[name] = parts[name].to(torch.bfloat16)
    return parts


def measure(components: dict, trainable: str, frames: int, size: int, repeats: int,
            device: str, checkpointing: bool) -> dict:
    """Median seconds per step (after one warm-up step) and peak memory (GB) of training."""
    from hydra import compose, initialize_config_module

    from dreamdance.train.trainer import Trainer
    from tools.bench_common import cpu_peak_gb, reset_cpu_peak

    overrides = ["stage=train", f"train.steps={repeats + 1}", f"train.trainable={trainable}",
                 "train.num_workers=0", "train.tensorboard=false", "train.checkpoint.every=0",
                 "train.validation.every=0", "train.log_every=0", "train.lr_scheduler=constant",
                 "train.warmup_steps=0", f"train.gradient_checkpointing={checkpointing}",
                 f"train.data.frames={frames}", f"train.data.height={size}",
                 f"train.data.width={size}", "train.lora.rank=64" if device == "cuda"
                 else "train.lora.rank=4"]
    with initialize_config_module("dreamdance.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides).train
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    else:
        reset_cpu_peak()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, components, _Repeat(random_sample(frames, size, size)),
                          Path(tmp), cpu=device == "cpu")
        trainer.train()
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = cpu_peak_gb()
    return {"step_s": statistics.median(trainer.durations[1:]), "peak_gb": peak}


def cpu_rows(repeats: int, quick: bool = False) -> list[dict]:
    """LoRA and full fine-tuning steps on the tiny config, on the CPU."""
    from dreamdance.animate.components import tiny_components

    frames, size = (5, 16) if quick else (9, 32)
    rows = []
    for trainable in ("lora", "full"):
        result = measure(tiny_components("1.0"), trainable, frames, size, repeats, "cpu", False)
        case = f"tiny config, {trainable}, {frames} frames {size}x{size}"
        notes = f"VAE + CLIP encoding included; {torch.get_num_threads()} threads"
        rows.append(make_row(BENCH, f"step ({case})", "time", "s", result["step_s"],
                             repeats=repeats, notes=notes))
        rows.append(make_row(BENCH, f"peak memory ({case})", "memory", "GB", result["peak_gb"],
                             repeats=1, notes="process peak resident set"))
    return rows


def gpu_rows(repeats: int, quick: bool = False) -> list[dict]:
    """The 5B config on CUDA at 480x480 and 768x768, 49 frames, LoRA and full, with gradient
    checkpointing; skipped with a note without CUDA."""
    cases = [(size, trainable) for size in (480, 768) for trainable in ("lora", "full")]
    if not cuda_available():
        return [skipped_row(BENCH, f"{what} (5B, {t}, 49 frames {s}x{s})", metric, unit,
                            "no CUDA device here")
                for s, t in cases for what, metric, unit in
                (("step", "time", "s"), ("peak memory", "memory", "GB"))]
    rows = []
    for size, trainable in cases:
        result = measure(full_size_components("cuda"), trainable, 49, size, repeats, "cuda", True)
        case = f"5B, {trainable}, 49 frames {size}x{size}, bf16, gradient checkpointing"
        rows.append(make_row(BENCH, f"step ({case})", "time", "s", result["step_s"],
                             device="cuda", repeats=repeats))
        rows.append(make_row(BENCH, f"peak memory ({case})", "memory", "GB", result["peak_gb"],
                             device="cuda", repeats=1,
                             notes="max allocated; ~75-78 GB reported for full fine-tuning"))
        torch.cuda.empty_cache()
    return rows


def suite(repeats: int = 5, gpu: bool = False, quick: bool = False) -> list[dict]:
    """Rows for ``tools.bench_all``: the tiny config on the CPU, and with ``gpu`` the 5B config
    on CUDA (skipped with a note without it)."""
    n = quick_repeats(repeats, quick)
    rows = cpu_rows(n, quick)
    if gpu:
        rows += gpu_rows(n, quick)
    return rows


@dataclass
class Options(BenchOptions):
    """The command line's keys (see the module's docstring)."""

    repeats: int = 5
    gpu: bool = False  # also the 5B config on CUDA


def show(rows: list[dict]) -> None:
    """One line a row: case, value, notes."""
    for row in rows:
        value = "-" if row["ours"] is None else f"{row['ours']:.4g} {row['unit']}"
        print(f"{row['case']:<72} {value:>12}  {row['notes']}")


def main(argv: list[str] | None = None) -> list[dict] | None:
    """The command line (see the module's docstring); returns the rows."""
    return bench_main(__doc__, Options, lambda o: suite(o.repeats, o.gpu, o.quick), show, argv,
                      "tools.bench_train")


if __name__ == "__main__":
    main()
