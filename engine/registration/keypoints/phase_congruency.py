"""Phase congruency from a log-Gabor filter bank (Kovesi 1999/2003), as RIFT uses it.

For each of :data:`ORIENTATIONS` orientations and :data:`SCALES` scales the image is
filtered (numpy/scipy FFT) by a log-Gabor filter (radial Gaussian on a log frequency
axis, angular raised-cosine spread over one half plane, so the response is complex:
even part = real, odd part = imaginary). Per orientation, phase congruency is the
local energy of the responses summed over scales, less a noise threshold, divided by
the sum of their amplitudes:

    PC_o = W_o * max(E_o - T_o, 0) / (sum_s A_so + eps)

- ``E_o`` (Kovesi's phase deviation form): ``sum_s (e_s . mean_dir + |e_s x mean_dir|-penalty)``
  with ``e_s = (even_s, odd_s)`` and ``mean_dir`` the direction of their sum;
- ``T_o``: noise compensation from the smallest scale, whose amplitude is mostly noise:
  ``tau = median(A_0o) / sqrt(log 4)`` (Rayleigh), the noise energy of all scales has mean
  ``tau_total sqrt(pi / 2)`` and standard deviation ``tau_total sqrt((4 - pi) / 2)``, and
  ``T = mean + NOISE_K sigma``;
- ``W_o``: a sigmoid of the spread of the amplitudes over scales (a feature at one
  scale only is not a step).

Everything scales with the image's contrast (energy, amplitudes and ``tau`` alike), so
phase congruency is invariant to a contrast change: the property that makes it
comparable between optical and SAR images. From the per-orientation values the
moments of phase congruency give a maximum (edges) and a minimum (corners) moment
map; the *maximum index map* (MIM) of RIFT is, at each pixel, the orientation whose
amplitude summed over scales is largest (here with a sub-orientation position from a
parabola through the neighbouring orientations' amplitudes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ...run import QUIET, Run

logger = logging.getLogger(__name__)

SCALES = 4
ORIENTATIONS = 6
MIN_WAVELENGTH = 6.0
"""Wavelength (pixels) of the smallest scale's filter (3 in RIFT; on speckled SAR the finest scales
are mostly speckle: 6 gave more correct matches on the calibration split)."""
MULT = 1.6
"""Ratio of the wavelengths of successive scales."""
SIGMA_ON_F = 0.75
"""Radial bandwidth: the log-Gabor's Gaussian width over its centre frequency (log ratio)."""
NOISE_K = 1.0
"""Noise threshold = mean + this many standard deviations of the estimated noise energy."""
CUT_OFF = 0.5
"""Spread of amplitudes over scales below which phase congruency is down-weighted."""
GAIN = 10.0
"""Steepness of that weighting sigmoid."""
EPS = 1e-4
TILE = 1024
"""Images larger than this (pixels, either side) get phase congruency tile by tile."""
OVERLAP = 128
WHAT = "RIFT phase congruency"
"""What a cancel during the filtering names."""


@dataclass
class PhaseCongruency:
    """The maps of one image: moments of phase congruency and the maximum index map."""

    max_moment: np.ndarray  # (h, w) edges
    min_moment: np.ndarray  # (h, w) corners
    orientation: np.ndarray  # (h, w) MIM orientation, radians in [0, pi), sub-orientation precision
    amplitude: np.ndarray  # (h, w) amplitude (summed over scales) of that orientation


