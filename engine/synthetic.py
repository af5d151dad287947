"""Seeded synthetic SAR/optical scene pairs with a known misregistration.

A scene is a procedural land-cover layout (crop parcels, forest, a river and
a lake, roads, an urban district with building heights) rendered twice:

- **optical**: surface reflectance (red, green, blue, NIR; float32 0..1) with
  crop/forest texture, mild terrain shading and building shadows cast away
  from the sun;
- **SAR**: C-band-like sigma0 intensity (linear, float32) with per-class dB
  statistics, layover, double bounce and radar shadow of buildings along the
  look direction, then a known misregistration (sub-pixel shift, optionally an
  affine) applied to the noise-free sigma0, then fully developed speckle
  (``I = sigma0 * Gamma(L, 1/L)``) so speckle stays uncorrelated and unshifted.

Shift convention: ``shift_x = +1`` moves the SAR *content* one pixel to the
right (east, +column) of where the optical image has it, ``shift_y = +1`` one
pixel down (south, +row): ``sar[r, c] = aligned[r - shift_y, c - shift_x]``.
``skimage.registration.phase_cross_correlation(optical_like, sar)`` therefore
returns ``(-shift_y, -shift_x)``: the displacement that moves the SAR back onto
the optical grid. Both rasters are written on the *same* geotransform; the
misregistration lives in the content only.

Every random quantity of the layout is a pure function of world coordinates
(hashed lattices) and of draws made from ``seed`` before anything depends on
the shift, so the same seed gives the same world whatever shift, affine or
margin is asked for. Generation is numpy only; GeoTIFFs are written through
:mod:`engine.raster_io`. Statistics reproduced are documented in
``docs/SYNTHETIC.md`` (measured by ``tests/engine/test_synthetic.py``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CancelledError, InputError

logger = logging.getLogger(__name__)

MIN_SIZE = 16
MAX_SIZE = 20000
MAX_PIXELS = 8192 * 8192
"""Largest scene rendered in memory (peak about 130 bytes per pixel, i.e. ~9 GB at 8192 x 8192)."""
METADATA_TAG = "SAR_TOOLBOX_SYNTHETIC"
"""GeoTIFF tag (dataset namespace) holding the JSON truth of a written scene."""

SAR_DESCRIPTION = "sigma0 intensity (linear)"
SHIFT_CONVENTION = ("positive shift_x/shift_y = SAR content moved right/down (east/south) relative to the "
                    "optical image; sar[r, c] = aligned[r - shift_y, c - shift_x]")
BUILDING_MIN_HEIGHT = 6.0
BUILDING_MAX_HEIGHT = 46.0  # metres: 6 + 22 (random) + 18 (towards the district centre)
OPTICAL_BANDS = ("red", "green", "blue", "nir")


class LandCover(IntEnum):
    """Land-cover classes of the layout (``ScenePair.landcover``)."""

    WATER = 1
    FIELD = 2
    FOREST = 3
    ROAD = 4
    URBAN = 5  # streets, yards and squares between buildings
    BUILDING = 6


# Rotations (np.rot90 k) that bring each look direction to the "east" frame, in which
# the sensor lies to the west and slant range grows with the column index.
LOOK_DIRECTIONS: dict[str, int] = {"east": 0, "south": 1, "west": 2, "north": 3}

# ---------------------------------------------------------------- class appearance
# Typical C-band (Sentinel-1 VV, 30-45 deg incidence) sigma0 values in dB.
SAR_DB: dict[str, float] = {
    "water": -22.0,  # calm to light-wind open water: -18 .. -25 dB
    "forest": -7.0,  # volume scattering of closed canopies: about -6 .. -8 dB in VV
    "road": -18.0,  # smooth asphalt, mostly specular (-15 .. -20 dB)
    "urban_ground": -2.0,  # streets with cars, poles, small dihedrals at 10 m pixels
    "roof": 2.0,  # mean roof return (structures, chimneys, gravel)
    "facade": -1.0,  # per pixel facade return spread over the layover zone
    "double_bounce": 14.0,  # ground-wall dihedral, strongest for walls facing the sensor
    "shadow": -24.0,  # radar shadow: only thermal noise (NESZ of Sentinel-1 IW ~ -22 .. -26 dB)
}
# Crop types: (name, sigma0 dB, (red, green, blue, nir) reflectance).
CROPS: tuple[tuple[str, float, tuple[float, float, float, float]], ...] = (
    ("bare soil", -12.5, (0.21, 0.17, 0.12, 0.27)),
    ("grassland", -11.0, (0.06, 0.10, 0.05, 0.36)),
    ("winter wheat", -10.0, (0.05, 0.09, 0.04, 0.42)),
    ("maize", -9.0, (0.04, 0.08, 0.035, 0.47)),
    ("rapeseed", -8.5, (0.16, 0.19, 0.06, 0.41)),
)
REFLECTANCE: dict[str, tuple[float, float, float, float]] = {
    "water": (0.030, 0.045, 0.060, 0.020),
    "forest": (0.030, 0.055, 0.030, 0.300),
    "road": (0.110, 0.110, 0.115, 0.130),
    "urban_ground": (0.140, 0.140, 0.135, 0.170),
    "garden": (0.060, 0.090, 0.050, 0.330),
}
ROOFS: tuple[tuple[float, float, float, float], ...] = (
    (0.25, 0.12, 0.08, 0.28),  # terracotta tiles
    (0.18, 0.18, 0.19, 0.20),  # grey slate / metal
    (0.30, 0.30, 0.29, 0.33),  # light concrete
    (0.10, 0.10, 0.11, 0.12),  # dark bitumen
)


@dataclass(frozen=True, eq=False)
class ScenePair:
    """One synthetic scene: truth, noise-free and speckled SAR, optical.

    Attributes:
        landcover: ``(H, W)`` uint8 :class:`LandCover` codes (optical geometry).
        building_height: ``(H, W)`` float32 metres (0 off buildings).
        sigma0_aligned: ``(H, W)`` float32 noise-free sigma0 in the optical geometry.
        sigma0: ``(H, W)`` float32 noise-free sigma0 after the misregistration.
        sar: ``(H, W)`` float32 speckled intensity (``sigma0`` times Gamma(L, 1/L) noise).
        optical: ``(4, H, W)`` float32 reflectance, bands red, green, blue, nir.
        shift: ``(shift_x, shift_y)`` in pixels (see the module docstring for the sign).
        sar_from_optical: 2x3 matrix ``M``: content at optical pixel centre ``(col, row)``
            appears in the SAR at ``M @ (col, row, 1)``.
        geotransform: GDAL geotransform with the top-left corner at (0, 0), north up (``write_scene_pair``
            writes both rasters on the same grid at its ``origin``).
        pixel_size, seed, looks, look_direction, incidence_angle: generation parameters.
    """

    landcover: np.ndarray
    building_height: np.ndarray
    sigma0_aligned: np.ndarray
    sigma0: np.ndarray
    sar: np.ndarray
    optical: np.ndarray
    shift: tuple[float, float]
    sar_from_optical: tuple[tuple[float, float, float], tuple[float, float, float]]
    geotransform: tuple[float, float, float, float, float, float]
    pixel_size: float
    seed: int
    looks: float
    look_direction: str
    incidence_angle: float

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.landcover.shape[0]), int(self.landcover.shape[1]))

    def truth(self) -> dict[str, Any]:
        """JSON-able description of the generation (written into the GeoTIFF tag)."""
        return {
            "seed": self.seed,
            "looks": self.looks,
            "shift_x": self.shift[0],
            "shift_y": self.shift[1],
            "sar_from_optical": [list(r) for r in self.sar_from_optical],
            "shift_convention": SHIFT_CONVENTION,
            "look_direction": self.look_direction,
            "incidence_angle": self.incidence_angle,
            "pixel_size": self.pixel_size,
            "generator": "engine.synthetic",
        }


@dataclass(frozen=True)
class SceneFiles:
    """Paths and truth of a scene pair written by :func:`write_scene_pair`."""

    sar_path: Path
    optical_path: Path
    shift: tuple[float, float]
    seed: int
    looks: float
    crs_wkt: str


@dataclass(frozen=True, eq=False)
class TrainingPair:
    """A training sample: SAR in dB and optical reflectance on the same grid, with the true shift."""

    sar_db: np.ndarray  # (H, W) float32, 10 log10(speckled intensity), floored at -40 dB
    optical: np.ndarray  # (4, H, W) float32
    shift: tuple[float, float]  # (shift_x, shift_y) of the SAR content relative to the optical
    landcover: np.ndarray  # (H, W) uint8
    sigma0_db: np.ndarray  # (H, W) float32 noise-free, misregistered sigma0 in dB


# ================================================================ validation
def _check_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be a whole number of pixels between {MIN_SIZE} and {MAX_SIZE}, "
                         f"got {value!r}.")
    if not MIN_SIZE <= int(value) <= MAX_SIZE:
        raise InputError(f"{name} = {value} pixels is out of range; choose a value between {MIN_SIZE} "
                         f"and {MAX_SIZE}.")
    return int(value)


def _check_float(name: str, value: Any, low: float, high: float, hint: str = "") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v) or not low <= v <= high:
        raise InputError(f"{name} = {value!r} is out of range; choose a value between {low:g} and {high:g}"
                         f"{hint}.")
    return v


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}.")
    return int(seed)


def _check_affine(affine: Any) -> np.ndarray:
    try:
        m = np.asarray(affine, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("affine must be a 2x2 or 2x3 matrix of numbers, e.g. [[1.0, 0.01], [0.0, 1.0]].") \
            from None
    if m.shape not in ((2, 2), (2, 3)) or not np.all(np.isfinite(m)):
        raise InputError(f"affine must be a finite 2x2 or 2x3 matrix, got shape {m.shape}; give the linear "
                         "part [[a, b], [d, e]] and optionally a translation column in pixels.")
    det = float(np.linalg.det(m[:, :2]))
    if not 0.5 <= det <= 2.0:
        raise InputError(f"affine has determinant {det:.3g}; use a mild distortion (determinant between 0.5 "
                         "and 2, e.g. a rotation of a few degrees or a scale of a few percent).")
    return m


def _validate(width: Any, height: Any, seed: Any, looks: Any, shift_x: Any, shift_y: Any,
              look_direction: Any, pixel_size: Any, incidence_angle: Any, sun_elevation: Any,
              sun_azimuth: Any) -> tuple[int, int, int, float, float, float, float, float, float, float]:
    w = _check_size("width", width)
    h = _check_size("height", height)
    if w * h > MAX_PIXELS:
        raise InputError(f"A {w} x {h} scene is rendered in memory and would need about "
                         f"{w * h * 130 / 2**30:.0f} GB; keep width x height <= {MAX_PIXELS} pixels "
                         "(e.g. 8192 x 8192) or generate several tiles with different seeds.")
    s = _check_seed(seed)
    lk = _check_float("looks", looks, 1.0, 1000.0, " (1 = single look, 4 = typical multi-look)")
    limit = min(w, h) / 4.0
    sx = _check_float("shift_x", shift_x, -limit, limit, " pixels (a quarter of the smaller side)")
    sy = _check_float("shift_y", shift_y, -limit, limit, " pixels (a quarter of the smaller side)")
    if look_direction not in LOOK_DIRECTIONS:
        raise InputError(f"look_direction {look_direction!r} is unknown; use one of "
                         f"{', '.join(LOOK_DIRECTIONS)} (direction the radar looks towards).")
    px = _check_float("pixel_size", pixel_size, 0.1, 1000.0, " metres")
    inc = _check_float("incidence_angle", incidence_angle, 15.0, 65.0, " degrees")
    el = _check_float("sun_elevation", sun_elevation, 5.0, 90.0, " degrees")
    az = _check_float("sun_azimuth", sun_azimuth, -360.0, 360.0, " degrees clockwise from north")
    return w, h, s, lk, sx, sy, px, inc, el, az


# ================================================================ hashed noise
def _key(seed: int, purpose: int) -> int:
    """A 32-bit key derived from the seed for one purpose (independent streams)."""
    return int(np.random.SeedSequence([seed, purpose]).generate_state(1)[0])


def _hash(ix: np.ndarray, iy: np.ndarray, key: int) -> np.ndarray:
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


def _value_noise(xm: np.ndarray, ym: np.ndarray, cell: float, key: int) -> np.ndarray:
    """Smooth value noise in [0, 1] on an axis-aligned lattice of ``cell`` metres (separable)."""
    gx, gy = xm / cell, ym / cell
    ix0, iy0 = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
    lx = np.arange(ix0.min(), ix0.max() + 2)
    ly = np.arange(iy0.min(), iy0.max() + 2)
    lattice = _hash(lx[None, :], ly[:, None], key)  # (ny, nx), small
    fx, fy = gx - ix0, gy - iy0
    fx = (fx * fx * (3 - 2 * fx)).astype(np.float32)
    fy = (fy * fy * (3 - 2 * fy)).astype(np.float32)
    cx, cy = ix0 - lx[0], iy0 - ly[0]
    along_x = lattice[:, cx] * (1 - fx) + lattice[:, cx + 1] * fx  # (ny, W)
    if ly.size <= 32:  # coarse lattice: a small dense interpolation matrix and one BLAS product
        wy = np.zeros((ym.size, ly.size), np.float32)
        rows = np.arange(ym.size)
        wy[rows, cy] = 1 - fy
        wy[rows, cy + 1] += fy
        return wy @ along_x
    return along_x[cy] * (1 - fy)[:, None] + along_x[cy + 1] * fy[:, None]


def _fbm(xm: np.ndarray, ym: np.ndarray, cell: float, octaves: int, key: int) -> np.ndarray:
    """Fractal sum of value noise, rescaled to mean ~0.5 in [0, 1]."""
    total = np.zeros((ym.size, xm.size), np.float32)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        total += np.float32(amp) * _value_noise(xm, ym, cell / 2**o, key + 7919 * o)
        norm += amp
        amp *= 0.5
    total /= np.float32(norm)
    return total


# ================================================================ layout
@dataclass(frozen=True)
class _Params:
    """Scene-level random draws (depend only on seed and scene extent)."""

    ext_x: float
    ext_y: float
    field_angle: float
    parcel_w: float
    parcel_h: float
    river_vertical: bool
    river_pos: float
    river_amp: float
    river_wavelength: float
    river_phase: float
    river_width: float
    lake: tuple[float, float, float, float] | None
    forest_blob: tuple[float, float, float]
    urban: tuple[float, float, float, float]
    block: float
    street: float
    roads: tuple[tuple[float, float, float, float], ...]


def _draw_params(rng: np.random.Generator, ext_x: float, ext_y: float, px: float) -> _Params:
    ext = min(ext_x, ext_y)
    lake_on = rng.random() < 0.6
    lake = (rng.uniform(0.15, 0.85) * ext_x, rng.uniform(0.15, 0.85) * ext_y,
            rng.uniform(0.04, 0.10) * ext, rng.uniform(0.03, 0.07) * ext)
    roads = tuple((rng.uniform(0.1, 0.9) * ext_x, rng.uniform(0.1, 0.9) * ext_y,
                   rng.uniform(0.0, math.pi), max(rng.uniform(8.0, 14.0), 1.0 * px)) for _ in range(2))
    return _Params(
        ext_x=ext_x,
        ext_y=ext_y,
        field_angle=rng.uniform(-math.pi / 4, math.pi / 4),
        parcel_w=rng.uniform(120.0, 280.0),
        parcel_h=rng.uniform(200.0, 480.0),
        river_vertical=bool(rng.random() < 0.5),
        river_pos=rng.uniform(0.15, 0.4) if rng.random() < 0.5 else rng.uniform(0.6, 0.85),
        river_amp=rng.uniform(0.02, 0.07),
        river_wavelength=rng.uniform(0.5, 1.2),
        river_phase=rng.uniform(0, 2 * math.pi),
        river_width=max(rng.uniform(30.0, 70.0), 3.0 * px),
        lake=lake if lake_on else None,
        forest_blob=(rng.uniform(0.2, 0.8) * ext_x, rng.uniform(0.2, 0.8) * ext_y,
                     rng.uniform(0.08, 0.14) * ext),
        urban=(rng.uniform(0.35, 0.65) * ext_x, rng.uniform(0.35, 0.65) * ext_y,
               rng.uniform(0.14, 0.2) * ext_x, rng.uniform(0.14, 0.2) * ext_y),
        block=max(rng.uniform(60.0, 100.0), 6.0 * px),
        street=max(rng.uniform(12.0, 20.0), 1.0 * px),
        roads=roads,
    )


@dataclass(frozen=True, eq=False)
class _Layout:
    landcover: np.ndarray  # uint8
    height: np.ndarray  # float32 metres
    crop: np.ndarray  # int8 crop index on fields, -1 elsewhere
    parcel_u: np.ndarray  # float32 along-row coordinate (metres) for field stripes
    parcel_rand: np.ndarray  # float32 per-parcel random in [0, 1)
    lot_rand: np.ndarray  # float32 per-lot random in [0, 1) (roof appearance)
    fine: np.ndarray  # float32 fine texture in about [-0.5, 0.5] (crop density, shared by SAR and optical)


def _layout(xm: np.ndarray, ym: np.ndarray, p: _Params, seed: int, single: LandCover | None) -> _Layout:
    shape = (ym.size, xm.size)
    X, Y = xm[None, :].astype(np.float32), ym[:, None].astype(np.float32)
    lc = np.full(shape, LandCover.FIELD if single is None else single, np.uint8)
    height = np.zeros(shape, np.float32)
    lot_rand = np.zeros(shape, np.float32)
    fine = _fbm(xm, ym, 80.0, 3, _key(seed, 51)) - np.float32(0.5)
    # crop parcels: a rotated grid of strips, rows staggered per strip
    ca, sa = math.cos(p.field_angle), math.sin(p.field_angle)
    u = X * np.float32(ca) + Y * np.float32(sa)
    v = -X * np.float32(sa) + Y * np.float32(ca)
    col_id = np.floor(u / p.parcel_w).astype(np.int64)
    c0, c1 = int(col_id.min()), int(col_id.max())
    cols = np.arange(c0, c1 + 1)
    col_id -= c0
    stagger = _hash(cols, np.zeros_like(cols), _key(seed, 11)) * np.float32(p.parcel_h)
    row_id = np.floor((v + stagger[col_id]) / p.parcel_h).astype(np.int64)
    r0, r1 = int(row_id.min()), int(row_id.max())
    rows_ = np.arange(r0, r1 + 1)
    flat = col_id * rows_.size + (row_id - r0)  # parcel index into small per-parcel tables
    parcel_rand = np.take(_hash(cols[:, None], rows_[None, :], _key(seed, 12)).ravel(), flat)
    crop_tab = np.minimum((_hash(cols[:, None], rows_[None, :], _key(seed, 13)) * len(CROPS)).astype(np.int8),
                          len(CROPS) - 1)
    crop = np.take(crop_tab.ravel(), flat)
    if single is not None:
        return _Layout(lc, height, np.where(lc == LandCover.FIELD, crop, -1).astype(np.int8), u,
                       parcel_rand, lot_rand, fine)

    # forest: fbm patches plus one guaranteed blob
    f = _fbm(xm, ym, 700.0, 3, _key(seed, 21))
    bx, by, br = p.forest_blob
    blob = np.hypot(X - bx, Y - by) / br + (f - 0.5) * 1.2
    lc[(f > 0.66) | (blob < 1.0)] = LandCover.FOREST

    # urban district: street grid, 2x2 lots per block, building heights taller near the centre
    ux, uy, hx, hy = p.urban
    edge = (_fbm(xm, ym, 300.0, 2, _key(seed, 31)) - 0.5) * 0.5
    rel = np.maximum(np.abs(X - ux) / hx, np.abs(Y - uy) / hy) + edge
    inside = rel < 1.0
    if inside.any():
        rows = np.flatnonzero(inside.any(axis=1))
        cols = np.flatnonzero(inside.any(axis=0))
        sl = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        lx, ly = X[:, sl[1]] - (ux - hx), Y[sl[0], :] - (uy - hy)
        bxi, byi = np.floor(lx / p.block), np.floor(ly / p.block)
        fx, fy = lx - bxi * p.block, ly - byi * p.block
        street = (fx < p.street) | (fy < p.street)
        half = p.street + (p.block - p.street) / 2
        lot_x = (2 * bxi + (fx >= half)).astype(np.int64)
        lot_y = (2 * byi + (fy >= half)).astype(np.int64)
        r_lot = _hash(lot_x, lot_y, _key(seed, 32))
        margin = 2.0 + 6.0 * _hash(lot_x, lot_y, _key(seed, 33))
        gx = np.where(fx >= half, fx - half, fx - p.street)
        gy = np.where(fy >= half, fy - half, fy - p.street)
        lot = (p.block - p.street) / 2
        built = (~street) & (gx >= margin * 0.5) & (gx < lot - margin * 0.5) & (gy >= margin * 0.5) \
            & (gy < lot - margin * 0.5) & (r_lot < 0.85)
        centre = 1.0 - np.clip(rel[sl], 0, 1)
        h_lot = BUILDING_MIN_HEIGHT + 22.0 * _hash(lot_x, lot_y, _key(seed, 34)) ** 2 + 18.0 * centre
        sub_in = inside[sl]
        sub_lc = lc[sl]
        sub_lc[sub_in] = LandCover.URBAN
        sub_lc[sub_in & built] = LandCover.BUILDING
        height[sl] = np.where(sub_in & built, h_lot, 0.0).astype(np.float32)
        lot_rand[sl] = np.where(sub_in, r_lot, 0.0)

    # water: a meandering river and an optional lake
    along, across = (Y, X) if p.river_vertical else (X, Y)
    ext_along, ext_across = (p.ext_y, p.ext_x) if p.river_vertical else (p.ext_x, p.ext_y)
    wl = p.river_wavelength * max(ext_along, 1.0)
    centre_line = p.river_pos * ext_across + p.river_amp * ext_across * np.sin(
        2 * np.pi * along / wl + p.river_phase) + 0.5 * p.river_amp * ext_across * np.sin(
        2 * np.pi * along / (0.37 * wl) + 2 * p.river_phase)
    water = np.abs(across - centre_line) < p.river_width / 2
    if p.lake is not None:
        lx0, ly0, ra, rb = p.lake
        wob = (_fbm(xm, ym, 250.0, 2, _key(seed, 41)) - 0.5) * 0.6
        water |= ((X - lx0) / ra) ** 2 + ((Y - ly0) / rb) ** 2 + wob < 1.0
    lc[water] = LandCover.WATER
    height[water] = 0.0

    # roads: straight lines at random angles (bridges over water)
    for rx, ry, ang, wid in p.roads:
        d = np.abs((X - rx) * np.float32(math.sin(ang)) - (Y - ry) * np.float32(math.cos(ang)))
        on = d < wid / 2
        lc[on] = LandCover.ROAD
        height[on] = 0.0
    crop = np.where(lc == LandCover.FIELD, crop, -1).astype(np.int8)
    return _Layout(lc, height, crop, u, parcel_rand, lot_rand, fine)


# ================================================================ SAR rendering
def _db(x: np.ndarray | float) -> np.ndarray:
    return np.power(np.float32(10.0), np.asarray(x, np.float32) / np.float32(10.0))


def _sigma0_db(lay: _Layout, xm: np.ndarray, ym: np.ndarray, seed: int, texture: bool) -> np.ndarray:
    """Per-pixel mean sigma0 (dB) of the ground, before building geometry."""
    lc = lay.landcover
    db = np.zeros(lc.shape, np.float32)
    crop_db = np.array([c[1] for c in CROPS], np.float32)
    field = lc == LandCover.FIELD
    if texture:
        fine = lay.fine
        wind = _fbm(xm, ym, 900.0, 3, _key(seed, 52)) - 0.5
        canopy = _fbm(xm, ym, 40.0, 2, _key(seed, 53)) - 0.5
        stripes = np.sin(lay.parcel_u * np.float32(2 * np.pi / 45.0)).astype(np.float32)
        db[field] = (crop_db[np.maximum(lay.crop, 0)] + 1.2 * (lay.parcel_rand - 0.5) + 1.5 * fine
                     + 0.3 * stripes)[field]
        water = lc == LandCover.WATER
        db[water] = (SAR_DB["water"] + 5.0 * wind)[water]
        forest = lc == LandCover.FOREST
        db[forest] = (SAR_DB["forest"] + 2.0 * canopy)[forest]
        road = lc == LandCover.ROAD
        db[road] = (SAR_DB["road"] + 2.0 * fine)[road]
        urban = lc == LandCover.URBAN
        ur, uc = np.nonzero(urban)
        bright = _hash(np.round(xm[uc]), np.round(ym[ur]), _key(seed, 54)) < 0.08  # cars, poles: 1 m cells
        db[ur, uc] = SAR_DB["urban_ground"] + 3.0 * fine[ur, uc] + np.where(bright, 10.0, 0.0)
        roof = lc == LandCover.BUILDING
        db[roof] = (SAR_DB["roof"] + 4.0 * (lay.lot_rand - 0.5))[roof]
    else:
        means = {LandCover.WATER: SAR_DB["water"], LandCover.FIELD: float(crop_db.mean()),
                 LandCover.FOREST: SAR_DB["forest"], LandCover.ROAD: SAR_DB["road"],
                 LandCover.URBAN: SAR_DB["urban_ground"], LandCover.BUILDING: SAR_DB["roof"]}
        for cls, value in means.items():
            db[lc == cls] = value
    return db


def _zones(starts: np.ndarray, ends: np.ndarray, rows: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Count, per pixel, the half-open column ranges ``[start, end)`` of ``rows`` covering it."""
    h, w = shape
    s = np.clip(starts, 0, w)
    e = np.clip(ends, 0, w)
    keep = e > s
    stride = w + 1
    diff = np.bincount(rows[keep] * stride + s[keep], minlength=h * stride) \
        - np.bincount(rows[keep] * stride + e[keep], minlength=h * stride)
    return np.cumsum(diff.reshape(h, stride), axis=1)[:, :w] > 0


