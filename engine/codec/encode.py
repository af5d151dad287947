"""Streaming tiled encoding of a SAR raster into one compressed file.

Tiles are planned on the *latent* grid (``ceil(H/s) x ceil(W/s)`` cells for a
latent stride ``s``): each tile reads ``tile_size`` pixels with ``overlap``
pixels shared with its neighbours, the encoder maps it to latents, and only
the tile's core cells are kept. The cores partition the grid, so the grid is
seamless: every cell was computed with at least ``overlap/2`` pixels of
context on each side. The grid is then quantised and range-coded in strips of
:data:`STRIP_ROWS` latent rows as the tile rows finish: with the model's factorised
table (``round(y - median)``, with rate-distortion optimised choices when the model
carries them: :mod:`.rdo`), or with its hyperprior when it has one
(:mod:`.hyperprior`: ``u = y / latent_step``, side information and slice context
per strip, :mod:`.hypercoding`); the validity mask is compressed
losslessly, strip by strip. Then, by default, the coded file is decoded once
more to fit the scene's restoration filter (:mod:`.fit_filter`,
:mod:`.postfilter`), stored in the header. Memory holds one tile row of input
and latents and the compressed bytes, whatever the scene's height.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CancelledError, CompressedFileError, InputError, ModelError, check_choice
from ..input_kind import check_input_kind
from ..metadata import ModelMetadata
from ..preprocess import INPUT_KINDS
from ..raster_io import RasterInfo, band_label
from ..run import IsCancelled, Log, Progress, Run
from ..tiling import RowQueue, Tile, band_list, iter_tile_rows, plan_tiles
from . import fileformat
from .bright_pixels import RangeReport, report_range, scan_range
from .fit_filter import SampledLatents, fit_post_filter
from .hyperprior import HyperpriorModel
from .layout import BATCH_SIZE, check_tiling, default_tiling
from .models import (
    DEFAULT_RATES,
    LatentModel,
    bundled_codec,
    coder_name,
    find_decoder,
    latent_model,
    load_encoder,
    strip_encoder,
    training_lambda,
)
from .rate_choice import DEFAULT_RATE, resolve_rate
from .rdo import rdo_quantise
from .source import auto_shift_db, model_input, read_tile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BandFigures:
    """What one band of a compressed file costs."""

    band: int
    """1-based band of the source."""
    description: str | None
    bytes: int
    """Bytes of the band's sections (header, mask, latents, bright pixels)."""
    bpp: float
    """8 x ``bytes`` / pixels."""
    exceptions: int = 0
    exception_bytes: int = 0
    dark_pixels: int = 0

    @property
    def label(self) -> str:
        """``band 2 (VH)``: how the log names the band."""
        return band_label(self.band, self.description)


@dataclass(frozen=True)
class EncodeResult:
    """What :func:`compress_raster` wrote (``bytes``, ``bpp`` and the bright/dark counts cover every
    band; ``bands`` has each band's share)."""

    path: Path
    bytes: int
    bpp: float
    width: int
    height: int
    model_id: str
    seconds: float
    exceptions: int = 0
    """Bright pixels above the model's range, coded apart (:mod:`.bright_pixels`)."""
    exception_bytes: int = 0
    """Bytes of their section (part of ``bytes``)."""
    dark_pixels: int = 0
    """Valid pixels below the model's floor (coded at the floor)."""
    bands: tuple[BandFigures, ...] = ()
    """Per coded band, in the file's order."""


STRIP_ROWS = 16
"""Latent rows per entropy-coded strip (256 pixels at stride 16): the encoder and decoder hold one
strip of integer latents at a time, so memory does not grow with the scene's height."""


class _StripCoder:
    """Collect latent rows in order (one tile row's cores at a time) and code them in fixed strips.

    Each addition is a tuple of ``[*, rows, w]`` arrays (the integers; or ``u`` and the cells to keep);
    the encoder's ``add`` receives a strip of each. ``record`` (if given) receives each coded strip's top
    row and integer latents as decoding will give them (the integers, or the hyperprior's ``y_hat``).
    """

    def __init__(self, encoder: Any, rows: int, record: Callable[[int, np.ndarray], None] | None = None,
                 ) -> None:
        self.encoder, self.rows, self.record = encoder, rows, record
        self.queue = RowQueue(axis=1)

    def add(self, *parts: np.ndarray) -> None:
        self.queue.push(*parts)
        while self.queue.rows >= self.rows:
            self._emit(self.rows)

    def _emit(self, n: int) -> None:
        top = self.queue.top
        blocks = self.queue.take(n)
        coded = self.encoder.add(*blocks)
        if self.record is not None:
            self.record(top, blocks[0] if coded is None else coded)

    def finish(self) -> bytes:
        if self.queue.rows:
            self._emit(self.queue.rows)
        return self.encoder.finish()