def _frequency_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Radius and angle of each FFT frequency (cycles per pixel); the zero frequency gets radius 1."""
    fy = np.fft.fftfreq(int(shape[0]), 1.0)[:, None]
    fx = np.fft.fftfreq(int(shape[1]), 1.0)[None, :]
    radius = np.hypot(fx, fy)
    radius[0, 0] = 1.0
    # image coordinates (x right, y down): a turn of the image turns its spectrum by the same angle
    return radius, np.arctan2(fy, fx)


def _radial_filters(radius: np.ndarray, scales: int) -> list[np.ndarray]:
    """Log-Gabor radial parts of each scale, low-pass limited (no energy beyond 0.45 cycles/pixel)."""
    lowpass = 1.0 / (1.0 + (radius / 0.45) ** 30)
    out = []
    for s in range(scales):
        f0 = 1.0 / (MIN_WAVELENGTH * MULT**s)
        g = np.exp(-(np.log(radius / f0) ** 2) / (2 * np.log(SIGMA_ON_F) ** 2)) * lowpass
        g[0, 0] = 0.0
        out.append(g)
    return out


def _angular_filter(theta: np.ndarray, angle: float, orientations: int) -> np.ndarray:
    """Raised-cosine spread about ``angle``, one half plane (width 2 pi / orientations at the base)."""
    d = np.abs(np.angle(np.exp(1j * (theta - angle))))
    d = np.minimum(d * orientations / 2, np.pi)
    return (np.cos(d) + 1) / 2


def _energy(responses: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(energy, summed amplitude, largest amplitude) of one orientation's complex responses."""
    total = responses[0].copy()
    sum_amp = np.abs(responses[0])
    max_amp = sum_amp.copy()
    for r in responses[1:]:
        total += r
        amp = np.abs(r)
        sum_amp += amp
        np.maximum(max_amp, amp, out=max_amp)
    norm = np.abs(total) + EPS * 1e-3
    mean_e, mean_o = total.real / norm, total.imag / norm
    energy = np.zeros(total.shape, np.float32)
    for r in responses:
        e, o = r.real, r.imag
        energy += e * mean_e + o * mean_o - np.abs(e * mean_o - o * mean_e)
    return energy, sum_amp, max_amp


def noise_levels(image: np.ndarray, valid: np.ndarray, orientations: int = ORIENTATIONS,
                 run: Run = QUIET) -> list[float]:
    """Kovesi's noise estimate ``tau`` of each orientation: the median amplitude of the smallest scale's
    response over the valid pixels, over sqrt(log 4) (one response at a time; cancel checked before each)."""
    from scipy import fft

    spectrum, ok = _spectrum(image, valid)
    radius, theta = _frequency_grid((spectrum.shape[0], spectrum.shape[1]))
    smallest = _radial_filters(radius, 1)[0]
    out = []
    for o in range(orientations):
        run.check(WHAT)
        spread = _angular_filter(theta, o * np.pi / orientations, orientations)
        amp = np.abs(fft.ifft2(spectrum * (smallest * spread), workers=1).astype(np.complex64))[ok]
        out.append(float(np.median(amp)) / np.sqrt(np.log(4.0)) if amp.size else 0.0)
    return out


