"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features"), version 0.1.

The distance of the ``lpips`` package (``lpips.LPIPS(net=..., version="0.1")``): inputs in
[-1, 1] are shifted/scaled by fixed per-channel constants, passed through the ``features`` of
torchvision's AlexNet or VGG-16, each of five layers' activations is unit-normalised over
channels, the squared difference is weighted by a learned 1×1 convolution (``lin0``…``lin4``)
and averaged over space, and the five values are summed. The foreground variant upsamples each
layer's weighted map to the frame size (bilinear), sums them, and averages over mask pixels.

Weights (never downloaded): ``lpips_weights=`` is either

- a full LPIPS state dict (keys ``net.slice1.0.weight`` … and ``lin0.model.1.weight`` …, as
  ``torch.save(lpips.LPIPS(net="alex").state_dict(), ...)`` writes), or
- the linear layers shipped inside the ``lpips`` pip package (``lpips/weights/v0.1/alex.pth``
  or ``vgg.pth``) together with ``lpips_backbone=`` the torchvision ImageNet backbone
  (``alexnet-owt-7be5be79.pth`` or ``vgg16-397923af.pth``).

The backbone (AlexNet or VGG-16) is recognised from the linear layers' channel counts.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dreamdance.errors import InputError
from dreamdance.eval.weights import load_into, load_state_dict

WHAT = ("LPIPS v0.1 weights: the linear layers `lpips/weights/v0.1/alex.pth` (or vgg.pth) from "
        "the `lpips` pip package plus lpips_backbone= torchvision's `alexnet-owt-7be5be79.pth` "
        "(or `vgg16-397923af.pth`), or one full LPIPS state dict")
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
# Index ranges of the backbone's `features` that end at each compared layer (after its ReLU).
SLICES = {"alex": (2, 5, 8, 10, 12), "vgg": (4, 9, 16, 23, 30)}
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def backbone_features(net: str) -> nn.Sequential:
    """torchvision's ``alexnet().features[:12]`` or ``vgg16().features[:30]`` (same indices)."""
    if net == "alex":
        return nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        )
    if net == "vgg":
        layers: list[nn.Module] = []
        c_in = 3
        for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU()]
                c_in = v
        return nn.Sequential(*layers)
    raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}")


class LPIPS(nn.Module):
    """LPIPS v0.1 distance network (random weights until loaded)."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        self.net_name = net
        self.features = backbone_features(net)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS[net])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def layer_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised activations of the five layers. Args: x: in [-1, 1]. [N, 3, H, W]"""
        x = (x - self.shift) / self.scale
        maps, start = [], 0
        for end in SLICES[self.net_name]:
            for layer in self.features[start:end]:
                x = layer(x)
            start = end
            maps.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))  # (N, C_l, h, w)
        return maps

    def forward(
        self, pred: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-frame LPIPS distance.

        Args:
            pred: frames in [0, 1]. [N, 3, H, W]
            ref: frames in [0, 1]. [N, 3, H, W]
            mask: foreground mask (> 0.5) or None for the whole frame. [N, 1, H, W]

        Returns:
            float64 distances, NaN for a frame with an empty mask. [N]
        """
        if pred.ndim != 4 or pred.shape[1] != 3 or ref.shape != pred.shape:
            raise ValueError(f"pred and ref must be [N, 3, H, W] alike, got {tuple(pred.shape)}, "
                             f"{tuple(ref.shape)}")
        size = pred.shape[2:]
        total = torch.zeros(pred.shape[0], 1, *size, dtype=torch.float64, device=pred.device)
        means = torch.zeros(pred.shape[0], dtype=torch.float64, device=pred.device)
        maps = zip(self.lins, self.layer_maps(pred * 2 - 1), self.layer_maps(ref * 2 - 1), strict=True)
        for lin, a, b in maps:
            d = lin((a - b) ** 2)  # (N, 1, h, w)
            if mask is None:
                means += d.double().mean(dim=(1, 2, 3))
            else:
                total += F.interpolate(d, size=size, mode="bilinear", align_corners=False).double()
        if mask is None:
            return means
        fg = (mask > 0.5).double()
        count = fg.sum(dim=(1, 2, 3))
        return (total * fg).sum(dim=(1, 2, 3)) / count.where(count > 0, torch.nan)


def load_lpips(path: str | Path, backbone: str | Path | None = None) -> LPIPS:
    """Build :class:`LPIPS` from local files (see the module docstring for the two layouts).

    Raises:
        InputError: a file is missing or does not hold LPIPS / backbone weights.
    """
    state = load_state_dict(path, "lpips_weights", WHAT)
    lin_keys = sorted(k for k in state if k.startswith("lin") and k.endswith(".weight"))
    channels = tuple(state[k].shape[1] for k in lin_keys)
    net = next((n for n, c in CHANNELS.items() if c == channels), None)
    if net is None:
        raise InputError(f"lpips_weights={path}", f"no LPIPS linear layers lin0..lin4 found "
                         f"(channels {channels}); expected {WHAT}")
    model = LPIPS(net)
    mapped = {f"lins.{i}.weight": state[k] for i, k in enumerate(lin_keys)}
    net_keys = {k: v for k, v in state.items() if k.startswith("net.")}
    if net_keys:  # full LPIPS state dict: net.slice{s}.{i}.* keep torchvision's indices
        mapped.update({"features." + k.split(".", 2)[2]: v for k, v in net_keys.items()})
        load_into(model, mapped, f"lpips_weights={path}", WHAT)
        return model
    if backbone is None:
        raise InputError("lpips_backbone", f"not set: {path} holds only the linear layers; "
                         f"pass lpips_backbone= torchvision's ImageNet {net} weights ({WHAT})")
    back = load_state_dict(backbone, "lpips_backbone", WHAT)
    n_layers = len(model.features)
    for k, v in back.items():
        if k.startswith("features.") and int(k.split(".")[1]) < n_layers:
            mapped[k] = v
    load_into(model, mapped, f"lpips_backbone={backbone}", WHAT)
    return model
