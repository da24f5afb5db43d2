"""Benchmark the animate model against the CogVideoX baseline it extends, in the same run.

    python -m tools.bench_animate [repeats=5] [quick=false] [json=OUT]

1. Per step: our transformer (all conditions: background + mask, pose, character, CLIP tokens;
   the pose and character tokens precomputed, as the pipeline does once per call) against diffusers' CogVideoXTransformer3DModel at the same config (the base image-to-video
   model on [noisy latent ‖ image latent]); median seconds per forward and the ratio
   (target ≤ 1.05).
2. Per pipeline call: our DreamDancePipeline against diffusers' CogVideoXImageToVideoPipeline
   on the same tiny components (VAE, scheduler; the base transformer vs ours converted from it),
   with and without classifier-free guidance; median seconds and the ratio (target ≤ 1.10).
   Ours encodes five condition videos (background, mask, three pose videos) where the baseline
   encodes one image; both run guidance as one transformer call on a batch of two.
3. With a GPU (``suite(gpu=True)``): the CogVideoX-5B I2V transformer config with random
   weights in bfloat16 at 768x768, 49 frames: seconds per step and peak GPU memory of ours and
   of the base, and the same with model CPU offload (the weights moved to the GPU for the step
   and back, as a one-step call pays it).

Run alone it measures 1. and 2. (``quick=true``: one layer at a 3x8x8 latent, one-step calls
at 5 frames, at most 2 repeats) and prints them; ``json=``: the figures are also written there.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import numpy as np
import torch

from tools.bench_common import (
    BenchOptions,
    bench_main,
    cuda_available,
    cuda_sync,
    make_row,
    median_time,
    median_times_paired,
    peak_memory_gb,
    quick_repeats,
    skipped_row,
)

BASE = "diffusers CogVideoXTransformer3DModel"
BASE_PIPE = "diffusers CogVideoXImageToVideoPipeline"
# the transformer of THUDM/CogVideoX-5b-I2V, its sample size set to 768x768 (latent 96x96)
CONFIG_5B = dict(num_attention_heads=48, attention_head_dim=64, in_channels=32, out_channels=16,
                 time_embed_dim=512, text_embed_dim=4096, num_layers=42, sample_width=96,
                 sample_height=96, sample_frames=49, patch_size=2, max_text_seq_length=226,
                 use_rotary_positional_embeddings=True, use_learned_positional_embeddings=True)


def per_step(repeats: int = 5, layers: int = 2, heads: int = 4, head_dim: int = 32,
             frames: int = 5, size: int = 16) -> dict:
    """Median forward seconds of the base and of ours at one config, and their ratio."""
    from diffusers import CogVideoXTransformer3DModel

    from dreamdance.animate.convert import from_cogvideox

    torch.manual_seed(0)
    base = CogVideoXTransformer3DModel(
        num_attention_heads=heads, attention_head_dim=head_dim, in_channels=32, out_channels=16,
        time_embed_dim=64, text_embed_dim=64, num_layers=layers, sample_width=size,
        sample_height=size, sample_frames=4 * (frames - 1) + 1, max_text_seq_length=16,
        use_rotary_positional_embeddings=True).eval()
    ours = from_cogvideox(base, clip_embed_dim=32).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, frames, 16, size, size, generator=g)
    bg = torch.randn(1, frames, 32, size, size, generator=g)
    pose = torch.randn(1, frames, 48, size, size, generator=g)
    char = torch.randn(1, frames, 16, size, size, generator=g)
    clip = torch.randn(1, 16, 32, generator=g)
    t = torch.tensor([500])
    rope = ours.rotary_embedding(frames, size, size)
    text = ours.encode_image(clip, 1)
    with torch.no_grad():
        pose_tokens, char_tokens = ours.condition_tokens(pose, char)  # once per call, as the
        base_s, ours_s, raw_s = median_times_paired([  # pipeline does; a step's work alternates
            lambda: base(torch.cat([x, bg[:, :, :16]], 2), text, t, image_rotary_emb=rope),
            lambda: ours(x, bg, t, clip, image_rotary_emb=rope, pose_tokens=pose_tokens,
                         character_tokens=char_tokens),
            lambda: ours(x, bg, t, clip, pose, char, image_rotary_emb=rope)], repeats * 4)
    return {"config": {"layers": layers, "heads": heads, "head_dim": head_dim,
                       "latent": [frames, size, size]},
            "base_s": base_s, "ours_s": ours_s, "ours_raw_s": raw_s, "ratio": ours_s / base_s,
            "target": 1.05}


def pipeline_overhead(repeats: int = 5, steps: int = 4, frames: int = 9, size: int = 64) -> dict:
    """Median seconds per call of diffusers' I2V pipeline and ours on the same tiny parts."""
    import PIL.Image
    from diffusers import CogVideoXImageToVideoPipeline

    from dreamdance.animate.components import tiny_components
    from dreamdance.animate.pipeline import DreamDancePipeline

    parts = tiny_components("1.0")
    base = _base_of(parts["transformer"])
    baseline = CogVideoXImageToVideoPipeline(tokenizer=None, text_encoder=None, vae=parts["vae"],
                                             transformer=base, scheduler=parts["scheduler"])
    ours = DreamDancePipeline(**parts)
    for pipe in (baseline, ours):
        pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(0)
    image = rng.random((size, size, 3)).astype(np.float32)
    prompt = torch.randn(1, 16, 32, generator=torch.Generator().manual_seed(0))
    video = np.repeat(image[None], frames, 0)
    character = np.concatenate([image, np.ones((size, size, 1), np.float32)], -1)
    results = {}
    for guidance in (1.0, 6.0):
        def run_baseline(guidance=guidance):
            baseline(image=PIL.Image.fromarray((image * 255).astype(np.uint8)),
                     prompt_embeds=prompt, negative_prompt_embeds=torch.zeros_like(prompt),
                     num_frames=frames, height=size, width=size, num_inference_steps=steps,
                     guidance_scale=guidance, output_type="np", max_sequence_length=16,
                     generator=torch.Generator().manual_seed(0))

        def run_ours(guidance=guidance):
            ours(character=character, background_video=video,
                 mask_video=np.ones((frames, size, size), np.float32),
                 pose_videos={k: video for k in ("body", "face", "hand")}, num_frames=frames,
                 height=size, width=size, num_inference_steps=steps, guidance_scale=guidance,
                 generator=torch.Generator().manual_seed(0))

        b, o = median_times_paired([run_baseline, run_ours], repeats)
        results[f"guidance_{guidance:g}"] = {"baseline_s": b, "ours_s": o, "ratio": o / b}
    return {"frames": frames, "size": size, "steps": steps, **results, "target": 1.10}


