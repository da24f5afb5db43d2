"""3D Gaussians: the splat parameters, their initialisation from an RGBD view, and PLY files.

Parameters are stored raw, as gsplat and 3DGS optimise them; activations are applied where the
values are used (the renderer):

- ``means``: centres in world coordinates. [N, 3]
- ``quats``: rotations as quaternions ``(w, x, y, z)``, not necessarily normalised. [N, 4]
- ``log_scales``: log of the standard deviations along the rotated axes. [N, 3]
- ``logit_opacities``: logit of the opacities. [N]
- ``colors``: RGB, nominally in ``[0, 1]``, unconstrained here (clamped at render). [N, 3]

PLY files follow the layout of the 3DGS reference implementation (``GaussianModel.save_ply``),
which viewers such as SuperSplat and the SIBR viewer read: binary little-endian, one ``vertex``
element of float32 properties in the order ``x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 [f_rest_*]
opacity scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3``, where ``f_dc = (rgb - 0.5) / C0``
is the degree-0 spherical-harmonic coefficient, ``opacity`` a logit, ``scale_*`` logs,
``rot_*`` a ``(w, x, y, z)`` quaternion, and the normals zero.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamdance.errors import InputError
from dreamdance.io import atomic_path
from dreamdance.scene.depth import unproject

C0 = 0.28209479177387814  # the degree-0 real spherical harmonic, 1 / (2 sqrt(pi))

PLY_PROPERTIES = ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                  "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
_REQUIRED = tuple(p for p in PLY_PROPERTIES if p not in ("nx", "ny", "nz"))

# PLY scalar types (both the classic names and the sized aliases) -> numpy type codes.
_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_FORMATS = {"binary_little_endian": "<", "binary_big_endian": ">"}
_MAX_HEADER = 1 << 16


@dataclass
class Gaussians:
    """A set of N 3D Gaussians with raw (pre-activation) parameters; all float32 tensors.

    Attributes:
        means: centres, world coordinates. [N, 3]
        quats: rotations, quaternions ``(w, x, y, z)`` (gsplat's order). [N, 4]
        log_scales: log standard deviations along the rotated axes. [N, 3]
        logit_opacities: opacities before the sigmoid. [N]
        colors: RGB, nominally in ``[0, 1]``; clamped by the renderer. [N, 3]
    """

    means: torch.Tensor  # [N, 3]
    quats: torch.Tensor  # [N, 4]
    log_scales: torch.Tensor  # [N, 3]
    logit_opacities: torch.Tensor  # [N]
    colors: torch.Tensor  # [N, 3]

    def __post_init__(self):
        n = self.means.shape[0]
        for f in fields(self):
            t = getattr(self, f.name)
            assert isinstance(t, torch.Tensor), (f.name, type(t))
            assert t.dtype == torch.float32, (f.name, t.dtype)
        assert self.means.shape == (n, 3), self.means.shape
        assert self.quats.shape == (n, 4), self.quats.shape
        assert self.log_scales.shape == (n, 3), self.log_scales.shape
        assert self.logit_opacities.shape == (n,), self.logit_opacities.shape
        assert self.colors.shape == (n, 3), self.colors.shape

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def scales(self) -> torch.Tensor:
        """Standard deviations along the rotated axes, ``exp(log_scales)``. [N, 3]"""
        return torch.exp(self.log_scales)

    @property
    def opacities(self) -> torch.Tensor:
        """Opacities in ``(0, 1)``, ``sigmoid(logit_opacities)``. [N]"""
        return torch.sigmoid(self.logit_opacities)

    @property
    def device(self) -> torch.device:
        return self.means.device

    def _map(self, fn) -> Gaussians:
        return Gaussians(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    @staticmethod
    def cat(items: Sequence[Gaussians]) -> Gaussians:
        """Concatenate sets in order (all on one device)."""
        if len(items) == 0:
            raise ValueError("Gaussians.cat needs at least one set")
        return Gaussians(**{f.name: torch.cat([getattr(g, f.name) for g in items])
                            for f in fields(Gaussians)})

    @staticmethod
    def empty(device: str | torch.device = "cpu") -> Gaussians:
        """A set with no Gaussians."""
        z = torch.zeros
        return Gaussians(z(0, 3, device=device), z(0, 4, device=device), z(0, 3, device=device),
                         z(0, device=device), z(0, 3, device=device))

    def detach(self) -> Gaussians:
        """The same values, cut from the autograd graph (not copied)."""
        return self._map(lambda t: t.detach())

    def to(self, device: str | torch.device) -> Gaussians:
        return self._map(lambda t: t.to(device))

    def subset(self, index: torch.Tensor | np.ndarray | Sequence[int] | slice) -> Gaussians:
        """The Gaussians selected by a boolean mask [N] or integer indices [M] or a slice."""
        if not isinstance(index, slice):
            index = torch.as_tensor(np.asarray(index) if not isinstance(index, torch.Tensor)
                                    else index, device=self.device)
            if index.dtype == torch.bool:
                assert index.shape == (len(self),), index.shape
        return self._map(lambda t: t[index])

    def requires_grad_(self, flag: bool = True) -> Gaussians:
        """Set ``requires_grad`` on every parameter in place; returns self."""
        for f in fields(self):
            getattr(self, f.name).requires_grad_(flag)
        return self


# ---------------------------------------------------------------------------------------------
# Initialisation from an RGBD view
# ---------------------------------------------------------------------------------------------


def from_rgbd(rgb: Any, depth: Any, K: Any, c2w: Any, mask: Any = None,
              opacity: float = 0.8) -> Gaussians:
    """One isotropic Gaussian per selected pixel of an RGBD view.

    - centre: the pixel centre ``(i + 0.5, j + 0.5)`` unprojected at its z-depth
      (:func:`dreamdance.scene.depth.unproject`), then mapped to world by ``c2w``;
    - scale: ``depth / focal / sqrt(2)`` on every axis, ``focal = (fx + fy) / 2``. A pixel at
      z-depth ``d`` covers a square of side ``s = d / focal`` on a fronto-parallel surface, and
      neighbouring pixels' Gaussians are ``s`` apart. With a standard deviation of
      ``s / sqrt(2)`` the sum of such a lattice of Gaussians is flat to a relative ripple of
      ``2 exp(-2 pi^2 sigma^2 / s^2) = 2 exp(-pi^2) ~ 1e-4`` (Poisson summation): the splats
      cover the surface with no gaps between pixels, yet each stays about one pixel wide;
    - rotation: identity ``(1, 0, 0, 0)``; colour: the pixel's RGB; opacity: ``opacity``
      (stored as its logit).

    Gaussians are ordered row-major over the selected pixels (row by row, left to right).

    Args:
        rgb: RGB in ``[0, 1]``, numpy or torch. [H, W, 3]
        depth: z-depth in metres, finite and ``> 0`` on the selected pixels. [H, W]
        K: intrinsics in pixels. [3, 3]
        c2w: camera-to-world pose (OpenCV axes). [4, 4]
        mask: pixels to keep, or None for all. bool [H, W]
        opacity: initial opacity in ``(0, 1)``.

    Returns:
        Gaussians on the CPU (or on ``depth``'s device when it is a tensor), ``N = mask.sum()``.
    """
    device = depth.device if isinstance(depth, torch.Tensor) else torch.device("cpu")
    rgb = _to_numpy(rgb, np.float32)
    depth = _to_numpy(depth, np.float64)
    K = _to_numpy(K, np.float64)
    c2w = _to_numpy(c2w, np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth must be [H, W], got {depth.shape}")
    h, w = depth.shape
    if rgb.shape != (h, w, 3):
        raise ValueError(f"rgb must be [{h}, {w}, 3] to match depth, got {rgb.shape}")
    if K.shape != (3, 3):
        raise ValueError(f"K must be [3, 3], got {K.shape}")
    if c2w.shape != (4, 4) or not np.allclose(c2w[3], [0.0, 0.0, 0.0, 1.0]):
        raise ValueError(f"c2w must be a [4, 4] rigid transform, got {c2w.shape}")
    if not 0.0 < opacity < 1.0:
        raise ValueError(f"opacity must be in (0, 1), got {opacity}")
    if mask is None:
        mask = np.ones((h, w), dtype=bool)
    else:
        mask = _to_numpy(mask, None)
        if mask.shape != (h, w) or mask.dtype != np.bool_:
            raise ValueError(f"mask must be bool [{h}, {w}], got {mask.dtype} {mask.shape}")
    d = depth[mask]  # [N]
    if not (np.isfinite(d).all() and (d > 0).all()):
        raise ValueError("depth must be finite and > 0 on every selected pixel")

    points = unproject(depth, K)[mask]  # [N, 3] camera frame
    means = points @ c2w[:3, :3].T + c2w[:3, 3]  # [N, 3] world
    focal = 0.5 * (K[0, 0] + K[1, 1])
    log_scales = np.log(d / focal / math.sqrt(2.0))  # [N]
    n = len(d)
    quats = np.zeros((n, 4))
    quats[:, 0] = 1.0
    logit = math.log(opacity / (1.0 - opacity))

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=device)

    return Gaussians(
        means=t(means),
        quats=t(quats),
        log_scales=t(np.repeat(log_scales[:, None], 3, axis=1)),
        logit_opacities=t(np.full(n, logit)),
        colors=t(rgb[mask]),
    )


def _to_numpy(x: Any, dtype: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    return x if dtype is None else x.astype(dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# PLY files (3DGS layout)
# ---------------------------------------------------------------------------------------------


def ply_properties(sh_degree: int = 0) -> tuple[str, ...]:
    """Vertex property names, in file order, for spherical harmonics up to ``sh_degree``."""
    n_rest = 3 * ((sh_degree + 1) ** 2 - 1)
    rest = tuple(f"f_rest_{i}" for i in range(n_rest))
    return PLY_PROPERTIES[:9] + rest + PLY_PROPERTIES[9:]


def ply_header(n: int, sh_degree: int = 0) -> bytes:
    """The header the 3DGS reference (``plyfile``) writes for ``n`` Gaussians."""
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    lines += [f"property float {name}" for name in ply_properties(sh_degree)]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii")


def save_ply(path: str | os.PathLike, gaussians: Gaussians, sh_degree: int = 0) -> Path:
    """Write a standard 3DGS PLY, atomically.

    Colours become degree-0 SH coefficients ``f_dc = (rgb - 0.5) / C0`` (computed in float64,
    so that :func:`load_ply` gives back the colours to float32 rounding); every other parameter
    is written as stored, bit for bit.

    Args:
        path: the ``.ply`` file to write.
        gaussians: the Gaussians (any device).
        sh_degree: 0 writes only ``f_dc_*``; 1 to 3 also write zero ``f_rest_*`` coefficients,
            for viewers that expect the reference's fixed degree-3 layout (files grow ~3.6x at
            degree 3).
    """
    if sh_degree not in (0, 1, 2, 3):
        raise ValueError(f"sh_degree must be 0, 1, 2 or 3, got {sh_degree}")
    g = gaussians.detach().to("cpu")
    names = ply_properties(sh_degree)
    data = np.zeros(len(g), dtype=[(name, "<f4") for name in names])
    f_dc = (g.colors.numpy().astype(np.float64) - 0.5) / C0
    columns = {
        "x": g.means[:, 0], "y": g.means[:, 1], "z": g.means[:, 2],
        "f_dc_0": f_dc[:, 0], "f_dc_1": f_dc[:, 1], "f_dc_2": f_dc[:, 2],
        "opacity": g.logit_opacities,
        "scale_0": g.log_scales[:, 0], "scale_1": g.log_scales[:, 1],
        "scale_2": g.log_scales[:, 2],
        "rot_0": g.quats[:, 0], "rot_1": g.quats[:, 1], "rot_2": g.quats[:, 2],
        "rot_3": g.quats[:, 3],
    }
    for name, column in columns.items():
        data[name] = column.numpy() if isinstance(column, torch.Tensor) else column
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(ply_header(len(g), sh_degree))
            f.write(data.tobytes())
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def load_ply(path: str | os.PathLike, name: str | None = None) -> Gaussians:
    """Read a 3DGS PLY (binary, either byte order) into float32 CPU tensors.

    The ``vertex`` element must come first and hold the properties of the 3DGS layout; others
    (normals, ``f_rest_*``, extra fields) are ignored, as are elements after it. Colours are
    ``f_dc * C0 + 0.5`` (higher SH bands are dropped).

    Args:
        path: the file.
        name: the input as the user knows it, for errors (default: the path).

    Raises:
        InputError: missing file, not a PLY, a malformed header, an ASCII PLY, one whose
            header declares more vertices than the file holds (checked before reading them),
            one that lacks a 3DGS property, or a parameter that is not finite in float32.
    """
    name = name or str(path)
    if not os.path.isfile(path):
        raise InputError(name, "file not found")
    with open(path, "rb") as f:
        head = f.read(_MAX_HEADER)
        end = head.find(b"end_header\n")
        if not head.startswith(b"ply") or end < 0:
            raise InputError(name, "not a PLY file (no 'ply ... end_header' header)")
        body_start = end + len(b"end_header\n")
        order, n, dtype = _parse_header(head[:end].decode("ascii", "replace"), name)
        held = os.fstat(f.fileno()).st_size - body_start
        if n * dtype.itemsize > held:  # checked before reading: the count may be absurd
            raise _truncated(name, n, dtype, held)
        f.seek(body_start)
        raw = f.read(n * dtype.itemsize)
    if len(raw) < n * dtype.itemsize:
        raise _truncated(name, n, dtype, len(raw))
    data = np.frombuffer(raw, dtype=dtype, count=n)

    def cols(*names: str) -> np.ndarray:
        return np.stack([data[k].astype(np.float64 if k.startswith("f_dc") else np.float32)
                         for k in names], axis=-1)

    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused below
        params = {
            "means": cols("x", "y", "z"),
            "quats": cols("rot_0", "rot_1", "rot_2", "rot_3"),
            "log_scales": cols("scale_0", "scale_1", "scale_2"),
            "logit_opacities": data["opacity"],
            "colors": cols("f_dc_0", "f_dc_1", "f_dc_2") * C0 + 0.5,
        }
        params = {k: np.array(v, dtype=np.float32, order="C") for k, v in params.items()}
    for key, value in params.items():
        if not np.isfinite(value).all():
            i = int(np.nonzero(~np.isfinite(value).reshape(n, -1).all(axis=1))[0][0])
            raise InputError(name, f"vertex {i}: {key} not finite (NaN, inf, or beyond float32)")
    return Gaussians(**{k: torch.from_numpy(v) for k, v in params.items()})


def _parse_header(text: str, name: str) -> tuple[str, int, np.dtype]:
    """``(byte order, vertex count, vertex dtype)`` from a PLY header (without end_header)."""
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0] != "ply":
        raise InputError(name, "not a PLY file (first line is not 'ply')")
    order = None
    elements: list[tuple[str, int, list[tuple[str, str]]]] = []
    for line in lines[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format":
            if len(words) != 3 or words[1] not in _FORMATS and words[1] != "ascii":
                raise InputError(name, f"bad PLY format line {_line(line)}")
            if words[1] == "ascii":
                raise InputError(name, "ASCII PLY is not supported; 3DGS files are binary")
            order = _FORMATS[words[1]]
        elif words[0] == "element":
            if len(words) != 3 or not re.fullmatch(r"\d{1,40}", words[2]):
                raise InputError(name, f"bad PLY element line {_line(line)}")
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property":
            if not elements:
                raise InputError(name, f"PLY property before any element: {_line(line)}")
            if len(words) >= 2 and words[1] == "list":
                elements[-1][2].append((words[-1], "list"))
                continue
            if len(words) != 3 or words[1] not in _PLY_TYPES:
                raise InputError(name, f"bad PLY property line {_line(line)}")
            elements[-1][2].append((words[2], _PLY_TYPES[words[1]]))
        else:
            raise InputError(name, f"unexpected PLY header line {_line(line)}")
    if order is None:
        raise InputError(name, "PLY header has no format line")
    if not elements or elements[0][0] != "vertex":
        raise InputError(name, "not a 3DGS PLY: the first element is not 'vertex'")
    _, n, props = elements[0]
    if any(kind == "list" for _, kind in props):
        raise InputError(name, "not a 3DGS PLY: the vertex element has list properties")
    present = {p for p, _ in props}
    missing = [p for p in _REQUIRED if p not in present]
    if missing:
        raise InputError(name, f"not a 3DGS PLY: vertex properties missing: {' '.join(missing)}")
    if len(present) != len(props):
        raise InputError(name, "PLY vertex element has duplicate property names")
    return order, n, np.dtype([(p, order + kind) for p, kind in props])


def _truncated(name: str, n: int, dtype: np.dtype, held: int) -> InputError:
    return InputError(name, f"truncated: the header declares {n} vertices of {dtype.itemsize} "
                            f"bytes, the file holds {held} bytes")


def _line(line: str) -> str:
    """A header line for a one-line message, cut to 60 characters."""
    return repr(line) if len(line) <= 60 else f"{line[:57]!r}..."
