"""The SAR's point-spread function and the known misregistration (shift or affine) of its content."""

from __future__ import annotations

import math

import numpy as np


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (truncated at 3 sigma, edge padded): the SAR point-spread function."""
    if sigma <= 0:
        return img.astype(np.float32)
    r = math.ceil(3 * sigma)
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    h, w = img.shape
    pad = np.pad(img.astype(np.float32), ((0, 0), (r, r)), mode="edge")
    tmp = sum(t * pad[:, k:k + w] for k, t in enumerate(taps))
    pad = np.pad(tmp, ((r, r), (0, 0)), mode="edge")
    return np.asarray(sum(t * pad[k:k + h] for k, t in enumerate(taps)), np.float32)


def bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear sample of ``img`` at float pixel coordinates (edge-clamped)."""
    h, w = img.shape
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bot = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def fast_len(n: int) -> int:
    """Smallest 2-3-5-smooth integer >= n (fast FFT length)."""
    m = n
    while True:
        k = m
        for f in (2, 3, 5):
            while k % f == 0:
                k //= f
        if k == 1:
            return m
        m += 1


def upsample2(spec: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """2x band-limited (Fourier zero-padding) upsampling of a real image from its ``rfft2``."""
    h, w = shape
    big = np.zeros((2 * h, w + 1), np.complex128)
    pos = (h + 1) // 2
    big[:pos, : spec.shape[1]] = spec[:pos]
    if h - pos:
        big[-(h - pos):, : spec.shape[1]] = spec[pos:]
    if h % 2 == 0:  # split the Nyquist row between +h/2 and -h/2
        big[-(h // 2)] *= 0.5
        big[h // 2] = big[-(h // 2)]
    if w % 2 == 0:  # the Nyquist column becomes an ordinary frequency: half its weight
        big[:, w // 2] *= 0.5
    return (np.fft.irfft2(big, s=(2 * h, 2 * w)) * 4.0).astype(np.float32)


def sar_matrix(w: int, h: int, sx: float, sy: float, affine: np.ndarray | None) -> np.ndarray:
    """3x3 map from optical pixel centre (col, row, 1) to SAR pixel centre."""
    m = np.eye(3)
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    if affine is not None:
        lin = affine[:, :2]
        t = affine[:, 2] if affine.shape[1] == 3 else np.zeros(2)
        m[:2, :2] = lin
        m[:2, 2] = c - lin @ c + t
    m[0, 2] += sx
    m[1, 2] += sy
    return m


def max_displacement(m: np.ndarray, w: int, h: int) -> float:
    """Largest displacement (pixels) of a corner of a ``w`` x ``h`` scene under the inverse of ``m``."""
    inv = np.linalg.inv(m)
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float).T
    return float(np.abs((inv @ corners)[:2] - corners[:2]).max())


def misregister(blurred: np.ndarray, margin: int, w: int, h: int, m: np.ndarray, affine: bool) -> np.ndarray:
    """The ``h`` x ``w`` SAR-geometry crop of the padded aligned image ``blurred`` under map ``m``.

    A pure translation is an exact linear phase ramp (all-pass, no smoothing); an affine map
    samples bilinearly after band-limited 2x upsampling (nearly unbiased).
    """
    crop = (slice(margin, margin + h), slice(margin, margin + w))
    sx, sy = float(m[0, 2]), float(m[1, 2])
    if not affine and sx == 0.0 and sy == 0.0:
        return blurred[crop]
    if not affine:
        fy = np.fft.fftfreq(int(blurred.shape[0]), 1.0)[:, None]
        fx = np.fft.rfftfreq(int(blurred.shape[1]), 1.0)[None, :]
        spec = np.fft.rfft2(blurred) * np.exp(-2j * np.pi * (fx * sx + fy * sy))
        return np.fft.irfft2(spec, s=blurred.shape)[crop].astype(np.float32)
    # SAR pixel (c, r) shows the aligned content at optical pixel inv @ (c, r, 1)
    inv = np.linalg.inv(m)
    gc, gr = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    src_c = inv[0, 0] * gc + inv[0, 1] * gr + inv[0, 2] + margin
    src_r = inv[1, 0] * gc + inv[1, 1] * gr + inv[1, 2] + margin
    up = upsample2(np.fft.rfft2(blurred), (int(blurred.shape[0]), int(blurred.shape[1])))
    return bilinear(up, 2.0 * src_c, 2.0 * src_r)
