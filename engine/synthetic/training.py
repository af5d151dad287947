"""Training samples cut from synthetic scenes: SAR in dB and optical on one grid, with the true shift."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..metadata import NOISE_FLOOR_DB
from ..preprocess import linear_to_db
from .scene import generate_scene_pair
from .validation import check_float, check_seed, check_size


@dataclass(frozen=True, eq=False)
class TrainingPair:
    """A training sample: SAR in dB and optical reflectance on the same grid, with the true shift."""

    sar_db: np.ndarray  # (H, W) float32, 10 log10(speckled intensity), floored at -40 dB
    optical: np.ndarray  # (4, H, W) float32
    shift: tuple[float, float]  # (shift_x, shift_y) of the SAR content relative to the optical
    landcover: np.ndarray  # (H, W) uint8
    sigma0_db: np.ndarray  # (H, W) float32 noise-free, misregistered sigma0 in dB


def _to_db(intensity: np.ndarray) -> np.ndarray:
    return linear_to_db(intensity, "intensity", noise_floor_db=NOISE_FLOOR_DB)


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
    rng = np.random.default_rng(np.random.SeedSequence([check_seed(seed), 99]))
    size = check_size("size", size)
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or not 1 <= count <= 4096:
        raise InputError(f"count must be a whole number between 1 and 4096, got {count!r}.")
    max_shift = check_float("max_shift", max_shift, 0.0, size / 4.0, " pixels (a quarter of the size)")
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
