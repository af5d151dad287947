"""Decoding a compressed SAR file into a georeferenced GeoTIFF.

file -> verified header, mask, payload -> integer latents (range decoding with the
file's entropy model: the decoder's factorised table, ``y_hat = q + median``, or its
hyperprior, ``y_hat = (q + mu) * latent_step`` from integer-exact side information
and slice context, :mod:`.hypercoding`) -> decoder on overlapping latent tiles -> blending with
:func:`engine.tiling.tile_weights` (weights sum to one everywhere) -> the file's
restoration filter, if it has one (:mod:`.postfilter`) -> dB (or linear
intensity/amplitude on request) -> GeoTIFF in row blocks, with the
original CRS and geotransform and the nodata mask restored exactly
(:data:`engine.raster_io.OUTPUT_NODATA`). Latents are range-decoded strip by
strip as the tile rows need them (:class:`LatentRows`): memory holds about one
tile row of latents and one strip of ``tile_size`` blended output rows.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CompressedFileError, InputError, ModelError, check_choice
from ..metadata import ModelMetadata
from ..preprocess import LINEAR_KINDS, db_to_linear, denormalise
from ..run import QUIET, IsCancelled, Log, Progress, Run
from ..tiling import (
    RowQueue,
    StripBlender,
    Tile,
    Window,
    iter_tile_rows,
    pad_to_window,
    plan_tiles,
    scaled_tile,
    tile_weights,
)
from . import fileformat
from .bright_pixels import BrightPixels
from .layout import BATCH_SIZE, check_tiling, default_tiling
from .models import LatentModel, coder_name, find_decoder, latent_model, strip_decoder
from .postfilter import PaddedRows, PostFilter

logger = logging.getLogger(__name__)

OUTPUT_KINDS = ("db", *LINEAR_KINDS)
"""What a decoded file may hold: dB (the default), or the linear values :func:`db_to_linear` gives."""
BLEND = "cosine"
FLUSH_ROWS = 64
"""Finished rows are handed on (converted, filtered, written) in blocks of at most this many rows, so the
temporaries of a block stay small however wide the scene (values are the same for any block size)."""


@dataclass(frozen=True)
class DecodeResult:
    """What :func:`decompress_file` wrote."""

    path: Path
    width: int
    height: int
    output_kind: str
    model_id: str
    seconds: float
    bands: int = 1


def _checked_table(cf: fileformat.CompressedFile, decoder: Any) -> LatentModel:
    header = cf.header
    table = latent_model(decoder.metadata, f"Decoder '{Path(decoder.path).name}'")
    if coder_name(table) != header.entropy_model:
        raise CompressedFileError(
            f"This file was coded with a {header.entropy_model} entropy model but the decoder "
            f"'{decoder.metadata.model_id}' carries a {coder_name(table)} one; use the decoder the file "
            "was compressed for.")
    if table.sha256() != header.entropy_sha256:
        raise CompressedFileError(
            f"The decoder '{decoder.metadata.model_id}' carries another entropy model than the one this "
            "file was coded with; use the decoder of the release that wrote the file."
        )
    if table.channels != header.latent_channels:
        raise CompressedFileError(
            f"The file holds {header.latent_channels} latent channels but the decoder expects "
            f"{table.channels}; use the decoder the file was compressed for."
        )
    return table


class LatentRows:
    """The integer latent grid of a file, range-decoded strip by strip as rows are asked for.

    Requests must move down the grid (``start`` never decreases); rows above the latest ``start``
    are dropped, so memory holds about one tile row of latents whatever the scene's height.
    """

    def __init__(self, cf: fileformat.CompressedFile, table: LatentModel) -> None:
        header = cf.header
        self.channels, self.height, self.width = header.latent_shape
        self._strips = header.strip_heights()
        self._next_strip = 0
        try:
            self._stream = strip_decoder(table, cf.payload, self.channels * self.height * self.width,
                                         self.width)
        except (ValueError, RuntimeError) as exc:
            raise _damaged(exc) from exc
        dtype = np.int32 if coder_name(table) == fileformat.FACTORISED else np.int64  # fixed-point y_hat
        self._rows = np.zeros((self.channels, 0, self.width), dtype=dtype)
        self._top = 0  # grid row of self._rows[:, 0]

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Latent rows ``start .. stop - 1`` (``0 <= start < stop <= height``): int32 ``[C, n, w]``."""
        if start < self._top or not start < stop <= self.height:
            raise ValueError(f"rows {start}..{stop} cannot be read (decoded from row {self._top} on)")
        while self._top + self._rows.shape[1] < stop:
            self._rows = np.concatenate([self._rows, self._decode_strip()], axis=1)
        if start > self._top:
            self._rows = self._rows[:, start - self._top :]
            self._top = start
        return self._rows[:, : stop - start]

    def _decode_strip(self) -> np.ndarray:
        rows = self._strips[self._next_strip]
        self._next_strip += 1
        try:
            strip = self._stream.next(rows)
            if self._next_strip == len(self._strips):
                self._stream.finish()
        except (ValueError, RuntimeError) as exc:
            if isinstance(exc, CompressedFileError):
                raise
            raise _damaged(exc) from exc
        return strip


