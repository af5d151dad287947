"""Checks of the generator's parameters: each bad value gets an error that says what to use."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, check_choice
from .classes import LandCover

MIN_SIZE = 16
MAX_SIZE = 20000
MAX_PIXELS = 8192 * 8192
"""Largest scene rendered in memory (peak about 130 bytes per pixel, i.e. ~9 GB at 8192 x 8192)."""

# Rotations (np.rot90 k) that bring each look direction to the "east" frame, in which
# the sensor lies to the west and slant range grows with the column index.
LOOK_DIRECTIONS: dict[str, int] = {"east": 0, "south": 1, "west": 2, "north": 3}


@dataclass(frozen=True)
class SceneOptions:
    """Validated parameters of one scene (see :func:`engine.synthetic.generate_scene_pair`)."""

    width: int
    height: int
    seed: int
    looks: float
    shift_x: float
    shift_y: float
    pixel_size: float
    incidence_angle: float
    sun_elevation: float
    sun_azimuth: float


def check_size(name: str, value: Any) -> int:
    """``value`` as a scene side in pixels (``MIN_SIZE .. MAX_SIZE``)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be a whole number of pixels between {MIN_SIZE} and {MAX_SIZE}, "
                         f"got {value!r}.")
    if not MIN_SIZE <= int(value) <= MAX_SIZE:
        raise InputError(f"{name} = {value} pixels is out of range; choose a value between {MIN_SIZE} "
                         f"and {MAX_SIZE}.")
    return int(value)


def check_float(name: str, value: Any, low: float, high: float, hint: str = "") -> float:
    """``value`` as a finite float in ``[low, high]``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v) or not low <= v <= high:
        raise InputError(f"{name} = {value!r} is out of range; choose a value between {low:g} and {high:g}"
                         f"{hint}.")
    return v


def check_seed(seed: Any) -> int:
    """``seed`` as a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}.")
    return int(seed)


def check_affine(affine: Any) -> np.ndarray:
    """``affine`` as a mild 2x2 or 2x3 float64 matrix."""
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


def check_single_class(single_class: Any) -> LandCover | None:
    """``single_class`` as a :class:`LandCover` that can fill a scene, or None."""
    if single_class is None:
        return None
    try:
        single = LandCover(int(single_class))
    except (TypeError, ValueError):
        raise InputError(f"single_class {single_class!r} is not a land-cover class; use one of "
                         f"{', '.join(f'{c.name}={c.value}' for c in LandCover)}.") from None
    if single == LandCover.BUILDING:
        raise InputError("single_class BUILDING cannot fill a scene; use URBAN for a built-up area.")
    return single


def validate(width: Any, height: Any, seed: Any, looks: Any, shift_x: Any, shift_y: Any,
             look_direction: Any, pixel_size: Any, incidence_angle: Any, sun_elevation: Any,
             sun_azimuth: Any) -> SceneOptions:
    """The scene parameters checked and converted; raises :class:`InputError` naming the bad one."""
    w = check_size("width", width)
    h = check_size("height", height)
    if w * h > MAX_PIXELS:
        raise InputError(f"A {w} x {h} scene is rendered in memory and would need about "
                         f"{w * h * 130 / 2**30:.0f} GB; keep width x height <= {MAX_PIXELS} pixels "
                         "(e.g. 8192 x 8192) or generate several tiles with different seeds.")
    s = check_seed(seed)
    lk = check_float("looks", looks, 1.0, 1000.0, " (1 = single look, 4 = typical multi-look)")
    limit = min(w, h) / 4.0
    sx = check_float("shift_x", shift_x, -limit, limit, " pixels (a quarter of the smaller side)")
    sy = check_float("shift_y", shift_y, -limit, limit, " pixels (a quarter of the smaller side)")
    check_choice(look_direction, LOOK_DIRECTIONS, "look_direction", " (direction the radar looks towards)")
    px = check_float("pixel_size", pixel_size, 0.1, 1000.0, " metres")
    inc = check_float("incidence_angle", incidence_angle, 15.0, 65.0, " degrees")
    el = check_float("sun_elevation", sun_elevation, 5.0, 90.0, " degrees")
    az = check_float("sun_azimuth", sun_azimuth, -360.0, 360.0, " degrees clockwise from north")
    return SceneOptions(w, h, s, lk, sx, sy, px, inc, el, az)