def _sar_geometry(ground_db: np.ndarray, lay: _Layout, k: int, inc_deg: float, px: float,
                  texture: bool, seed: int) -> np.ndarray:
    """Linear sigma0 with layover, double bounce and shadow of buildings (look frame rotated by ``k``)."""
    g = np.rot90(ground_db, k)
    bld = np.rot90(lay.landcover == LandCover.BUILDING, k)
    hgt = np.rot90(lay.height, k)
    shape = (int(g.shape[0]), int(g.shape[1]))
    lin = _db(g)
    if not bld.any():
        return np.ascontiguousarray(np.rot90(lin, -k))
    tan_i = math.tan(math.radians(inc_deg))
    roof_lin = np.where(bld, lin, 0.0).astype(np.float32)
    out = np.where(bld, 0.0, lin).astype(np.float32)
    prev = np.zeros_like(bld)
    prev[:, 1:] = bld[:, :-1]
    nxt = np.zeros_like(bld)
    nxt[:, :-1] = bld[:, 1:]
    near_r, near_c = np.nonzero(bld & ~prev)  # wall facing the sensor
    far_r, far_c = np.nonzero(bld & ~nxt)  # wall facing away
    lay_len = np.rint(hgt[near_r, near_c] / tan_i / px).astype(np.int64)
    shd_len = np.rint(hgt[far_r, far_c] * tan_i / px).astype(np.int64)
    # radar shadow: the footprint not covered by the displaced roof and the ground behind the far wall
    shadow = bld | _zones(far_c + 1, far_c + 1 + shd_len, far_r, shape)
    out[shadow & ~bld] = 0.0
    out[shadow] += _db(SAR_DB["shadow"])
    # roofs appear displaced towards the sensor by h / tan(incidence) (layover)
    rr, cc = np.nonzero(bld)
    dest = cc - np.rint(hgt[rr, cc] / tan_i / px).astype(np.int64)
    ok = dest >= 0
    out += np.bincount(rr[ok] * shape[1] + dest[ok], weights=roof_lin[rr[ok], cc[ok]],
                       minlength=out.size).reshape(shape).astype(np.float32)
    # facade returns spread over the layover zone in front of the near wall
    out[_zones(near_c - lay_len, near_c, near_r, shape)] += _db(SAR_DB["facade"])
    # double bounce: bright line at the base of the near wall
    # (per-building strength: wall orientation and material, from the lot's world-anchored random)
    strength = np.ones(near_r.size, np.float32)
    if texture:
        lot = np.rot90(lay.lot_rand, k)[near_r, near_c]
        strength = 0.3 + 0.7 * ((lot * np.float32(977.0)) % np.float32(1.0))
    db_c = near_c - 1
    ok = db_c >= 0
    np.add.at(out, (near_r[ok], db_c[ok]), _db(SAR_DB["double_bounce"]) * strength[ok])
    return np.ascontiguousarray(np.rot90(out, -k))