FILTER_CLASSES_RDO = 8
"""With optimised quantisation the restoration filter may use up to this many classes of decoded values
(without it, one: classes by value smooth speckle in homogeneous areas, which only that option accepts)."""

def compress_raster(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    band: int | Sequence[int] | None = None,
    input_kind: str = "intensity",
    rate: str | None = DEFAULT_RATE,
    encoder_path: str | os.PathLike[str] | None = None,
    tile_size: int | None = None,
    overlap: int | None = None,
    batch_size: int = BATCH_SIZE,
    shift_db: float | None = None,
    rdo: bool = False,
    post_filter: bool = True,
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
    log: Log | None = None,
) -> EncodeResult:
    """Compress the bands of a SAR raster (e.g. VV and VH) into one self-describing ``.sarz`` file.

    Args:
        input_path: GDAL raster (intensity, amplitude or dB; not complex).
        output_path: the compressed file to write (atomically).
        band: 1-based band, or bands, to code; ``None`` (default): every band. Each band is coded
            alone (its own dB shift, bright pixels and restoration filter) and keeps its description.
        input_kind: what the bands hold: ``intensity``, ``amplitude`` or ``db``.
        rate: a rate point (:data:`engine.codec.rate_choice.RATE_OPTIONS`; a retired one runs its
            successor, with a deprecation message); ignored when ``encoder_path`` is given.
        encoder_path: a custom encoder model (its decoder must be available to decode).
        tile_size, overlap: encoder tiling in pixels (default: :func:`default_tiling` of the model).
        batch_size: tiles per encoder call.
        shift_db: dB added to every value before the model sees it (stored in the file and removed
            when decoding). ``None`` (default): per band, 0 when the band's 1st-99th percentile dB range
            lies inside the model's ``[db_min, db_max]``, else the shift that centres that range in it -
            uncalibrated digital numbers would otherwise be clipped.
        rdo: rate-distortion optimised quantisation (:mod:`engine.codec.rdo`) with the settings in the
            model's entropy table: smaller files and more PSNR per bit, but it smooths speckle in
            homogeneous areas (the ENL ratio rises). ``False`` (default) rounds every latent.
        post_filter: decode the coded latents once more and store the scene's least-squares
            restoration filter in the file (:mod:`engine.codec.postfilter`) when it pays for its
            ~900 bits; encoding takes about twice as long up to 1 Mpix and about 1.4-1.8 times as
            long on larger scenes, which are fitted on a sample of tiles
            (:data:`engine.codec.fit_filter.FIT_SAMPLE_PIXELS`; ``make bench-filter``). Needs the model's
            decoder. With ``rdo`` the filter may differ by decoded value (up to
            :data:`FILTER_CLASSES_RDO` classes).
        progress, is_cancelled, log: callbacks (0..100, cancel poll, messages).
    """
    from ..raster_io import open_raster

    started = time.perf_counter()
    run = Run.of(progress, is_cancelled, log)
    run.progress(0.0)
    if encoder_path is None and rate is not None:
        rate = resolve_rate(rate, run)
    job, encoder = _plan_encoding(input_path, output_path, band, input_kind, rate, encoder_path,
                                  tile_size, overlap, batch_size, rdo)
    run.check("Compression")
    for b in job.bands:
        check_input_kind(input_path, b, input_kind, run=run)
    info, meta, n = job.info, job.meta, len(job.bands)
    run.say(f"Encoding {_band_names(info, job.bands)} of {info.width} x {info.height} pixels with "
            f"{meta.model_id} in {len(job.plan)} tile(s) per band", logger=logger)
    coded_share = 0.5 if post_filter else 0.9
    with open_raster(input_path) as src:
        bands = [_encode_band(dataclasses.replace(job, band=b), encoder, src, shift_db, batch_size, rdo,
                              _band_run(run.span(coded_share * i / n, coded_share * (i + 1) / n), info, b, n),
                              post_filter)
                 for i, b in enumerate(job.bands)]
        del encoder  # frees its ONNX Runtime session (and memory arena) before the decoding pass
        if post_filter:
            classes = FILTER_CLASSES_RDO if rdo else 1
            spans = [_band_run(run.span(0.5 + 0.45 * i / n, 0.5 + 0.45 * (i + 1) / n), info, b, n)
                     for i, b in enumerate(job.bands)]
            bands = [dataclasses.replace(c, header=_with_post_filter(
                         c.header, c.coded, c.job, src, batch_size, span, classes, c.sampled))
                     for c, span in zip(bands, spans, strict=True)]
    return _write_file(job, bands, run, started)


