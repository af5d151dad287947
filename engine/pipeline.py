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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError, ModelError, check_choice
from .metadata import InputTransform, ModelMetadata, Task
from .preprocess import LINEAR_KINDS, db_to_linear, denormalise, to_model_input
from .run import QUIET, IsCancelled, Log, Progress, Run
from .tiling import StripBlender, Tile, Window, band_list, iter_tile_rows, plan_tiles, read_array

if TYPE_CHECKING:
    from .raster_io import RasterInfo

logger = logging.getLogger(__name__)

Reader = Callable[[Window], np.ndarray]
"""``read(window) -> (bands, h, w)`` float array; NaN marks invalid pixels and pixels outside the raster."""
Writer = Callable[[Window, np.ndarray], None]
"""``write(window, (channels, h, w) float32)``; NaN marks masked output pixels."""
TileFn = Callable[[np.ndarray], np.ndarray]
"""A batch ``(n, bands, t, t)`` float32 -> ``(n, channels, t, t)``."""

DENSE_TASKS = (Task.IDENTITY, Task.TRANSLATE, Task.EMBED, Task.KEYPOINTS)
"""Tasks whose output lies on the input grid (scale_factor 1), runnable by :func:`run_model`."""
OUTPUT_TRANSFORMS = ("denormalise", "linear", "none")