def _damaged(exc: Exception) -> CompressedFileError:
    if isinstance(exc, CompressedFileError):
        return exc
    return CompressedFileError(f"The entropy-coded latents cannot be decoded ({exc}); the file is damaged.")


def decode_latents(cf: fileformat.CompressedFile, decoder: Any) -> tuple[np.ndarray, LatentModel]:
    """The whole integer latent grid of a file (small files) and its entropy model: ``q`` (int32
    ``[C, h, w]``) with a factorised table, fixed-point ``y_hat`` (int64) with a hyperprior; the model's
    ``dequantise`` gives the decoder network's input either way."""
    table = _checked_table(cf, decoder)
    return LatentRows(cf, table).rows(0, cf.header.latent_height).copy(), table


def _to_output(x: np.ndarray, meta: ModelMetadata, header: fileformat.CompressedHeader,
               output_kind: str, bright: BrightPixels | None = None, window: Window | None = None,
               ) -> np.ndarray:
    """Decoder output in [0, 1] -> dB (clipped to the model range; the ``bright`` pixels of ``window``
    put back; shift removed) -> the requested kind."""
    db = np.clip(denormalise(x, meta), header.db_min, header.db_max)
    if bright is not None and window is not None:
        bright.restore(db, window, header.width)
    db -= np.float32(header.shift_db)
    if output_kind in LINEAR_KINDS:
        return db_to_linear(db, output_kind)
    return db.astype(np.float32)


def decompress_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    output_kind: str = "db",
    decoder_path: str | os.PathLike[str] | None = None,
    tile_size: int | None = None,
    overlap: int | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
    log: Log | None = None,
) -> DecodeResult:
    """Decode a ``.sarz`` file into a float32 GeoTIFF (dB, intensity or amplitude).

    Args:
        input_path: the compressed file.
        output_path: the GeoTIFF to write (atomically).
        output_kind: ``db`` (default), ``intensity`` or ``amplitude``.
        decoder_path: an explicit decoder model (default: found by model id among the bundled models).
        tile_size, overlap: decoder tiling in output pixels (default: :func:`default_tiling`).
        batch_size: latent tiles per decoder call.
        progress, is_cancelled, log: callbacks (0..100, cancel poll, messages).
    """
    started = time.perf_counter()
    run = Run.of(progress, is_cancelled, log)
    run.progress(0.0)
    check_choice(output_kind, OUTPUT_KINDS, "output kind")
    if batch_size < 1:
        raise InputError(f"Batch size must be at least 1, got {batch_size}.")
    job = _plan_decoding(input_path, output_path, decoder_path, tile_size, overlap)
    header, meta = job.bands[0].cf.header, job.bands[0].decoder.metadata
    run.say(f"Decoding {_band_names(job)} of {header.width} x {header.height} pixels with {meta.model_id}",
            logger=logger)
    if any(band.cf.header.post_filter for band in job.bands):
        run.say("Applying the scene's restoration filter", logger=logger)
    several = len(job.bands) > 1  # decoded in step, in blocks of the same rows; the first reports progress
    streams = [band.converted(restored_blocks(decoded_blocks(
        band.cf, band.decoder, band.table, job.tile, job.overlap, batch_size,
        run.span(0.0, 0.99) if i == 0 else QUIET), band.cf.header), output_kind, several)
        for i, band in enumerate(job.bands)]
    _write_decoded(job, streams, output_kind)
    run.progress(1.0)
    seconds = time.perf_counter() - started
    run.say(f"Wrote {job.output.name} ({output_kind}, {len(job.bands)} band(s))", logger=logger)
    logger.info("decompressed %s -> %s in %.1f s", input_path, job.output, seconds)
    return DecodeResult(job.output, header.width, header.height, output_kind, meta.model_id, seconds,
                        len(job.bands))