# ================================================================ resampling
def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
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


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
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


def _fast_len(n: int) -> int:
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


def _upsample2(spec: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
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


def _sar_matrix(w: int, h: int, sx: float, sy: float, affine: np.ndarray | None) -> np.ndarray:
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


# ================================================================ optical rendering
def _optical(lay: _Layout, xm: np.ndarray, ym: np.ndarray, seed: int, px: float, texture: bool,
             sun_el: float, sun_az: float) -> np.ndarray:
    lc = lay.landcover
    # one material index per pixel into a reflectance table: crops, classes, garden, roofs
    names = ("water", "forest", "road", "urban_ground", "garden")
    table = np.array([c[2] for c in CROPS] + [REFLECTANCE[n] for n in names] + list(ROOFS), np.float32)
    first = {n: len(CROPS) + i for i, n in enumerate(names)}
    first_roof = len(CROPS) + len(names)
    mat = np.maximum(lay.crop, 0).astype(np.int64)
    for cls, name in ((LandCover.WATER, "water"), (LandCover.FOREST, "forest"), (LandCover.ROAD, "road"),
                      (LandCover.URBAN, "urban_ground")):
        mat[lc == cls] = first[name]
    roof = lc == LandCover.BUILDING
    mat[roof] = first_roof + np.minimum((lay.lot_rand[roof] * 7919.0 % 1.0 * len(ROOFS)).astype(np.int64),
                                        len(ROOFS) - 1)
    factor = np.ones(lc.shape, np.float32)
    if texture:
        urban = lc == LandCover.URBAN
        ur, uc = np.nonzero(urban)
        garden = _hash(np.round(xm[uc] / 5.0), np.round(ym[ur] / 5.0), _key(seed, 72)) < 0.2  # 5 m cells
        mat[ur[garden], uc[garden]] = first["garden"]
        vary = lay.fine
        natural = (lc == LandCover.WATER) | (lc == LandCover.FOREST) | (lc == LandCover.ROAD)
        factor = np.where(natural, 1 + 0.3 * vary, factor)
        field = lc == LandCover.FIELD
        stripes = np.sin(lay.parcel_u * np.float32(2 * np.pi / 45.0))
        factor = np.where(field, 1 + 0.25 * (lay.parcel_rand - 0.5) + 0.3 * vary + 0.04 * stripes, factor)
    out = table.T[:, mat] * factor[None]
    # mild terrain shading (Lambert on a smooth synthetic relief, flat ground = 1)
    if texture:
        dem = _fbm(xm, ym, 2500.0, 3, _key(seed, 73)) * 60.0
        gy, gx = np.gradient(dem, px)
        az, el = math.radians(sun_az), math.radians(sun_el)
        sun = np.array([math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)])
        # x east, y north (rows grow southwards, so the north slope is -gy)
        nrm = np.sqrt(gx**2 + gy**2 + 1)
        cos_i = (-gx * sun[0] + gy * sun[1] + sun[2]) / nrm
        out *= (cos_i / sun[2]).astype(np.float32)[None]
    # building shadows cast away from the sun (only around the buildings' bounding box)
    if lay.height.any():
        az = math.radians(sun_az + 180.0)
        dx, dy = math.sin(az), -math.cos(az)  # unit step in (col, row) pointing away from the sun
        drop = px * math.tan(math.radians(sun_el))  # height lost per pixel travelled
        max_steps = math.ceil(float(lay.height.max()) / drop) + 1
        rr = np.flatnonzero(lay.height.any(axis=1))
        cc = np.flatnonzero(lay.height.any(axis=0))
        box = (slice(max(rr[0] - max_steps, 0), rr[-1] + max_steps + 1),
               slice(max(cc[0] - max_steps, 0), cc[-1] + max_steps + 1))
        hgt = lay.height[box]
        shade = np.zeros(hgt.shape, bool)
        hh, ww = hgt.shape
        for step in range(1, max_steps + 1):
            ox, oy = round(step * dx), round(step * dy)
            if abs(ox) >= ww or abs(oy) >= hh:
                break
            src = hgt[max(0, -oy):hh - max(0, oy), max(0, -ox):ww - max(0, ox)]
            dst = (slice(max(0, oy), hh - max(0, -oy)), slice(max(0, ox), ww - max(0, -ox)))
            shade[dst] |= (src - step * drop) > hgt[dst]
        sub = out[(slice(None), *box)]
        sub[:, shade] *= np.float32(0.3)
    return out


