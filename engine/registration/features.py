"""Dense, modality-robust feature maps for co-registration.

A :class:`FeatureExtractor` turns one image window (2-D float array plus a
validity mask) into a dense feature volume ``(channels, h // stride, w // stride)``
that the matcher correlates. Extractors live in a small named registry, so a
learned embedding model (``Task.EMBED`` ONNX, see :mod:`.deep`) plugs into the
same search code as the classical one.

The classical extractor follows the idea of CFOG / HOPC (Ye et al., 2017/2019):
gradient magnitude split into a handful of orientation channels, smoothed in
space and across orientation, then normalised. Unlike CFOG's per-pixel
normalisation, the default divides by a Gaussian-smoothed norm (local contrast
normalisation over ~8 px): strong structures keep more weight than the noise
of flat areas, which measurably helps SAR–optical pairs (docs/BENCHMARKS.md).
Orientations are taken modulo 180 degrees, so a contrast reversal between SAR
and optical (bright roof / dark shadow) gives the same descriptor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import InputError, check_choice
from .prepare import prepare_image

logger = logging.getLogger(__name__)


@runtime_checkable
class FeatureExtractor(Protocol):
    """What the matcher needs from a feature model."""

    name: str
    model_id: str
    stride: int  # input pixels per feature pixel (1 for full-resolution maps)

    def __call__(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """``image`` ``(h, w)`` float32, ``valid`` ``(h, w)`` bool -> ``(c, h // stride, w // stride)``."""
        ...


def _gauss_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


class OrientedGradientFeatures:
    """CFOG/HOPC-style dense oriented-gradient channels (the ``classical`` method).

    Args:
        orientations: number of orientation channels over [0, 180) degrees.
        sigma: spatial Gaussian smoothing (pixels) of each channel.
        pre_sigma: Gaussian pre-smoothing of the image (speckle), pixels; 0 disables.
        log_scale: log-compress the image first (``None``: when it looks like linear SAR;
            :func:`..prepare.prepare_image`).
        norm_sigma: 0 normalises each pixel's vector; > 0 divides by a Gaussian-smoothed norm
            (local contrast normalisation that keeps relative edge strength), pixels.
    """

    name = "classical"
    model_id = "cfog-classical-v1"
    stride = 1

    def __init__(
        self,
        orientations: int = 9,
        sigma: float = 1.0,
        pre_sigma: float = 1.0,
        log_scale: bool | None = None,
        norm_sigma: float = 8.0,
    ) -> None:
        if orientations < 2:
            raise InputError("The classical feature extractor needs at least 2 orientation channels.")
        self.orientations = orientations
        self.sigma = sigma
        self.pre_sigma = pre_sigma
        self.log_scale = log_scale
        self.norm_sigma = norm_sigma

    def __call__(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        from scipy import ndimage

        img = prepare_image(image, {None: "auto", True: "log", False: "linear"}[self.log_scale], valid)
        if self.pre_sigma > 0:
            img = ndimage.gaussian_filter(img, self.pre_sigma, mode="nearest")
        gx = ndimage.correlate1d(img, np.array([-0.5, 0.0, 0.5], np.float32), axis=1, mode="nearest")
        gy = ndimage.correlate1d(img, np.array([-0.5, 0.0, 0.5], np.float32), axis=0, mode="nearest")
        return oriented_channels(gx, gy, valid, self.orientations, self.sigma, self.norm_sigma)


def oriented_channels(gx: np.ndarray, gy: np.ndarray, valid: np.ndarray, orientations: int = 9,
                      sigma: float = 1.0, norm_sigma: float = 8.0) -> np.ndarray:
    """CFOG channels ``(orientations, h, w)`` float32 of the gradient ``(gx, gy)``: ``|cos a gx + sin a gy|``
    for ``a`` over [0, 180) degrees, smoothed by a Gaussian of ``sigma`` and across orientations, divided
    by the (``norm_sigma``-smoothed, see :class:`OrientedGradientFeatures`) norm; 0 where not ``valid``."""
    from scipy import ndimage

    angles = np.arange(orientations, dtype=np.float32) * (np.pi / orientations)
    feats = np.empty((orientations, *gx.shape), dtype=np.float32)
    kern = _gauss_kernel(sigma)
    for i, a in enumerate(angles):
        ch = np.abs(np.cos(a) * gx + np.sin(a) * gy)
        ch = ndimage.correlate1d(ch, kern, axis=0, mode="nearest")
        feats[i] = ndimage.correlate1d(ch, kern, axis=1, mode="nearest")
    _smooth_orientations(feats)
    norm = np.sqrt(_sum_of_squares(feats))[None]
    if norm_sigma > 0:
        norm = np.sqrt(ndimage.gaussian_filter(norm[0] ** 2, norm_sigma, mode="nearest"))[None]
    eps = 1e-3 * float(np.median(norm)) + 1e-12
    feats /= norm + eps
    feats[:, ~valid] = 0.0
    return feats


def _smooth_orientations(feats: np.ndarray) -> None:
    """Circular ``[1, 2, 1] / 4`` smoothing across the orientation channels, in place (one channel of
    temporaries at a time: whole-stack copies were the peak of the keypoint stages)."""
    first, previous = feats[0].copy(), feats[-1].copy()
    for i in range(len(feats)):
        current = feats[i].copy()
        following = feats[i + 1] if i + 1 < len(feats) else first
        feats[i] = 0.25 * (previous + 2 * current + following)
        previous = current


def _sum_of_squares(feats: np.ndarray) -> np.ndarray:
    """``(feats**2).sum(axis=0)`` channel by channel (same order, no stack-sized temporary)."""
    total = np.zeros(feats.shape[1:], dtype=feats.dtype)
    for channel in feats:
        total += channel * channel
    return total


class GradientMagnitudeFeatures:
    """One channel: gradient magnitude of the (log-compressed) image — the simple baseline."""

    name = "gradmag"
    model_id = "gradient-magnitude-baseline"
    stride = 1

    def __call__(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        from scipy import ndimage

        img = prepare_image(image, "auto", valid)
        img = ndimage.gaussian_filter(img, 1.0, mode="nearest")
        mag = np.hypot(ndimage.sobel(img, axis=1, mode="nearest"), ndimage.sobel(img, axis=0, mode="nearest"))
        mag[~valid] = 0.0
        return mag[np.newaxis].astype(np.float32)


FEATURE_EXTRACTORS: dict[str, Callable[[], FeatureExtractor]] = {
    "classical": OrientedGradientFeatures,
    "gradmag": GradientMagnitudeFeatures,
}
"""Named feature extractors that need no model file. ``deep`` is created from a model (see :mod:`.deep`)."""


def get_extractor(name: str) -> FeatureExtractor:
    """A registered model-free extractor by name."""
    known = check_choice(name, sorted(FEATURE_EXTRACTORS), "co-registration method", " or 'deep'")
    return FEATURE_EXTRACTORS[known]()
