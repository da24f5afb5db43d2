"""Which weights train: LoRA on the attention projections (peft) or everything; the layers
DreamDance adds to the base model (f_b, f_p, f_c, the gates, the CLIP projection) always train.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from dreamdance.animate.transformer import NEW_LAYERS
from dreamdance.errors import InputError

log = logging.getLogger(__name__)

TRAINABLE = ("lora", "full")
# f_b is the base's patch embedding, widened by the mask channels: it trains with the new layers.
ALWAYS = (*NEW_LAYERS, "patch_embed.proj")


LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def set_trainable(model: nn.Module, mode: str, rank: int = 64, alpha: float = 64,
                  targets: tuple[str, ...] = LORA_TARGETS) -> list[nn.Parameter]:
    """Mark the trainable parameters of a DreamDance transformer (adding LoRA adapters for
    ``mode="lora"``) and return them; the rest get ``requires_grad=False``.

    Trainable parameters are float32 whatever the model's dtype (mixed precision keeps fp32
    master weights), so a bf16 base with fp32 LoRA and new layers is the memory-lean setting.
    """
    if mode not in TRAINABLE:
        raise InputError(f"train.trainable={mode}", f"must be one of {', '.join(TRAINABLE)}")
    if mode == "lora":
        from peft import LoraConfig

        if rank < 1:
            raise InputError(f"train.lora.rank={rank}", "must be >= 1")
        model.requires_grad_(False)
        model.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=True,
                                     target_modules=list(targets)))
        for name, module in model.named_modules():
            if name.startswith(ALWAYS):
                module.requires_grad_(True)
    else:
        model.requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    count = sum(p.numel() for p in params)
    total = sum(p.numel() for p in model.parameters())
    log.info("trainable (%s): %.2fM of %.2fM parameters", mode, count / 1e6, total / 1e6)
    return params


def make_optimizer(params: list[nn.Parameter], name: str, lr: float, betas: tuple[float, float],
                   weight_decay: float, eps: float) -> torch.optim.Optimizer:
    """AdamW, or 8-bit AdamW from bitsandbytes (CUDA only)."""
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, eps=eps)
    if name == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError as e:
            raise InputError("train.optimizer=adamw8bit", "needs bitsandbytes (pip install "
                             "bitsandbytes; CUDA only)") from e
        return bnb.optim.AdamW8bit(params, lr=lr, betas=betas, weight_decay=weight_decay, eps=eps)
    raise InputError(f"train.optimizer={name}", "must be adamw or adamw8bit")
