"""Fréchet distance between Gaussians fitted to two sets of features (FID, FID-VID, FVD).

``d² = |μ₁ - μ₂|² + Tr(Σ₁ + Σ₂ - 2 (Σ₁ Σ₂)^½)``. The trace of the matrix square root is taken
as ``Σ sqrt(λᵢ)`` over the eigenvalues of the symmetric PSD matrix ``Σ₁^½ Σ₂ Σ₁^½`` (same
spectrum as ``Σ₁ Σ₂``), which stays real and stable when the covariances are rank-deficient
(fewer samples than feature dimensions), where ``scipy.linalg.sqrtm`` of the product may not.
All sums are in float64.
"""

from __future__ import annotations

import numpy as np


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``np.cov`` with ``rowvar=False``) of a feature set.

    Args:
        features: one row per sample, at least two rows. [N, D]

    Returns:
        ``(mu [D], sigma [D, D])`` in float64.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {features.shape}")
    if features.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {features.shape[0]}")
    if not np.isfinite(features).all():
        raise ValueError("features hold NaN or infinite values")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], -1)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Squared Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    Args:
        mu1: mean of the first set. [D]
        sigma1: covariance of the first set (symmetric PSD). [D, D]
        mu2: mean of the second set. [D]
        sigma2: covariance of the second set (symmetric PSD). [D, D]

    Returns:
        The distance, >= 0 (tiny negative round-off is clipped to 0).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    for name, m, shape in (("mu2", mu2, (d,)), ("sigma1", sigma1, (d, d)), ("sigma2", sigma2, (d, d))):
        if d < 0 or m.shape != shape:
            raise ValueError(f"mu1 must be [D] and {name} {list(shape)}; got mu1 {mu1.shape}, "
                             f"{name} {m.shape}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    return float(max(value, 0.0))


def frechet_distance_of_features(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`frechet_distance` between the statistics of two feature sets.

    Args:
        a: first set, N >= 2. [N, D]
        b: second set, M >= 2. [M, D]
    """
    if np.ndim(a) != 2 or np.ndim(b) != 2 or np.shape(a)[1] != np.shape(b)[1]:
        raise ValueError(f"feature sets must be [N, D] and [M, D], got {np.shape(a)}, {np.shape(b)}")
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues -> 0)."""
    eig, vec = np.linalg.eigh((sigma + sigma.T) / 2)
    return (vec * np.sqrt(np.clip(eig, 0, None))) @ vec.T
