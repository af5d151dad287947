"""Seeded randomness: hashed lattice noise (a pure function of world coordinates) and speckle.

Every random quantity of the layout is a function of world coordinates and of a key
derived from the seed, so the same seed gives the same world whatever the scene's
shift, affine or margin.
"""

from __future__ import annotations

import numpy as np


def stream_key(seed: int, purpose: int) -> int:
    """A 32-bit key derived from the seed for one purpose (independent streams)."""
    return int(np.random.SeedSequence([seed, purpose]).generate_state(1)[0])


def lattice_hash(ix: np.ndarray, iy: np.ndarray, key: int) -> np.ndarray:
    """Uniform float32 in [0, 1) from integer lattice coordinates (murmur3 finaliser, uint32 wrap)."""
    a = (np.asarray(ix).astype(np.int64) & 0xFFFFFFFF).astype(np.uint32)
    b = (np.asarray(iy).astype(np.int64) & 0xFFFFFFFF).astype(np.uint32)
    h = a * np.uint32(0x8DA6B343) + b * np.uint32(0xD8163841) + np.uint32(key)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)


def value_noise(xm: np.ndarray, ym: np.ndarray, cell: float, key: int) -> np.ndarray:
    """Smooth value noise in [0, 1] on an axis-aligned lattice of ``cell`` metres (separable)."""
    gx, gy = xm / cell, ym / cell
    ix0, iy0 = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
    lx = np.arange(ix0.min(), ix0.max() + 2)
    ly = np.arange(iy0.min(), iy0.max() + 2)
    lattice = lattice_hash(lx[None, :], ly[:, None], key)  # (ny, nx), small
    fx, fy = gx - ix0, gy - iy0
    fx = (fx * fx * (3 - 2 * fx)).astype(np.float32)
    fy = (fy * fy * (3 - 2 * fy)).astype(np.float32)
    cx, cy = ix0 - lx[0], iy0 - ly[0]
    along_x = lattice[:, cx] * (1 - fx) + lattice[:, cx + 1] * fx  # (ny, W)
    # element-wise (not a BLAS product, whose rounding depends on the grid's extent): a pixel's value
    # is the same whatever margin the scene is rendered with
    out = along_x[cy]
    out *= (1 - fy)[:, None]
    below = along_x[cy + 1]
    below *= fy[:, None]
    out += below
    return out


def fbm(xm: np.ndarray, ym: np.ndarray, cell: float, octaves: int, key: int) -> np.ndarray:
    """Fractal sum of value noise, rescaled to mean ~0.5 in [0, 1]."""
    total = np.zeros((ym.size, xm.size), np.float32)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        total += np.float32(amp) * value_noise(xm, ym, cell / 2**o, key + 7919 * o)
        norm += amp
        amp *= 0.5
    total /= np.float32(norm)
    return total


def speckle(sigma0: np.ndarray, looks: float, seed: int) -> np.ndarray:
    """Fully developed speckle: ``sigma0 * Gamma(L, 1/L)`` (float32, its own seeded stream)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    sar = sigma0 * rng.standard_gamma(looks, size=sigma0.shape, dtype=np.float32) / np.float32(looks)
    return sar.astype(np.float32, copy=False)


def add_sensor_noise(optical: np.ndarray, seed: int) -> None:
    """Add optical sensor noise in place (std 0.003 reflectance) and clip to [0, 1]."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    # uniform: much cheaper to draw than Gaussian
    noise = rng.random(optical.shape, dtype=np.float32) - np.float32(0.5)
    optical += noise * np.float32(0.003 * 12**0.5)
    np.clip(optical, 0.0, 1.0, out=optical)
