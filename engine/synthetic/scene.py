"""One scene pair from its parameters: plan the padded grid, lay out, render SAR and optical, crop."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..run import QUIET, Run
from .classes import BUILDING_MAX_HEIGHT, SAR_DB, LandCover
from .layout import Layout, draw_params, layout
from .noise import add_sensor_noise, speckle
from .optical import render_optical
from .resample import fast_len, gaussian_blur, max_displacement, misregister, sar_matrix
from .sar import building_geometry, db_to_linear, ground_sigma0_db
from .validation import LOOK_DIRECTIONS, SceneOptions, check_affine, check_float, check_single_class, validate

WHAT = "Synthetic scene generation"
"""How a cancelled generation names itself."""

SHIFT_CONVENTION = ("positive shift_x/shift_y = SAR content moved right/down (east/south) relative to the "
                    "optical image; sar[r, c] = aligned[r - shift_y, c - shift_x]")


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
        shift: ``(shift_x, shift_y)`` in pixels (see :mod:`engine.synthetic` for the sign).
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
class _Grid:
    """The padded rendering grid: ``margin`` pixels around the scene, FFT-friendly size."""

    margin: int
    xm: np.ndarray  # pixel-centre x of each column, metres
    ym: np.ndarray  # pixel-centre y of each row, metres (grows southwards)

    def crop(self, w: int, h: int) -> tuple[slice, slice]:
        return (slice(self.margin, self.margin + h), slice(self.margin, self.margin + w))


def _plan_grid(o: SceneOptions, m: np.ndarray, psf: float) -> _Grid:
    """Pad by the largest displacement, the buildings' layover + shadow reach and the PSF."""
    w, h, px = o.width, o.height, o.pixel_size
    tan_i = math.tan(math.radians(o.incidence_angle))
    building_reach = BUILDING_MAX_HEIGHT * (1 / tan_i + tan_i) / px  # layover + shadow length, pixels
    margin = math.ceil(max_displacement(m, w, h) + building_reach + 3 * psf) + 4
    # margin on every side, widened on the right/bottom to an FFT-friendly size
    cols = np.arange(-margin, fast_len(w + 2 * margin) - margin, dtype=np.float64)
    rows = np.arange(-margin, fast_len(h + 2 * margin) - margin, dtype=np.float64)
    return _Grid(margin, (cols + 0.5) * px, (rows + 0.5) * px)


def _render_sar(lay: Layout, grid: _Grid, o: SceneOptions, m: np.ndarray, affine: bool, look_direction: str,
                psf: float, texture: bool, run: Run = QUIET) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free sigma0, aligned (optical geometry) and misregistered, both floored at the noise level."""
    ground_db = ground_sigma0_db(lay, grid.xm, grid.ym, o.seed, texture)
    run.check(WHAT)
    lin = building_geometry(ground_db, lay, LOOK_DIRECTIONS[look_direction], o.incidence_angle, o.pixel_size,
                            texture)
    run.check(WHAT)
    blurred = gaussian_blur(lin, psf)
    aligned = blurred[grid.crop(o.width, o.height)]
    run.check(WHAT)
    shifted = misregister(blurred, grid.margin, o.width, o.height, m, affine)
    floor = np.float32(db_to_linear(SAR_DB["shadow"] - 6.0))
    return np.maximum(aligned, floor), np.maximum(shifted, floor).astype(np.float32)


def _render_optical(lay: Layout, grid: _Grid, o: SceneOptions, texture: bool, run: Run = QUIET) -> np.ndarray:
    """Optical reflectance cropped to the scene, with sensor noise."""
    padded = render_optical(lay, grid.xm, grid.ym, o.seed, o.pixel_size, texture, o.sun_elevation,
                            o.sun_azimuth, run)
    optical = np.ascontiguousarray(padded[(slice(None), *grid.crop(o.width, o.height))])
    del padded
    run.check(WHAT)
    add_sensor_noise(optical, o.seed)
    return optical


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
    run: Run = QUIET,
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
        run: progress of the stages and cancel checks between their steps (:class:`CancelledError`).

    Raises:
        InputError: a parameter is out of range (the message says which and what to use).
    """
    o = validate(width, height, seed, looks, shift_x, shift_y, look_direction, pixel_size, incidence_angle,
                 sun_elevation, sun_azimuth)
    aff = None if affine is None else check_affine(affine)
    psf = check_float("psf_sigma", psf_sigma, 0.0, 5.0, " pixels")
    single = check_single_class(single_class)

    m = sar_matrix(o.width, o.height, o.shift_x, o.shift_y, aff)
    grid = _plan_grid(o, m, psf)
    params = draw_params(np.random.default_rng(np.random.SeedSequence([o.seed, 0])),
                         o.width * o.pixel_size, o.height * o.pixel_size, o.pixel_size)
    run.progress(0.0)
    lay = layout(grid.xm, grid.ym, params, o.seed, single, run)
    run.progress(0.35)
    aligned, sigma0 = _render_sar(lay, grid, o, m, aff is not None, look_direction, psf, texture, run)
    run.progress(0.6)
    run.check(WHAT)
    sar = speckle(sigma0, o.looks, o.seed)
    run.progress(0.65)
    run.check(WHAT)
    optical = _render_optical(lay, grid, o, texture, run)
    run.progress(1.0)
    crop = grid.crop(o.width, o.height)
    return ScenePair(
        landcover=np.ascontiguousarray(lay.landcover[crop]),
        building_height=np.ascontiguousarray(lay.height[crop]),
        sigma0_aligned=np.ascontiguousarray(aligned),
        sigma0=sigma0,
        sar=sar,
        optical=optical,
        shift=(o.shift_x, o.shift_y),
        sar_from_optical=((float(m[0, 0]), float(m[0, 1]), float(m[0, 2])),
                          (float(m[1, 0]), float(m[1, 1]), float(m[1, 2]))),
        geotransform=(0.0, o.pixel_size, 0.0, 0.0, 0.0, -o.pixel_size),
        pixel_size=o.pixel_size,
        seed=o.seed,
        looks=o.looks,
        look_direction=look_direction,
        incidence_angle=o.incidence_angle,
    )
