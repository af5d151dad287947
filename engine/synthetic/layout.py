"""The procedural land-cover layout: crop parcels, forest, an urban district, water and roads.

Scene-level draws (:func:`draw_params`) depend only on the seed and the scene extent; all
per-pixel randomness is hashed from world coordinates (:mod:`.noise`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..run import QUIET, Run
from .classes import BUILDING_MIN_HEIGHT, CROPS, LandCover
from .noise import fbm, lattice_hash, stream_key


@dataclass(frozen=True)
class LayoutParams:
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


def draw_params(rng: np.random.Generator, ext_x: float, ext_y: float, px: float) -> LayoutParams:
    """The scene-level draws, in a fixed order from ``rng``."""
    ext = min(ext_x, ext_y)
    lake_on = rng.random() < 0.6
    lake = (rng.uniform(0.15, 0.85) * ext_x, rng.uniform(0.15, 0.85) * ext_y,
            rng.uniform(0.04, 0.10) * ext, rng.uniform(0.03, 0.07) * ext)
    roads = tuple((rng.uniform(0.1, 0.9) * ext_x, rng.uniform(0.1, 0.9) * ext_y,
                   rng.uniform(0.0, math.pi), max(rng.uniform(8.0, 14.0), 1.0 * px)) for _ in range(2))
    return LayoutParams(
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
class Layout:
    """Per-pixel layout of the padded grid, shared by the SAR and optical renderers."""

    landcover: np.ndarray  # uint8
    height: np.ndarray  # float32 metres
    crop: np.ndarray  # int8 crop index on fields, -1 elsewhere
    parcel_u: np.ndarray  # float32 along-row coordinate (metres) for field stripes
    parcel_rand: np.ndarray  # float32 per-parcel random in [0, 1)
    lot_rand: np.ndarray  # float32 per-lot random in [0, 1) (roof appearance)
    fine: np.ndarray  # float32 fine texture in about [-0.5, 0.5] (crop density, shared by SAR and optical)


@dataclass(frozen=True, eq=False)
class _Parcels:
    crop: np.ndarray  # int8 crop index of every pixel's parcel
    u: np.ndarray  # along-row coordinate (metres)
    rand: np.ndarray  # per-parcel random


def _parcels(X: np.ndarray, Y: np.ndarray, p: LayoutParams, seed: int) -> _Parcels:
    """Crop parcels: a rotated grid of strips, rows staggered per strip."""
    ca, sa = math.cos(p.field_angle), math.sin(p.field_angle)
    u = X * np.float32(ca) + Y * np.float32(sa)
    v = -X * np.float32(sa) + Y * np.float32(ca)
    col_id = np.floor(u / p.parcel_w).astype(np.int64)
    c0, c1 = int(col_id.min()), int(col_id.max())
    cols = np.arange(c0, c1 + 1)
    col_id -= c0
    stagger = lattice_hash(cols, np.zeros_like(cols), stream_key(seed, 11)) * np.float32(p.parcel_h)
    row_id = np.floor((v + stagger[col_id]) / p.parcel_h).astype(np.int64)
    r0, r1 = int(row_id.min()), int(row_id.max())
    rows_ = np.arange(r0, r1 + 1)
    flat = col_id * rows_.size + (row_id - r0)  # parcel index into small per-parcel tables
    parcel_rand = np.take(lattice_hash(cols[:, None], rows_[None, :], stream_key(seed, 12)).ravel(), flat)
    crop_tab = np.minimum(
        (lattice_hash(cols[:, None], rows_[None, :], stream_key(seed, 13)) * len(CROPS)).astype(np.int8),
        len(CROPS) - 1)
    return _Parcels(np.take(crop_tab.ravel(), flat), u, parcel_rand)


def _add_forest(lc: np.ndarray, X: np.ndarray, Y: np.ndarray, xm: np.ndarray, ym: np.ndarray,
                p: LayoutParams, seed: int) -> None:
    """Forest: fbm patches plus one guaranteed blob."""
    f = fbm(xm, ym, 700.0, 3, stream_key(seed, 21))
    bx, by, br = p.forest_blob
    blob = np.hypot(X - bx, Y - by) / br + (f - 0.5) * 1.2
    lc[(f > 0.66) | (blob < 1.0)] = LandCover.FOREST


def _add_urban(lc: np.ndarray, height: np.ndarray, lot_rand: np.ndarray, X: np.ndarray, Y: np.ndarray,
               xm: np.ndarray, ym: np.ndarray, p: LayoutParams, seed: int) -> None:
    """Urban district: street grid, 2x2 lots per block, building heights taller near the centre."""
    ux, uy, hx, hy = p.urban
    edge = (fbm(xm, ym, 300.0, 2, stream_key(seed, 31)) - 0.5) * 0.5
    rel = np.maximum(np.abs(X - ux) / hx, np.abs(Y - uy) / hy) + edge
    inside = rel < 1.0
    if not inside.any():
        return
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
    r_lot = lattice_hash(lot_x, lot_y, stream_key(seed, 32))
    margin = 2.0 + 6.0 * lattice_hash(lot_x, lot_y, stream_key(seed, 33))
    gx = np.where(fx >= half, fx - half, fx - p.street)
    gy = np.where(fy >= half, fy - half, fy - p.street)
    lot = (p.block - p.street) / 2
    built = (~street) & (gx >= margin * 0.5) & (gx < lot - margin * 0.5) & (gy >= margin * 0.5) \
        & (gy < lot - margin * 0.5) & (r_lot < 0.85)
    centre = 1.0 - np.clip(rel[sl], 0, 1)
    h_lot = BUILDING_MIN_HEIGHT + 22.0 * lattice_hash(lot_x, lot_y, stream_key(seed, 34)) ** 2 + 18.0 * centre
    sub_in = inside[sl]
    sub_lc = lc[sl]
    sub_lc[sub_in] = LandCover.URBAN
    sub_lc[sub_in & built] = LandCover.BUILDING
    height[sl] = np.where(sub_in & built, h_lot, 0.0).astype(np.float32)
    lot_rand[sl] = np.where(sub_in, r_lot, 0.0)


def _water(X: np.ndarray, Y: np.ndarray, xm: np.ndarray, ym: np.ndarray, p: LayoutParams,
           seed: int) -> np.ndarray:
    """Water mask: a meandering river and an optional lake."""
    along, across = (Y, X) if p.river_vertical else (X, Y)
    ext_along, ext_across = (p.ext_y, p.ext_x) if p.river_vertical else (p.ext_x, p.ext_y)
    wl = p.river_wavelength * max(ext_along, 1.0)
    centre_line = p.river_pos * ext_across + p.river_amp * ext_across * np.sin(
        2 * np.pi * along / wl + p.river_phase) + 0.5 * p.river_amp * ext_across * np.sin(
        2 * np.pi * along / (0.37 * wl) + 2 * p.river_phase)
    water = np.abs(across - centre_line) < p.river_width / 2
    if p.lake is not None:
        lx0, ly0, ra, rb = p.lake
        wob = (fbm(xm, ym, 250.0, 2, stream_key(seed, 41)) - 0.5) * 0.6
        water |= ((X - lx0) / ra) ** 2 + ((Y - ly0) / rb) ** 2 + wob < 1.0
    return np.asarray(water)


def _add_roads(lc: np.ndarray, height: np.ndarray, X: np.ndarray, Y: np.ndarray, p: LayoutParams) -> None:
    """Roads: straight lines at random angles (bridges over water)."""
    for rx, ry, ang, wid in p.roads:
        d = np.abs((X - rx) * np.float32(math.sin(ang)) - (Y - ry) * np.float32(math.cos(ang)))
        on = d < wid / 2
        lc[on] = LandCover.ROAD
        height[on] = 0.0


def layout(xm: np.ndarray, ym: np.ndarray, p: LayoutParams, seed: int, single: LandCover | None,
           run: Run = QUIET) -> Layout:
    """The layout on the grid of pixel-centre coordinates ``xm`` (columns) and ``ym`` (rows), metres.

    ``single`` fills the whole grid with one class (parcels still drawn for the crop texture). Cancel is
    checked through ``run`` between the layers.
    """
    what = "Synthetic scene generation"
    shape = (ym.size, xm.size)
    X, Y = xm[None, :].astype(np.float32), ym[:, None].astype(np.float32)
    lc = np.full(shape, LandCover.FIELD if single is None else single, np.uint8)
    height = np.zeros(shape, np.float32)
    lot_rand = np.zeros(shape, np.float32)
    fine = fbm(xm, ym, 80.0, 3, stream_key(seed, 51)) - np.float32(0.5)
    run.check(what)
    parcels = _parcels(X, Y, p, seed)
    if single is None:
        run.check(what)
        _add_forest(lc, X, Y, xm, ym, p, seed)
        run.check(what)
        _add_urban(lc, height, lot_rand, X, Y, xm, ym, p, seed)
        run.check(what)
        water = _water(X, Y, xm, ym, p, seed)
        run.check(what)
        lc[water] = LandCover.WATER
        height[water] = 0.0
        _add_roads(lc, height, X, Y, p)
    crop = np.where(lc == LandCover.FIELD, parcels.crop, -1).astype(np.int8)
    return Layout(lc, height, crop, parcels.u, parcels.rand, lot_rand, fine)
