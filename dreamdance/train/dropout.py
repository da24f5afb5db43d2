"""Condition dropout: which samples of a batch keep their pose and character conditions.

A dropped condition is left out of the transformer's input exactly as the pipeline's
unconditional branch leaves it out (``keep_pose`` / ``keep_character`` = 0 for that sample), so
classifier-free guidance at inference contrasts the same two inputs the model was trained on.
The background, the mask and the character's CLIP tokens are never dropped.
"""

from __future__ import annotations

import torch


def keep_masks(batch_size: int, p_pose: float, p_character: float,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw, independently per sample, whether the pose and the character conditions are kept.

    Args:
        batch_size: B.
        p_pose, p_character: drop probabilities in [0, 1].
        generator: a CPU generator.

    Returns:
        ``(keep_pose, keep_character)``, float32 in {0, 1}.  [B] each
    """
    for name, p in (("drop_pose", p_pose), ("drop_character", p_character)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {p}")
    u = torch.rand(2, batch_size, generator=generator)  # [2, B]
    return (u[0] >= p_pose).float(), (u[1] >= p_character).float()
