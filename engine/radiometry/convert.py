"""Linear <-> dB conversion of one SAR band, streamed strip by strip (``sartoolbox:todb``).

Output: float32 GeoTIFF on the input's grid (CRS as WKT, transform, band
description), tiled and compressed, written atomically. Invalid input pixels
(0, negative, NaN, +-inf, nodata; for the inverse: NaN, +-inf, nodata) get
nodata :data:`engine.raster_io.OUTPUT_NODATA` (-9999).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError, check_choice
from ..input_kind import KindAdvice, check_input_kind
from ..metadata import NOISE_FLOOR_DB
from ..preprocess import LINEAR_KINDS, db_to_linear, linear_to_db, valid_mask
from ..run import IsCancelled, Log, Progress, Run
from ..tiling import Window

if TYPE_CHECKING:
    from ..raster_io import RasterInfo

logger = logging.getLogger(__name__)

KIND_ADVICE = KindAdvice(
    looks_db="The band is already in dB and needs no conversion; to convert dB to linear values, set "
    "INVERSE.",
    looks_linear="The band holds linear values: convert it to dB with INVERSE off.",
)
"""What to do when the values do not look like the direction asked for."""

STRIP_ROWS = 256
"""Rows converted per step (matches the 256-pixel output blocks)."""


@dataclass(frozen=True)
class ConvertResult:
    """Outcome of :func:`convert_db`."""

    output_path: Path
    width: int
    height: int
    valid_pixels: int
    nodata_pixels: int
    minimum: float
    maximum: float
    seconds: float


def convert_db(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    band: int = 1,
    input_kind: str = "intensity",
    inverse: bool = False,
    noise_floor_db: float = NOISE_FLOOR_DB,
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
    log: Log | None = None,
) -> ConvertResult:
    """Convert one band from linear intensity/amplitude to dB (or back, ``inverse=True``).

    Args:
        input_path: input raster.
        output_path: output GeoTIFF (float32, nodata -9999), written atomically.
        band: 1-based band to convert.
        input_kind: 'intensity' (dB = 10 log10 I) or 'amplitude' (dB = 20 log10 A); for the
            inverse, the kind of linear value to produce.
        inverse: convert dB -> linear instead.
        noise_floor_db: dB values below it are set to it (forward conversion only).
        progress, is_cancelled, log: callbacks (percent 0..100, cancellation flag, messages).

    Raises:
        InputError: missing/unreadable input, band out of range, no valid pixel, bad parameters.
        UnsupportedDataError: complex (SLC) band.
        RasterIOError: the output cannot be written.
        CancelledError: cancelled; nothing is written.
    """
    from ..raster_io import check_writable, inspect_raster

    started = time.perf_counter()
    run = Run.of(progress, is_cancelled, log)
    run.progress(0.0)
    check_choice(input_kind, LINEAR_KINDS, "input kind")
    if not np.isfinite(noise_floor_db):
        raise InputError(f"The noise floor must be a finite dB value, got {noise_floor_db}.")
    info = inspect_raster(input_path, band)
    check_input_kind(input_path, band, "db" if inverse else input_kind, run=run, advice=KIND_ADVICE)
    check_writable(output_path)
    direction = f"dB -> linear {input_kind}" if inverse else f"linear {input_kind} -> dB"
    run.say(f"Converting band {band} of {info.path} ({info.width} x {info.height} px): {direction}",
            logger=logger)
    stats = _convert_strips(info, band, output_path, input_kind, inverse, noise_floor_db, run)
    seconds = time.perf_counter() - started
    run.say(f"Wrote {output_path}: {stats.valid} valid pixels, range {stats.low:.2f} .. {stats.high:.2f}",
            logger=logger)
    return ConvertResult(
        output_path=Path(output_path), width=info.width, height=info.height, valid_pixels=stats.valid,
        nodata_pixels=info.width * info.height - stats.valid, minimum=stats.low, maximum=stats.high,
        seconds=seconds,
    )


@dataclass
class _Stats:
    """Valid pixels converted and their value range."""

    valid: int = 0
    low: float = np.inf
    high: float = -np.inf

    def add(self, values: np.ndarray, valid: np.ndarray) -> None:
        if valid.any():
            self.low = min(self.low, float(values[valid].min()))
            self.high = max(self.high, float(values[valid].max()))
        self.valid += int(valid.sum())


def _convert_strips(info: RasterInfo, band: int, output_path: str | os.PathLike[str], input_kind: str,
                    inverse: bool, noise_floor_db: float, run: Run) -> _Stats:
    """Convert strip by strip into the output GeoTIFF (nothing is written if no pixel is valid)."""
    from ..raster_io import (
        OUTPUT_NODATA,
        atomic_output,
        create_raster,
        open_raster,
        profile_like,
        read_window,
    )

    description = info.descriptions[band - 1]
    unit = input_kind if inverse else f"{input_kind} [dB]"
    out_description = f"{description} ({unit})" if description else unit
    stats = _Stats()
    with open_raster(info.path) as src, atomic_output(output_path) as tmp, \
            create_raster(tmp, profile_like(info), [out_description]) as writer:
        for row in run.steps(info.height, STRIP_ROWS, "Conversion"):
            window = Window(row, 0, min(STRIP_ROWS, info.height - row), info.width)
            raw = read_window(src, band, window, fill=np.nan, dtype=np.float64)
            valid = valid_mask(raw, info.nodata, positive=not inverse)
            if inverse:
                out = db_to_linear(np.where(valid, raw, np.nan), input_kind)
            else:
                out = linear_to_db(np.where(valid, raw, np.nan), input_kind, noise_floor_db)
            valid &= np.isfinite(out)
            stats.add(out, valid)
            writer.write_rows(row, np.where(valid, out, np.float32(OUTPUT_NODATA)).astype(np.float32))
        if stats.valid == 0:
            what = "finite dB values" if inverse else "positive finite values"
            raise InputError(
                f"Band {band} of '{info.path}' has no valid pixel (no {what} other than nodata); "
                "choose another raster or band."
            )
    return stats