def suite(repeats: int = 5, gpu: bool = False, quick: bool = False) -> list[dict]:
    """Rows for ``tools.bench_all``: per step and per pipeline call against the diffusers
    baselines on CPU, and with ``gpu`` the 5B config on CUDA (skipped with a note without it)."""
    n = quick_repeats(repeats, quick)
    result = cpu_figures(n, quick)
    rows = _step_rows(result["per_step"], n) + _pipeline_rows(result["pipeline"], n)
    if gpu:
        rows += gpu_rows(n, quick)
    return rows


def cpu_figures(repeats: int, quick: bool = False) -> dict:
    """:func:`per_step` and :func:`pipeline_overhead` (``quick``: at their smallest sizes)."""
    step_cfg = dict(layers=1, heads=2, head_dim=16, frames=3, size=8) if quick else {}
    pipe_cfg = dict(steps=1, frames=5, size=64) if quick else {}
    return {"per_step": per_step(repeats, **step_cfg),
            "pipeline": pipeline_overhead(repeats, **pipe_cfg),
            "threads": torch.get_num_threads(), "loadavg": os.getloadavg()}


def _step_rows(result: dict, repeats: int) -> list[dict]:
    c = result["config"]
    layers = f"{c['layers']} layer{'s' if c['layers'] != 1 else ''}"
    case = f"per step ({layers}, latent {'x'.join(map(str, c['latent']))})"
    return [make_row("animate", case, "time", "s", result["ours_s"], result["base_s"], BASE,
                     f"<= {result['target']}", repeats=repeats,
                     notes=f"tokens precomputed (raw path {result['ours_raw_s']:.4g} s); "
                           f"{c['heads']} heads x {c['head_dim']}, float32, "
                           f"{torch.get_num_threads()} threads")]


def _pipeline_rows(result: dict, repeats: int) -> list[dict]:
    size = f"{result['frames']} frames {result['size']}x{result['size']}, {result['steps']} step(s)"
    return [make_row("animate", f"pipeline call, guidance {g} ({size})", "time", "s",
                     result[f"guidance_{g}"]["ours_s"], result[f"guidance_{g}"]["baseline_s"],
                     BASE_PIPE, f"<= {result['target']}", repeats=repeats,
                     notes="tiny components; ours encodes 5 condition videos")
            for g in ("1", "6")]


def gpu_rows(repeats: int, quick: bool = False) -> list[dict]:
    """Seconds per step and peak GPU memory of ours and of the base at the 5B config (768x768,
    49 frames; ``quick``: 2 layers at 256x256, 9 frames), with and without model CPU offload."""
    cfg = dict(CONFIG_5B, num_layers=2, sample_width=32, sample_height=32, sample_frames=9) \
        if quick else CONFIG_5B
    case = (f"5B config{' (2 layers)' if quick else ''}, {8 * cfg['sample_height']}x"
            f"{8 * cfg['sample_width']}, {cfg['sample_frames']} frames")
    cases = [(f"per step ({case})", "time", "s", "<= 1.05"),
             (f"peak memory per step ({case})", "memory", "GB", None),
             (f"per step, model CPU offload ({case})", "time", "s", None),
             (f"peak memory per step, model CPU offload ({case})", "memory", "GB", None)]
    if not cuda_available():
        return [skipped_row("animate", c, m, u, "needs CUDA, not available here", BASE, t)
                for c, m, u, t in cases]
    ours, base = _gpu_figures(cfg, repeats)
    notes = ["random weights, bfloat16", "torch.cuda.max_memory_allocated",
             "weights moved to the GPU for the step and back", "torch.cuda.max_memory_allocated"]
    return [make_row("animate", c, m, u, o, b, BASE, t, "cuda", repeats, note)
            for (c, m, u, t), o, b, note in zip(cases, ours, base, notes, strict=True)]


