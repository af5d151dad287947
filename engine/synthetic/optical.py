"""Optical rendering: surface reflectance per material, terrain shading and building shadows."""

from __future__ import annotations

import math

import numpy as np

from ..run import QUIET, Run
from .classes import CROPS, REFLECTANCE, ROOFS, LandCover
from .layout import Layout
from .noise import fbm, lattice_hash, stream_key

_MATERIALS = ("water", "forest", "road", "urban_ground", "garden")


def _materials(lay: Layout, xm: np.ndarray, ym: np.ndarray, seed: int, texture: bool) -> np.ndarray:
    """One index per pixel into the reflectance table of :func:`_table` (crops, classes, garden, roofs)."""
    lc = lay.landcover
    first = {n: len(CROPS) + i for i, n in enumerate(_MATERIALS)}
    first_roof = len(CROPS) + len(_MATERIALS)
    mat = np.maximum(lay.crop, 0).astype(np.int64)
    for cls, name in ((LandCover.WATER, "water"), (LandCover.FOREST, "forest"), (LandCover.ROAD, "road"),
                      (LandCover.URBAN, "urban_ground")):
        mat[lc == cls] = first[name]
    roof = lc == LandCover.BUILDING
    mat[roof] = first_roof + np.minimum((lay.lot_rand[roof] * 7919.0 % 1.0 * len(ROOFS)).astype(np.int64),
                                        len(ROOFS) - 1)
    if texture:
        ur, uc = np.nonzero(lc == LandCover.URBAN)
        cell5 = lattice_hash(np.round(xm[uc] / 5.0), np.round(ym[ur] / 5.0), stream_key(seed, 72))  # 5 m
        garden = cell5 < 0.2
        mat[ur[garden], uc[garden]] = first["garden"]
    return mat


def _table() -> np.ndarray:
    """``(materials, 4)`` reflectance table indexed by :func:`_materials`."""
    return np.array([c[2] for c in CROPS] + [REFLECTANCE[n] for n in _MATERIALS] + list(ROOFS), np.float32)


def _texture_factor(lay: Layout) -> np.ndarray:
    """Per-pixel brightness: fine texture on natural classes, parcel variation and stripes on fields."""
    lc = lay.landcover
    factor = np.ones(lc.shape, np.float32)
    vary = lay.fine
    natural = (lc == LandCover.WATER) | (lc == LandCover.FOREST) | (lc == LandCover.ROAD)
    factor = np.where(natural, 1 + 0.3 * vary, factor)
    field = lc == LandCover.FIELD
    stripes = np.sin(lay.parcel_u * np.float32(2 * np.pi / 45.0))
    return np.where(field, 1 + 0.25 * (lay.parcel_rand - 0.5) + 0.3 * vary + 0.04 * stripes, factor)


def _terrain_shading(xm: np.ndarray, ym: np.ndarray, seed: int, px: float, sun_el: float,
                     sun_az: float) -> np.ndarray:
    """Mild terrain shading (Lambert on a smooth synthetic relief, flat ground = 1)."""
    dem = fbm(xm, ym, 2500.0, 3, stream_key(seed, 73)) * 60.0
    gy, gx = np.gradient(dem, px)
    az, el = math.radians(sun_az), math.radians(sun_el)
    sun = np.array([math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)])
    # x east, y north (rows grow southwards, so the north slope is -gy)
    nrm = np.sqrt(gx**2 + gy**2 + 1)
    cos_i = (-gx * sun[0] + gy * sun[1] + sun[2]) / nrm
    return np.asarray((cos_i / sun[2]).astype(np.float32))


def _cast_building_shadows(out: np.ndarray, height: np.ndarray, px: float, sun_el: float,
                           sun_az: float) -> None:
    """Darken ``out`` in place where buildings cast shadows away from the sun (near the buildings only)."""
    az = math.radians(sun_az + 180.0)
    dx, dy = math.sin(az), -math.cos(az)  # unit step in (col, row) pointing away from the sun
    drop = px * math.tan(math.radians(sun_el))  # height lost per pixel travelled
    max_steps = math.ceil(float(height.max()) / drop) + 1
    rr = np.flatnonzero(height.any(axis=1))
    cc = np.flatnonzero(height.any(axis=0))
    box = (slice(max(rr[0] - max_steps, 0), rr[-1] + max_steps + 1),
           slice(max(cc[0] - max_steps, 0), cc[-1] + max_steps + 1))
    hgt = height[box]
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


def render_optical(lay: Layout, xm: np.ndarray, ym: np.ndarray, seed: int, px: float, texture: bool,
                   sun_el: float, sun_az: float, run: Run = QUIET) -> np.ndarray:
    """``(4, H, W)`` float32 reflectance (red, green, blue, nir) of the layout, before sensor noise
    (cancel checked through ``run`` between the steps)."""
    what = "Synthetic scene generation"
    mat = _materials(lay, xm, ym, seed, texture)
    run.check(what)
    factor = _texture_factor(lay) if texture else np.ones(lay.landcover.shape, np.float32)
    out = _table().T[:, mat] * factor[None]
    run.check(what)
    if texture:
        out *= _terrain_shading(xm, ym, seed, px, sun_el, sun_az)[None]
        run.check(what)
    if lay.height.any():
        _cast_building_shadows(out, lay.height, px, sun_el, sun_az)
    return out