def _spectrum(image: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """FFT of the image with invalid pixels at the valid mean (mean removed), and the validity."""
    from scipy import fft

    img = np.asarray(image, dtype=np.float32)
    ok = np.isfinite(img) if valid is None else (np.asarray(valid, bool) & np.isfinite(img))
    fill = float(img[ok].mean()) if ok.any() else 0.0
    img = np.where(ok, img, fill).astype(np.float32)
    return fft.fft2(img - fill, workers=1), ok


def phase_congruency(image: np.ndarray, valid: np.ndarray | None = None, scales: int = SCALES,
                     orientations: int = ORIENTATIONS, taus: list[float] | None = None,
                     run: Run = QUIET) -> PhaseCongruency:
    """Phase congruency moments and the maximum index map of a 2-D image (see the module doc).

    Invalid pixels are set to the mean of the valid ones before filtering (no step at their edge
    beyond what the data hold); the maps there are 0. ``taus``: the noise levels of a larger image this
    one is a tile of (:func:`noise_levels`), else this image's own. ``run`` is checked for cancel before
    each orientation's filtering.
    """
    from scipy import fft

    spectrum, ok = _spectrum(image, valid)
    shape = (spectrum.shape[0], spectrum.shape[1])
    radius, theta = _frequency_grid(shape)
    radial = _radial_filters(radius, scales)
    shrink = (1 - (1 / MULT) ** scales) / (1 - 1 / MULT)
    covx = np.zeros(shape, np.float32)
    covy = np.zeros(shape, np.float32)
    covxy = np.zeros(shape, np.float32)
    amplitude = np.zeros((orientations, *shape), np.float32)
    for o in range(orientations):
        run.check(WHAT)
        angle = o * np.pi / orientations
        spread = _angular_filter(theta, angle, orientations)
        responses = [fft.ifft2(spectrum * (g * spread), workers=1).astype(np.complex64) for g in radial]
        energy, sum_amp, max_amp = _energy(responses)
        if taus is None:
            small = np.abs(responses[0])[ok]
            tau = float(np.median(small)) / np.sqrt(np.log(4.0)) if small.size else 0.0
        else:
            tau = taus[o]
        threshold = tau * shrink * (np.sqrt(np.pi / 2) + NOISE_K * np.sqrt((4 - np.pi) / 2))
        width = (sum_amp / (max_amp + EPS * 1e-3) - 1) / max(scales - 1, 1)
        weight = 1.0 / (1.0 + np.exp((CUT_OFF - width) * GAIN))
        pc = weight * np.maximum(energy - threshold, 0) / (sum_amp + EPS * max(tau, 1e-12) + 1e-12)
        c, s = np.cos(angle), np.sin(angle)
        covx += (pc * c) ** 2
        covy += (pc * s) ** 2
        covxy += (pc * c) * (pc * s)
        amplitude[o] = sum_amp
    covx *= 2.0 / orientations
    covy *= 2.0 / orientations
    covxy *= 4.0 / orientations
    denom = np.sqrt(covxy**2 + (covx - covy) ** 2)
    max_moment = np.where(ok, (covx + covy + denom) / 2, 0).astype(np.float32)
    min_moment = np.where(ok, (covx + covy - denom) / 2, 0).astype(np.float32)
    orientation, best = maximum_index(amplitude)
    return PhaseCongruency(max_moment, min_moment, np.where(ok, orientation, 0).astype(np.float32),
                           np.where(ok, best, 0).astype(np.float32))


def phase_congruency_tiled(image: np.ndarray, valid: np.ndarray, tile_size: int = TILE,
                           overlap: int = OVERLAP, run: Run = QUIET) -> PhaseCongruency:
    """:func:`phase_congruency` of an image larger than ``tile_size``, tile by tile through the engine's
    tile plan (each tile's core from a read window ``overlap`` wider: the filters reach about 4 x 25 px),
    so the memory is that of one tile, not of the image (about 0.7 GB for 2000 x 2000 px at once); the
    noise levels are the whole image's (:func:`noise_levels`). An image that fits one tile is computed
    whole. ``run`` is checked for cancel before each tile and orientation, and told the tiles done."""
    from ...tiling import plan_tiles

    h, w = image.shape
    if max(h, w) <= tile_size:
        return phase_congruency(image, valid, run=run)
    taus = noise_levels(image, valid, run=run)
    maps = [np.zeros((h, w), np.float32) for _ in range(4)]
    tiles = plan_tiles(h, w, tile_size, overlap)
    for i, tile in enumerate(tiles):
        run.check(WHAT)
        r, c = tile.read, tile.core
        r0, r1 = max(0, r.row_off), min(h, r.row_off + r.height)
        c0, c1 = max(0, r.col_off), min(w, r.col_off + r.width)
        part = phase_congruency(image[r0:r1, c0:c1], valid[r0:r1, c0:c1], taus=taus, run=run)
        rows, cols = slice(c.row_off, c.row_off + c.height), slice(c.col_off, c.col_off + c.width)
        outer = (rows, cols)
        inner = (slice(rows.start - r0, rows.stop - r0), slice(cols.start - c0, cols.stop - c0))
        for full, piece in zip(maps, (part.max_moment, part.min_moment, part.orientation, part.amplitude),
                               strict=True):
            full[outer] = piece[inner]
        run.progress((i + 1) / len(tiles))
    return PhaseCongruency(*maps)


def maximum_index(amplitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RIFT's maximum index map of ``(orientations, h, w)`` amplitudes, as an angle in [0, pi)
    refined by a parabola through the neighbouring orientations (cyclic), and the largest amplitude."""
    n = amplitude.shape[0]
    index = np.argmax(amplitude, axis=0)
    best = np.take_along_axis(amplitude, index[None], axis=0)[0]
    before = np.take_along_axis(amplitude, ((index - 1) % n)[None], axis=0)[0]
    after = np.take_along_axis(amplitude, ((index + 1) % n)[None], axis=0)[0]
    den = before - 2 * best + after
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(den < 0, 0.5 * (before - after) / den, 0.0)
    offset = np.clip(offset, -0.5, 0.5)
    return np.mod((index + offset) * np.pi / n, np.pi), best
