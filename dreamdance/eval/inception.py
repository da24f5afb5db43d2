"""The FID Inception-v3 (TensorFlow's 2015-12-05 graph, as ported by pytorch-fid) and FID.

FID (Heusel et al. 2017) is the Fréchet distance between the 2048-d pool features of all
predicted frames and of all reference frames. Frames are resized to 299×299 (bilinear) and
scaled to [-1, 1], as pytorch-fid does. The network is torchvision's Inception-v3 layout with
pytorch-fid's FID-specific blocks (average pools that exclude padding, a max pool in the last
block) and a 1008-way ``fc`` that FID does not use.

Weights (never downloaded): ``inception_weights=pt_inception-2015-12-05-6726825d.pth``, the
state dict released with pytorch-fid (github.com/mseitzer/pytorch-fid, release
``fid_weights_inception``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dreamdance.eval.weights import load_into, load_state_dict

WHAT = ("the FID Inception `pt_inception-2015-12-05-6726825d.pth` "
        "(github.com/mseitzer/pytorch-fid releases)")
INPUT_SIZE = 299
FEATURES = 2048


class BasicConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg3(x):
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, c: int, pool: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(c, 64, 1)
        self.branch5x5_1, self.branch5x5_2 = BasicConv2d(c, 48, 1), BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(c, pool, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg3(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(c, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, 2)], 1)


class InceptionC(nn.Module):
    def __init__(self, c: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(c, 192, 1)
        self.branch7x7_1 = BasicConv2d(c, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.branch3x3_1, self.branch3x3_2 = BasicConv2d(c, 192, 1), BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        d = x
        for i in range(1, 5):
            d = getattr(self, f"branch7x7x3_{i}")(d)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), d, F.max_pool2d(x, 3, 2)], 1)


class InceptionE(nn.Module):
    def __init__(self, c: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool  # pytorch-fid's FIDInceptionE_2 pools with max, E_1 with avg
        self.branch1x1 = BasicConv2d(c, 320, 1)
        self.branch3x3_1 = BasicConv2d(c, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pool = F.max_pool2d(x, 3, 1, 1) if self.max_pool else _avg3(x)
        return torch.cat([
            self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(pool)], 1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 for FID features (random weights until loaded); state-dict keys as
    torchvision's ``inception_v3(num_classes=1008, aux_logits=False)``."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = (
            InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64))
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b, self.Mixed_6c = InceptionC(768, 128), InceptionC(768, 160)
        self.Mixed_6d, self.Mixed_6e = InceptionC(768, 160), InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b, self.Mixed_7c = InceptionE(1280, max_pool=False), InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)
        self.requires_grad_(False)
        self.eval()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Pool features.

        Args:
            frames: RGB in [0, 1], any size. [N, 3, H, W]

        Returns:
            float32 features. [N, 2048]
        """
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must be [N, 3, H, W], got {tuple(frames.shape)}")
        x = F.interpolate(frames.float(), size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                          align_corners=False) * 2 - 1  # (N, 3, 299, 299)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (N, 64, 147, 147)
        x = F.max_pool2d(x, 3, 2)  # (N, 64, 73, 73)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, 2)  # (N, 192, 35, 35)
        for block in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{block}")(x)  # ... (N, 2048, 8, 8)
        return x.mean(dim=(2, 3))  # (N, 2048)


def load_inception(path: str | Path) -> FIDInceptionV3:
    """:class:`FIDInceptionV3` with the weights of a local file (strict key match).

    Raises:
        InputError: the file is missing or does not hold the FID Inception weights.
    """
    model = FIDInceptionV3()
    load_into(model, load_state_dict(path, "inception_weights", WHAT), f"inception_weights={path}", WHAT)
    return model