# ================================================================ public API
def generate_scene_pair(
    width: int,
    height: int,
    *,
    seed: int,
    looks: float = 4,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
    affine: Sequence[Sequence[float]] | np.ndarray | None = None,
    look_direction: str = "east",
    pixel_size: float = 10.0,
    incidence_angle: float = 37.0,
    sun_elevation: float = 40.0,
    sun_azimuth: float = 150.0,
    psf_sigma: float = 0.5,
    texture: bool = True,
    single_class: LandCover | int | None = None,
) -> ScenePair:
    """Generate a seeded synthetic SAR/optical scene pair with a known misregistration.

    Args:
        width, height: size in pixels (16 .. 20000).
        seed: non-negative integer; same seed, same scene (whatever the shift).
        looks: number of looks L of the speckle (>= 1, may be fractional).
        shift_x, shift_y: misregistration in pixels; positive moves the SAR content right/down.
        affine: optional 2x2 linear part (about the scene centre) or 2x3 with a translation
            column (pixels, added to the shift) of the optical -> SAR pixel mapping.
        look_direction: direction the radar looks towards (``east`` = sensor west of the scene).
        pixel_size: ground sampling distance in metres (statistics are calibrated at 10 m).
        incidence_angle: degrees from vertical; sets layover (h/tan) and shadow (h*tan) lengths.
        sun_elevation, sun_azimuth: sun position (degrees) for optical shading and shadows.
        psf_sigma: Gaussian point-spread function of the SAR (pixels) applied before the shift.
        texture: False gives class-constant sigma0/reflectance (homogeneous test areas).
        single_class: fill the whole scene with one :class:`LandCover` class.

    Raises:
        InputError: a parameter is out of range (the message says which and what to use).
    """
    w, h, seed, looks, sx, sy, px, inc, sun_el, sun_az = _validate(
        width, height, seed, looks, shift_x, shift_y, look_direction, pixel_size, incidence_angle,
        sun_elevation, sun_azimuth)
    aff = None if affine is None else _check_affine(affine)
    psf = _check_float("psf_sigma", psf_sigma, 0.0, 5.0, " pixels")
    single = None
    if single_class is not None:
        try:
            single = LandCover(int(single_class))
        except (TypeError, ValueError):
            raise InputError(f"single_class {single_class!r} is not a land-cover class; use one of "
                             f"{', '.join(f'{c.name}={c.value}' for c in LandCover)}.") from None
        if single == LandCover.BUILDING:
            raise InputError("single_class BUILDING cannot fill a scene; use URBAN for a built-up area.")

    m = _sar_matrix(w, h, sx, sy, aff)
    inv = np.linalg.inv(m)
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float).T
    disp = np.abs((inv @ corners)[:2] - corners[:2]).max()
    tan_i = math.tan(math.radians(inc))
    building_reach = BUILDING_MAX_HEIGHT * (1 / tan_i + tan_i) / px  # layover + shadow length, pixels
    margin = math.ceil(disp + building_reach + 3 * psf) + 4
    # padded grid: margin on every side, widened on the right/bottom to an FFT-friendly size
    cols = np.arange(-margin, _fast_len(w + 2 * margin) - margin, dtype=np.float64)
    rows = np.arange(-margin, _fast_len(h + 2 * margin) - margin, dtype=np.float64)
    xm, ym = (cols + 0.5) * px, (rows + 0.5) * px

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    params = _draw_params(rng, w * px, h * px, px)
    lay = _layout(xm, ym, params, seed, single)
    ground_db = _sigma0_db(lay, xm, ym, seed, texture)
    lin = _sar_geometry(ground_db, lay, LOOK_DIRECTIONS[look_direction], inc, px, texture, seed)

    crop = (slice(margin, margin + h), slice(margin, margin + w))
    blurred = _gaussian_blur(lin, psf)
    aligned_c = blurred[crop]
    if aff is None and sx == 0.0 and sy == 0.0:
        shifted = aligned_c
    elif aff is None:
        # exact sub-pixel translation: a linear phase ramp (all-pass, no smoothing)
        fy = np.fft.fftfreq(int(lin.shape[0]), 1.0)[:, None]
        fx = np.fft.rfftfreq(int(lin.shape[1]), 1.0)[None, :]
        spec = np.fft.rfft2(blurred) * np.exp(-2j * np.pi * (fx * sx + fy * sy))
        shifted = np.fft.irfft2(spec, s=lin.shape)[crop].astype(np.float32)
    else:
        # SAR pixel (c, r) shows the aligned content at optical pixel inv @ (c, r, 1);
        # band-limited 2x upsampling first keeps bilinear interpolation nearly unbiased
        gc, gr = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        src_c = inv[0, 0] * gc + inv[0, 1] * gr + inv[0, 2] + margin
        src_r = inv[1, 0] * gc + inv[1, 1] * gr + inv[1, 2] + margin
        up = _upsample2(np.fft.rfft2(blurred), (int(lin.shape[0]), int(lin.shape[1])))
        shifted = _bilinear(up, 2.0 * src_c, 2.0 * src_r)
    floor = np.float32(_db(SAR_DB["shadow"] - 6.0))
    aligned = np.maximum(aligned_c, floor)
    sigma0 = np.maximum(shifted, floor).astype(np.float32)

    speckle_rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    sar = sigma0 * speckle_rng.standard_gamma(looks, size=sigma0.shape, dtype=np.float32) / np.float32(looks)
    optical_pad = _optical(lay, xm, ym, seed, px, texture, sun_el, sun_az)
    optical = np.ascontiguousarray(optical_pad[(slice(None), *crop)])
    del optical_pad
    noise_rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    # sensor noise, std 0.003 reflectance (uniform: much cheaper to draw than Gaussian)
    noise = noise_rng.random(optical.shape, dtype=np.float32) - np.float32(0.5)
    optical += noise * np.float32(0.003 * 12**0.5)
    np.clip(optical, 0.0, 1.0, out=optical)
    geotransform = (0.0, px, 0.0, 0.0, 0.0, -px)
    mat = ((float(m[0, 0]), float(m[0, 1]), float(m[0, 2])), (float(m[1, 0]), float(m[1, 1]), float(m[1, 2])))
    return ScenePair(
        landcover=np.ascontiguousarray(lay.landcover[crop]),
        building_height=np.ascontiguousarray(lay.height[crop]),
        sigma0_aligned=np.ascontiguousarray(aligned),
        sigma0=sigma0,
        sar=sar.astype(np.float32, copy=False),
        optical=optical,
        shift=(sx, sy),
        sar_from_optical=mat,
        geotransform=geotransform,
        pixel_size=px,
        seed=seed,
        looks=looks,
        look_direction=look_direction,
        incidence_angle=inc,
    )