@dataclass(frozen=True)
class _BandDecoding:
    """One coded band of the file with its decoder and table."""

    cf: fileformat.CompressedFile
    decoder: Any
    table: LatentModel

    def converted(self, blocks: Iterable[tuple[Window, np.ndarray]], output_kind: str, even: bool = False,
                  ) -> Iterator[np.ndarray]:
        """The decoded ``blocks`` as ``output_kind`` with the nodata mask restored; with ``even``, in row
        blocks of exactly :data:`FLUSH_ROWS` (the same for every band of the file)."""
        from ..raster_io import OUTPUT_NODATA

        header, meta = self.cf.header, self.decoder.metadata
        masks = self.cf.mask_reader()
        bright = BrightPixels.from_bytes(self.cf.exceptions, header.width * header.height)
        for window, values in _even_blocks(blocks, FLUSH_ROWS) if even else blocks:
            data = _to_output(values, meta, header, output_kind, bright, window)
            data[~masks.read(window.height)] = OUTPUT_NODATA
            yield data

    def description(self, output_kind: str) -> str:
        """The source band's description, or what the values are."""
        unit = "dB" if output_kind == "db" else f"linear {output_kind}"
        model = self.decoder.metadata.model_id
        return self.cf.header.description or f"SAR backscatter ({unit}) decoded by {model}"


def _even_blocks(blocks: Iterable[tuple[Window, np.ndarray]], rows: int,
                 ) -> Iterator[tuple[Window, np.ndarray]]:
    """Consecutive full-width ``blocks`` regrouped into blocks of exactly ``rows`` rows (the last fewer)."""
    queue = RowQueue()
    for _window, values in blocks:
        queue.push(values)
        while queue.rows >= rows:
            yield _first_rows(queue, rows)
    if queue.rows:
        yield _first_rows(queue, queue.rows)


def _first_rows(queue: RowQueue, n: int) -> tuple[Window, np.ndarray]:
    top = queue.top
    (values,) = queue.take(n)
    return Window(top, 0, n, values.shape[1]), values


@dataclass(frozen=True)
class _DecodingJob:
    """A checked file, each band's decoder and table, the tiling and the output path."""

    bands: tuple[_BandDecoding, ...]
    tile: int
    overlap: int
    output: Path


def _band_names(job: _DecodingJob) -> str:
    """``band 1 (VV), band 2 (VH)``: the source bands the file holds."""
    from ..raster_io import band_label

    return ", ".join(band_label(b.cf.header.band, b.cf.header.description) for b in job.bands)


def _plan_decoding(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str],
                   decoder_path: str | os.PathLike[str] | None, tile_size: int | None,
                   overlap: int | None) -> _DecodingJob:
    """Read and verify the file, find each band's decoder, check the tiling and the output path."""
    from ..raster_io import check_writable

    scene = fileformat.read_scene(input_path)
    out = check_writable(output_path)
    bands = tuple(_band_decoding(cf, decoder_path) for cf in scene.bands)
    tile, ovl = default_tiling(bands[0].decoder.metadata, tile_size, overlap)
    for band in bands:
        check_tiling(tile, ovl, band.cf.header.scale_factor)
    return _DecodingJob(bands, tile, ovl, out)


def _band_decoding(cf: fileformat.CompressedFile, decoder_path: str | os.PathLike[str] | None,
                   ) -> _BandDecoding:
    """The decoder of one coded band, checked against it."""
    header = cf.header
    decoder = find_decoder(header.model_id, header.weights_sha256, decoder_path)
    meta = decoder.metadata
    if meta.scale_factor != header.scale_factor:
        raise CompressedFileError(
            f"The file's latent stride is {header.scale_factor} but decoder '{meta.model_id}' has "
            f"{meta.scale_factor}; use the decoder the file was compressed for."
        )
    return _BandDecoding(cf, decoder, _checked_table(cf, decoder))


def _write_decoded(job: _DecodingJob, streams: list[Iterator[np.ndarray]], output_kind: str) -> None:
    """Write the bands' converted row blocks, in step, as one GeoTIFF (atomically) with the file's
    georeferencing (geotransform or GCPs, RPCs) and the source bands' descriptions, in whole block rows
    of the output profile (:meth:`engine.raster_io.RasterWriter.write_rows`)."""
    from affine import Affine

    from ..raster_io import OUTPUT_NODATA, atomic_output, create_raster, default_profile

    header = job.bands[0].cf.header
    profile = default_profile(header.width, header.height, len(job.bands), "float32", header.crs_wkt,
                              Affine(*header.transform), OUTPUT_NODATA, control=header.control_points)
    descriptions = [band.description(output_kind) for band in job.bands]
    top = 0
    with atomic_output(job.output) as tmp, create_raster(tmp, profile, descriptions) as writer:
        for rows in zip(*streams, strict=True):
            writer.write_rows(top, np.stack(rows))
            top += rows[0].shape[0]


