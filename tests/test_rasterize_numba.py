"""The compiled CPU rasteriser (backend=numba) against the dense twin and the PyTorch one:
images and gradients, tiles and their early stop, threads (its float64 gradcheck and closed
forms are in test_rasterize.py)."""

import pytest
import torch
from test_rasterize import H, W, assert_matches, random_scene, render_and_grads

import dreamdance.scene.rasterize_numba as rn
from dreamdance.scene.rasterize import rasterize
from dreamdance.scene.rasterize_numba import rasterize_numba
from dreamdance.scene.rasterize_torch import rasterize_dense, rasterize_torch


@pytest.mark.parametrize("tile", [32, 4])
@pytest.mark.parametrize("opaque", [False, True])
def test_matches_dense(monkeypatch, tile, opaque):
    """Tiles of 4 px cut most splats; in the opaque scene pixels stop and so do whole tiles
    (all their pixels saturated)."""
    monkeypatch.setattr(rn, "TILE", tile)
    scene = random_scene(n=600 if opaque else 300, seed=0)
    if opaque:
        scene["opacities"] = scene["opacities"].clamp(min=0.9)
    outs, grads = render_and_grads(rasterize_numba, scene)
    assert_matches(outs, grads, *render_and_grads(rasterize_dense, scene))
    alpha = outs[2]
    if opaque:  # stopped pixels: T just above the 1e-4 stop
        assert alpha.max() > 0.9998 and (alpha > 0.999).float().mean() > 0.2
    else:
        assert alpha.max() > 0.99 and (alpha < 0.5).any()
    assert grads[0][:15].abs().max() == 0  # behind the cameras: no gradient


def deep_scene(n=3000, size=48, seed=0):
    """A random cloud of faint anisotropic splats, dozens overlapping per pixel."""
    gen = torch.Generator().manual_seed(seed)
    z = 2.0 + 2.0 * torch.rand(n, generator=gen)
    xy = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.6 * z[:, None]
    f = size / 1.2
    return dict(means=torch.cat([xy, z[:, None]], -1), quats=torch.randn(n, 4, generator=gen),
                scales=(z / f)[:, None] * torch.exp(torch.rand(n, 3, generator=gen) * 1.5) * 1.5,
                opacities=0.05 + 0.5 * torch.rand(n, generator=gen),
                colors=torch.rand(n, 3, generator=gen), viewmats=torch.eye(4)[None],
                Ks=torch.tensor([[[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]]]),
                width=size, height=size)


def test_deep_scene_matches_the_pytorch_rasteriser():
    scene = deep_scene()
    with torch.no_grad():
        ours = rasterize_numba(**scene)
        theirs = rasterize_torch(**scene)
    for name, a, b in zip(("rgb", "depth", "alpha"), ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
    assert ours[2].min() > 0.5  # deep: every pixel well covered


def test_image_does_not_depend_on_threads_and_gradients_repeat():
    scene = deep_scene(seed=1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.no_grad():
            one = rasterize_numba(**scene)
        torch.set_num_threads(2)
        with torch.no_grad():
            two = rasterize_numba(**scene)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)
    scene = random_scene(seed=3)
    grads = [render_and_grads(rasterize_numba, scene)[1] for _ in range(2)]
    for a, b in zip(*grads, strict=True):
        assert torch.equal(a, b)


def test_auto_is_numba_on_the_cpu_and_refuses_other_devices():
    scene = random_scene(n=50, cameras=1)
    ours = rasterize_numba(**scene, width=W, height=H)
    for a, b in zip(rasterize(**scene, width=W, height=H), ours, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(rasterize(**scene, width=W, height=H, backend="numba"), ours, strict=True):
        assert torch.equal(a, b)
    meta = {k: v.to("meta") for k, v in scene.items()}
    with pytest.raises(ValueError, match="backend=numba: tensors must be on the CPU"):
        rasterize_numba(**meta, width=W, height=H)