def apply_tiled(
    source: np.ndarray | Reader,
    fn: TileFn,
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
    """Run ``fn`` tile by tile over ``source`` and blend the outputs (see :func:`blended_rows`).

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
    run = Run.of(progress, is_cancelled)
    read, (height, width) = _reader(source, shape)
    run.progress(0.0)
    rows = blended_rows(read, fn, height, width, tile_size=tile_size, overlap=overlap,
                        batch_size=batch_size, blend=blend, fill=fill, mask_output=mask_output, run=run)
    if write is not None:
        for window, values in rows:
            write(window, values)
        return None
    result: np.ndarray | None = None
    for window, values in rows:
        if result is None:
            result = np.empty((values.shape[0], height, width), dtype=np.float32)
        result[(slice(None), *window.slices())] = values
    return result


def _reader(source: np.ndarray | Reader, shape: tuple[int, int] | None) -> tuple[Reader, tuple[int, int]]:
    """A boundless NaN-filled :data:`Reader` and the raster shape for an array or a callback."""
    if not isinstance(source, np.ndarray):
        if shape is None:
            raise InputError("apply_tiled needs shape=(height, width) when the source is a callback.")
        return source, shape
    data = source if source.ndim == 3 else source[np.newaxis]
    if data.ndim != 3:
        raise InputError(f"Expected a (height, width) or (bands, height, width) array, got {source.shape}.")

    def read(window: Window) -> np.ndarray:
        return read_array(data, window, fill=np.nan, dtype=np.float32)

    return read, (data.shape[1], data.shape[2])


@dataclass(frozen=True)
class _Strip:
    """One tile row of input: values with invalid pixels set to the fill, and the validity."""

    row_off: int
    values: np.ndarray  # (bands, tile_size, padded width) float32
    valid: np.ndarray  # (tile_size, padded width) bool: finite in every band

    @classmethod
    def read(cls, read: Reader, window: Window, fill: float) -> _Strip:
        strip = np.asarray(read(window), dtype=np.float32)
        if strip.ndim == 2:
            strip = strip[np.newaxis]
        finite = np.isfinite(strip)
        return cls(window.row_off, np.where(finite, strip, np.float32(fill)), finite.all(axis=0))

    def batch(self, tiles: list[Tile]) -> np.ndarray:
        """The tiles' inputs ``(n, bands, t, t)``."""
        return np.stack([self.values[:, :, t.read.col_off : t.read.col_end] for t in tiles])


def blended_rows(
    read: Reader, fn: TileFn, height: int, width: int, *, tile_size: int, overlap: int,
    batch_size: int = 4, blend: str = "cosine", fill: float = 0.0, mask_output: bool = True,
    run: Run = QUIET,
) -> Iterator[tuple[Window, np.ndarray]]:
    """The tiled-inference core: plan, read one strip per tile row (boundless), run ``fn`` in batches,
    blend by strips (:class:`engine.tiling.StripBlender`) and yield finished full-width rows
    ``(window, (channels, n, width) float32)`` top to bottom.

    Memory: one strip of input (tile height x raster width), one strip of float64 accumulators, one
    batch of tiles. Output pixels whose input is invalid are NaN when ``mask_output``.
    """
    if batch_size < 1:
        raise InputError(f"Batch size must be at least 1, got {batch_size}.")
    tiles = plan_tiles(height, width, tile_size, overlap)
    padded_width = max(t.read.col_end for t in tiles)  # the strip covers the last (padded) tile
    blender = StripBlender(height, width, tile_size, overlap, blend, padded_width)
    done = 0
    for row in iter_tile_rows(tiles):
        strip = _Strip.read(read, Window(row[0].read.row_off, 0, tile_size, padded_width), fill)
        for start in range(0, len(row), batch_size):
            run.check()
            batch = row[start : start + batch_size]
            out = _dense_output(fn(strip.batch(batch)), len(batch), tile_size)
            for tile, y in zip(batch, out, strict=True):
                blender.add(tile, y)
            done += len(batch)
            run.progress(done / len(tiles))
        for window, values in blender.finished(last=not row[0].taper[1]):
            if mask_output:
                rows = window.relative_to(Window(strip.row_off, 0, tile_size, padded_width)).slices()[0]
                values[:, ~strip.valid[rows, :width]] = np.nan
            yield window, values


def _dense_output(out: Any, n: int, tile_size: int) -> np.ndarray:
    """``out`` as an array, refused unless it is ``(n, channels, tile_size, tile_size)``."""
    out = np.asarray(out)
    if out.ndim != 4 or out.shape[0] != n or out.shape[2:] != (tile_size, tile_size):
        raise ModelError(
            f"The model returned shape {out.shape} for a batch of {n} tiles of {tile_size} x {tile_size}; "
            "only dense models whose output lies on the input grid can be run tile by tile."
        )
    return out


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
    started = time.perf_counter()
    run = Run.of(progress, is_cancelled, log)
    job = _plan_model_run(model, input_path, output_path, band, input_kind, nodata, tile_size, overlap,
                          output_transform, tasks, providers, intra_op_threads)
    info, meta = job.info, job.meta
    n_tiles = len(plan_tiles(info.height, info.width, job.tile_size, job.overlap))
    run.say(f"Model {meta.model_id} ({meta.task.value}) on {job.model.provider}: {info.width} x "
            f"{info.height} px, {n_tiles} tiles of {job.tile_size} px (overlap {job.overlap}), "
            f"batch {batch_size}, blend {blend}", logger=logger)
    valid_count, out_bands = _compute_and_write(job, input_path, output_path, batch_size, blend, run)
    seconds = time.perf_counter() - started
    result = PipelineResult(
        output_path=Path(output_path), width=info.width, height=info.height, bands=out_bands,
        tiles=n_tiles, tile_size=job.tile_size, overlap=job.overlap, batch_size=batch_size,
        provider=job.model.provider, model_id=meta.model_id, valid_pixels=valid_count, seconds=seconds,
    )
    run.say(f"Wrote {output_path} in {seconds:.1f} s ({result.megapixels_per_second:.2f} Mpix/s)",
            logger=logger)
    run.progress(1.0)
    return result


@dataclass(frozen=True)
class _ModelJob:
    """A checked model run: input, bands, model, tiling and the value transforms."""

    info: RasterInfo
    bands: list[int]
    model: Any  # engine.runtime.OnnxModel
    tile_size: int
    overlap: int
    input_kind: str | None
    linear_kind: str
    nodata: float | None
    output_transform: str

    @property
    def meta(self) -> ModelMetadata:
        return self.model.metadata

    def to_output(self, y: np.ndarray) -> np.ndarray:
        """Network output -> the requested output values (NaN stays NaN)."""
        if self.output_transform == "none":
            return y
        z = denormalise(y, self.meta)
        return db_to_linear(z, self.linear_kind) if self.output_transform == "linear" else z


def _plan_model_run(model: Any, input_path: str | os.PathLike[str], output_path: str | os.PathLike[str],
                    band: int | Sequence[int], input_kind: str | None, nodata: float | None,
                    tile_size: int | None, overlap: int | None, output_transform: str,
                    tasks: Sequence[Task], providers: Sequence[str] | None,
                    intra_op_threads: int | None) -> _ModelJob:
    """Check the arguments, the input, the output path and the model; nothing is read or written yet."""
    from .raster_io import check_writable, inspect_raster
    from .runtime import OnnxModel

    check_choice(output_transform, OUTPUT_TRANSFORMS, "output transform")
    bands = band_list(band)
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
    amplitude_model = meta.input_transform is InputTransform.AMPLITUDE_TO_DB
    linear_kind = input_kind or ("amplitude" if amplitude_model else "intensity")
    if output_transform == "linear" and linear_kind not in LINEAR_KINDS:
        raise InputError("output_transform 'linear' needs input_kind 'intensity' or 'amplitude'.")
    return _ModelJob(info, bands, onnx_model, tile_size or meta.tile_size,
                     meta.overlap if overlap is None else overlap, input_kind, linear_kind,
                     info.nodata if nodata is None else nodata, output_transform)


class _ModelInput:
    """:data:`Reader` of the model's input from an open raster, counting valid pixels (each row once)."""

    def __init__(self, src: Any, job: _ModelJob) -> None:
        self.src, self.job = src, job
        self.valid_count = 0
        self._counted_until = 0  # strips overlap: count each raster row once

    def __call__(self, window: Window) -> np.ndarray:
        from .raster_io import read_window

        job = self.job
        raw = read_window(self.src, job.bands, window, fill=np.nan)
        x, valid = to_model_input(raw, job.meta, job.nodata, job.input_kind)
        x[~valid] = np.nan
        first = max(self._counted_until, window.row_off) - window.row_off
        last = min(window.row_end, job.info.height) - window.row_off
        if last > first:
            self.valid_count += int(valid.all(axis=0)[first:last, : job.info.width].sum())
            self._counted_until = window.row_off + last
        return x


def _compute_and_write(job: _ModelJob, input_path: str | os.PathLike[str],
                       output_path: str | os.PathLike[str], batch_size: int, blend: str,
                       run: Run) -> tuple[int, int]:
    """Stream the model's blended output into the GeoTIFF; ``(valid input pixels, output bands)``."""
    from .raster_io import OUTPUT_NODATA, atomic_output, create_raster, open_raster, profile_like

    info, meta = job.info, job.meta
    with open_raster(input_path) as src, atomic_output(output_path) as tmp, contextlib.ExitStack() as stack:
        read = _ModelInput(src, job)
        writer: Any = None
        out_bands = 0
        for window, data in blended_rows(read, job.model.run, info.height, info.width,
                                         tile_size=job.tile_size, overlap=job.overlap,
                                         batch_size=batch_size, blend=blend, run=run):
            if writer is None:
                out_bands = data.shape[0]
                descriptions = _descriptions(out_bands, meta.model_id, meta.output_meaning,
                                             info.descriptions[job.bands[0] - 1], meta.task)
                writer = stack.enter_context(create_raster(tmp, profile_like(info, count=out_bands),
                                                           descriptions))
            out = job.to_output(data)
            writer.write_rows(window.row_off, np.where(np.isfinite(out), out, np.float32(OUTPUT_NODATA)))
        if read.valid_count == 0:
            raise InputError(
                f"'{info.path}' has no valid pixel in band(s) {job.bands} (all nodata, NaN, zero or "
                "negative); choose another raster or band, or set the right nodata value."
            )
    return read.valid_count, out_bands


def _descriptions(count: int, model_id: str, meaning: str, input_description: str | None,
                  task: Task) -> list[str | None]:
    if task is Task.IDENTITY and count == 1:
        return [input_description]
    label = f"{model_id}: {meaning}" if meaning else model_id
    return [label] if count == 1 else [f"{label} [{i}]" for i in range(count)]