def _band_name(info: RasterInfo, band: int, capitalised: bool = False) -> str:
    """``band 2 (VH)`` (``Band 2 (VH)``)."""
    return band_label(band, info.descriptions[band - 1], capitalised)


def _band_names(info: RasterInfo, bands: Sequence[int]) -> str:
    """``band 1 (VV), band 2 (VH)``."""
    return ", ".join(_band_name(info, b) for b in bands)


def _band_run(run: Run, info: RasterInfo, band: int, count: int) -> Run:
    """``run``, whose messages to the user start with the band's name when ``count`` bands are coded."""
    log = run.log
    if count < 2 or log is None:
        return run
    name = _band_name(info, band, capitalised=True)
    return dataclasses.replace(run, log=lambda message: log(f"{name}: {message}"))


@dataclass(frozen=True)
class _CodedBand:
    """One band coded: its job, header, latents and mask, and the pixels outside the model's range."""

    job: _EncodingJob
    header: fileformat.CompressedHeader
    coded: _Coded
    out_of_range: RangeReport
    sampled: SampledLatents | None = None
    """The latents of the restoration filter fit's sampled tiles (:func:`_fit_sample`)."""


STATS_SHARE = 0.05
"""Share of a band's progress bar given to each of its two streamed statistics passes (the dB shift's
histogram, the pixels beyond the model's range) before its latents are coded."""


def _encode_band(job: _EncodingJob, encoder: Any, src: Any, shift_db: float | None, batch_size: int,
                 rdo: bool, run: Run, post_filter: bool = False) -> _CodedBand:
    """Code ``job.band``: its dB shift, the pixels beyond the model's range, the latents (and, for the
    filter fit, the latents of its sampled tiles)."""
    info, meta = job.info, job.meta
    if shift_db is None:
        shift_db = auto_shift_db(src, job.band, meta, info.nodata, job.input_kind, run.span(0.0, STATS_SHARE))
    if shift_db:
        run.say(f"Shifting the values by {shift_db:+.2f} dB into the model's range "
                f"[{meta.db_min}, {meta.db_max}] dB (undone when decoding)", logger=logger)
    out_of_range = scan_range(src, job.band, meta, info.nodata, job.input_kind, shift_db,
                              run.span(STATS_SHARE, 2 * STATS_SHARE))
    sampled = _fit_sample(job) if post_filter else None
    coded = _encode_latents(job, encoder, src, shift_db, batch_size, rdo, run.span(2 * STATS_SHARE, 1.0),
                            sampled)
    return _CodedBand(job, _header(job, coded, shift_db), coded, out_of_range, sampled)


