"""Long videos by temporal aggregation of overlapping windows (EDGE-style, the paper's choice).

A video longer than the model's native length is denoised as a set of overlapping windows
taken along the latent time axis, all of them together: at every denoising step, each window's
prediction is computed on its slice of the latents (and of the conditions), and the
predictions are blended into one prediction for the whole video, on which the scheduler takes
one step. Neighbouring windows therefore agree on their shared latents at every step, which is
what keeps the long video continuous.

Blending: each window weighs its latent frames with linear ramps over its overlap with its
neighbours — rising over the frames it shares with the previous window, falling over those it
shares with the next one, 1 elsewhere; the weights are then normalised so that they sum to 1
over the windows at every latent frame. Where two windows overlap (the usual case) this is
exactly a linear cross-fade ``(k + 1) / (o + 1)`` over an overlap of ``o`` frames; the ramps are
strictly positive, so each frame's first and last shared latent still hears both windows.

Causal VAE: the windows are slices of the *whole* video's latents. Latent frame 0 of the video
stands for one video frame and every other latent for four, so only the first window starts
with that special one-frame latent; the other windows start with a four-frame latent where the
model, trained on whole clips, expects a one-frame latent. Those first latents are also the
ones shared with the previous window, whose prediction they are blended with.

Latents are laid out ``[B, F, C, h, w]`` (CogVideoX's layout): time is dimension 1.
"""

from __future__ import annotations

import torch


def window_slices(n_latent: int, window: int, overlap: int) -> list[slice]:
    """Overlapping windows that cover ``[0, n_latent)``.

    Windows start every ``window - overlap`` latent frames; the last one is aligned to the end
    (so it may overlap its neighbour by more than ``overlap``). Every window has ``window``
    frames, except that a video of at most ``window`` latent frames is one window of
    ``n_latent`` frames.

    Args:
        n_latent: latent frames of the whole video.
        window: latent frames per window.
        overlap: latent frames shared by neighbouring windows, ``0 <= overlap < window``.
    """
    if n_latent < 1:
        raise ValueError(f"n_latent must be >= 1, got {n_latent}")
    if window < 1:
        raise ValueError(f"window must be >= 1 latent frame, got {window}")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window={window}), got {overlap}")
    if n_latent <= window:
        return [slice(0, n_latent)]
    starts = list(range(0, n_latent - window + 1, window - overlap))
    if starts[-1] != n_latent - window:
        starts.append(n_latent - window)
    return [slice(s, s + window) for s in starts]


def blend_weights(slices: list[slice], n_latent: int) -> torch.Tensor:
    """Per-window weights of each latent frame, summing to 1 over the windows.  [W, n_latent]

    Linear ramps over each window's actual overlap with its neighbours (read from ``slices``,
    since the last window may overlap more than the others), normalised; zero outside a window.
    """
    weights = torch.zeros(len(slices), n_latent, dtype=torch.float64)
    for i, s in enumerate(slices):
        length = s.stop - s.start
        k = torch.arange(length, dtype=torch.float64)
        ramp = torch.ones(length, dtype=torch.float64)
        if i > 0:  # rising over the frames shared with the previous window
            shared = max(slices[i - 1].stop - s.start, 0)
            ramp = torch.minimum(ramp, (k + 1) / (shared + 1))
        if i < len(slices) - 1:  # falling over the frames shared with the next window
            shared = max(s.stop - slices[i + 1].start, 0)
            ramp = torch.minimum(ramp, (length - k) / (shared + 1))
        weights[i, s] = ramp
    total = weights.sum(0)
    if not bool((total > 0).all()):
        uncovered = torch.nonzero(total == 0).flatten().tolist()
        raise ValueError(f"the windows do not cover latent frames {uncovered}")
    return (weights / total).float()


def aggregate(predictions: list[torch.Tensor], slices: list[slice],
              weights: torch.Tensor) -> torch.Tensor:
    """Blend per-window predictions into one prediction for the whole video.

    Args:
        predictions: one per window, ``[B, len(slice), C, h, w]`` each.
        slices: the windows, from :func:`window_slices`.
        weights: from :func:`blend_weights`.  [W, n_latent]

    Returns:
        The blended prediction.  [B, n_latent, C, h, w]
    """
    assert len(predictions) == len(slices) == weights.shape[0], (
        len(predictions), len(slices), weights.shape)
    first = predictions[0]
    out = first.new_zeros((first.shape[0], weights.shape[1], *first.shape[2:]))
    for pred, s, w in zip(predictions, slices, weights, strict=True):
        assert pred.shape[1] == s.stop - s.start, (pred.shape, s)
        out[:, s] += pred * w[s].to(pred).view(1, -1, 1, 1, 1)
    return out
