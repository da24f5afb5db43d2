"""Benchmark the animate model against the CogVideoX baseline it extends, in the same run.

    python -m tools.bench_animate [--repeats 5] [--json OUT]

1. Per step: our transformer (all conditions: background + mask, pose, character, CLIP tokens)
   against diffusers' CogVideoXTransformer3DModel at the same config (the base image-to-video
   model on [noisy latent ‖ image latent]); median seconds per forward and the ratio
   (target ≤ 1.05).
2. Per pipeline call: our DreamDancePipeline against diffusers' CogVideoXImageToVideoPipeline
   on the same tiny components (VAE, scheduler; the base transformer vs ours converted from it),
   with and without classifier-free guidance; median seconds and the ratio (target ≤ 1.10).
   Ours encodes five condition videos (background, mask, three pose videos) where the baseline
   encodes one image, and its unconditional branch (pose and character dropped) is a second
   transformer call rather than a batch of two.
CPU only here; full-size GPU figures need a GPU.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_step(repeats: int = 5, layers: int = 2, heads: int = 4, head_dim: int = 32,
             frames: int = 5, size: int = 16) -> dict:
    """Median forward seconds of the base and of ours at one config, and their ratio."""
    from diffusers import CogVideoXTransformer3DModel

    from dreamdance.animate.transformer import DreamDanceTransformer3DModel

    torch.manual_seed(0)
    base = CogVideoXTransformer3DModel(
        num_attention_heads=heads, attention_head_dim=head_dim, in_channels=32, out_channels=16,
        time_embed_dim=64, text_embed_dim=64, num_layers=layers, sample_width=size,
        sample_height=size, sample_frames=4 * (frames - 1) + 1, max_text_seq_length=16,
        use_rotary_positional_embeddings=True).eval()
    ours = DreamDanceTransformer3DModel.from_cogvideox(base, clip_embed_dim=32).eval()
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
        base_s = _median_time(lambda: base(torch.cat([x, bg[:, :, :16]], 2), text, t,
                                           image_rotary_emb=rope), repeats)
        ours_s = _median_time(lambda: ours(x, bg, t, clip, pose, char, image_rotary_emb=rope),
                              repeats)
    return {"config": {"layers": layers, "heads": heads, "head_dim": head_dim,
                       "latent": [frames, size, size]},
            "base_s": base_s, "ours_s": ours_s, "ratio": ours_s / base_s, "target": 1.05}


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

        b, o = _median_time(run_baseline, repeats), _median_time(run_ours, repeats)
        results[f"guidance_{guidance:g}"] = {"baseline_s": b, "ours_s": o, "ratio": o / b}
    return {"frames": frames, "size": size, "steps": steps, **results, "target": 1.10}


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


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    result = {"per_step": per_step(args.repeats), "pipeline": pipeline_overhead(args.repeats),
              "threads": torch.get_num_threads(), "loadavg": os.getloadavg()}
    s = result["per_step"]
    print(f"per step  base {s['base_s'] * 1e3:7.2f} ms  ours {s['ours_s'] * 1e3:7.2f} ms  "
          f"ratio {s['ratio']:.3f} (target <= {s['target']})")
    for key, r in result["pipeline"].items():
        if key.startswith("guidance"):
            print(f"pipeline {key:<13} diffusers {r['baseline_s']:.3f} s  ours {r['ours_s']:.3f} s"
                  f"  ratio {r['ratio']:.2f} (target <= {result['pipeline']['target']})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
