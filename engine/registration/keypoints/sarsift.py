"""SAR-SIFT keypoints for SAR-SAR pairs (after Dellinger, Delon, Gousseau, Michel and Tupin, "SAR-SIFT:
a SIFT-like algorithm for SAR images", IEEE TGRS 53(1), 2015; written from the paper's description).

- **Gradients that speckle does not bias** (ROEWA): on the *linear* intensity, the
  exponentially weighted mean of the half-plane after a pixel divided by the mean of
  the half-plane before it, along each axis, smoothed by the same exponential across
  it; the gradient is the log of that ratio, so a multiplicative speckle level
  cancels. The means are normalised convolutions (intensity and validity filtered
  alike), so nodata and the image border bias nothing. The exponential filters are
  first-order recursive filters (:func:`scipy.signal.lfilter`).
- **Scale space**: :data:`N_SCALES` decay lengths ``alpha_i = ALPHA0 * SCALE_RATIO**i``
  on the full-resolution grid (no decimation: speckle is not smooth at any scale).
- **SAR-Harris**: ``det(C) - d trace(C)^2`` of the structure tensor of the ROEWA
  gradients integrated by a Gaussian of ``sqrt(2) alpha``; keypoints are its spatial
  local maxima at each scale (:func:`.detect.local_maxima`, sub-pixel). The threshold
  is relative to the image's own response (the strongest positive maxima of each
  scale, at least :data:`MIN_PER_SCALE` of them), never an absolute level that could
  leave an image without keypoints.
- **Orientation**: the peaks of a histogram of gradient directions (36 bins, weighted
  by magnitude and a Gaussian of ``2 alpha``) within ``6 alpha``; a secondary peak of
  at least 0.8 of the main one gives a second keypoint.
- **Descriptor** (GLOH-like, log-polar): within ``R = DESCRIPTOR_RADIUS * alpha`` turned to
  the keypoint's orientation, a central disc and two rings of 8 sectors (17 cells) by
  8 orientation bins = 136 values, SIFT normalisation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ...run import QUIET, Run
from .classical import sift_normalise
from .coarse import eroded
from .detect import Descriptions, Keypoints, local_maxima, usable_mask

logger = logging.getLogger(__name__)

MODEL_ID = "sar-sift-v1"
"""What the registration report names this keypoint method."""
ALPHA0 = 2.0
"""Decay length (pixels) of the finest scale's exponential means."""
SCALE_RATIO = 2.0 ** (1.0 / 3.0)
N_SCALES = 7
"""Scales ``ALPHA0 * SCALE_RATIO**i``: 2 to 8 pixels (x 0.75-1.33 between images stays inside)."""
MIN_SIDE_WEIGHT = 0.25
"""A gradient needs this share of each half-plane's weight on valid pixels (else it is 0)."""
HARRIS_D = 0.04
MIN_PER_SCALE = 16
"""Every scale keeps at least this many of its positive maxima (when it has them)."""
ORIENTATION_BINS = 36
SECOND_PEAK = 0.8
DESCRIPTOR_RADIUS = 12.0
"""Descriptor radius in units of the keypoint's alpha (SAR-SIFT: 12)."""
RING_RADII = (0.25, 0.73, 1.0)
"""Outer radii of the central disc and of the two rings (shares of the descriptor radius)."""
SECTORS = 8
DESCRIPTOR_BINS = 8
DESCRIPTOR_SIZE = (1 + 2 * SECTORS) * DESCRIPTOR_BINS
SAMPLE_STEP = 0.1
"""Spacing of the descriptor's samples (share of its radius): about 300 samples in the disc."""


def _recursive(x: np.ndarray, a: float, axis: int, reverse: bool) -> np.ndarray:
    """``y[n] = sum_{k >= 0} a^k x[n -+ k]`` along ``axis`` (causal, or anti-causal when ``reverse``)."""
    from scipy.signal import lfilter

    if reverse:
        x = np.flip(x, axis)
    y = lfilter([1.0], [1.0, -a], x, axis=axis)
    return np.flip(y, axis) if reverse else y