def decoded_blocks(cf: fileformat.CompressedFile, decoder: Any, table: LatentModel, tile: int,
                   overlap: int, batch_size: int = BATCH_SIZE, run: Run = QUIET,
                   ) -> Iterator[tuple[Window, np.ndarray]]:
    """The decoder's blended output (normalised, float32 ``(n, width)``), in consecutive full-width row
    blocks of at most :data:`FLUSH_ROWS` rows.

    ``tile`` and ``overlap`` are the decoding tiling in pixels. Raises :class:`CancelledError` when the
    run is cancelled; reports progress over the whole run.
    """
    header = cf.header
    s = header.scale_factor
    tile_latents = functools.partial(_latent_tile, LatentRows(cf, table))
    plan = _decoding_plan(header, tile, overlap)
    blender = StripBlender(header.height, header.width, tile, overlap, BLEND,
                           padded_width=header.latent_width * s + tile)
    done = 0
    for row in iter_tile_rows(plan):
        for start in range(0, len(row), batch_size):
            run.check("Decompression")
            chunk = row[start : start + batch_size]
            x = _decode_tiles(decoder, table, tile_latents, chunk, tile)
            for t, xt in zip(chunk, x, strict=True):
                blender.add(scaled_tile(t, s), xt)
            done += len(chunk)
            run.progress(done / len(plan))
        for window, values in blender.finished(last=not row[0].taper[1], block_rows=FLUSH_ROWS):
            yield window, values[0]


def decoded_tiles(cf: fileformat.CompressedFile, decoder: Any, table: LatentModel, tile: int,
                  overlap: int, every: int = 1, run: Run = QUIET,
                  tile_latents: Callable[[Tile], np.ndarray] | None = None,
                  ) -> Iterator[tuple[Tile, np.ndarray, np.ndarray]]:
    """Every ``every``-th tile of the decoding plan (raster order), decoded alone: the tile in pixels,
    the decoder's output ``[tile, tile]`` (float32) and the tile's blending weights.

    Where a weight is exactly 1 no other tile contributes, so there the output equals the pixels
    :func:`decoded_blocks` produces (the restoration filter's fit samples them on large scenes).
    ``tile_latents``: the integer latents of a (sampled) tile, as :func:`_latent_tile` would give them,
    when the caller has them already (the encoder); by default the file's payload is range-decoded.
    """
    s = cf.header.scale_factor
    if tile_latents is None:
        tile_latents = functools.partial(_latent_tile, LatentRows(cf, table))
    sample = _decoding_plan(cf.header, tile, overlap)[::every]
    for done, t in enumerate(sample, start=1):
        run.check("Decompression")
        x = _decode_tiles(decoder, table, tile_latents, [t], tile)
        t_px = scaled_tile(t, s)
        yield t_px, x[0, 0], tile_weights(t_px, tile, overlap, BLEND)
        run.progress(done / len(sample))


def restored_blocks(blocks: Iterable[tuple[Window, np.ndarray]], header: fileformat.CompressedHeader,
                    ) -> Iterator[tuple[Window, np.ndarray]]:
    """``blocks`` through the file's restoration filter (:mod:`.postfilter`), if it has one."""
    if not header.post_filter:
        yield from blocks
        return
    filt = PostFilter.from_header(header.post_filter)
    rows = PaddedRows(header.height, filt.radius)
    for _window, values in blocks:
        for top, padded in rows.push(values):
            n = padded.shape[0] - 2 * filt.radius
            yield Window(top, 0, n, header.width), filt.apply(padded)


def _decode_tiles(decoder: Any, table: LatentModel, tile_latents: Callable[[Tile], np.ndarray],
                  tiles: list[Tile], tile: int) -> np.ndarray:
    """The decoder's output ``[n, 1, tile, tile]`` for latent ``tiles`` (one network call)."""
    x = decoder.run(np.stack([table.dequantise(tile_latents(t)) for t in tiles]))
    if x.shape != (len(tiles), 1, tile, tile):
        raise ModelError(
            f"The decoder returned shape {x.shape}, expected {(len(tiles), 1, tile, tile)}; "
            "it does not follow the codec contract."
        )
    return x


def _latent_tile(latents: LatentRows, tile: Tile) -> np.ndarray:
    """The (integer) latent read window of ``tile``; cells beyond the grid mirror the inside."""
    inside = tile.read.intersection(Window(0, 0, latents.height, latents.width))
    rows = latents.rows(inside.row_off, inside.row_off + inside.height)
    part = rows[:, :, inside.col_off : inside.col_end]
    return np.ascontiguousarray(pad_to_window(part, inside, tile.read, mirror=True))


def _decoding_plan(header: fileformat.CompressedHeader, tile: int, overlap: int) -> list[Tile]:
    """Tiles of the file's latent grid for decoding with ``tile`` / ``overlap`` pixels."""
    return decoding_plan(header.latent_height, header.latent_width, header.scale_factor, tile, overlap)


def decoding_plan(latent_height: int, latent_width: int, scale: int, tile: int, overlap: int) -> list[Tile]:
    """Tiles of a latent grid (stride ``scale``) for decoding with ``tile`` / ``overlap`` pixels."""
    return plan_tiles(latent_height, latent_width, tile // scale, overlap // scale)
