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

import numpy as np

from .errors import CancelledError, InputError
from .pipeline import IsCancelled, Log, Progress, logger_msg
from .preprocess import LINEAR_KINDS, db_to_linear, linear_to_db, valid_mask
from .tiling import Window

log = logging.getLogger(__name__)

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
    noise_floor_db: float = -40.0,
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
    from .raster_io import (
        OUTPUT_NODATA,
        atomic_output,
        check_writable,
        create_raster,
        inspect_raster,
        open_raster,
        profile_like,
        read_window,
    )

    started = time.perf_counter()
    if input_kind not in LINEAR_KINDS:
        raise InputError(f"Unknown input kind '{input_kind}'; use 'intensity' or 'amplitude'.")
    if not np.isfinite(noise_floor_db):
        raise InputError(f"The noise floor must be a finite dB value, got {noise_floor_db}.")
    info = inspect_raster(input_path, band)
    check_writable(output_path)
    direction = f"dB -> linear {input_kind}" if inverse else f"linear {input_kind} -> dB"
    logger_msg(f"Converting band {band} of {info.path} ({info.width} x {info.height} px): {direction}", log)
    description = info.descriptions[band - 1]
    unit = input_kind if inverse else f"{input_kind} [dB]"
    out_description = f"{description} ({unit})" if description else unit

    valid_total = 0
    lo, hi = np.inf, -np.inf
    if progress:
        progress(0.0)
    with open_raster(input_path) as src, atomic_output(output_path) as tmp, \
            create_raster(tmp, profile_like(info), [out_description]) as writer:
        for row in range(0, info.height, STRIP_ROWS):
            if is_cancelled is not None and is_cancelled():
                raise CancelledError("Cancelled by the user; no output was written.")
            window = Window(row, 0, min(STRIP_ROWS, info.height - row), info.width)
            raw = read_window(src, band, window, fill=np.nan, dtype=np.float64)
            valid = valid_mask(raw, info.nodata, positive=not inverse)
            if inverse:
                out = db_to_linear(np.where(valid, raw, np.nan), input_kind)
            else:
                out = linear_to_db(np.where(valid, raw, np.nan), input_kind, noise_floor_db)
            valid &= np.isfinite(out)
            if valid.any():
                lo, hi = min(lo, float(out[valid].min())), max(hi, float(out[valid].max()))
            valid_total += int(valid.sum())
            writer.write_rows(row, np.where(valid, out, np.float32(OUTPUT_NODATA)).astype(np.float32))
            if progress:
                progress(100.0 * window.row_end / info.height)
        if valid_total == 0:
            what = "finite dB values" if inverse else "positive finite values"
            raise InputError(
                f"Band {band} of '{info.path}' has no valid pixel (no {what} other than nodata); "
                "choose another raster or band."
            )
    seconds = time.perf_counter() - started
    logger_msg(f"Wrote {output_path}: {valid_total} valid pixels, range {lo:.2f} .. {hi:.2f}", log)
    return ConvertResult(
        output_path=Path(output_path), width=info.width, height=info.height, valid_pixels=valid_total,
        nodata_pixels=info.width * info.height - valid_total, minimum=lo, maximum=hi, seconds=seconds,
    )