def _smooth(x: np.ndarray, a: float, axis: int) -> np.ndarray:
    """Symmetric exponential smoothing ``sum_k a^|k| x[n + k]`` (unnormalised)."""
    y = _recursive(x, a, axis, False)
    y += _recursive(x, a, axis, True)
    y -= x
    return y


def _half_plane(s: np.ndarray, a: float, axis: int, after: bool) -> np.ndarray:
    """Exponentially weighted sum of ``s`` over the half-line after (or before) each pixel along ``axis``,
    the pixel itself excluded."""
    y = _recursive(s, a, axis, after)
    y -= s
    return y


def roewa_gradients(intensity: np.ndarray, valid: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """ROEWA log-ratio gradients ``(gx, gy)`` of a linear intensity image at decay length ``alpha``;
    0 where either half-plane holds less than :data:`MIN_SIDE_WEIGHT` of its weight in valid pixels.

    Float64 recursive filters (the detection's results depend on their precision), computed in place
    one half-plane at a time: at most about 8.5 image-sized float64 arrays at once (13.5 when each step
    made a new array; on a 2000 x 2000 px SAR-SAR pair those made the registration's peak memory)."""
    a = float(np.exp(-1.0 / alpha))
    full_side = a / (1 - a) * (1 + a) / (1 - a)  # weight of a whole half-plane
    w = valid.astype(np.float64)
    iw = np.array(intensity, np.float64)
    iw[~valid] = 0.0
    out = []
    for across, along in ((0, 1), (1, 0)):
        sw = _smooth(w, a, across)
        after_w, before_w = _half_plane(sw, a, along, True), _half_plane(sw, a, along, False)
        del sw
        enough = np.minimum(after_w, before_w) >= MIN_SIDE_WEIGHT * full_side
        enough &= valid
        si = _smooth(iw, a, across)
        after = _half_plane(si, a, along, True)
        after /= np.maximum(after_w, 1e-12, out=after_w)
        del after_w
        before = _half_plane(si, a, along, False)
        del si
        before /= np.maximum(before_w, 1e-12, out=before_w)
        del before_w
        ratio = np.maximum(after, 1e-30, out=after)
        ratio /= np.maximum(before, 1e-30, out=before)
        del before
        ratio[~enough] = 1.0
        out.append(np.log(ratio, out=ratio).astype(np.float32))
    return out[0], out[1]


def sar_harris(gx: np.ndarray, gy: np.ndarray, alpha: float) -> np.ndarray:
    """SAR-Harris response of ROEWA gradients at ``alpha``."""
    from scipy import ndimage

    s = np.sqrt(2.0) * alpha
    jxx, jxy, jyy = (ndimage.gaussian_filter(m, s, mode="nearest") for m in (gx * gx, gx * gy, gy * gy))
    return (jxx * jyy - jxy * jxy - HARRIS_D * (jxx + jyy) ** 2).astype(np.float32)


def _sample(maps: tuple[np.ndarray, ...], xy: np.ndarray) -> list[np.ndarray]:
    """Bilinear samples of 2-D maps at corner coordinates ``(..., 2)`` (0 outside)."""
    from scipy import ndimage

    flat = xy.reshape(-1, 2) - 0.5
    return [ndimage.map_coordinates(m, [flat[:, 1], flat[:, 0]], order=1, cval=0.0).reshape(xy.shape[:-1])
            for m in maps]


def _disc(step: float) -> np.ndarray:
    """Offsets of a square grid of spacing ``step`` inside the unit disc, ``(m, 2)``."""
    o = np.arange(-1.0, 1.0 + 1e-9, step)
    ox, oy = np.meshgrid(o, o)
    keep = ox**2 + oy**2 <= 1.0
    return np.stack([ox[keep], oy[keep]], axis=1)


def orientations(gx: np.ndarray, gy: np.ndarray, ok: np.ndarray, xy: np.ndarray,
                 alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Dominant gradient directions (radians) of each keypoint: ``(index of its keypoint, angle)``;
    a keypoint with a secondary peak of at least :data:`SECOND_PEAK` appears twice."""
    from scipy import ndimage

    if len(xy) == 0:
        return np.zeros(0, int), np.zeros(0)
    offsets = _disc(1.0 / 12.0) * 6.0 * alpha
    pts = xy[:, None, :] + offsets[None]
    sx, sy, sv = _sample((gx, gy, ok.astype(np.float32)), pts)
    weight = np.hypot(sx, sy) * np.exp(-(offsets**2).sum(1) / (2 * (2 * alpha) ** 2))[None] * (sv > 0.999)
    theta = np.arctan2(sy, sx)
    b = np.mod(np.floor(theta / (2 * np.pi) * ORIENTATION_BINS).astype(int), ORIENTATION_BINS)
    n = len(xy)
    hist = np.bincount((b + ORIENTATION_BINS * np.arange(n)[:, None]).ravel(), weight.ravel(),
                       n * ORIENTATION_BINS).reshape(n, ORIENTATION_BINS)
    hist = ndimage.convolve1d(hist, np.array([1.0, 2.0, 1.0]) / 4, axis=1, mode="wrap")
    left, right = np.roll(hist, 1, axis=1), np.roll(hist, -1, axis=1)
    peak = (hist > left) & (hist >= right) & (hist >= SECOND_PEAK * hist.max(axis=1, keepdims=True))
    peak &= hist > 0
    idx, bins = np.nonzero(peak)
    h0, hl, hr = hist[idx, bins], left[idx, bins], right[idx, bins]
    den = hl - 2 * h0 + hr
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(den < 0, 0.5 * (hl - hr) / den, 0.0)
    return idx, (bins + 0.5 + off) * 2 * np.pi / ORIENTATION_BINS


def _cells(offsets: np.ndarray) -> np.ndarray:
    """Log-polar cell of each unit-disc offset (in the keypoint's frame): 0 = centre, then 2 rings."""
    r = np.hypot(offsets[:, 0], offsets[:, 1])
    sector = np.mod(np.floor(np.arctan2(offsets[:, 1], offsets[:, 0]) / (2 * np.pi) * SECTORS).astype(int),
                    SECTORS)
    ring = np.searchsorted(np.array(RING_RADII[:-1]), r, side="right")
    return np.where(ring == 0, 0, 1 + (ring - 1) * SECTORS + sector)


def describe(gx: np.ndarray, gy: np.ndarray, ok: np.ndarray, xy: np.ndarray, angle: np.ndarray,
             alpha: float) -> np.ndarray:
    """GLOH-like 136-value descriptors of keypoints at ``xy`` turned to ``angle`` (see the module doc)."""
    n = len(xy)
    if n == 0:
        return np.zeros((0, DESCRIPTOR_SIZE), np.float32)
    unit = _disc(SAMPLE_STEP)
    cell = _cells(unit)
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    radius = DESCRIPTOR_RADIUS * alpha
    ox, oy = unit[None, :, 0] * radius, unit[None, :, 1] * radius
    pts = np.stack([xy[:, 0, None] + c * ox - s * oy, xy[:, 1, None] + s * ox + c * oy], axis=-1)
    sx, sy, sv = _sample((gx, gy, ok.astype(np.float32)), pts)
    mag = np.hypot(sx, sy) * (sv > 0.999) * np.exp(-(unit**2).sum(1) / 2)[None]
    rel = np.mod(np.arctan2(sy, sx) - angle[:, None], 2 * np.pi) / (2 * np.pi) * DESCRIPTOR_BINS
    lo = np.floor(rel).astype(int) % DESCRIPTOR_BINS
    frac = rel - np.floor(rel)
    base = (np.arange(n)[:, None] * (1 + 2 * SECTORS) + cell[None]) * DESCRIPTOR_BINS
    size = n * DESCRIPTOR_SIZE
    hist = (np.bincount((base + lo).ravel(), (mag * (1 - frac)).ravel(), size)
            + np.bincount((base + (lo + 1) % DESCRIPTOR_BINS).ravel(), (mag * frac).ravel(), size))
    return sift_normalise(hist.reshape(n, DESCRIPTOR_SIZE))


@dataclass(frozen=True)
class ScaleKeypoints:
    """Keypoints of one scale: positions, responses, orientations and descriptors."""

    xy: np.ndarray
    score: np.ndarray
    angle: np.ndarray
    desc: np.ndarray


def _scale_keypoints(intensity: np.ndarray, valid: np.ndarray, alpha: float, budget: int) -> ScaleKeypoints:
    gx, gy = roewa_gradients(intensity, valid, alpha)
    response = sar_harris(gx, gy, alpha)
    xy, vals = local_maxima(response, usable_mask(valid, 2 * alpha + 2), budget)
    idx, angle = orientations(gx, gy, valid, xy, alpha)
    return ScaleKeypoints(xy[idx], vals[idx], angle, describe(gx, gy, valid, xy[idx], angle, alpha))


def scales() -> np.ndarray:
    """The decay lengths of the scale space (pixels)."""
    return ALPHA0 * SCALE_RATIO ** np.arange(N_SCALES)


def extract(intensity: np.ndarray, valid: np.ndarray, max_keypoints: int, run: Run = QUIET) -> Keypoints:
    """SAR-SIFT keypoints of a linear intensity image (full-resolution pixel-corner coordinates).

    The budget is shared equally by the scales (at least :data:`MIN_PER_SCALE` each); ``scale``
    of the result holds each keypoint's alpha.
    """
    alphas = scales()
    budget = max(MIN_PER_SCALE, max_keypoints // len(alphas))
    parts: list[ScaleKeypoints] = []
    for i, alpha in enumerate(alphas):
        run.check("SAR-SIFT keypoint detection")
        parts.append(_scale_keypoints(intensity, valid, float(alpha), budget))
        run.progress((i + 1) / len(alphas))
        logger.debug("alpha %.2f: %d keypoints", alpha, len(parts[-1].xy))
    angle = np.concatenate([p.angle for p in parts])
    desc = np.concatenate([p.desc for p in parts])
    return Keypoints(
        np.concatenate([p.xy for p in parts]), np.concatenate([p.score for p in parts]),
        np.concatenate([np.full(len(p.xy), a, np.float32) for p, a in zip(parts, alphas, strict=True)]),
        Descriptions(desc, None, np.zeros((len(desc), 0), np.float32), angle),
    )


def dense_features(intensity: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Speckle-robust channels for the dense fine stage of a SAR-SAR pair (:func:`.dense.refine`): the
    CFOG channels (:func:`engine.registration.features.oriented_channels`, its defaults) of the ROEWA
    gradients of a linear ``intensity`` at the finest scale :data:`ALPHA0`, where a log-ratio edge
    detector's response does not depend on the speckle level (gradients of the log image do); zero
    outside the validity mask eroded as :func:`.coarse.features` does."""
    from ..features import oriented_channels

    usable = valid & (intensity > 0)
    gx, gy = roewa_gradients(intensity, usable, ALPHA0)
    ok = eroded(usable)
    return oriented_channels(gx, gy, ok), ok


def linear_intensity(values: np.ndarray, kind: str, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SAR values of ``kind`` ('intensity', 'amplitude' or 'db') as linear intensity, and where valid."""
    v = np.asarray(values, np.float64)
    ok = np.asarray(valid, bool) & np.isfinite(v)
    if kind == "db":
        out = np.power(10.0, np.where(ok, v, 0.0) / 10.0)
    elif kind == "amplitude":
        out = np.where(ok, v, 0.0) ** 2
    else:
        out = np.where(ok, v, 0.0)
    ok &= out > 0
    return np.where(ok, out, 0.0), ok