def uniform_patch_for_test(size: int, *, seed: int, looks: float = 4,
                           landcover: LandCover = LandCover.FIELD) -> ScenePair:
    """A homogeneous single-class scene (no texture): its speckled SAR has ENL = ``looks``."""
    return generate_scene_pair(size, size, seed=seed, looks=looks, texture=False, single_class=landcover)


def _to_db(intensity: np.ndarray) -> np.ndarray:
    from .preprocess import linear_to_db

    return linear_to_db(intensity, "intensity", noise_floor_db=-40.0)


def generate_training_batch(
    count: int,
    size: int = 256,
    *,
    seed: int,
    max_shift: float = 4.0,
    looks: float | tuple[float, float] = (1.0, 8.0),
    pixel_size: float | tuple[float, float] = 10.0,
    look_directions: Sequence[str] = ("east", "west"),
) -> list[TrainingPair]:
    """``count`` training patches of ``size`` px cut from ONE scene generated from ``seed``.

    The scene is ``k * size`` pixels square (``k = ceil(sqrt(count))``), which is cheaper per patch
    than ``count`` small scenes. Its shift is uniform in ``[-max_shift, max_shift]`` px (shared by
    all patches of the batch); looks, pixel size and look direction are drawn from the given ranges
    (``(low, high)`` tuples) or fixed. Everything is reproducible from ``seed``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([_check_seed(seed), 99]))
    size = _check_size("size", size)
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or not 1 <= count <= 4096:
        raise InputError(f"count must be a whole number between 1 and 4096, got {count!r}.")
    max_shift = _check_float("max_shift", max_shift, 0.0, size / 4.0, " pixels (a quarter of the size)")
    lk = float(rng.uniform(*looks)) if isinstance(looks, tuple) else float(looks)
    ps = float(rng.uniform(*pixel_size)) if isinstance(pixel_size, tuple) else float(pixel_size)
    sx, sy = (float(v) for v in rng.uniform(-max_shift, max_shift, 2))
    direction = str(look_directions[int(rng.integers(len(look_directions)))])
    k = math.ceil(math.sqrt(int(count)))
    pair = generate_scene_pair(k * size, k * size, seed=seed, looks=lk, shift_x=sx, shift_y=sy,
                               look_direction=direction, pixel_size=ps)
    sar_db, sigma0_db = _to_db(pair.sar), _to_db(pair.sigma0)
    out = []
    for i in range(int(count)):
        sl = (slice((i // k) * size, (i // k + 1) * size), slice((i % k) * size, (i % k + 1) * size))
        out.append(TrainingPair(sar_db=sar_db[sl].copy(), optical=pair.optical[(slice(None), *sl)].copy(),
                                shift=(sx, sy), landcover=pair.landcover[sl].copy(),
                                sigma0_db=sigma0_db[sl].copy()))
    return out


def generate_training_pair(size: int = 256, *, seed: int, **kwargs: Any) -> TrainingPair:
    """One training sample from its own scene (see :func:`generate_training_batch` for the options)."""
    return generate_training_batch(1, size, seed=seed, **kwargs)[0]


def iter_training_pairs(count: int, size: int = 256, *, first_seed: int = 0, patches_per_scene: int = 1,
                        **kwargs: Any) -> Iterator[TrainingPair]:
    """Yield ``count`` training pairs from scenes at seeds ``first_seed, first_seed + 1, ...``.

    ``patches_per_scene > 1`` cuts that many patches from each (larger) scene: faster, less diverse.
    """
    seed, left = first_seed, int(count)
    while left > 0:
        batch = generate_training_batch(min(patches_per_scene, left), size, seed=seed, **kwargs)
        yield from batch
        left -= len(batch)
        seed += 1


# ================================================================ writing
def _crs_wkt(crs: str) -> str:
    from .raster_io import _rasterio

    rasterio = _rasterio()
    try:
        parsed = rasterio.crs.CRS.from_user_input(crs)
    except Exception:
        raise InputError(f"CRS {crs!r} is not understood; give an authority code such as 'EPSG:32631' "
                         "(UTM 31N) or a WKT string.") from None
    if parsed.is_geographic:
        raise InputError(f"CRS {crs!r} is geographic (degrees); use a projected CRS in metres such as "
                         "'EPSG:32631' so that pixel_size is in metres.")
    return str(parsed.to_wkt())


def write_scene_pair(
    sar_path: str | os.PathLike[str],
    optical_path: str | os.PathLike[str],
    *,
    width: int,
    height: int,
    pixel_size: float = 10.0,
    crs: str = "EPSG:32631",
    origin: tuple[float, float] = (500000.0, 5000000.0),
    seed: int = 0,
    looks: float = 4,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
    progress: Callable[[float], Any] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    log: Callable[[str], Any] | None = None,
    **options: Any,
) -> SceneFiles:
    """Generate a scene pair and write it as two float32 GeoTIFFs on the same grid.

    ``origin`` is the (x, y) of the top-left corner in CRS units. The SAR file has one band
    ("sigma0 intensity (linear)"), the optical four (red, green, blue, nir); both carry the
    JSON truth (seed, looks, shift and its sign convention) in the ``SAR_TOOLBOX_SYNTHETIC`` tag.
    Extra ``options`` go to :func:`generate_scene_pair`. Nothing is written on bad input or
    cancellation.
    """
    from .raster_io import _rasterio, atomic_output, check_writable, default_profile, raster_env

    def say(msg: str) -> None:
        logger.info(msg)
        if log is not None:
            log(msg)

    def step(pct: float) -> None:
        if is_cancelled is not None and is_cancelled():
            raise CancelledError("Synthetic scene generation was cancelled; nothing was written.")
        if progress is not None:
            progress(pct)

    sar_p, opt_p = Path(sar_path), Path(optical_path)
    if sar_p.resolve() == opt_p.resolve():
        raise InputError("The SAR and optical outputs must be different files; choose two paths.")
    try:
        x0, y0 = (float(v) for v in origin)
    except (TypeError, ValueError):
        raise InputError(f"origin must be (x, y) of the top-left corner, got {origin!r}.") from None
    if not (math.isfinite(x0) and math.isfinite(y0)):
        raise InputError(f"origin must be finite numbers, got {origin!r}.")
    wkt = _crs_wkt(crs)
    check_writable(sar_p)
    check_writable(opt_p)
    _validate(width, height, seed, looks, shift_x, shift_y, options.get("look_direction", "east"), pixel_size,
              options.get("incidence_angle", 37.0), options.get("sun_elevation", 40.0),
              options.get("sun_azimuth", 150.0))
    step(0.0)
    say(f"Generating a {width} x {height} synthetic scene (seed {seed}, {looks} looks, "
        f"shift {shift_x:+.3f}, {shift_y:+.3f} px).")
    pair = generate_scene_pair(width, height, seed=seed, looks=looks, shift_x=shift_x, shift_y=shift_y,
                               pixel_size=pixel_size, **options)
    step(60.0)
    rasterio = _rasterio()
    transform = rasterio.transform.from_origin(x0, y0, pair.pixel_size, pair.pixel_size)
    tag = json.dumps(pair.truth())
    with atomic_output(sar_p) as sar_tmp, atomic_output(opt_p) as opt_tmp, raster_env():
        for tmp, data, names in ((sar_tmp, pair.sar[None], (SAR_DESCRIPTION,)),
                                 (opt_tmp, pair.optical, OPTICAL_BANDS)):
            profile = default_profile(data.shape[2], data.shape[1], data.shape[0], "float32", wkt, transform,
                                      nodata=None)
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(data)
                for i, name in enumerate(names, start=1):
                    dst.set_band_description(i, name)
                dst.update_tags(**{METADATA_TAG: tag})
            step(80.0 if tmp == sar_tmp else 95.0)
    step(100.0)
    say(f"Wrote SAR '{sar_p}' and optical '{opt_p}'.")
    return SceneFiles(sar_path=sar_p, optical_path=opt_p, shift=pair.shift, seed=pair.seed, looks=pair.looks,
                      crs_wkt=wkt)

