"""The model-free keypoint method: a SAR-adapted Harris detector with oriented-gradient descriptors.

Gradients are ratios of one-sided local means, as in SAR-SIFT (Dellinger et al.,
2015), which keeps them independent of the multiplicative speckle level: on the
prepared image (a linear function of dB, see :mod:`..prepare`) the difference of
exponentially weighted one-sided means *is* the log of the ratio of their
geometric means. The Harris response of the smoothed gradient structure tensor
marks corners; each keypoint gets the dominant gradient axis (modulo 180 degrees,
so a SAR/optical contrast reversal does not matter) and a 4 x 4 x 8 histogram of
gradient orientations in a patch rotated to that axis (128 values, SIFT-style
normalisation). The patch turned by 180 degrees is the same histogram with its
cells in reverse order (:func:`turned_half`), which the matcher also tries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from .detect import Descriptions

logger = logging.getLogger(__name__)

ALPHA = 2.0
"""Decay length (pixels) of the one-sided exponential means (SAR-SIFT's alpha)."""
INTEGRATION_SIGMA = 2.0
"""Gaussian integration scale of the Harris structure tensor (pixels)."""
ORIENTATION_SIGMA = 6.0
"""Gaussian integration scale of the structure tensor that gives a keypoint's axis (pixels)."""
HARRIS_K = 0.04
PATCH_SAMPLES = 16
"""Samples per side of the descriptor patch (4 x 4 cells of 4 x 4 samples)."""
PATCH_STEP = 2.0
"""Spacing of the descriptor samples (pixels of the pyramid level): a 32-pixel patch."""
ORIENTATION_BINS = 8
PATCH_RADIUS = PATCH_STEP * PATCH_SAMPLES / 2 * np.sqrt(2.0)
"""Farthest a descriptor sample lies from its keypoint (pixels of the pyramid level)."""


def _one_sided_kernels(alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(difference kernel: mean after minus mean before, smoothing kernel) of radius ~4 alpha."""
    r = max(1, int(np.ceil(4 * alpha)))
    side = np.exp(-np.arange(1, r + 1) / alpha)
    side /= side.sum()
    diff = np.concatenate([-side[::-1], [0.0], side]).astype(np.float32)
    smooth = np.exp(-np.abs(np.arange(-r, r + 1)) / alpha)
    return diff, (smooth / smooth.sum()).astype(np.float32)


def sar_gradients(image: np.ndarray, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical ratio-of-means gradients of a prepared (log-domain) image."""
    from scipy import ndimage

    diff, smooth = _one_sided_kernels(alpha)
    img = np.asarray(image, dtype=np.float32)
    gx = ndimage.correlate1d(ndimage.correlate1d(img, smooth, axis=0, mode="nearest"), diff, axis=1,
                             mode="nearest")
    gy = ndimage.correlate1d(ndimage.correlate1d(img, smooth, axis=1, mode="nearest"), diff, axis=0,
                             mode="nearest")
    return gx, gy


def structure_tensor(gx: np.ndarray, gy: np.ndarray, sigma: float) -> tuple[np.ndarray, ...]:
    """Gaussian-smoothed ``(Jxx, Jxy, Jyy)``."""
    from scipy import ndimage

    return tuple(ndimage.gaussian_filter(a, sigma, mode="nearest") for a in (gx * gx, gx * gy, gy * gy))


def harris_response(image: np.ndarray) -> np.ndarray:
    """SAR-Harris corner response ``det(J) - k trace(J)^2`` of a prepared image (float32)."""
    gx, gy = sar_gradients(image)
    jxx, jxy, jyy = structure_tensor(gx, gy, INTEGRATION_SIGMA)
    return (jxx * jyy - jxy * jxy - HARRIS_K * (jxx + jyy) ** 2).astype(np.float32)


def harris_batch(batch: np.ndarray) -> np.ndarray:
    """:func:`harris_response` of every tile of a ``(n, 1, t, t)`` batch (for the tiled core)."""
    return np.stack([harris_response(tile[0])[None] for tile in batch])


def _sample(maps: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``(c, h, w)`` maps at corner coordinates ``(..., 2)`` -> ``(..., c)``."""
    from scipy import ndimage

    flat = xy.reshape(-1, 2) - 0.5
    vals = [ndimage.map_coordinates(m, [flat[:, 1], flat[:, 0]], order=1, mode="nearest") for m in maps]
    return np.stack(vals, axis=-1).reshape(*xy.shape[:-1], len(maps))


def keypoint_axes(gx: np.ndarray, gy: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Dominant gradient axis (radians, modulo pi) at ``(n, 2)`` corner coordinates."""
    jxx, jxy, jyy = structure_tensor(gx, gy, ORIENTATION_SIGMA)
    t = _sample(np.stack([jxx, jxy, jyy]), xy)
    return 0.5 * np.arctan2(2 * t[:, 1], t[:, 0] - t[:, 2])


def patch_grid(xy: np.ndarray, angle: np.ndarray, samples: int = PATCH_SAMPLES,
               step: float = PATCH_STEP) -> np.ndarray:
    """``(n, samples, samples, 2)`` positions of a square grid rotated by ``angle`` around each point."""
    o = (np.arange(samples) - (samples - 1) / 2) * step
    ox, oy = np.meshgrid(o, o)
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    x = xy[:, 0, None, None] + c * ox - s * oy
    y = xy[:, 1, None, None] + s * ox + c * oy
    return np.stack([x, y], axis=-1)


def describe(gx: np.ndarray, gy: np.ndarray, xy: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """128-value orientation histograms (4 x 4 cells x 8 bins over [0, pi)) of rotated patches."""
    n = len(xy)
    if n == 0:
        return np.zeros((0, 16 * ORIENTATION_BINS), np.float32)
    g = _sample(np.stack([gx, gy]), patch_grid(xy, angle))
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    rx = c * g[..., 0] + s * g[..., 1]  # gradient in the patch frame
    ry = -s * g[..., 0] + c * g[..., 1]
    mag = np.hypot(rx, ry)
    o = (np.arange(PATCH_SAMPLES) - (PATCH_SAMPLES - 1) / 2) / (PATCH_SAMPLES / 2)
    mag = mag * np.exp(-(o[None, :] ** 2 + o[:, None] ** 2))[None]
    phi = np.mod(np.arctan2(ry, rx), np.pi) / np.pi * ORIENTATION_BINS
    lo = np.floor(phi).astype(int) % ORIENTATION_BINS
    frac = phi - np.floor(phi)
    cell = np.arange(PATCH_SAMPLES) // 4
    cell_index = (cell[:, None] * 4 + cell[None, :])[None] + 16 * np.arange(n)[:, None, None]
    flat_lo = (cell_index * ORIENTATION_BINS + lo).ravel()
    flat_hi = (cell_index * ORIENTATION_BINS + (lo + 1) % ORIENTATION_BINS).ravel()
    size = n * 16 * ORIENTATION_BINS
    hist = (np.bincount(flat_lo, (mag * (1 - frac)).ravel(), size)
            + np.bincount(flat_hi, (mag * frac).ravel(), size))
    return sift_normalise(hist.reshape(n, -1))


def sift_normalise(d: np.ndarray) -> np.ndarray:
    """L2-normalise, clip at 0.2, L2-normalise again (float32)."""
    d = d / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-12)
    d = np.minimum(d, 0.2)
    return (d / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-12)).astype(np.float32)


def turned_half(desc: np.ndarray) -> np.ndarray:
    """The descriptor of the same patch turned by 180 degrees: cells in reverse order."""
    n = len(desc)
    return np.ascontiguousarray(desc.reshape(n, 4, 4, ORIENTATION_BINS)[:, ::-1, ::-1, :].reshape(n, 16 * 8))


CHECK_GRID = 3
"""The check descriptor samples oriented-gradient channels on a CHECK_GRID^2 grid ..."""
CHECK_STEP = 8.0
"""... spaced this many pixels (of the pyramid level), turned to the keypoint's axis."""


def check_descriptor(image: np.ndarray, valid: np.ndarray, xy: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """A second, independent descriptor for the outlier filter (float32, L2-normalised).

    The co-registration's dense oriented-gradient channels
    (:class:`engine.registration.features.OrientedGradientFeatures`, CFOG-like:
    smoothed, locally contrast-normalised) sampled on a small grid turned to the
    keypoint's axis; the channels are shifted by the same angle, so the values do
    not depend on the image's rotation.
    """
    from ..features import OrientedGradientFeatures

    extractor = OrientedGradientFeatures(log_scale=False)
    feats = extractor(image, valid)
    k = extractor.orientations
    grid = patch_grid(xy, angle, CHECK_GRID, CHECK_STEP)
    vals = _sample(feats, grid).reshape(len(xy), CHECK_GRID * CHECK_GRID, k)
    # channel j of the keypoint's frame = absolute orientation j * pi / k + angle
    pos = np.arange(k)[None, :] + (np.mod(angle, np.pi) / (np.pi / k))[:, None]
    lo = np.floor(pos).astype(int)
    frac = (pos - lo)[:, None, :]
    a = np.take_along_axis(vals, (lo % k)[:, None, :].repeat(vals.shape[1], 1), axis=2)
    b = np.take_along_axis(vals, ((lo + 1) % k)[:, None, :].repeat(vals.shape[1], 1), axis=2)
    d = ((1 - frac) * a + frac * b).reshape(len(xy), CHECK_GRID * CHECK_GRID * k)
    d = d - d.mean(axis=1, keepdims=True)
    return (d / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-12)).astype(np.float32)


def check_turned(check: np.ndarray) -> np.ndarray:
    """The check descriptor of the same point with its axis turned by 180 degrees (grid reversed)."""
    n = len(check)
    cells = CHECK_GRID * CHECK_GRID
    return np.ascontiguousarray(check.reshape(n, cells, -1)[:, ::-1, :].reshape(check.shape))


class ClassicalDetector:
    """SAR-Harris keypoints with oriented-gradient histogram descriptors (no model needed)."""

    name = "classical"
    model_id = "sar-harris-ogh-v1"
    tile_size = 256
    overlap = 96
    margin = PATCH_STEP * PATCH_SAMPLES / 2  # the patch's inscribed circle stays on valid pixels
    batch_size = 4

    def scores(self, batch: np.ndarray, modality: str) -> np.ndarray:
        return harris_batch(batch)

    def tile_for(self, shape: tuple[int, int]) -> int:
        return self.tile_size

    def describer(self, modality: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], Descriptions]:
        def describe_tile(image: np.ndarray, valid: np.ndarray, xy: np.ndarray) -> Descriptions:
            gx, gy = sar_gradients(image)
            angle = keypoint_axes(gx, gy, xy)
            desc = describe(gx, gy, xy, angle)
            return Descriptions(desc, turned_half(desc), check_descriptor(image, valid, xy, angle), angle)

        return describe_tile
