"""File-level translation: one SAR band of a raster -> a georeferenced RGB GeoTIFF (uint8 by default)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, check_choice
from ..input_kind import MAX_CALIBRATED_MEDIAN_DB, ValueStats, check_input_kind, uncalibrated_shift_db
from ..pipeline import apply_tiled
from ..preprocess import INPUT_KINDS, to_model_input
from ..run import IsCancelled, Log, Progress, Run
from ..runtime import OnnxModel
from ..tiling import Window, plan_tiles
from .render import SYNTHETIC_TAG, load_translation_model, to_display

logger = logging.getLogger(__name__)

OUTPUT_DTYPES = ("uint8", "float32")
UINT8_NODATA = 0
"""uint8 output: 0 marks nodata; valid pixels are 1..255."""


@dataclass(frozen=True)
class TranslationResult:
    """Outcome of :func:`translate`."""

    output_path: Path
    width: int
    height: int
    tiles: int
    model_id: str
    valid_pixels: int
    seconds: float


def _check_inputs(info: Any, band: int | None, input_kind: str | None, output_dtype: str) -> int:
    """The band to read; clear errors for everything the tool refuses."""
    check_choice(output_dtype, OUTPUT_DTYPES, "output type")
    if input_kind is not None:
        check_choice(input_kind, INPUT_KINDS, "input kind")
    if band is None:
        if info.count > 1:
            raise InputError(
                f"'{info.path}' has {info.count} bands; choose the SAR band to translate (BAND), "
                "e.g. the VV intensity."
            )
        band = 1
    info.check([band])
    return band


def _scale(rgb: np.ndarray, output_dtype: str) -> np.ndarray:
    """Display RGB ``[0, 1]`` (NaN = invalid) -> output values with the output's nodata."""
    if output_dtype == "float32":
        return np.where(np.isfinite(rgb), rgb, np.float32(np.nan)).astype(np.float32)
    scaled = np.clip(np.rint(rgb * 255.0), 1, 255)
    return np.where(np.isfinite(rgb), scaled, UINT8_NODATA).astype(np.uint8)


def _tags(model: OnnxModel, input_path: str | os.PathLike[str], band: int, kind: str,
          shift_db: float = 0.0) -> dict[str, str]:
    meta = model.metadata
    return {
        SYNTHETIC_TAG: "true",
        "SAR_TOOLBOX_DESCRIPTION": (
            "Synthetic optical-looking rendering generated from SAR by a neural network; "
            "not a measurement of reflectance."
        ),
        "SAR_TOOLBOX_MODEL_ID": meta.model_id,
        "SAR_TOOLBOX_MODEL_SHA256": meta.weights_sha256,
        "SAR_TOOLBOX_SOURCE": f"{Path(input_path).name} band {band} ({kind}"
                              + (f", shifted by {shift_db:+.2f} dB)" if shift_db else ")"),
    }


def translate(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    band: int | None = None,
    input_kind: str | None = None,
    model: OnnxModel | str | os.PathLike[str] | None = None,
    nodata: float | None = None,
    output_dtype: str = "uint8",
    batch_size: int = 4,
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
    log: Log | None = None,
) -> TranslationResult:
    """Translate one SAR band into a georeferenced RGB GeoTIFF (written atomically).

    Args:
        input_path: SAR raster (any GDAL format, real-valued).
        output_path: output GeoTIFF: 3 bands (red, green, blue) on the input's grid, CRS and
            transform; ``uint8`` 1..255 with nodata 0, or ``float32`` ``[0, 1]`` with nodata NaN.
        band: 1-based band; required when the raster has several bands.
        input_kind: 'intensity', 'amplitude' or 'db' (default: what the model expects, intensity).
        model: a translation ``.onnx`` (default: the shipped model).
        nodata: input nodata value (default: the raster's own); these pixels stay nodata.
        output_dtype: 'uint8' (default) or 'float32'.
        progress, is_cancelled, log: the usual callbacks.

    Raises:
        InputError: several bands and no ``band``, unknown kind, no valid pixel.
        UnsupportedDataError: complex (SLC) band.
        ModelError: a model of another task or without metadata.
    """
    run = Run.of(progress, is_cancelled, log)
    run.progress(0.0)
    started = time.perf_counter()
    plan = _plan(input_path, output_path, band, input_kind, model, nodata, output_dtype, run)
    valid_count = _render(plan, input_path, output_path, output_dtype, batch_size, run)
    seconds = time.perf_counter() - started
    run.say(f"Wrote {output_path} in {seconds:.1f} s.", logger=logger)
    run.progress(1.0)
    info, meta = plan.info, plan.net.metadata
    return TranslationResult(
        Path(output_path), info.width, info.height, plan.n_tiles, meta.model_id, valid_count, seconds
    )


