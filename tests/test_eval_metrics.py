"""Fréchet distance, SSIM, PSNR and L1 against independent references; the foreground variant."""

import numpy as np
import pytest
import torch

from dreamdance.eval import frames as fm
from dreamdance.eval.frechet import (
    feature_statistics,
    frechet_distance,
    frechet_distance_of_features,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _scipy_frechet(a, b):
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 8))
    b = rng.normal(size=(150, 8)) @ rng.normal(size=(8, 8)) * 0.7 + 0.3
    ours = frechet_distance_of_features(a, b)
    assert ours == pytest.approx(_scipy_frechet(a, b), rel=1e-6)
    assert ours == pytest.approx(frechet_distance_of_features(b, a), rel=1e-6)


def test_frechet_of_a_set_with_itself_is_zero_even_rank_deficient():
    a = np.random.default_rng(1).normal(size=(10, 64))  # fewer samples than dimensions
    assert frechet_distance_of_features(a, a) == pytest.approx(0, abs=1e-6)


def test_frechet_of_shifted_gaussians_is_the_mean_distance():
    mu, sigma = np.zeros(3), np.eye(3)
    assert frechet_distance(mu, sigma, mu + [1, 2, 2], sigma) == pytest.approx(9)


def test_feature_statistics_checks_input():
    with pytest.raises(ValueError, match="at least 2 samples"):
        feature_statistics(np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        feature_statistics(np.zeros(4))


def _pair(seed=0, n=2, h=32, w=40):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(n, 3, h, w, generator=g)
    pred = (ref + 0.1 * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1)
    return pred, ref


def test_ssim_psnr_match_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    pred, ref = _pair()
    ours_ssim, ours_psnr = fm.ssim(pred, ref), fm.psnr(pred, ref)
    for i in range(pred.shape[0]):
        p, r = pred[i].permute(1, 2, 0).double().numpy(), ref[i].permute(1, 2, 0).double().numpy()
        want = structural_similarity(p, r, data_range=1.0, channel_axis=2, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)
        assert ours_ssim[i].item() == pytest.approx(want, abs=1e-6)
        assert ours_psnr[i].item() == pytest.approx(peak_signal_noise_ratio(r, p, data_range=1.0),
                                                    abs=1e-6)


def test_l1_and_identity():
    pred, ref = _pair(1)
    want = (pred.double() - ref.double()).abs().mean(dim=(1, 2, 3))
    torch.testing.assert_close(fm.l1(pred, ref), want)
    assert torch.allclose(fm.ssim(ref, ref), torch.ones(2, dtype=torch.float64))
    assert fm.psnr(ref, ref).min().item() == pytest.approx(100)


def test_error_only_outside_the_mask_leaves_the_foreground_perfect():
    _, ref = _pair(2, n=1, h=48, w=48)
    mask = torch.zeros(1, 1, 48, 48)
    mask[..., 8:40, 8:40] = 1
    pred = ref.clone()
    pred[..., :, :2] = 1 - pred[..., :, :2]  # change only pixels far outside the mask
    assert fm.l1(pred, ref).item() > 0 and fm.l1(pred, ref, mask).item() == 0
    assert fm.psnr(pred, ref).item() < 40 and fm.psnr(pred, ref, mask).item() == pytest.approx(100)
    assert fm.ssim(pred, ref).item() < 1 and fm.ssim(pred, ref, mask).item() == pytest.approx(1)


def test_masked_psnr_is_over_mask_pixels():
    pred, ref = _pair(3, n=1)
    mask = (torch.rand(1, 1, 32, 40, generator=torch.Generator().manual_seed(4)) > 0.5).float()
    sel = mask.expand_as(ref).bool()
    mse = ((pred.double() - ref.double())[sel] ** 2).mean()
    assert fm.psnr(pred, ref, mask).item() == pytest.approx(10 * np.log10(1 / mse.item()), abs=1e-9)


def test_empty_mask_gives_nan_and_shape_errors_are_precise():
    pred, ref = _pair(5, n=1)
    assert torch.isnan(fm.l1(pred, ref, torch.zeros(1, 1, 32, 40))).all()
    with pytest.raises(ValueError, match="ref must match pred"):
        fm.psnr(pred, ref[..., :30])
    with pytest.raises(ValueError, match="mask must be"):
        fm.ssim(pred, ref, torch.ones(1, 3, 32, 40))