def _write_file(job: _EncodingJob, bands: list[_CodedBand], run: Run, started: float) -> EncodeResult:
    """Pack every band's header, mask, latents and bright pixels into the file, written atomically;
    the figures, per band and in all."""
    from ..raster_io import atomic_output

    info = job.info
    pixels = info.width * info.height
    brights = [c.out_of_range.bright.to_bytes() for c in bands]
    data, sizes = fileformat.pack_scene([(c.header, c.coded.mask_bytes, c.coded.payload, bright)
                                         for c, bright in zip(bands, brights, strict=True)])
    for c, bright in zip(bands, brights, strict=True):
        report_range(c.out_of_range, len(bright), pixels, _band_run(run, info, c.job.band, len(bands)))
    run.check("Compression")
    with atomic_output(job.output) as tmp:
        tmp.write_bytes(data)
    run.progress(1.0)
    figures = tuple(BandFigures(c.job.band, c.header.description, size, 8.0 * size / pixels,
                                c.out_of_range.bright.count, len(bright), c.out_of_range.dark)
                    for c, size, bright in zip(bands, sizes, brights, strict=True))
    bpp = 8.0 * len(data) / pixels
    seconds = time.perf_counter() - started
    for f in figures:
        run.say(f"Coded {f.label}: {f.bytes} bytes, {f.bpp:.3f} bits per pixel", logger=logger)
    run.say(f"Wrote {job.output.name}: {len(figures)} band(s), {len(data)} bytes, {bpp:.3f} bits per pixel",
            logger=logger)
    logger.info("compressed to %s (%d bytes, %.3f bpp, %.1f s)", job.output, len(data), bpp, seconds)
    return EncodeResult(job.output, len(data), bpp, info.width, info.height, job.meta.model_id, seconds,
                        sum(f.exceptions for f in figures), sum(f.exception_bytes for f in figures),
                        sum(f.dark_pixels for f in figures), figures)


@dataclass(frozen=True)
class _EncodingJob:
    """What one compression needs before it reads a pixel: source, model, table and tiling."""

    info: RasterInfo
    bands: tuple[int, ...]
    band: int  # the band being coded (one of ``bands``)
    input_kind: str
    output: Path
    encoder_path: Path
    meta: ModelMetadata
    table: LatentModel
    tile: int
    overlap: int
    plan: list[Tile]  # on the latent grid

    @property
    def scale(self) -> int:
        return self.meta.scale_factor

    @property
    def latent_shape(self) -> tuple[int, int]:
        return math.ceil(self.info.height / self.scale), math.ceil(self.info.width / self.scale)