@dataclass(frozen=True)
class _Plan:
    """What :func:`translate` checked and chose before reading any pixel."""

    info: Any
    band: int
    kind: str
    net: OnnxModel
    in_nodata: float | None
    n_tiles: int
    shift_db: float = 0.0


def _plan(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    band: int | None,
    input_kind: str | None,
    model: OnnxModel | str | os.PathLike[str] | None,
    nodata: float | None,
    output_dtype: str,
    run: Run,
) -> _Plan:
    """Check the inputs and the output path, load the model, choose the input kind, plan the tiles."""
    from ..raster_io import check_writable, inspect_raster

    info = inspect_raster(input_path)
    chosen = _check_inputs(info, band, input_kind, output_dtype)
    check_writable(output_path)
    net = load_translation_model(model)
    meta = net.metadata
    kind = input_kind or {"intensity-to-db": "intensity", "amplitude-to-db": "amplitude"}.get(
        meta.input_transform.value, "db"
    )
    shift_db = _calibration_shift(check_input_kind(input_path, chosen, kind, run=run), kind, meta, run)
    n_tiles = len(plan_tiles(info.height, info.width, meta.tile_size, meta.overlap))
    run.say(
        f"Translating {info.width} x {info.height} px ({kind}) with {meta.model_id} on {net.provider}: "
        f"{n_tiles} tile(s) of {meta.tile_size} px, overlap {meta.overlap}. The output is a synthetic "
        "rendering, not a measurement.",
        logger=logger,
    )
    in_nodata = info.nodata if nodata is None else nodata
    return _Plan(info, chosen, kind, net, in_nodata, n_tiles, shift_db)


def _calibration_shift(stats: ValueStats, kind: str, meta: Any, run: Run) -> float:
    """The dB shift that brings raw digital numbers into the model's range (0 for calibrated values)."""
    if meta.db_min is None or meta.db_max is None:
        return 0.0
    shift = uncalibrated_shift_db(stats, kind, meta.db_min, meta.db_max)
    if shift:
        run.warn(f"The values look like uncalibrated digital numbers (median above "
                 f"{MAX_CALIBRATED_MEDIAN_DB:+.0f} dB as {kind}): shifted by {shift:+.2f} dB into the "
                 f"model's range [{meta.db_min:g}, {meta.db_max:g}] dB, as compress does. For a faithful "
                 "rendering, calibrate to sigma0 first (e.g. SNAP Radiometric > Calibrate).", logger=logger)
    return shift


def _render(
    plan: _Plan,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    output_dtype: str,
    batch_size: int,
    run: Run,
) -> int:
    """Run the model tile by tile and write the RGB GeoTIFF atomically; the number of valid pixels."""
    from ..raster_io import atomic_output, create_raster, open_raster, profile_like, read_window

    info, meta, net = plan.info, plan.net.metadata, plan.net
    valid_rows: dict[int, int] = {}
    out_nodata: float = UINT8_NODATA if output_dtype == "uint8" else float("nan")

    with open_raster(input_path) as src, atomic_output(output_path) as tmp, contextlib.ExitStack() as stack:
        profile = profile_like(info, count=3, dtype=output_dtype, nodata=out_nodata)
        writer = stack.enter_context(
            create_raster(tmp, profile, ("red (synthetic)", "green (synthetic)", "blue (synthetic)"))
        )
        writer.set_tags(_tags(net, input_path, plan.band, plan.kind, plan.shift_db))

        def read(window: Window) -> np.ndarray:
            raw = read_window(src, plan.band, window, fill=np.nan)
            x, valid = to_model_input(raw, meta, plan.in_nodata, plan.kind, plan.shift_db)
            for r in range(window.row_off, min(window.row_end, info.height)):
                valid_rows[r] = int(valid[r - window.row_off, : info.width].sum())
            x[~valid] = np.nan
            return x[np.newaxis]

        def write(window: Window, data: np.ndarray) -> None:
            writer.write_rows(window.row_off, _scale(to_display(data), output_dtype))

        apply_tiled(
            read,
            net.run,
            tile_size=meta.tile_size,
            overlap=meta.overlap,
            shape=info.shape,
            batch_size=batch_size,
            write=write,
            progress=lambda pct: run.progress(pct / 100.0),
            is_cancelled=lambda: run.cancelled,
        )
        valid_count = sum(valid_rows.values())
        if valid_count == 0:
            raise InputError(
                f"'{info.path}' has no valid pixel in band {plan.band} (all nodata, NaN, zero or "
                "negative); choose another raster or band, or set the right nodata value."
            )
    return valid_count
