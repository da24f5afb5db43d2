"""A tiny random Wan-Animate pipeline of the real architecture, for tests and benchmarks (the
``model=wan_animate`` code path on a CPU in about a second; its output is noise)."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_wan_animate(folder: str | Path, seed: int = 0) -> Path:
    """A one-layer Wan-Animate pipeline of the real architecture (a 16-pixel face encoder, a
    word-level tokenizer built in memory, a one-layer UMT5), saved with save_pretrained."""
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanAnimatePipeline,
        WanAnimateTransformer3DModel,
    )
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPVisionConfig,
        CLIPVisionModel,
        PreTrainedTokenizerFast,
        UMT5Config,
        UMT5EncoderModel,
    )

    from dreamdance.animate.components import clip_processor_class

    words = ["<pad>", "</s>", "<unk>", "a", "character", "dancing", "scenic", "background"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>",
                                        eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(words), d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8))
    image_encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=4, num_hidden_layers=2, num_attention_heads=2, image_size=4,
        intermediate_size=16, patch_size=1))
    transformer = WanAnimateTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36,
        latent_channels=16, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
        num_layers=2, image_dim=4, rope_max_seq_len=32,
        motion_encoder_channel_sizes={"4": 16, "8": 16, "16": 16}, motion_encoder_size=16,
        motion_style_dim=16, motion_dim=4, motion_encoder_dim=16, face_encoder_hidden_dim=16,
        face_encoder_num_heads=2, inject_face_latents_blocks=1, motion_encoder_batch_size=4)
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                        flow_shift=5.0)
    WanAnimatePipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                       scheduler=scheduler, image_processor=clip_processor_class()(crop_size=4, size=4),
                       image_encoder=image_encoder, transformer=transformer
                       ).save_pretrained(folder)
    return Path(folder)
