"""Streaming tiled inference: the one entry point that runs a dense ONNX model over a raster.

Two levels:

- :func:`apply_tiled` — pure: tiles any source (an in-memory array or a
  ``read(window)`` callback) through any ``Callable[[np.ndarray], np.ndarray]``
  that maps a ``(n, bands, t, t)`` batch to ``(n, channels, t, t)``, blends
  the overlapping outputs and hands finished strips of rows to ``write``.
  Memory: one strip of input (tile height x raster width), one strip of
  float64 accumulators (``channels x tile height x raster width``), one
  batch of tiles.
- :func:`run_model` — a model file and a raster in, a georeferenced GeoTIFF
  out (same grid, CRS, transform; invalid input pixels are nodata), written
  atomically, with progress, cancellation and log callbacks.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CancelledError, InputError, ModelError
from .metadata import InputTransform, Task
from .preprocess import LINEAR_KINDS, db_to_linear, denormalise, to_model_input
from .tiling import BLEND_MODES, Window, iter_tile_rows, plan_tiles, tile_weights

log = logging.getLogger(__name__)

Reader = Callable[[Window], np.ndarray]
"""``read(window) -> (bands, h, w)`` float array; NaN marks invalid pixels and pixels outside the raster."""
Writer = Callable[[Window, np.ndarray], None]
"""``write(window, (channels, h, w) float32)``; NaN marks masked output pixels."""
Progress = Callable[[float], Any]
IsCancelled = Callable[[], bool]
Log = Callable[[str], Any]

DENSE_TASKS = (Task.IDENTITY, Task.TRANSLATE, Task.EMBED, Task.KEYPOINTS)
"""Tasks whose output lies on the input grid (scale_factor 1), runnable by :func:`run_model`."""
OUTPUT_TRANSFORMS = ("denormalise", "linear", "none")


def _array_reader(source: np.ndarray) -> tuple[Reader, int, int]:
    data = source if source.ndim == 3 else source[np.newaxis]
    if data.ndim != 3:
        raise InputError(f"Expected a (height, width) or (bands, height, width) array, got {source.shape}.")
    height, width = data.shape[1:]

    def read(window: Window) -> np.ndarray:
        out = np.full((data.shape[0], window.height, window.width), np.nan, dtype=np.float32)
        inside = window.intersection(Window(0, 0, height, width))
        if not inside.is_empty:
            out[(slice(None), *inside.relative_to(window).slices())] = data[(slice(None), *inside.slices())]
        return out

    return read, height, width


def apply_tiled(
    source: np.ndarray | Reader,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    tile_size: int,
    overlap: int,
    shape: tuple[int, int] | None = None,
    batch_size: int = 4,
    blend: str = "cosine",
    fill: float = 0.0,
    mask_output: bool = True,
    write: Writer | None = None,
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
) -> np.ndarray | None:
    """Run ``fn`` tile by tile over ``source`` and blend the outputs.

    Args:
        source: ``(h, w)``/``(bands, h, w)`` array, or a :data:`Reader` (then ``shape`` is required).
        fn: batch ``(n, bands, tile, tile)`` float32 -> ``(n, channels, tile, tile)``.
        tile_size, overlap: tile side and overlap between neighbouring tiles (pixels).
        shape: ``(height, width)`` of the raster when ``source`` is a callback.
        batch_size: tiles per call of ``fn``.
        blend: a mode of :data:`engine.tiling.BLEND_MODES` ('cosine', 'feather', 'none').
        fill: value given to ``fn`` for invalid (NaN) and outside pixels.
        mask_output: output pixels whose input is invalid (NaN in any band) are NaN.
        write: receives finished strips of rows, top to bottom; if ``None`` the whole
            ``(channels, h, w)`` float32 result is returned.
        progress: called with the percentage done (0..100).
        is_cancelled: checked before every batch; ``True`` raises :class:`CancelledError`.
    """
    if isinstance(source, np.ndarray):
        read, height, width = _array_reader(source)
    else:
        if shape is None:
            raise InputError("apply_tiled needs shape=(height, width) when the source is a callback.")
        read, (height, width) = source, shape
    if batch_size < 1:
        raise InputError(f"Batch size must be at least 1, got {batch_size}.")
    if blend not in BLEND_MODES:
        raise InputError(f"Unknown blend mode '{blend}'; use one of {', '.join(BLEND_MODES)}.")
    tiles = plan_tiles(height, width, tile_size, overlap)
    stride = tile_size - overlap
    ext_width = max(t.read.col_end for t in tiles)  # the strip covers the last (padded) tile
    weights: dict[tuple[bool, bool, bool, bool], np.ndarray] = {}

    result: np.ndarray | None = None
    acc: np.ndarray | None = None
    wsum = np.zeros((tile_size, ext_width), dtype=np.float64)
    done = 0
    if progress:
        progress(0.0)

    def emit(window: Window, data: np.ndarray) -> None:
        nonlocal result
        if write is not None:
            write(window, data)
            return
        if result is None:
            result = np.empty((data.shape[0], height, width), dtype=np.float32)
        result[(slice(None), *window.slices())] = data

    for row_tiles in iter_tile_rows(tiles):
        row0 = row_tiles[0].read.row_off
        strip = np.asarray(read(Window(row0, 0, tile_size, ext_width)), dtype=np.float32)
        if strip.ndim == 2:
            strip = strip[np.newaxis]
        finite = np.isfinite(strip)
        valid = finite.all(axis=0)
        strip = np.where(finite, strip, np.float32(fill))
        del finite
        for start in range(0, len(row_tiles), batch_size):
            if is_cancelled is not None and is_cancelled():
                raise CancelledError("Cancelled by the user; no output was written.")
            batch_tiles = row_tiles[start:start + batch_size]
            batch = np.stack([strip[:, :, t.read.col_off:t.read.col_end] for t in batch_tiles])
            out = np.asarray(fn(batch))
            if out.ndim != 4 or out.shape[0] != len(batch_tiles) or out.shape[2:] != (tile_size, tile_size):
                raise ModelError(
                    f"The model returned shape {out.shape} for a batch of shape {batch.shape}; only dense "
                    "models whose output lies on the input grid can be run tile by tile."
                )
            if acc is None:
                acc = np.zeros((out.shape[1], tile_size, ext_width), dtype=np.float64)
            for tile, y in zip(batch_tiles, out, strict=True):
                w = weights.get(tile.taper)
                if w is None:
                    w = weights[tile.taper] = tile_weights(tile, tile_size, overlap, blend)
                cols = slice(tile.read.col_off, tile.read.col_end)
                acc[:, :, cols] += y * w
                wsum[:, cols] += w
            done += len(batch_tiles)
            if progress:
                progress(100.0 * done / len(tiles))
        assert acc is not None
        last = row_tiles[0].index[0] == tiles[-1].index[0]
        n_rows = min(tile_size if last else stride, height - row0)
        with np.errstate(invalid="ignore", divide="ignore"):
            finished = (acc[:, :n_rows, :width] / wsum[:n_rows, :width]).astype(np.float32)
        if mask_output:
            finished[:, ~valid[:n_rows, :width]] = np.nan
        emit(Window(row0, 0, n_rows, width), finished)
        # Keep the rows shared with the next tile row, zero the rest.
        keep = tile_size - stride
        acc[:, :keep] = acc[:, stride:]
        acc[:, keep:] = 0.0
        wsum[:keep] = wsum[stride:]
        wsum[keep:] = 0.0
    return result


# --------------------------------------------------------------------------- files
@dataclass(frozen=True)
class PipelineResult:
    """Outcome of :func:`run_model`."""

    output_path: Path
    width: int
    height: int
    bands: int
    tiles: int
    tile_size: int
    overlap: int
    batch_size: int
    provider: str
    model_id: str
    valid_pixels: int
    seconds: float

    @property
    def megapixels_per_second(self) -> float:
        return self.width * self.height / 1e6 / self.seconds if self.seconds > 0 else math.inf


def _band_list(band: int | Sequence[int]) -> list[int]:
    return [int(band)] if isinstance(band, int | np.integer) else [int(b) for b in band]


def run_model(
    model: Any,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    band: int | Sequence[int] = 1,
    input_kind: str | None = None,
    nodata: float | None = None,
    batch_size: int = 4,
    blend: str = "cosine",
    tile_size: int | None = None,
    overlap: int | None = None,
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
    log: Log | None = None,
    output_transform: str = "denormalise",
    tasks: Sequence[Task] = DENSE_TASKS,
    providers: Sequence[str] | None = None,
    intra_op_threads: int | None = None,
) -> PipelineResult:
    """Run a dense ONNX model over a raster, tile by tile, into a georeferenced float32 GeoTIFF.

    Args:
        model: an :class:`engine.runtime.OnnxModel` or the path of an ``.onnx`` file.
        input_path: input raster (any GDAL format).
        output_path: output GeoTIFF; written atomically, nothing is left on error or cancel.
        band: 1-based band(s) fed to the model; their number must equal the model's ``input_bands``.
        input_kind: what the raster holds ('intensity', 'amplitude', 'db'); ``None``: what the
            model expects (its ``input_transform``).
        nodata: nodata value of the input (default: the raster's own).
        batch_size: tiles per model call.
        blend: 'cosine', 'feather' or 'none' (crop to tile cores).
        tile_size, overlap: override the model's tile size and overlap.
        progress, is_cancelled, log: callbacks (percent 0..100, cancellation flag, messages).
        output_transform: 'denormalise' (back to the model domain, e.g. dB), 'linear'
            (denormalise, then dB -> linear of ``input_kind``) or 'none' (raw network output).
        tasks: tasks accepted (default :data:`DENSE_TASKS`).
        providers, intra_op_threads: passed to :class:`~engine.runtime.OnnxModel` for a path.

    Output pixels whose input is invalid (nodata, NaN, inf, or <= 0 for linear SAR input) get
    :data:`engine.raster_io.OUTPUT_NODATA`. An input without any valid pixel raises :class:`InputError`.
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
    from .runtime import OnnxModel

    started = time.perf_counter()
    if output_transform not in OUTPUT_TRANSFORMS:
        raise InputError(f"Unknown output transform '{output_transform}'; use one of "
                         f"{', '.join(OUTPUT_TRANSFORMS)}.")
    bands = _band_list(band)
    info = inspect_raster(input_path, bands)
    check_writable(output_path)
    onnx_model = model if isinstance(model, OnnxModel) else OnnxModel(
        model, providers=providers, intra_op_threads=intra_op_threads, tasks=tasks)
    meta = onnx_model.metadata
    meta.require_task(*tasks, source=f"Model '{onnx_model.path.name}'")
    if meta.scale_factor != 1:
        raise ModelError(
            f"Model '{meta.model_id}' has scale_factor {meta.scale_factor}: its output is not on the "
            "input grid; use the tool made for this model (e.g. compression) instead."
        )
    if len(bands) != meta.input_bands:
        raise InputError(
            f"Model '{meta.model_id}' needs {meta.input_bands} input band(s), {len(bands)} given; "
            f"choose {meta.input_bands} band(s) of '{info.path}'."
        )
    tsize = tile_size or meta.tile_size
    tover = meta.overlap if overlap is None else overlap
    kind = input_kind
    amplitude_model = meta.input_transform is InputTransform.AMPLITUDE_TO_DB
    linear_kind = kind or ("amplitude" if amplitude_model else "intensity")
    if output_transform == "linear" and linear_kind not in LINEAR_KINDS:
        raise InputError("output_transform 'linear' needs input_kind 'intensity' or 'amplitude'.")
    in_nodata = info.nodata if nodata is None else nodata
    n_tiles = len(plan_tiles(info.height, info.width, tsize, tover))
    message = (f"Model {meta.model_id} ({meta.task.value}) on {onnx_model.provider}: "
               f"{info.width} x {info.height} px, {n_tiles} tiles of {tsize} px (overlap {tover}), "
               f"batch {batch_size}, blend {blend}")
    logger_msg(message, log)

    valid_count = 0
    counted_until = 0  # strips overlap: count each raster row once
    out_bands = 0

    def transform_out(y: np.ndarray) -> np.ndarray:
        if output_transform == "none":
            return y
        z = denormalise(y, meta)
        return db_to_linear(z, linear_kind) if output_transform == "linear" else z

    with open_raster(input_path) as src, atomic_output(output_path) as tmp, contextlib.ExitStack() as stack:
        writer: Any = None

        def read(window: Window) -> np.ndarray:
            nonlocal valid_count, counted_until
            raw = read_window(src, bands, window, fill=np.nan)
            x, valid = to_model_input(raw, meta, in_nodata, kind)
            x[~valid] = np.nan
            first = max(counted_until, window.row_off) - window.row_off
            last = min(window.row_end, info.height) - window.row_off
            if last > first:
                valid_count += int(valid.all(axis=0)[first:last, :info.width].sum())
                counted_until = window.row_off + last
            return x

        def write(window: Window, data: np.ndarray) -> None:
            nonlocal writer, out_bands
            if writer is None:
                out_bands = data.shape[0]
                descriptions = _descriptions(data.shape[0], meta.model_id, meta.output_meaning,
                                             info.descriptions[bands[0] - 1], meta.task)
                writer = stack.enter_context(
                    create_raster(tmp, profile_like(info, count=data.shape[0]), descriptions))
            out = transform_out(data)
            writer.write_rows(window.row_off, np.where(np.isfinite(out), out, np.float32(OUTPUT_NODATA)))

        apply_tiled(read, onnx_model.run, tile_size=tsize, overlap=tover, shape=info.shape,
                    batch_size=batch_size, blend=blend, write=write, progress=progress,
                    is_cancelled=is_cancelled)
        if valid_count == 0:
            raise InputError(
                f"'{info.path}' has no valid pixel in band(s) {bands} (all nodata, NaN, zero or negative); "
                "choose another raster or band, or set the right nodata value."
            )
    seconds = time.perf_counter() - started
    result = PipelineResult(
        output_path=Path(output_path), width=info.width, height=info.height, bands=out_bands,
        tiles=n_tiles, tile_size=tsize, overlap=tover, batch_size=batch_size,
        provider=onnx_model.provider, model_id=meta.model_id, valid_pixels=valid_count, seconds=seconds,
    )
    logger_msg(f"Wrote {output_path} in {seconds:.1f} s ({result.megapixels_per_second:.2f} Mpix/s)", log)
    if progress:
        progress(100.0)
    return result


def _descriptions(count: int, model_id: str, meaning: str, input_description: str | None,
                  task: Task) -> list[str | None]:
    if task is Task.IDENTITY and count == 1:
        return [input_description]
    label = f"{model_id}: {meaning}" if meaning else model_id
    return [label] if count == 1 else [f"{label} [{i}]" for i in range(count)]


def logger_msg(message: str, callback: Log | None) -> None:
    """Log ``message`` and pass it to the caller's ``log`` callback, if any."""
    log.info(message)
    if callback is not None:
        callback(message)
