"""The encoder's second pass: decode the file just coded and fit its restoration filter.

Streams the decoded image (exactly what :func:`engine.codec.decode.decompress_file` will compute
before filtering) and the source rows side by side into the filter's normal equations
(:class:`engine.codec.postfilter.NormalEquations`); memory holds one tile row. Scenes larger than
:data:`FIT_SAMPLE_PIXELS` are fitted on a sample of whole tiles instead (26 to 208 unknowns need
far fewer pixels), where each sampled tile alone makes the decoded pixels.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from ..metadata import ModelMetadata
from ..run import QUIET, Run
from ..tiling import Window, tile_count
from . import fileformat
from .decode import decoded_blocks, decoded_tiles
from .layout import BATCH_SIZE, default_tiling
from .models import LatentModel
from .postfilter import NormalEquations, PaddedRows, PostFilter
from .source import model_input, read_tile

logger = logging.getLogger(__name__)

FIT_SAMPLE_PIXELS = 1_000_000
"""Above this many pixels the filter is fitted on every k-th decoding tile (raster order), about this
many pixels' worth; below, on the whole decoded scene. The sample costs a fraction of a full decoding pass
and fits as well as the whole scene (make bench-filter, docs/BENCHMARKS.md: was 4 Mpix)."""
MIN_SAMPLED_PIXELS = 250_000
"""A sample with fewer valid pixels than this (tiles falling on nodata) is replaced by the whole scene."""


def fit_post_filter(
    cf: fileformat.CompressedFile,
    decoder: Any,
    table: LatentModel,
    src: Any,
    meta: ModelMetadata,
    *,
    lam: float | None,
    max_classes: int = 1,
    batch_size: int = BATCH_SIZE,
    run: Run = QUIET,
) -> PostFilter | None:
    """The restoration filter for the coded file ``cf`` of the open source raster ``src``, or ``None``
    when it does not pay for its header bytes (:meth:`engine.codec.postfilter.NormalEquations.best_filter`
    with up to ``max_classes`` classes of decoded values).

    The source is read like the encoder read it (band, nodata, input kind and dB shift from the
    file's header), the decoded image is tiled as :func:`~engine.codec.decode.decompress_file` tiles it
    by default.
    """
    header = cf.header
    stats = NormalEquations(by_value=max_classes > 1)
    tile, overlap = default_tiling(decoder.metadata, None, None)  # what decompress_file uses
    every = _sampling_step(header, tile, overlap)
    if every > 1:
        _sampled_tiles(stats, cf, decoder, table, src, meta, tile, overlap, every, run)
        logger.debug("post filter fitted on %d of %d valid pixels (every %d-th tile)", stats.count,
                  header.valid_pixels, every)
        if stats.count >= min(MIN_SAMPLED_PIXELS, header.valid_pixels):
            if lam is not None:  # the error saved scales with the scene, the header bits do not
                lam *= header.valid_pixels / stats.count
            return stats.best_filter(lam, max_classes)
        stats = NormalEquations(by_value=max_classes > 1)
    _whole_scene(stats, cf, decoder, table, src, meta, tile, overlap, batch_size, run)
    return stats.best_filter(lam, max_classes)


def _sampling_step(header: fileformat.CompressedHeader, tile: int, overlap: int) -> int:
    """Fit on every k-th decoding tile (raster order): about :data:`FIT_SAMPLE_PIXELS` pixels' worth,
    with k coprime to the tiles per row so that the sample walks across the columns instead of
    taking the same ones in every row."""
    every = max(1, math.ceil(header.width * header.height / FIT_SAMPLE_PIXELS))
    s = header.scale_factor
    columns = tile_count(header.latent_width, tile // s, overlap // s)
    while every > 1 and math.gcd(every, columns) != 1:
        every += 1
    return every


def _source_rows(src: Any, meta: ModelMetadata, header: fileformat.CompressedHeader, window: Window,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The source pixels of ``window`` as the encoder saw them (normalised) and their validity."""
    raw = read_tile(src, header.band, window)
    return model_input(raw, meta, header.source_nodata, header.input_kind, header.shift_db)


def _whole_scene(stats: NormalEquations, cf: fileformat.CompressedFile, decoder: Any,
                 table: LatentModel, src: Any, meta: ModelMetadata, tile: int, overlap: int,
                 batch_size: int, run: Run) -> None:
    """Statistics from the whole decoded scene, streamed in row blocks."""
    header = cf.header
    rows = PaddedRows(header.height, stats.radius)
    blocks = decoded_blocks(cf, decoder, table, tile, overlap, batch_size, run)
    for _window, values in blocks:
        for top, padded in rows.push(values):
            n = padded.shape[0] - 2 * stats.radius
            target, valid = _source_rows(src, meta, header, Window(top, 0, n, header.width))
            stats.add(padded, target, valid)


def _sampled_tiles(stats: NormalEquations, cf: fileformat.CompressedFile, decoder: Any,
                   table: LatentModel, src: Any, meta: ModelMetadata, tile: int, overlap: int,
                   every: int, run: Run) -> None:
    """Statistics from every ``every``-th tile, on the pixels whose whole neighbourhood that tile alone
    decodes (blending weight exactly 1) and that lie at least the filter radius inside the scene."""
    from scipy.ndimage import binary_erosion

    header, r = cf.header, stats.radius
    size = 2 * r + 1
    for t, x, weights in decoded_tiles(cf, decoder, table, tile, overlap, every, run):
        alone = binary_erosion(weights == 1.0, structure=np.ones((size, size), bool), border_value=0)
        rows = np.arange(t.read.row_off, t.read.row_end)[:, None]
        cols = np.arange(t.read.col_off, t.read.col_end)[None, :]
        inside = (rows >= r) & (rows < header.height - r) & (cols >= r) & (cols < header.width - r)
        usable = (alone & inside)[r:-r, r:-r]
        if usable.any():
            window = t.read.expanded(-r)
            target, valid = _source_rows(src, meta, header, window)
            stats.add(x, target, valid & usable)
