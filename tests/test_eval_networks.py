"""LPIPS, FID Inception and I3D with random weights, saved and loaded through the tool's loaders."""

from pathlib import Path

import pytest
import torch

from dreamdance.errors import InputError
from dreamdance.eval.frechet import frechet_distance_of_features
from dreamdance.eval.i3d import InceptionI3d, load_i3d, preprocess_clips
from dreamdance.eval.inception import FIDInceptionV3, load_inception
from dreamdance.eval.lpips import LPIPS, load_lpips

pytestmark = pytest.mark.usefixtures("one_thread")


def _random_lpips_files(tmp_path, net="alex"):
    """The lpips package's two files: linear layers (lin{i}.model.1.weight) + a torchvision
    backbone (features.{i}.*)."""
    torch.manual_seed(0)
    model = LPIPS(net)
    for lin in model.lins:  # LPIPS weights are non-negative
        lin.weight.data = lin.weight.data.abs()
    lins = {f"lin{i}.model.1.weight": lin.weight for i, lin in enumerate(model.lins)}
    backbone = {f"features.{k}": v for k, v in model.features.state_dict().items()}
    backbone["classifier.1.weight"] = torch.zeros(2, 2)  # the rest of torchvision's file
    torch.save(lins, tmp_path / f"{net}.pth")
    torch.save(backbone, tmp_path / "backbone.pth")
    return model, tmp_path / f"{net}.pth", tmp_path / "backbone.pth"


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_loads_both_layouts_and_is_a_distance(tmp_path, net):
    model, lins, backbone = _random_lpips_files(tmp_path, net)
    loaded = load_lpips(lins, backbone)
    assert loaded.net_name == net
    full = {f"net.slice1.{k}": v for k, v in model.features.state_dict().items()}
    full |= {f"lin{i}.model.1.weight": lin.weight for i, lin in enumerate(model.lins)}
    full["scaling_layer.shift"] = torch.zeros(1, 3, 1, 1)
    torch.save(full, tmp_path / "full.pth")
    loaded_full = load_lpips(tmp_path / "full.pth")
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(3, 3, 64, 64, generator=g), torch.rand(3, 3, 64, 64, generator=g)
    d = loaded(a, b)
    assert d.shape == (3,) and (d > 0).all()
    torch.testing.assert_close(d, model(a, b))
    torch.testing.assert_close(d, loaded_full(a, b))
    torch.testing.assert_close(d, loaded(b, a))
    assert loaded(a, a).abs().max() == 0


def test_lpips_foreground_ignores_changes_outside_the_mask(tmp_path):
    _, lins, backbone = _random_lpips_files(tmp_path)
    model = load_lpips(lins, backbone)
    a = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :, :16] = 1
    b = a.clone()
    b[..., :, 32:] = 1 - b[..., :, 32:]
    fg, whole = model(a, b, mask).item(), model(a, b).item()
    assert whole > 0 and fg < whole / 2
    assert model(a, a, mask).item() == 0


def test_lpips_errors_name_the_file_and_the_key(tmp_path):
    with pytest.raises(InputError, match=r"lpips_weights=.*missing\.pth: file not found.*alex\.pth"):
        load_lpips(tmp_path / "missing.pth")
    _, lins, _ = _random_lpips_files(tmp_path)
    with pytest.raises(InputError, match="lpips_backbone: not set"):
        load_lpips(lins)


@pytest.mark.slow
def test_inception_random_weights_roundtrip_and_fid_of_itself(tmp_path):
    torch.manual_seed(0)
    model = FIDInceptionV3()
    torch.save(model.state_dict(), tmp_path / "pt_inception.pth")
    loaded = load_inception(tmp_path / "pt_inception.pth")
    frames = torch.rand(4, 3, 48, 40, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        f = loaded(frames)
        torch.testing.assert_close(f, model(frames))
    assert f.shape == (4, 2048) and torch.isfinite(f).all()
    assert frechet_distance_of_features(f.numpy(), f.numpy()) == pytest.approx(0, abs=1e-6)
    with pytest.raises(InputError, match="inception_weights=.*weights do not fit"):
        torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "bad.pth")
        load_inception(tmp_path / "bad.pth")


@pytest.mark.slow
def test_i3d_random_weights_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = InceptionI3d()
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, tmp_path / "rgb.pt")
    loaded = load_i3d(tmp_path / "rgb.pt")
    clips = torch.rand(2, 8, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    x = preprocess_clips(clips)
    assert x.shape == (2, 3, 8, 224, 224) and x.min() >= -1 and x.max() <= 1
    with torch.no_grad():
        features, logits = loaded(x)
        torch.testing.assert_close(logits, model(x)[1])
    assert features.shape == (2, 1024) and logits.shape == (2, 400)
    with pytest.raises(InputError, match="i3d_weights=.*file not found.*rgb_imagenet.pt"):
        load_i3d(tmp_path / "nope.pt")


def test_i3d_torchscript_is_called_with_the_stylegan_v_keywords(tmp_path):
    class Stub(torch.nn.Module):
        def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                    return_features: bool = False) -> torch.Tensor:
            assert not rescale and not resize and return_features
            return x.mean(dim=(2, 3, 4)).repeat(1, 4)

    torch.jit.script(Stub()).save(str(tmp_path / "i3d_torchscript.pt"))
    with pytest.raises(InputError, match="i3d_weights=.*is a TorchScript file.*allow_torchscript"
                                         "=true") as refused:
        load_i3d(tmp_path / "i3d_torchscript.pt")
    assert "\n" not in str(refused.value)
    loaded = load_i3d(tmp_path / "i3d_torchscript.pt", allow_torchscript=True)
    features, logits = loaded(torch.ones(2, 3, 4, 8, 8))
    assert features is None and logits.shape == (2, 12)


class _RunsCode:
    """Unpickling this creates ``path``: a stand-in for a pickle that runs code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


@pytest.mark.parametrize("loader, key", [
    (load_i3d, "i3d_weights"), (load_inception, "inception_weights"),
    (load_lpips, "lpips_weights")])
def test_a_pickle_with_python_objects_is_refused_in_one_line(tmp_path, loader, key):
    marker = tmp_path / "ran"
    torch.save({"conv.weight": torch.zeros(1), "extra": _RunsCode(marker)}, tmp_path / "w.pt")
    with pytest.raises(InputError, match=f"{key}={tmp_path / 'w.pt'}: refused: it holds pickled "
                                         "Python objects") as refused:
        loader(tmp_path / "w.pt")
    assert "\n" not in str(refused.value) and not marker.exists()