def _gpu_figures(cfg: dict, repeats: int) -> tuple[list[float], list[float]]:
    """[s, GB, s offloaded, GB offloaded] of ours and of the base at ``cfg`` on CUDA."""
    from diffusers import CogVideoXTransformer3DModel

    from dreamdance.animate.convert import from_cogvideox

    torch.manual_seed(0)
    with torch.device("cuda"):
        base = CogVideoXTransformer3DModel(**cfg).to(torch.bfloat16).eval()
        ours = from_cogvideox(base, torch_dtype=torch.bfloat16, clip_embed_dim=1024).eval()
    frames, h, w = (cfg["sample_frames"] - 1) // 4 + 1, cfg["sample_height"], cfg["sample_width"]
    g = torch.Generator("cuda").manual_seed(0)

    def randn(*shape):
        return torch.randn(1, *shape, generator=g, device="cuda", dtype=torch.bfloat16)

    x, bg, pose, char = randn(frames, 16, h, w), randn(frames, 32, h, w), \
        randn(frames, 48, h, w), randn(frames, 16, h, w)
    clip, t = randn(257, 1024), torch.tensor([500], device="cuda")
    rope = ours.rotary_embedding(frames, h, w, device=torch.device("cuda"))
    with torch.no_grad():
        text = ours.encode_image(clip, 1)
    calls = {"ours": (ours, lambda: ours(x, bg, t, clip, pose, char, image_rotary_emb=rope)),
             "base": (base, lambda: base(torch.cat([x, bg[:, :, :16]], 2), text, t,
                                         image_rotary_emb=rope))}
    for model, _ in calls.values():
        model.to("cpu")
    figures = {name: _one_model_on_gpu(model, call, repeats)
               for name, (model, call) in calls.items()}
    return figures["ours"], figures["base"]


def _one_model_on_gpu(model: torch.nn.Module, call, repeats: int) -> list[float]:
    """[s, GB] with ``model`` resident on the GPU, then [s, GB] moving it there and back per
    call; ``model`` is on the CPU before and after, so only its weights count."""

    def resident():
        with torch.no_grad():
            call()

    def offloaded():
        model.to("cuda")
        resident()
        model.to("cpu")

    torch.cuda.empty_cache()
    model.to("cuda")
    figures = [median_time(resident, repeats, sync=cuda_sync), peak_memory_gb(resident, "cuda")]
    model.to("cpu")
    torch.cuda.empty_cache()
    figures += [median_time(offloaded, repeats, sync=cuda_sync), peak_memory_gb(offloaded, "cuda")]
    return figures


def _base_of(ours):
    """The base CogVideoX transformer inside ours (its own weights, first 32 input channels)."""
    from diffusers import CogVideoXTransformer3DModel

    base_keys = inspect.signature(CogVideoXTransformer3DModel.__init__).parameters
    cfg = {k: v for k, v in ours.config.items() if k in base_keys and k != "self"}
    cfg["in_channels"] = 32
    base = CogVideoXTransformer3DModel(**cfg)
    state = {k: v for k, v in ours.state_dict().items() if k in base.state_dict()}
    w = state["patch_embed.proj.weight"]
    state["patch_embed.proj.weight"] = w[:, :32] if w.ndim == 4 else w
    base.load_state_dict(state)
    return base.eval()


@dataclass
class Options(BenchOptions):
    """The command line's keys (see the module's docstring)."""

    repeats: int = 5


def show(result: dict) -> None:
    """Per step and per pipeline call, one line each."""
    s = result["per_step"]
    print(f"per step  base {s['base_s'] * 1e3:7.2f} ms  ours {s['ours_s'] * 1e3:7.2f} ms  "
          f"ratio {s['ratio']:.3f} (target <= {s['target']})")
    for key, r in result["pipeline"].items():
        if key.startswith("guidance"):
            print(f"pipeline {key:<13} diffusers {r['baseline_s']:.3f} s  ours {r['ours_s']:.3f} s"
                  f"  ratio {r['ratio']:.2f} (target <= {result['pipeline']['target']})")


def main(argv: list[str] | None = None) -> dict | None:
    """The command line (see the module's docstring); returns the figures."""
    return bench_main(__doc__, Options, lambda o: cpu_figures(quick_repeats(o.repeats, o.quick),
                                                              o.quick),
                      show, argv, "tools.bench_animate")


if __name__ == "__main__":
    main()
