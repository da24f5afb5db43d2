"""Exemplar-based hole filling: a structure that continues strata plus texture copied by
PatchMatch.

The image is split into a structure layer (a Gaussian blur of its known pixels, ``sigma``
pixels) and a texture layer (the rest), and the two are filled apart, as in Bertalmio et al.,
"Simultaneous structure and texture image inpainting" (2003):

- **structure** (:func:`strata`): where the two known ends of a row across the hole agree in
  colour (within ``agree``), the row is one stratum (a horizon, a hill, a table's edge seen
  through a figure) and is continued straight, interpolated linearly between its ends; the
  same down each column; elsewhere the harmonic (Laplace, membrane) interpolation of the blurred
  known pixels (:func:`dreamdance.scene.warp.diffuse`, weight ``membrane``) fills in. Each
  pixel blends the three by the agreement ``exp(-(|a - b| / agree)^2)`` of the ends. Region
  boundaries that cross the hole continue instead of fading into a blend of both sides, and
  there are none of the radial streaks of fast marching;
- **texture**: copied from the known part of the image patch by patch (Wexler, Shechtman and
  Irani 2007, with the nearest neighbours found by PatchMatch, Barnes et al. 2009):

  1. every ``p x p`` patch that overlaps the hole is matched to a patch wholly in the known
     part by its *context*: the shade (the structure blurred over a patch) and the local
     strength of the texture (filled into the hole like the structure, ``energy`` times as
     much), so texture is taken from places of the same colour and the same busyness; each hole pixel
     takes the texture its own patch's match carries;
  2. ``refine`` rounds then match on the context and the copied texture together, so that
     neighbouring copies agree; each round's vote averages the ``p^2`` patches covering a
     pixel, weighted by ``exp(-d / (2 d75))`` (``d75`` the 75th percentile of the match
     distances), except the last, where each pixel again takes its own patch's match, so the
     texture keeps its contrast.

  PatchMatch tries each patch's neighbours' matches, shifted (from ``2^k`` pixels away down
  to 1, in four directions), and random patches at radii halving down to one pixel. Patches
  are compared by their projections on a PCA basis of the image's own known patches
  (``components`` dimensions, one convolution per round).

Known pixels never change. Patches are taken with reflected borders, so holes that touch the
edge are filled too. At 512 x 512 with a character-sized hole the fill takes about 3 s on two
CPU cores (single-threaded: its many small array operations only wait on each other).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dreamdance.scene.warp import diffuse

DIRECTIONS = ((0, 1), (1, 0), (0, -1), (-1, 0))  # (dy, dx) of the neighbour a match comes from
PCA_SAMPLES = 4096  # known patches the PCA basis is fitted to


def fill(rgb: np.ndarray, hole: np.ndarray, patch: int = 7, sigma: float = 4.0,
         energy: float = 0.3, search: int = 3, components: int = 16, seed: int = 0,
         refine: int = 3, agree: float = 0.05, membrane: float = 0.05) -> np.ndarray:
    """Fill ``hole`` in ``rgb``: a structure that continues strata plus texture copied from the
    image.

    Args:
        rgb: ``[H, W, C]`` float image.
        hole: ``[H, W]`` bool, True where pixels are to be filled; some must be known.
        patch: patch side in pixels, odd, >= 3.
        sigma: the structure layer's Gaussian blur in pixels (> 0): the texture copied is
            what is finer than this.
        energy: weight of the texture's local strength in the context patches are chosen by.
        search: PatchMatch rounds per search (>= 1).
        components: PCA dimensions patches are compared in.
        seed: seed of the random search (the same seed gives the same fill).
        refine: rounds matching on the copied texture too (>= 0).
        agree: colour distance (RGB in [0, 1]) at which the two ends of a row or column
            across the hole stop counting as one stratum (> 0).
        membrane: weight of the membrane fill beside the strata (> 0).

    Returns:
        ``[H, W, C]`` float32, equal to ``rgb`` outside the hole.
    """
    rgb = np.asarray(rgb, dtype=np.float32)
    hole = np.asarray(hole, dtype=bool)
    assert rgb.ndim == 3 and hole.shape == rgb.shape[:2], (rgb.shape, hole.shape)
    assert patch >= 3 and patch % 2 == 1, patch
    if not hole.any():
        return rgb.copy()
    if hole.all():
        raise ValueError("the hole covers the whole image: there is nothing to fill it from")
    with _one_thread():  # many small array operations: threads only wait on each other
        return _fill(rgb, hole, patch, sigma, energy, search, components, seed, refine, agree,
                     membrane)


def _fill(rgb: np.ndarray, hole: np.ndarray, patch: int, sigma: float, energy: float,
          search: int, components: int, seed: int, refine: int, agree: float,
          membrane: float) -> np.ndarray:
    out = rgb.copy()
    base = blur_known(rgb, hole, sigma)  # [H, W, C]
    texture = np.where(hole[..., None], 0.0, rgb - base).astype(np.float32)
    weights = strata_weights(base, hole, agree)
    structure = strata(base, hole, weights, membrane)
    if _whole_patches(hole, patch).any():
        guide = context(structure, texture, hole, patch, energy, weights, membrane)
        texture = synthesize(texture, guide, hole, patch, search, components, seed, refine)
    out[hole] = (structure + texture)[hole]
    return out


def strata_weights(base: np.ndarray, hole: np.ndarray, agree: float) -> np.ndarray:
    """How much each hole pixel's row and column continue one stratum: ``exp(-(d / agree)^2)``
    with ``d`` the RGB distance between the known pixels that end the hole's run on either
    side (0 where a side is the image border). ``[2, H, W]`` (rows, columns) float32"""
    weights = []
    for img, known in ((base, ~hole), (base.transpose(1, 0, 2), ~hole.T)):
        a, b, has_a, has_b, _ = _run_ends(img, known)
        d = np.linalg.norm(a - b, axis=-1)
        w = np.where(has_a & has_b & ~known, np.exp(-(d / agree) ** 2), 0.0)
        weights.append(w if img is base else w.T)
    return np.stack(weights).astype(np.float32)


def strata(values: np.ndarray, hole: np.ndarray, weights: np.ndarray,
           membrane: float) -> np.ndarray:
    """``values [H, W, C]`` filled in the hole: the linear interpolation along each row and
    each column between the run's known ends, and the membrane fill, blended by ``weights
    [2, H, W]`` (:func:`strata_weights`) and ``membrane``. Known pixels are kept.
    ``[H, W, C]`` float32"""
    rows = _lerp_runs(values, ~hole)
    cols = _lerp_runs(values.transpose(1, 0, 2), ~hole.T).transpose(1, 0, 2)
    w_r, w_c = weights[0][..., None], weights[1][..., None]
    mixed = (w_r * rows + w_c * cols + membrane * diffuse(values, ~hole)) / (w_r + w_c + membrane)
    return np.where(hole[..., None], mixed, values).astype(np.float32)


def _run_ends(values: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, ...]:
    """Along each row of ``values [H, W, C]``: the values at the nearest known pixel at or
    left of each pixel and at or right of it (``[H, W, C]`` each), whether those exist
    (``[H, W]`` bool each), and where each pixel lies between them (``[H, W]``, 0 at the left
    end; 0 or 1 where only one end exists)."""
    w = known.shape[1]
    cols = np.arange(w)[None]
    left = np.maximum.accumulate(np.where(known, cols, -1), axis=1)  # [H, W], -1: none
    right = np.minimum.accumulate(np.where(known, cols, w)[:, ::-1], axis=1)[:, ::-1]  # w: none
    has_l, has_r = left >= 0, right < w
    t = np.where(has_l & has_r, (cols - left) / np.maximum(right - left, 1),
                 np.where(has_l, 0.0, 1.0))
    rows = np.arange(known.shape[0])[:, None]
    return (values[rows, np.clip(left, 0, w - 1)], values[rows, np.clip(right, 0, w - 1)],
            has_l, has_r, t)


def _lerp_runs(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Each unknown run of each row filled by the linear interpolation between the known
    pixels that end it (the one known end where the run touches the border). ``[H, W, C]``
    float32"""
    a, b, _, _, t = _run_ends(values, known)
    return ((1 - t[..., None]) * a + t[..., None] * b).astype(np.float32)