def _plan_encoding(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str],
                   band: int | Sequence[int] | None,
                   input_kind: str, rate: str | None, encoder_path: str | os.PathLike[str] | None,
                   tile_size: int | None, overlap: int | None, batch_size: int, rdo: bool,
                   ) -> tuple[_EncodingJob, Any]:
    """Check the arguments, input and output, load the encoder and plan the tiles of the latent grid."""
    from ..raster_io import check_writable, inspect_raster

    check_choice(input_kind, INPUT_KINDS, "input kind")
    if batch_size < 1:
        raise InputError(f"Batch size must be at least 1, got {batch_size}.")
    info = inspect_raster(input_path, band)
    bands = tuple(band_list(band)) or tuple(range(1, info.count + 1))
    out = check_writable(output_path)
    if encoder_path is None:
        if rate is None:
            raise InputError("Give a rate point (e.g. 'r2') or an encoder model file.")
        encoder_path = bundled_codec(rate)[0]
    encoder = load_encoder(encoder_path)
    meta = encoder.metadata
    table = latent_model(meta, f"Encoder '{Path(encoder_path).name}'")
    if rdo and isinstance(table, HyperpriorModel):
        raise InputError(
            f"Optimised (rate-distortion) quantisation does not apply to '{meta.model_id}': it codes with a "
            "hyperprior, whose entropy model already adapts to the scene. Turn the option off, or choose a "
            f"factorised rate point ({', '.join(DEFAULT_RATES)}) to use it.")
    s = meta.scale_factor
    tile, ovl = default_tiling(meta, tile_size, overlap)
    check_tiling(tile, ovl, s)
    plan = plan_tiles(math.ceil(info.height / s), math.ceil(info.width / s), tile // s, ovl // s)
    job = _EncodingJob(info, bands, bands[0], input_kind, out, Path(encoder_path), meta, table, tile, ovl,
                       plan)
    return job, encoder


@dataclass(frozen=True)
class _Coded:
    """The entropy-coded latents and the compressed validity mask of a scene."""

    payload: bytes
    mask_bytes: bytes
    valid_pixels: int


def _fit_sample(job: _EncodingJob) -> SampledLatents | None:
    """The collector of the latents the restoration filter's fit will decode (the decoder's default tiling,
    as :func:`fit_post_filter` tiles; ``None`` when it decodes the whole scene)."""
    tile, overlap = default_tiling(job.meta, None, None)
    return SampledLatents.for_scene(job.info.width, job.info.height, job.scale, tile, overlap)


def _encode_latents(job: _EncodingJob, encoder: Any, src: Any, shift_db: float, batch_size: int, rdo: bool,
                    run: Run, sampled: SampledLatents | None = None) -> _Coded:
    """Encode tile row by tile row: read (mirrored edges), encode, keep the cores' quantised latents and
    the validity mask, and entropy-code them in strips as the rows finish (``sampled`` keeps the latents
    of the filter fit's tiles)."""
    info, table, s = job.info, job.table, job.scale
    lw = job.latent_shape[1]
    coder = _StripCoder(strip_encoder(table), STRIP_ROWS, None if sampled is None else sampled.add)
    masks = fileformat.MaskWriter(info.width)
    done = 0
    for row in iter_tile_rows(job.plan):
        strip_top = row[0].core.row_off * s
        strip = np.zeros((min(row[0].core.height * s, info.height - strip_top), info.width), dtype=bool)
        cores = _CoreRow(table, row[0].core.height, lw, rdo)
        for start in range(0, len(row), batch_size):
            run.check("Compression")
            chunk = row[start : start + batch_size]
            inputs, valids = [], []
            for t in chunk:
                raw = read_tile(src, job.band, t.read.scaled(s))
                x, valid = model_input(raw, job.meta, info.nodata, job.input_kind, shift_db)
                inputs.append(x)
                valids.append(valid)
            latents = encoder.run(np.stack(inputs)[:, None])
            _check_latents(latents, len(chunk), table.channels, job.tile // s)
            for t, y, valid in zip(chunk, latents, valids, strict=True):
                _keep_core(t, y, valid, cores, strip, strip_top, s)
            done += len(chunk)
            run.progress(done / len(job.plan))
        masks.add(strip)
        coder.add(*cores.parts)
    return _Coded(coder.finish(), masks.finish(), masks.valid)


def _header(job: _EncodingJob, coded: _Coded, shift_db: float) -> fileformat.CompressedHeader:
    """The file header: source grid and georeferencing, model, latent layout, dB shift."""
    info, meta = job.info, job.meta
    lh, lw = job.latent_shape
    return fileformat.CompressedHeader(
        width=info.width,
        height=info.height,
        crs_wkt=info.crs_wkt,
        transform=tuple(float(v) for v in tuple(info.transform)[:6]),
        source_dtype=info.dtype(job.band),
        source_nodata=info.nodata,
        band=job.band,
        input_kind=job.input_kind,
        db_min=float(meta.db_min or 0.0),
        db_max=float(meta.db_max or 0.0),
        noise_floor_db=meta.noise_floor_db,
        model_id=meta.model_id,
        weights_sha256=meta.weights_sha256,
        entropy_sha256=job.table.sha256(),
        entropy_model=coder_name(job.table),
        quantisation=_QUANTISATION[coder_name(job.table)],
        latent_channels=job.table.channels,
        latent_height=lh,
        latent_width=lw,
        scale_factor=job.scale,
        tile_size=job.tile,
        overlap=job.overlap,
        valid_pixels=coded.valid_pixels,
        shift_db=float(shift_db),
        strip_rows=STRIP_ROWS,
        description=info.descriptions[job.band - 1] or None,
        control=info.control.to_json(),
    )


def _with_post_filter(header: fileformat.CompressedHeader, coded: _Coded, job: _EncodingJob, src: Any,
                      batch_size: int, run: Run, max_classes: int, sampled: SampledLatents | None = None,
                      ) -> fileformat.CompressedHeader:
    """``header`` with the scene's restoration filter, when the decoder is at hand and the filter pays."""
    meta = job.meta
    try:
        decoder = find_decoder(meta.model_id, meta.weights_sha256, folder=job.encoder_path.parent)
    except (CompressedFileError, ModelError, InputError) as exc:
        run.say(f"No restoration filter: the model's decoder was not found beside the encoder ({exc})",
                logger=logger)
        return header
    run.say("Fitting the scene's restoration filter (a second, decoding pass)", logger=logger)
    # exactly what the decoder will read
    cf = fileformat.unpack(fileformat.pack(header, coded.mask_bytes, coded.payload))
    try:
        fitted = fit_post_filter(cf, decoder, job.table, src, meta, lam=training_lambda(meta),
                                 max_classes=max_classes, batch_size=batch_size, run=run, latents=sampled)
    except CancelledError as exc:  # raised by the decoding pass in its own words
        raise CancelledError("Compression was cancelled; nothing was written.") from exc
    if fitted is None:
        run.say("The restoration filter would not pay for its bytes on this scene; none stored",
                logger=logger)
        return header
    if fitted.classes > 1:
        run.say(f"Restoration filter: {fitted.classes} classes of decoded values", logger=logger)
    return dataclasses.replace(header, post_filter=fitted.to_header())


def _check_latents(latents: np.ndarray, n: int, channels: int, cells: int) -> None:
    if latents.shape != (n, channels, cells, cells):
        raise ModelError(
            f"The encoder returned latents of shape {latents.shape}, expected {(n, channels, cells, cells)}; "
            "the model does not follow the codec contract (scale_factor/latent_channels)."
        )
    if not np.all(np.isfinite(latents)):
        raise ModelError("The encoder returned NaN or infinite latents; the model is broken.")


EMPTY_MARGIN = 1
"""Latent cells farther than this many cells from every valid pixel are coded as all zeros."""


def near_valid_cells(valid: np.ndarray, s: int, margin: int = EMPTY_MARGIN) -> np.ndarray:
    """Per latent cell of a tile: whether a valid pixel lies in the cell or within ``margin`` cells.

    The other cells only describe nodata, which the decoder masks: the encoder codes them as all-zero
    latents (the medians), the cheapest symbols - with a table that has an empty-cell class, a few bits
    per cell instead of tens. Their reconstruction never reaches a valid pixel through the linear
    synthesis (it spans half a cell beyond its own).
    """
    h, w = valid.shape[0] // s, valid.shape[1] // s
    cells = valid[: h * s, : w * s].reshape(h, s, w, s).any(axis=(1, 3))
    if margin <= 0:
        return cells
    from scipy.ndimage import binary_dilation

    return np.asarray(binary_dilation(cells, structure=np.ones((3, 3), bool), iterations=margin))


_QUANTISATION = {
    fileformat.FACTORISED: fileformat.CompressedHeader.quantisation,
    fileformat.HYPERPRIOR: "u = y / latent_step; q = round(u - mu); y_hat = (q + mu) * latent_step",
}


class _CoreRow:
    """One tile row's core latents as the strip coder takes them: the integers of a factorised table
    (quantised tile by tile), or ``u = y / latent_step`` and the cells to keep (the hyperprior quantises
    a whole strip at once)."""

    def __init__(self, model: LatentModel, rows: int, width: int, rdo: bool) -> None:
        self.model, self.rdo = model, rdo
        if isinstance(model, HyperpriorModel):
            self.parts: tuple[np.ndarray, ...] = (np.zeros((model.channels, rows, width), np.float32),
                                                  np.zeros((1, rows, width), bool))
        else:
            self.parts = (np.zeros((model.channels, rows, width), np.int32),)

    def put(self, rows: slice, cols: slice, y: np.ndarray, keep: np.ndarray) -> None:
        """The core latents ``y`` (``[C, h, w]``) of one tile at ``rows, cols``; cells where ``keep`` is
        False only describe nodata and are coded as zeros."""
        model = self.model
        if isinstance(model, HyperpriorModel):
            self.parts[0][:, rows, cols] = y / np.float32(model.latent_step)
            self.parts[1][0, rows, cols] = keep
            return
        q = rdo_quantise(model, y) if self.rdo else model.quantise(y)
        q[:, ~keep] = 0
        self.parts[0][:, rows, cols] = q


def _keep_core(tile: Tile, y: np.ndarray, valid: np.ndarray, cores: _CoreRow, strip: np.ndarray,
               strip_top: int, s: int) -> None:
    """Put the tile's core latents into its tile row's ``cores`` and its validity into ``strip``."""
    rel = tile.core.relative_to(tile.read)
    rows, cols = rel.slices()
    cols_out = slice(tile.core.col_off, tile.core.col_off + tile.core.width)
    cores.put(slice(0, tile.core.height), cols_out, y[:, rows, cols], near_valid_cells(valid, s)[rows, cols])
    px = tile.core.scaled(s)
    height, width = strip.shape
    r0, c0 = px.row_off - strip_top, px.col_off
    r1, c1 = min(r0 + px.height, height), min(c0 + px.width, width)
    prel = rel.scaled(s)
    strip[r0:r1, c0:c1] = valid[prel.row_off : prel.row_off + r1 - r0, prel.col_off : prel.col_off + c1 - c0]
