"""Gaussians: the container, initialisation from an RGBD view, and 3DGS PLY files."""

import math

import numpy as np
import pytest
import torch

from dreamdance.camera import invert_rigid, pose_from_rotation_center, rotation_y
from dreamdance.errors import InputError
from dreamdance.scene.gaussians import (
    C0,
    PLY_PROPERTIES,
    Gaussians,
    from_rgbd,
    load_ply,
    ply_header,
    save_ply,
)


def random_gaussians(n=50, seed=0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    return Gaussians(
        means=torch.randn(n, 3, generator=g) * 3,
        quats=torch.randn(n, 4, generator=g),
        log_scales=torch.randn(n, 3, generator=g) - 3,
        logit_opacities=torch.randn(n, generator=g) * 2,
        colors=torch.rand(n, 3, generator=g) * 1.2 - 0.1,
    )


def assert_equal(a: Gaussians, b: Gaussians, colors_exact=True):
    for name in ("means", "quats", "log_scales", "logit_opacities"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    if colors_exact:
        assert torch.equal(a.colors, b.colors)
    else:  # through f_dc = (rgb - 0.5) / C0 in float32: within its rounding
        torch.testing.assert_close(a.colors, b.colors, rtol=0, atol=6e-8)


# ---------------------------------------------------------------------------------------------
# The container
# ---------------------------------------------------------------------------------------------


def test_container_operations():
    a, b = random_gaussians(5, 0), random_gaussians(3, 1)
    assert len(a) == 5
    torch.testing.assert_close(a.scales, torch.exp(a.log_scales))
    torch.testing.assert_close(a.opacities, torch.sigmoid(a.logit_opacities))
    c = Gaussians.cat([a, b])
    assert len(c) == 8
    assert_equal(c.subset(slice(5, 8)), b)
    assert_equal(c.subset(torch.arange(5)), a)
    mask = torch.zeros(8, dtype=torch.bool)
    mask[5:] = True
    assert_equal(c.subset(mask), b)
    assert_equal(c.subset(np.array([5, 6, 7])), b)
    assert len(Gaussians.empty()) == 0 and len(Gaussians.cat([Gaussians.empty(), a])) == 5
    assert c.requires_grad_(True) is c and c.means.requires_grad and c.colors.requires_grad
    d = c.detach()
    assert not d.means.requires_grad and d.means.data_ptr() == c.means.data_ptr()
    assert c.to("cpu").device.type == "cpu"
    with pytest.raises(AssertionError):
        Gaussians(a.means, a.quats[:, :3], a.log_scales, a.logit_opacities, a.colors)
    with pytest.raises(AssertionError):
        Gaussians(a.means.double(), a.quats, a.log_scales, a.logit_opacities, a.colors)


# ---------------------------------------------------------------------------------------------
# from_rgbd
# ---------------------------------------------------------------------------------------------


def test_from_rgbd_on_a_plane():
    h, w, f, d = 12, 16, 20.0, 3.0
    K = np.array([[f, 0, w / 2], [0, f * 1.1, h / 2], [0, 0, 1]])
    # a tilted plane: depth varies across the image
    v, u = np.mgrid[0:h, 0:w] + 0.5
    depth = d / (1.0 + 0.02 * (u - w / 2) + 0.03 * (v - h / 2))
    rgb = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    c2w = invert_rigid(pose_from_rotation_center(rotation_y(0.3).T, [0.5, -0.2, 1.0]))
    mask = np.ones((h, w), bool)
    mask[:3, :5] = False
    g = from_rgbd(rgb, depth, K, c2w, mask)
    n = int(mask.sum())
    assert len(g) == n and g.means.dtype == torch.float32
    # every centre projects back to its pixel centre, at its depth
    w2c = invert_rigid(c2w)
    cam = g.means.double().numpy() @ w2c[:3, :3].T + w2c[:3, 3]
    proj = cam @ K.T
    np.testing.assert_allclose(proj[:, 0] / proj[:, 2], u[mask], atol=1e-4)
    np.testing.assert_allclose(proj[:, 1] / proj[:, 2], v[mask], atol=1e-4)
    np.testing.assert_allclose(cam[:, 2], depth[mask], rtol=1e-6)
    # isotropic scale = depth / focal / sqrt(2), focal = (fx + fy) / 2
    expected = depth[mask] / (0.5 * (K[0, 0] + K[1, 1])) / math.sqrt(2)
    np.testing.assert_allclose(g.scales.numpy(), np.repeat(expected[:, None], 3, 1), rtol=1e-6)
    torch.testing.assert_close(g.opacities, torch.full((n,), 0.8))
    torch.testing.assert_close(g.quats, torch.tensor([1.0, 0, 0, 0]).expand(n, 4))
    torch.testing.assert_close(g.colors, torch.from_numpy(rgb[mask]))


def test_from_rgbd_accepts_tensors_and_checks_inputs():
    h, w = 4, 5
    K = np.array([[5.0, 0, 2.5], [0, 5.0, 2], [0, 0, 1]])
    depth = torch.full((h, w), 2.0)
    g = from_rgbd(torch.rand(h, w, 3), depth, torch.from_numpy(K), torch.eye(4), opacity=0.5)
    assert len(g) == h * w
    torch.testing.assert_close(g.logit_opacities, torch.zeros(h * w))
    bad = depth.clone()
    bad[1, 1] = 0.0
    with pytest.raises(ValueError, match="depth"):
        from_rgbd(np.zeros((h, w, 3)), bad, K, np.eye(4))
    mask = np.ones((h, w), bool)
    mask[1, 1] = False  # the bad pixel is not selected
    assert len(from_rgbd(np.zeros((h, w, 3)), bad, K, np.eye(4), mask)) == h * w - 1
    with pytest.raises(ValueError, match="rgb"):
        from_rgbd(np.zeros((h, w + 1, 3)), depth, K, np.eye(4))
    with pytest.raises(ValueError, match="mask"):
        from_rgbd(np.zeros((h, w, 3)), depth, K, np.eye(4), mask.astype(np.uint8))
    with pytest.raises(ValueError, match="opacity"):
        from_rgbd(np.zeros((h, w, 3)), depth, K, np.eye(4), opacity=1.0)


# ---------------------------------------------------------------------------------------------
# PLY
# ---------------------------------------------------------------------------------------------


def test_ply_round_trip(tmp_path):
    g = random_gaussians(200)
    path = save_ply(tmp_path / "scene" / "g.ply", g)
    assert [p.name for p in path.parent.iterdir()] == ["g.ply"]  # no temporary left
    back = load_ply(path)
    assert_equal(back, g, colors_exact=False)
    # colours on the 8-bit grid from 0.25 up come back bit for bit
    g.colors = torch.arange(64, 256, dtype=torch.float32).div(255).repeat(4)[:600].reshape(200, 3)
    assert_equal(load_ply(save_ply(path, g)), g)
    # one of our files, loaded and saved again, is byte-identical (f_dc included)
    path2 = save_ply(tmp_path / "again.ply", load_ply(path))
    assert path2.read_bytes() == path.read_bytes()


def test_ply_layout(tmp_path):
    g = random_gaussians(3)
    g.colors = torch.tensor([[0.5, 0.5 + C0, 0.5 - 2 * C0]]).repeat(3, 1)
    data = save_ply(tmp_path / "g.ply", g).read_bytes()
    header = (
        "ply\nformat binary_little_endian 1.0\nelement vertex 3\n"
        + "".join(f"property float {p}\n" for p in PLY_PROPERTIES)
        + "end_header\n"
    ).encode()
    assert data.startswith(header) and header == ply_header(3)
    body = np.frombuffer(data[len(header):], dtype="<f4").reshape(3, 17)
    np.testing.assert_array_equal(body[:, 0:3], g.means.numpy())
    np.testing.assert_array_equal(body[:, 3:6], 0.0)  # normals
    np.testing.assert_allclose(body[:, 6:9], [[0.0, 1.0, -2.0]] * 3, atol=1e-6)  # f_dc
    np.testing.assert_array_equal(body[:, 9], g.logit_opacities.numpy())
    np.testing.assert_array_equal(body[:, 10:13], g.log_scales.numpy())
    np.testing.assert_array_equal(body[:, 13:17], g.quats.numpy())  # w x y z


def test_ply_with_higher_sh_bands_and_extra_properties_loads(tmp_path):
    g = random_gaussians(10)
    path = save_ply(tmp_path / "deg3.ply", g, sh_degree=3)
    data = path.read_bytes()
    assert b"property float f_rest_44\nproperty float opacity\n" in data
    assert b"f_rest_45" not in data
    assert_equal(load_ply(path), g, colors_exact=False)

    # another writer: big-endian, doubles, an extra field, other order, a trailing face element
    rng = np.random.default_rng(0)
    names = ["opacity", "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "f_rest_0", "label",
             "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    types = {"label": ">u1"}
    dtype = np.dtype([(p, types.get(p, ">f8")) for p in names])
    rows = np.zeros(4, dtype)
    for p in names:
        rows[p] = rng.integers(0, 9, 4) if p == "label" else rng.normal(size=4)
    header = "ply\nformat binary_big_endian 1.0\ncomment written elsewhere\nelement vertex 4\n"
    header += "".join(f"property {'uchar' if p == 'label' else 'double'} {p}\n" for p in names)
    header += "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
    other = tmp_path / "other.ply"
    other.write_bytes(header.encode() + rows.tobytes() + b"\x03\0\0\0\0\0\0\0\1\0\0\0\2")
    g2 = load_ply(other)
    np.testing.assert_array_equal(g2.means.numpy(),
                                  np.stack([rows["x"], rows["y"], rows["z"]], 1).astype("f4"))
    np.testing.assert_array_equal(g2.logit_opacities.numpy(), rows["opacity"].astype("f4"))
    np.testing.assert_allclose(g2.colors[:, 0].numpy(), rows["f_dc_0"] * C0 + 0.5, rtol=1e-6)


def test_load_ply_refuses_what_is_not_a_3dgs_ply(tmp_path):
    text = tmp_path / "notes.ply"
    text.write_text("hello\nworld\n")
    with pytest.raises(InputError, match="not a PLY"):
        load_ply(text)
    with pytest.raises(InputError, match="file not found"):
        load_ply(tmp_path / "missing.ply")
    mesh = tmp_path / "mesh.ply"
    mesh.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1\n"
                     b"property float x\nproperty float y\nproperty float z\nend_header\n"
                     + np.zeros(3, "<f4").tobytes())
    with pytest.raises(InputError, match="missing: f_dc_0"):
        load_ply(mesh, name="scene=mesh.ply")
    ascii_ply = tmp_path / "ascii.ply"
    ascii_ply.write_text("ply\nformat ascii 1.0\nelement vertex 0\nend_header\n")
    with pytest.raises(InputError, match="ASCII"):
        load_ply(ascii_ply)
    short = tmp_path / "short.ply"
    short.write_bytes(save_ply(tmp_path / "ok.ply", random_gaussians(4)).read_bytes()[:-10])
    with pytest.raises(InputError, match="truncated"):
        load_ply(short)
    try:
        load_ply(mesh, name="scene=mesh.ply")
    except InputError as e:
        assert e.name == "scene=mesh.ply"
