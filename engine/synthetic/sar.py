"""SAR rendering: per-class sigma0 of the ground, then layover, shadow and double bounce of buildings."""

from __future__ import annotations

import math

import numpy as np

from .classes import CROPS, SAR_DB, LandCover
from .layout import Layout
from .noise import fbm, lattice_hash, stream_key


def db_to_linear(x: np.ndarray | float) -> np.ndarray:
    """``10 ** (x / 10)`` in float32: a dB value as a linear power ratio."""
    return np.power(np.float32(10.0), np.asarray(x, np.float32) / np.float32(10.0))


def ground_sigma0_db(lay: Layout, xm: np.ndarray, ym: np.ndarray, seed: int, texture: bool) -> np.ndarray:
    """Per-pixel mean sigma0 (dB) of the ground, before building geometry."""
    lc = lay.landcover
    db = np.zeros(lc.shape, np.float32)
    crop_db = np.array([c[1] for c in CROPS], np.float32)
    if not texture:
        means = {LandCover.WATER: SAR_DB["water"], LandCover.FIELD: float(crop_db.mean()),
                 LandCover.FOREST: SAR_DB["forest"], LandCover.ROAD: SAR_DB["road"],
                 LandCover.URBAN: SAR_DB["urban_ground"], LandCover.BUILDING: SAR_DB["roof"]}
        for cls, value in means.items():
            db[lc == cls] = value
        return db
    field = lc == LandCover.FIELD
    fine = lay.fine
    wind = fbm(xm, ym, 900.0, 3, stream_key(seed, 52)) - 0.5
    canopy = fbm(xm, ym, 40.0, 2, stream_key(seed, 53)) - 0.5
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
    bright = lattice_hash(np.round(xm[uc]), np.round(ym[ur]), stream_key(seed, 54)) < 0.08  # cars, poles: 1 m
    db[ur, uc] = SAR_DB["urban_ground"] + 3.0 * fine[ur, uc] + np.where(bright, 10.0, 0.0)
    roof = lc == LandCover.BUILDING
    db[roof] = (SAR_DB["roof"] + 4.0 * (lay.lot_rand - 0.5))[roof]
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


def building_geometry(ground_db: np.ndarray, lay: Layout, k: int, inc_deg: float, px: float,
                      texture: bool) -> np.ndarray:
    """Linear sigma0 with layover, double bounce and shadow of buildings (look frame rotated by ``k``)."""
    g = np.rot90(ground_db, k)
    bld = np.rot90(lay.landcover == LandCover.BUILDING, k)
    hgt = np.rot90(lay.height, k)
    shape = (int(g.shape[0]), int(g.shape[1]))
    lin = db_to_linear(g)
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
    out[shadow] += db_to_linear(SAR_DB["shadow"])
    # roofs appear displaced towards the sensor by h / tan(incidence) (layover)
    rr, cc = np.nonzero(bld)
    dest = cc - np.rint(hgt[rr, cc] / tan_i / px).astype(np.int64)
    ok = dest >= 0
    out += np.bincount(rr[ok] * shape[1] + dest[ok], weights=roof_lin[rr[ok], cc[ok]],
                       minlength=out.size).reshape(shape).astype(np.float32)
    # facade returns spread over the layover zone in front of the near wall
    out[_zones(near_c - lay_len, near_c, near_r, shape)] += db_to_linear(SAR_DB["facade"])
    # double bounce: bright line at the base of the near wall
    # (per-building strength: wall orientation and material, from the lot's world-anchored random)
    strength = np.ones(near_r.size, np.float32)
    if texture:
        lot = np.rot90(lay.lot_rand, k)[near_r, near_c]
        strength = 0.3 + 0.7 * ((lot * np.float32(977.0)) % np.float32(1.0))
    db_c = near_c - 1
    ok = db_c >= 0
    np.add.at(out, (near_r[ok], db_c[ok]), db_to_linear(SAR_DB["double_bounce"]) * strength[ok])
    return np.ascontiguousarray(np.rot90(out, -k))