def blur_known(img: np.ndarray, hole: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of the known pixels only (normalised convolution); hole pixels that no
    known pixel reaches are 0. ``[H, W, C]`` float32"""
    known = (~hole).astype(np.float32)
    num = cv2.GaussianBlur(img * known[..., None], (0, 0), sigma).reshape(img.shape)
    den = cv2.GaussianBlur(known, (0, 0), sigma)[..., None]
    return np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0.0).astype(np.float32)


def context(structure: np.ndarray, texture: np.ndarray, hole: np.ndarray, patch: int,
            energy: float, weights: np.ndarray, membrane: float) -> np.ndarray:
    """What the texture's sources are chosen by, known everywhere: the shade (the structure
    blurred over a patch) and ``energy`` times the texture's local amplitude relative to its
    median (filled into the hole along the structure's strata, ``weights [2, H, W]``).
    ``[H, W, C + 1]`` float32"""
    shade = cv2.GaussianBlur(structure, (0, 0), patch / 2).reshape(structure.shape)
    power = blur_known((texture ** 2).mean(2, keepdims=True), hole, patch / 2)
    amplitude = np.sqrt(np.maximum(strata(power, hole, weights, membrane), 0.0))
    scale = max(float(np.median(amplitude[~hole])), 1e-6)
    return np.concatenate([shade, amplitude * np.float32(energy / scale)], axis=2)


def synthesize(texture: np.ndarray, guide: np.ndarray, hole: np.ndarray, patch: int,
               search: int, components: int, seed: int, refine: int) -> np.ndarray:
    """The texture layer's hole filled from its known patches, chosen by ``guide``.

    Args: texture ``[H, W, C]`` (0 in the hole), guide ``[H, W, G]`` (known everywhere), hole
    ``[H, W]``. Returns ``[H, W, C]`` float32."""
    gen = torch.Generator().manual_seed(seed)
    g = guide.shape[2]
    first = Matcher(np.concatenate([guide, texture], axis=2), hole, patch, components, gen,
                    match=g)
    nnf, dist = first.search(first.random_matches(), search)
    first.vote(nnf, dist, channels=slice(g, None), centre_only=True)
    both = Matcher(first.image(), hole, patch, components, gen)
    for i in range(refine):
        nnf, dist = both.search(nnf, search)
        both.vote(nnf, dist, channels=slice(g, None), centre_only=i == refine - 1)
    return both.image()[..., g:]


def _whole_patches(hole: np.ndarray, patch: int) -> np.ndarray:
    """Pixels whose ``patch x patch`` patch (reflected at the borders) is wholly known."""
    kernel = np.ones((patch, patch), np.uint8)
    return cv2.dilate(hole.astype(np.uint8), kernel, borderType=cv2.BORDER_REFLECT_101) == 0


class Matcher:
    """Patch matches for the pixels whose patch overlaps the hole (the targets).

    Pixels are indexed flat (``y * W + x``); a valid source is a pixel whose patch lies wholly
    in the known part. Patches are compared by their projections on a PCA basis of known
    patches (``[H, W, D]`` features from one convolution).
    """

    def __init__(self, img: np.ndarray, hole: np.ndarray, patch: int, components: int,
                 gen: torch.Generator, match: int | None = None):
        self.h, self.w, self.c = img.shape
        self.patch, self.r, self.gen = patch, patch // 2, gen
        whole = _whole_patches(hole, patch)
        self.valid = torch.from_numpy(whole.reshape(-1))  # [H*W]
        self.pool = torch.from_numpy(np.flatnonzero(whole))  # [S] the valid sources
        self.hole = torch.from_numpy(hole.reshape(-1))
        self.targets = torch.from_numpy(np.flatnonzero(~whole))  # [N]
        self.ty, self.tx = self.targets // self.w, self.targets % self.w
        self.img = torch.from_numpy(np.ascontiguousarray(img)).reshape(-1, self.c).clone()
        offsets = torch.arange(patch) - self.r
        self.oy, self.ox = offsets.repeat_interleave(patch), offsets.repeat(patch)  # [P]
        self.match = self.c if match is None else match  # channels patches are compared on
        self.basis = self._pca(components)  # [D, M, p, p]
        self._features = None

    def image(self) -> np.ndarray:
        """The current image. ``[H, W, C]`` float32"""
        return self.img.reshape(self.h, self.w, self.c).numpy().copy()

    def _padded(self) -> torch.Tensor:
        x = self.img.reshape(1, self.h, self.w, self.c).permute(0, 3, 1, 2)  # (1, C, H, W)
        return F.pad(x, (self.r,) * 4, mode="reflect")

    def _pca(self, components: int) -> torch.Tensor:
        """Principal directions of known patches. ``[D, C, p, p]``"""
        pick = self.pool[torch.randperm(len(self.pool), generator=self.gen)[:PCA_SAMPLES]]
        y = (pick // self.w)[:, None] + self.oy + self.r  # [n, P] in the padded image
        x = (pick % self.w)[:, None] + self.ox + self.r
        padded = self._padded()[0, :self.match]  # (M, H + 2r, W + 2r)
        rows = padded[:, y, x].permute(1, 0, 2).reshape(len(pick), -1)  # [n, C*P]
        rows = rows - rows.mean(0)
        d = min(components, rows.shape[0], rows.shape[1])
        _, _, v = torch.linalg.svd(rows, full_matrices=False)
        return v[:d].reshape(d, self.match, self.patch, self.patch).contiguous()

    def features(self) -> torch.Tensor:
        """Every pixel's patch projected on the basis. ``[H*W, D]``"""
        if self._features is None:
            f = F.conv2d(self._padded()[:, :self.match], self.basis)[0]  # (D, H, W)
            self._features = f.reshape(len(self.basis), -1).T.contiguous()
        return self._features

    def random_matches(self) -> torch.Tensor:
        """A random valid source for every target. ``[N]`` long"""
        return self.pool[torch.randint(len(self.pool), (len(self.targets),), generator=self.gen)]

    def search(self, nnf: torch.Tensor, rounds: int) -> tuple[torch.Tensor, torch.Tensor]:
        """PatchMatch: ``rounds`` of propagation and random search from ``nnf [N]``. Returns
        the matches and their distances, ``[N]`` each."""
        f = self.features()
        mine = f[self.targets]  # [N, D]
        dist = ((mine - f[nnf]) ** 2).sum(1)
        full = torch.arange(self.h * self.w)  # every pixel's match; non-targets match themselves
        top = max(0, int(math.log2(max(self.h, self.w))) - 3)

        def consider(cy: torch.Tensor, cx: torch.Tensor) -> None:
            nonlocal nnf, dist
            inside = (cy >= 0) & (cy < self.h) & (cx >= 0) & (cx < self.w)
            cand = cy.clamp(0, self.h - 1) * self.w + cx.clamp(0, self.w - 1)
            d = ((mine - f[cand]) ** 2).sum(1)
            better = inside & self.valid[cand] & (d < dist)
            nnf = torch.where(better, cand, nnf)
            dist = torch.where(better, d, dist)

        for _ in range(rounds):
            for k in range(top, -1, -1):
                step = 1 << k
                full[self.targets] = nnf
                for dy, dx in DIRECTIONS:
                    ny = (self.ty - dy * step).clamp(0, self.h - 1)
                    nx = (self.tx - dx * step).clamp(0, self.w - 1)
                    m = full[ny * self.w + nx]
                    consider(m // self.w + (self.ty - ny), m % self.w + (self.tx - nx))
            radius = max(self.h, self.w)
            while radius >= 1:
                jy = torch.randint(-radius, radius + 1, nnf.shape, generator=self.gen)
                jx = torch.randint(-radius, radius + 1, nnf.shape, generator=self.gen)
                consider(nnf // self.w + jy, nnf % self.w + jx)
                radius //= 2
        return nnf, dist

    def vote(self, nnf: torch.Tensor, dist: torch.Tensor, channels: slice,
             centre_only: bool = False) -> None:
        """Hole pixels of ``channels`` become the weighted mean of what the patches covering
        them copy (``centre_only``: what the match of the patch centred on each carries)."""
        if centre_only:
            inside = self.hole[self.targets]
            q, src = self.targets[inside], nnf[inside]
            self.img[q, channels] = self.img[src, channels]
            self._features = None
            return
        scale = 2 * torch.quantile(dist, 0.75).clamp(min=1e-8)
        weight = torch.exp(-(dist / scale).clamp(max=80))  # [N]
        qy, qx = self.ty[:, None] + self.oy, self.tx[:, None] + self.ox  # [N, P] lands on
        sy = _reflect((nnf // self.w)[:, None] + self.oy, self.h)  # [N, P] copied from
        sx = _reflect((nnf % self.w)[:, None] + self.ox, self.w)
        keep = (qy >= 0) & (qy < self.h) & (qx >= 0) & (qx < self.w)
        q = (qy * self.w + qx)[keep]
        src = (sy * self.w + sx)[keep]
        wt = weight[:, None].expand_as(keep)[keep]
        into = self.hole[q]
        q, src, wt = q[into], src[into], wt[into]
        values = self.img[src, channels]
        acc = torch.zeros(len(self.img), values.shape[1]).index_add_(0, q, values * wt[:, None])
        total = torch.zeros(len(self.img)).index_add_(0, q, wt)
        done = self.hole & (total > 0)
        self.img[done, channels] = acc[done] / total[done, None]
        self._features = None


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Indices reflected into ``[0, n)`` without repeating the edge (as ``F.pad`` reflect)."""
    i = i.abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i)


@contextmanager
def _one_thread() -> Iterator[None]:
    """PyTorch on one thread inside the block (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
