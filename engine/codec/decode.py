"""Decoding a compressed SAR file into a georeferenced GeoTIFF.

file -> verified header, mask, payload -> integer latents (range decoding) ->
``y_hat = q + median`` -> decoder on overlapping latent tiles -> blending with
:func:`engine.tiling.tile_weights` (weights sum to one everywhere) -> the file's
restoration filter, if it has one (:mod:`.postfilter`) -> dB (or linear
intensity/amplitude on request) -> GeoTIFF in row blocks, with the
original CRS and geotransform and the nodata mask restored exactly
(:data:`engine.raster_io.OUTPUT_NODATA`). Latents are range-decoded strip by
strip as the tile rows need them (:class:`LatentRows`): memory holds about one
tile row of latents and one strip of ``tile_size`` blended output rows.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CancelledError, CompressedFileError, InputError, ModelError
from ..metadata import ModelMetadata
from ..preprocess import LINEAR_KINDS, db_to_linear, denormalise
from ..tiling import Tile, Window, iter_tile_rows, plan_tiles, tile_weights
from . import fileformat
from .entropy import EntropyModelTable, StripDecoder
from .layout import BATCH_SIZE, check_tiling, default_tiling
from .models import entropy_table, find_decoder
from .postfilter import PaddedRows, PostFilter

logger = logging.getLogger(__name__)

OUTPUT_KINDS = ("db", "intensity", "amplitude")
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


def _checked_table(cf: fileformat.CompressedFile, decoder: Any) -> EntropyModelTable:
    header = cf.header
    table = entropy_table(decoder.metadata, f"Decoder '{Path(decoder.path).name}'")
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

    def __init__(self, cf: fileformat.CompressedFile, table: EntropyModelTable) -> None:
        header = cf.header
        self.channels, self.height, self.width = header.latent_shape
        self._strips = header.strip_heights()
        self._next_strip = 0
        try:
            self._stream = StripDecoder(table, cf.payload, self.channels * self.height * self.width,
                                        self.width)
        except (ValueError, RuntimeError) as exc:
            raise _damaged(exc) from exc
        self._rows = np.zeros((self.channels, 0, self.width), dtype=np.int32)
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


def decode_latents(cf: fileformat.CompressedFile, decoder: Any) -> tuple[np.ndarray, EntropyModelTable]:
    """The whole integer latent grid ``q`` (int32 ``[C, h, w]``) of a file and its table (small files)."""
    table = _checked_table(cf, decoder)
    return LatentRows(cf, table).rows(0, cf.header.latent_height).copy(), table


def _to_output(x: np.ndarray, meta: ModelMetadata, header: fileformat.CompressedHeader,
               output_kind: str) -> np.ndarray:
    """Decoder output in [0, 1] -> dB (clipped to the model range, shift removed) -> the requested kind."""
    db = np.clip(denormalise(x, meta), header.db_min, header.db_max) - np.float32(header.shift_db)
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
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    log: Callable[[str], None] | None = None,
) -> DecodeResult:
    """Decode a ``.sarz`` file into a float32 GeoTIFF (dB, intensity or amplitude).

    Args:
        input_path: the compressed file.
        output_path: the GeoTIFF to write (atomically).
        output_kind: ``db`` (default), ``intensity`` or ``amplitude``.
        decoder_path: an explicit decoder model (default: found by model id among the bundled models).
        tile_size, overlap: decoder tiling in output pixels (default: :func:`default_tiling`).
        batch_size: latent tiles per decoder call.
    """
    from ..raster_io import OUTPUT_NODATA, atomic_output, check_writable, create_raster, default_profile

    started = time.perf_counter()
    if output_kind not in OUTPUT_KINDS:
        raise InputError(f"Unknown output kind '{output_kind}'; use one of {', '.join(OUTPUT_KINDS)}.")
    if batch_size < 1:
        raise InputError(f"Batch size must be at least 1, got {batch_size}.")
    cf = fileformat.read_compressed(input_path)
    out = check_writable(output_path)
    header = cf.header
    decoder = find_decoder(header.model_id, header.weights_sha256, decoder_path)
    meta = decoder.metadata
    if meta.scale_factor != header.scale_factor:
        raise CompressedFileError(
            f"The file's latent stride is {header.scale_factor} but decoder '{meta.model_id}' has "
            f"{meta.scale_factor}; use the decoder the file was compressed for."
        )
    table = _checked_table(cf, decoder)
    tile, ovl = default_tiling(meta, tile_size, overlap)
    check_tiling(tile, ovl, header.scale_factor)
    say = log or (lambda _msg: None)
    say(f"Decoding {header.width} x {header.height} pixels with {meta.model_id}")

    from affine import Affine

    profile = default_profile(header.width, header.height, 1, "float32", header.crs_wkt,
                              Affine(*header.transform), OUTPUT_NODATA)
    unit = "dB" if output_kind == "db" else f"linear {output_kind}"
    description = f"SAR backscatter ({unit}) decoded by {meta.model_id}"
    masks = cf.mask_reader()
    blocks = decoded_blocks(cf, decoder, table, tile, ovl, batch_size, progress, is_cancelled)
    if header.post_filter:
        say("Applying the scene's restoration filter")
    with atomic_output(out) as tmp, create_raster(tmp, profile, [description]) as writer:
        for window, values in restored_blocks(blocks, header):
            valid = masks.read(window.height)
            data = _to_output(values, meta, header, output_kind)
            data[~valid] = OUTPUT_NODATA
            writer.write(window, data)
    if progress is not None:
        progress(100.0)
    seconds = time.perf_counter() - started
    say(f"Wrote {out.name} ({output_kind})")
    logger.info("decompressed %s -> %s in %.1f s", input_path, out, seconds)
    return DecodeResult(out, header.width, header.height, output_kind, meta.model_id, seconds)


def decoded_blocks(cf: fileformat.CompressedFile, decoder: Any, table: EntropyModelTable, tile: int,
                   overlap: int, batch_size: int = BATCH_SIZE,
                   progress: Callable[[float], None] | None = None,
                   is_cancelled: Callable[[], bool] | None = None) -> Iterator[tuple[Window, np.ndarray]]:
    """The decoder's blended output (normalised, float32), in consecutive full-width row blocks.

    ``tile`` and ``overlap`` are the decoding tiling in pixels. Raises :class:`CancelledError` when
    ``is_cancelled`` says so; ``progress`` goes to 99.
    """
    header = cf.header
    s = header.scale_factor
    latents = LatentRows(cf, table)
    plan = _decoding_plan(header, tile, overlap)
    strips = _StripBlender(header.width, header.height, header.latent_width * s, tile, overlap, s)
    done = 0
    for row in iter_tile_rows(plan):
        for start in range(0, len(row), batch_size):
            if is_cancelled is not None and is_cancelled():
                raise CancelledError("Decompression was cancelled; nothing was written.")
            chunk = row[start : start + batch_size]
            x = _decode_tiles(decoder, table, latents, chunk, tile)
            for t, xt in zip(chunk, x, strict=True):
                strips.add(t, xt[0])
            done += len(chunk)
            if progress is not None:
                progress(99.0 * done / len(plan))
        yield from strips.flush(row[0])


def decoded_tiles(cf: fileformat.CompressedFile, decoder: Any, table: EntropyModelTable, tile: int,
                  overlap: int, every: int = 1, progress: Callable[[float], None] | None = None,
                  is_cancelled: Callable[[], bool] | None = None,
                  ) -> Iterator[tuple[Tile, np.ndarray, np.ndarray]]:
    """Every ``every``-th tile of the decoding plan (raster order), decoded alone: the tile in pixels,
    the decoder's output ``[tile, tile]`` (float32) and the tile's blending weights.

    Where a weight is exactly 1 no other tile contributes, so there the output equals the pixels
    :func:`decoded_blocks` produces (the restoration filter's fit samples them on large scenes).
    """
    s = cf.header.scale_factor
    latents = LatentRows(cf, table)
    sample = _decoding_plan(cf.header, tile, overlap)[::every]
    for done, t in enumerate(sample, start=1):
        if is_cancelled is not None and is_cancelled():
            raise CancelledError("Decompression was cancelled; nothing was written.")
        x = _decode_tiles(decoder, table, latents, [t], tile)
        t_px = _in_pixels(t, s)
        yield t_px, x[0, 0], tile_weights(t_px, tile, overlap, BLEND)
        if progress is not None:
            progress(99.0 * done / len(sample))


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


def _decode_tiles(decoder: Any, table: EntropyModelTable, latents: LatentRows, tiles: list[Tile],
                  tile: int) -> np.ndarray:
    """The decoder's output ``[n, 1, tile, tile]`` for latent ``tiles`` (one network call)."""
    x = decoder.run(np.stack([table.dequantise(_latent_tile(latents, t)) for t in tiles]))
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
    part = rows[:, :, inside.col_off : inside.col_off + inside.width]
    pad_r, pad_c = tile.read.height - inside.height, tile.read.width - inside.width
    if pad_r or pad_c:
        part = np.pad(part, ((0, 0), (0, pad_r), (0, pad_c)), mode="symmetric")
    return np.ascontiguousarray(part)


class _StripBlender:
    """Accumulate weighted tile outputs for one tile row and hand out finished raster rows."""

    def __init__(self, width: int, height: int, padded_width: int, tile: int, overlap: int, s: int) -> None:
        self.width, self.height = width, height
        self.tile, self.overlap, self.s = tile, overlap, s
        self.acc = np.zeros((tile, padded_width + tile), dtype=np.float64)
        self.wsum = np.zeros_like(self.acc)
        self.top = 0  # raster row of acc[0]
        self.written = 0

    def add(self, tile: Tile, x: np.ndarray) -> None:
        w = tile_weights(_in_pixels(tile, self.s), self.tile, self.overlap, BLEND)
        r0 = tile.read.row_off * self.s - self.top
        c0 = tile.read.col_off * self.s
        self.acc[r0 : r0 + self.tile, c0 : c0 + self.tile] += w * x
        self.wsum[r0 : r0 + self.tile, c0 : c0 + self.tile] += w

    def flush(self, first: Tile) -> Iterator[tuple[Window, np.ndarray]]:
        """Rows finished after the tile row starting with ``first`` (up to the next row's read start),
        in blocks of at most :data:`FLUSH_ROWS` rows; consume them all before the next :meth:`add`."""
        last_row = not first.taper[1]
        stride = self.tile - self.overlap
        end = self.height if last_row else min(self.height, self.top + stride)
        while self.written < end:
            n = min(FLUSH_ROWS, end - self.written)
            r0 = self.written - self.top
            values = self.acc[r0 : r0 + n, : self.width] / np.maximum(self.wsum[r0 : r0 + n, : self.width],
                                                                      1e-12)
            window = Window(self.written, 0, n, self.width)
            self.written += n
            yield window, values.astype(np.float32)
        if not last_row:
            keep = self.tile - stride
            self.acc[:keep] = self.acc[stride:]
            self.acc[keep:] = 0.0
            self.wsum[:keep] = self.wsum[stride:]
            self.wsum[keep:] = 0.0
            self.top += stride


def _decoding_plan(header: fileformat.CompressedHeader, tile: int, overlap: int) -> list[Tile]:
    """Tiles of the latent grid for decoding with ``tile`` / ``overlap`` pixels."""
    s = header.scale_factor
    return plan_tiles(header.latent_height, header.latent_width, tile // s, overlap // s)


def _in_pixels(tile: Tile, s: int) -> Tile:
    """A latent-grid tile in output pixels."""
    return Tile(_px(tile.read, s), _px(tile.core, s), tile.index, tile.taper)


def _px(window: Window, s: int) -> Window:
    return Window(window.row_off * s, window.col_off * s, window.height * s, window.width * s)
