"""Image-quality scores of a translation against the paired optical image (numpy, scikit-image).

All images are RGB ``(3, H, W)`` in ``[0, 1]``; an optional boolean ``valid`` mask ``(H, W)``
restricts the pixel-wise scores (SSIM-type scores use the full image).

* :func:`psnr` - peak signal-to-noise ratio (peak 1) over RGB.
* :func:`ssim_rgb` - mean SSIM over the three channels (Gaussian window, sigma 1.5).
* :func:`structure_score` - SSIM of the z-scored luminances: ignores brightness and colour,
  rewards the same spatial layout (edges, textures, field patterns).
* :func:`colour_error` - mean absolute RGB error in ``[0, 1]``.
* :func:`colour_distribution_distance` - per-channel Wasserstein distance between the two images'
  pixel values (are the colours the right ones in the right amounts, wherever they are).
* :func:`frechet_distance` - the Frechet distance between two Gaussians (the FID formula).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)
"""ITU-R BT.601 luma weights."""


def _check(pred: np.ndarray, target: np.ndarray) -> None:
    if pred.shape != target.shape or pred.ndim != 3 or pred.shape[0] != 3:
        raise ValueError(
            f"Expected two (3, H, W) RGB images of the same shape, got {pred.shape} and {target.shape}."
        )


def _mask(valid: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    return np.ones(shape[1:], dtype=bool) if valid is None else np.asarray(valid, dtype=bool)


def colour_error(pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean absolute RGB error (``[0, 1]`` units) over valid pixels."""
    _check(pred, target)
    m = _mask(valid, pred.shape)
    return float(np.mean(np.abs(pred[:, m].astype(np.float64) - target[:, m])))


def colour_distribution_distance(
    pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None
) -> float:
    """Mean over R, G, B of the 1-D Wasserstein (earth mover's) distance between the valid pixel values
    of ``pred`` and ``target`` (``[0, 1]`` units): 0 when both hold the same colour histogram; a flat
    image scores the mean absolute deviation of the target from that colour."""
    from scipy.stats import wasserstein_distance

    _check(pred, target)
    m = _mask(valid, pred.shape)
    return float(np.mean([wasserstein_distance(pred[c][m], target[c][m]) for c in range(3)]))


def psnr(pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> float:
    """PSNR in dB with peak 1 over valid pixels (inf for identical images)."""
    _check(pred, target)
    m = _mask(valid, pred.shape)
    mse = float(np.mean((pred[:, m].astype(np.float64) - target[:, m]) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


def ssim_rgb(pred: np.ndarray, target: np.ndarray) -> float:
    """SSIM (data range 1, Gaussian window sigma 1.5) averaged over R, G, B."""
    _check(pred, target)
    return float(
        structural_similarity(
            pred.astype(np.float64),
            target.astype(np.float64),
            channel_axis=0,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def zscored_luminance(rgb: np.ndarray) -> np.ndarray:
    """Luminance standardised to zero mean and unit variance (a flat image gives zeros, also when the
    weighted sum of its channels leaves rounding differences of ~1e-17 between pixels)."""
    lum = np.tensordot(LUMA, rgb.astype(np.float64), axes=1)
    std = lum.std()
    flat = std <= 1e-9 * max(1.0, abs(float(lum.mean())))
    return np.zeros_like(lum) if flat else (lum - lum.mean()) / std


def structure_score(pred: np.ndarray, target: np.ndarray) -> float:
    """SSIM of the z-scored luminances (data range: that of the target's z-scored luminance).

    Brightness and contrast are removed by the z-scoring and colour by the luminance, so
    only the spatial layout counts: 1 for the same layout, about 0 for an unrelated one.
    """
    _check(pred, target)
    zp, zt = zscored_luminance(pred), zscored_luminance(target)
    span = float(zt.max() - zt.min()) or 1.0
    return float(
        structural_similarity(
            zp, zt, data_range=span, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
    )


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2))`` (Dowson and Landau 1982; the FID formula)."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape:
        raise ValueError("The two Gaussians must have the same dimension.")
    covmean, _ = linalg.sqrtm(cov1 @ cov2, disp=False)
    if not np.isfinite(covmean).all():  # singular product: regularise as the reference FID code does
        eps = 1e-6 * np.eye(cov1.shape[0])
        covmean = linalg.sqrtm((cov1 + eps) @ (cov2 + eps))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two ``(n, d)`` feature sets (sample means and covariances)."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1] or min(len(real), len(fake)) < 2:
        raise ValueError(
            f"Need two (n >= 2, d) feature arrays of the same d, got {real.shape}, {fake.shape}."
        )
    return frechet_distance(
        real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)
    )
