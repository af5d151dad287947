"""The encoder's second pass: decode the file just coded and fit its restoration filter.

Streams the decoded image (exactly what :func:`engine.codec.decode.decompress_file` will compute
before filtering) and the source rows side by side into the filter's normal equations
(:class:`engine.codec.postfilter.NormalEquations`); memory holds one tile row. Scenes larger than
:data:`FIT_SAMPLE_PIXELS` are fitted on a sample of whole tiles instead (26 to 208 unknowns need
far fewer pixels), where each sampled tile alone makes the decoded pixels. The encoder keeps the
integer latents of those tiles as it codes them (:class:`SampledLatents`: lossless coding, so they are
what range-decoding the file gives), and the fit then decodes those tiles alone instead of range-decoding
the whole payload once more.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from ..metadata import ModelMetadata
from ..run import QUIET, Run
from ..tiling import Tile, Window, pad_to_window, tile_count
from . import fileformat
from .decode import decoded_blocks, decoded_tiles, decoding_plan
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
    latents: SampledLatents | None = None,
) -> PostFilter | None:
    """The restoration filter for the coded file ``cf`` of the open source raster ``src``, or ``None``
    when it does not pay for its header bytes (:meth:`engine.codec.postfilter.NormalEquations.best_filter`
    with up to ``max_classes`` classes of decoded values).

    The source is read like the encoder read it (band, nodata, input kind and dB shift from the
    file's header), the decoded image is tiled as :func:`~engine.codec.decode.decompress_file` tiles it
    by default. ``latents``: the sampled tiles' latents, kept by the encoder (used when they are the
    tiles this fit samples; else the payload is range-decoded).
    """
    header = cf.header
    stats = NormalEquations(by_value=max_classes > 1)
    tile, overlap = default_tiling(decoder.metadata, None, None)  # what decompress_file uses
    every = _sampling_step(header, tile, overlap)
    if every > 1:
        known = latents if latents is not None and latents.samples(tile, overlap, every) else None
        _sampled_tiles(stats, cf, decoder, table, src, meta, tile, overlap, every, run, known)
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
    return sampling_step(header.width, header.height, header.latent_width, header.scale_factor, tile, overlap)


def sampling_step(width: int, height: int, latent_width: int, scale: int, tile: int, overlap: int) -> int:
    """:func:`_sampling_step` of a scene's size, latent grid width and latent stride."""
    every = max(1, math.ceil(width * height / FIT_SAMPLE_PIXELS))
    columns = tile_count(latent_width, tile // scale, overlap // scale)
    while every > 1 and math.gcd(every, columns) != 1:
        every += 1
    return every


class SampledLatents:
    """The integer latents of the tiles the fit samples, collected strip by strip as the encoder codes
    them; memory: one latent tile per sampled tile (about :data:`FIT_SAMPLE_PIXELS` pixels' worth).

    :meth:`tile` gives a sampled tile's latents as :func:`engine.codec.decode._latent_tile` gives them from
    the file (mirrored beyond the grid), so the fit's decoded pixels are the same either way.
    """

    def __init__(self, plan: list[Tile], every: int, latent_shape: tuple[int, int], tile: int,
                 overlap: int) -> None:
        self.every, self.tiling = every, (tile, overlap)
        grid = Window(0, 0, *latent_shape)
        self._inside = {t.index: t.read.intersection(grid) for t in plan[::every]}
        self._parts: dict[tuple[int, int], np.ndarray] = {}

    @classmethod
    def for_scene(cls, width: int, height: int, scale: int, tile: int, overlap: int) -> SampledLatents | None:
        """The collector for a scene, or ``None`` when the fit decodes the whole scene (small scenes)."""
        lh, lw = math.ceil(height / scale), math.ceil(width / scale)
        every = sampling_step(width, height, lw, scale, tile, overlap)
        if every == 1:
            return None
        plan = decoding_plan(lh, lw, scale, tile, overlap)
        return cls(plan, every, (lh, lw), tile, overlap)

    def samples(self, tile: int, overlap: int, every: int) -> bool:
        """Whether these are the tiles of a fit with this tiling and step."""
        return self.tiling == (tile, overlap) and self.every == every

    def add(self, top: int, strip: np.ndarray) -> None:
        """Latent rows ``top .. top + n - 1`` (``[C, n, width]``, as coded) of the scene."""
        n = strip.shape[1]
        for index, inside in self._inside.items():
            lo, hi = max(top, inside.row_off), min(top + n, inside.row_end)
            if lo >= hi:
                continue
            part = self._parts.get(index)
            if part is None:
                shape = (strip.shape[0], inside.height, inside.width)
                part = self._parts[index] = np.empty(shape, strip.dtype)
            part[:, lo - inside.row_off : hi - inside.row_off] = \
                strip[:, lo - top : hi - top, inside.col_off : inside.col_end]

    def tile(self, t: Tile) -> np.ndarray:
        """The latents of sampled tile ``t`` (its read window, mirrored beyond the grid)."""
        inside = self._inside[t.index]
        return np.ascontiguousarray(pad_to_window(self._parts[t.index], inside, t.read, mirror=True))


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
                   every: int, run: Run, latents: SampledLatents | None) -> None:
    """Statistics from every ``every``-th tile, on the pixels whose whole neighbourhood that tile alone
    decodes (blending weight exactly 1) and that lie at least the filter radius inside the scene."""
    from scipy.ndimage import binary_erosion

    header, r = cf.header, stats.radius
    size = 2 * r + 1
    tile_latents = None if latents is None else latents.tile
    for t, x, weights in decoded_tiles(cf, decoder, table, tile, overlap, every, run, tile_latents):
        alone = binary_erosion(weights == 1.0, structure=np.ones((size, size), bool), border_value=0)
        rows = np.arange(t.read.row_off, t.read.row_end)[:, None]
        cols = np.arange(t.read.col_off, t.read.col_end)[None, :]
        inside = (rows >= r) & (rows < header.height - r) & (cols >= r) & (cols < header.width - r)
        usable = (alone & inside)[r:-r, r:-r]
        if usable.any():
            window = t.read.expanded(-r)
            target, valid = _source_rows(src, meta, header, window)
            stats.add(x, target, valid & usable)
