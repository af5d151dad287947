"""Quality of a reconstructed SAR image: PSNR, SSIM, ENL ratio, EPI, bits per pixel, HTML report.

Conventions (all metrics compare *valid* pixels only: valid in the reference
and in the reconstruction):

* **PSNR** is computed in dB (both images converted to dB with the same noise
  floor). The peak is the dB range of the reference's valid pixels
  (``max - min``), so a codec is not rewarded for a wide nominal range;
  pass ``peak`` (e.g. the model range ``db_max - db_min``) to override.
* **SSIM**: :func:`skimage.metrics.structural_similarity` on the dB images with
  ``data_range`` = the same peak, 7 x 7 windows, averaged over valid pixels.
* **ENL ratio**: ENL (``mean^2 / variance`` of linear intensity) of the
  reconstruction divided by the ENL of the original, on homogeneous areas of
  the original: non-overlapping blocks whose coefficient of variation (std /
  mean of linear intensity) is among the lowest :data:`HOMOGENEOUS_FRACTION`.
  1.0 means speckle statistics are preserved; > 1 means smoothing.
* **EPI** (edge preservation index): Pearson correlation of the Sobel gradient
  magnitudes (:func:`scipy.ndimage.sobel`) of the dB images.
* **Bits per pixel** of a compressed file: ``8 * file bytes / (width * height)``.

The functions below take whole dB images (the reference implementation, used by benchmarks and
training); :func:`assess` streams the same figures over strips of rows
(:mod:`engine.codec.quality.strips`), so a file of any size is assessed in the same memory. The HTML report
is :mod:`engine.codec.quality.report`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DependencyError, InputError, check_choice
from ...input_kind import check_input_kind
from ...metadata import NOISE_FLOOR_DB
from ...preprocess import INPUT_KINDS, LINEAR_KINDS, db_to_linear, linear_to_db, valid_mask
from ...run import IsCancelled, Log, Progress, Run
from .report import QualityReport, Sizes
from .strips import RowReader, StreamedFigures, stream_figures

logger = logging.getLogger(__name__)

HOMOGENEOUS_FRACTION = 0.1
"""Share of blocks (lowest coefficient of variation) taken as homogeneous for the ENL ratio."""
ENL_BLOCK = 16
"""Side of the blocks in which homogeneity and ENL are measured."""
SSIM_WINDOW = 7


# ------------------------------------------------------------------ metrics
def _both_valid(reference_db: np.ndarray, reconstruction_db: np.ndarray,
                valid: np.ndarray | None) -> np.ndarray:
    if reference_db.shape != reconstruction_db.shape:
        raise InputError(
            f"Reference {reference_db.shape} and reconstruction {reconstruction_db.shape} differ in size; "
            "compare a reconstruction with the raster it was compressed from."
        )
    mask = np.isfinite(reference_db) & np.isfinite(reconstruction_db)
    if valid is not None:
        mask &= valid
    if not mask.any():
        raise InputError("Reference and reconstruction have no valid pixel in common; nothing to compare.")
    return mask


def peak_db(reference_db: np.ndarray, valid: np.ndarray | None = None) -> float:
    """dB range (max - min) of the reference's valid pixels; 1.0 for a constant image."""
    mask = np.isfinite(reference_db) if valid is None else valid & np.isfinite(reference_db)
    if not mask.any():
        return 1.0
    values = reference_db[mask]
    span = float(values.max() - values.min())
    return span if span > 0 else 1.0


def psnr(reference_db: np.ndarray, reconstruction_db: np.ndarray, valid: np.ndarray | None = None,
         peak: float | None = None) -> float:
    """PSNR in dB over valid pixels; ``inf`` for a perfect reconstruction."""
    mask = _both_valid(reference_db, reconstruction_db, valid)
    diff = reference_db[mask].astype(np.float64) - reconstruction_db[mask].astype(np.float64)
    mse = float(np.mean(diff**2))
    peak = peak_db(reference_db, mask) if peak is None else peak
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def ssim(reference_db: np.ndarray, reconstruction_db: np.ndarray, valid: np.ndarray | None = None,
         peak: float | None = None) -> float:
    """Mean SSIM over valid pixels (NaN when the image is smaller than 3 x 3)."""
    try:
        from skimage.metrics import structural_similarity
    except ImportError as exc:  # pragma: no cover - scikit-image is in requirements/runtime.txt
        raise DependencyError("scikit-image", "SSIM") from exc
    mask = _both_valid(reference_db, reconstruction_db, valid)
    win = min(SSIM_WINDOW, *reference_db.shape)
    win -= 1 - win % 2  # odd
    if win < 3:
        return math.nan
    fill = float(reference_db[mask].mean())
    ref = np.where(mask, reference_db, fill).astype(np.float64)
    rec = np.where(mask, reconstruction_db, fill).astype(np.float64)
    peak = peak_db(reference_db, mask) if peak is None else peak
    _, full = structural_similarity(ref, rec, win_size=win, data_range=peak, full=True)
    return float(np.mean(full[mask]))


def homogeneous_blocks(intensity: np.ndarray, valid: np.ndarray, block: int = ENL_BLOCK,
                       fraction: float = HOMOGENEOUS_FRACTION) -> list[tuple[slice, slice]]:
    """Fully valid blocks of the reference with the lowest coefficient of variation (linear intensity)."""
    h, w = intensity.shape
    block = max(2, min(block, h, w))
    candidates: list[tuple[float, tuple[slice, slice]]] = []
    for r in range(0, h - block + 1, block):
        for c in range(0, w - block + 1, block):
            sl = (slice(r, r + block), slice(c, c + block))
            if not valid[sl].all():
                continue
            values = intensity[sl].astype(np.float64)
            mean = values.mean()
            if mean > 0:
                candidates.append((float(values.std() / mean), sl))
    candidates.sort(key=lambda item: item[0])
    keep = max(1, round(fraction * len(candidates))) if candidates else 0
    return [sl for _, sl in candidates[:keep]]


def enl(intensity: np.ndarray) -> float:
    """Equivalent number of looks ``mean^2 / variance`` of linear intensity (inf if constant)."""
    values = intensity.astype(np.float64)
    var = float(values.var())
    return math.inf if var == 0 else float(values.mean() ** 2 / var)


def enl_ratio(reference_db: np.ndarray, reconstruction_db: np.ndarray, valid: np.ndarray | None = None,
              block: int = ENL_BLOCK) -> tuple[float, int]:
    """``(mean ENL of reconstruction / mean ENL of original, number of homogeneous blocks)``."""
    mask = _both_valid(reference_db, reconstruction_db, valid)
    ref_i = db_to_linear(np.where(mask, reference_db, np.nan), "intensity")
    rec_i = db_to_linear(np.where(mask, reconstruction_db, np.nan), "intensity")
    blocks = homogeneous_blocks(ref_i, mask, block)
    if not blocks:
        return math.nan, 0
    ref_enl = [enl(ref_i[sl]) for sl in blocks]
    rec_enl = [enl(rec_i[sl]) for sl in blocks]
    finite = [(a, b) for a, b in zip(ref_enl, rec_enl, strict=True) if math.isfinite(a) and math.isfinite(b)]
    if not finite:
        return math.nan, len(blocks)
    return float(np.mean([b for _, b in finite]) / np.mean([a for a, _ in finite])), len(blocks)


def epi(reference_db: np.ndarray, reconstruction_db: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Correlation of Sobel gradient magnitudes over valid pixels whose 3 x 3 neighbourhood is valid."""
    from scipy import ndimage

    mask = _both_valid(reference_db, reconstruction_db, valid)
    fill = float(reference_db[mask].mean())

    def magnitude(img: np.ndarray) -> np.ndarray:
        x = np.where(mask, img, fill).astype(np.float64)
        return np.hypot(ndimage.sobel(x, axis=0), ndimage.sobel(x, axis=1))

    inner = ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), border_value=0)
    if inner.sum() < 2:
        return math.nan
    a, b = magnitude(reference_db)[inner], magnitude(reconstruction_db)[inner]
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def bits_per_pixel(path: str | os.PathLike[str], band: int = 1) -> float:
    """``8 * bytes / (width * height)`` of a compressed file (size from its verified header); of a file of
    several bands, the share of the one coded from source ``band``."""
    from ..fileformat import read_scene

    scene = read_scene(path)
    return scene.bpp if len(scene.bands) == 1 else scene.bands[scene.index_of(band)].bpp


def compare(reference_db: np.ndarray, reconstruction_db: np.ndarray, valid: np.ndarray | None = None,
            peak: float | None = None, bpp: float | None = None) -> QualityReport:
    """Every metric at once on two dB images (invalid pixels NaN or False in ``valid``)."""
    mask = _both_valid(reference_db, reconstruction_db, valid)
    peak = peak_db(reference_db, mask) if peak is None else peak
    ratio, blocks = enl_ratio(reference_db, reconstruction_db, mask)
    return QualityReport(
        psnr=psnr(reference_db, reconstruction_db, mask, peak),
        ssim=ssim(reference_db, reconstruction_db, mask, peak),
        enl_ratio=ratio,
        epi=epi(reference_db, reconstruction_db, mask),
        bpp=bpp,
        peak_db=peak,
        valid_pixels=int(mask.sum()),
        homogeneous_blocks=blocks,
    )


# --------------------------------------------------------------- rasters
def read_db(path: str | os.PathLike[str], band: int = 1, kind: str = "intensity",
            noise_floor_db: float = NOISE_FLOOR_DB) -> np.ndarray:
    """One band of a raster as float32 dB (invalid pixels NaN)."""
    from ...raster_io import inspect_raster, open_raster

    check_choice(kind, INPUT_KINDS, "kind")
    info = inspect_raster(path, band)
    with open_raster(path) as src:
        return row_reader(src, band, kind, info.nodata, noise_floor_db)(0, info.height)


def row_reader(src: Any, band: int, kind: str, nodata: float | None,
               noise_floor_db: float = NOISE_FLOOR_DB) -> RowReader:
    """``read(top, bottom)``: rows of ``band`` of an open raster as float32 dB (invalid NaN)."""
    from ...raster_io import read_window
    from ...tiling import Window

    def read(top: int, bottom: int) -> np.ndarray:
        raw = read_window(src, band, Window(top, 0, bottom - top, src.width), fill=np.nan, dtype=np.float64)
        if kind in LINEAR_KINDS:
            valid = valid_mask(raw, nodata, positive=True)
            return linear_to_db(np.where(valid, raw, np.nan), kind, noise_floor_db)
        valid = valid_mask(raw, nodata, positive=False)
        return np.where(valid, np.maximum(raw, noise_floor_db), np.nan).astype(np.float32)

    return read


def is_compressed_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` starts with the compressed-file signature."""
    from ..fileformat import MAGIC

    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def assess(
    reference: str | os.PathLike[str],
    reconstruction: str | os.PathLike[str],
    *,
    band: int = 1,
    reconstruction_band: int | None = None,
    reference_kind: str = "intensity",
    reconstruction_kind: str = "db",
    html_path: str | os.PathLike[str] | None = None,
    peak: float | None = None,
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
    log: Log | None = None,
) -> QualityReport:
    """Compare a reconstruction (a raster, or a ``.sarz`` file that is decoded first) with its reference.

    Args:
        reference: the original raster.
        reconstruction: a decoded raster or a compressed file (then ``bpp`` is filled in).
        band: band of the reference; of a reconstruction raster with one band, band 1 is used (with
            several, this band); of a compressed file of several bands, the one coded from this band, and
            ``bpp`` is that band's share.
        reconstruction_band: the band of a reconstruction raster to compare, when it is not the one
            ``band`` chooses (e.g. a decoded file holding a subset of the source's bands).
        reference_kind: what the reference holds (``intensity``, ``amplitude``, ``db``).
        reconstruction_kind: what a reconstruction raster holds (ignored for compressed files).
        html_path: if given, an HTML report (:mod:`engine.codec.quality.report`) is written there; checked
            for writability before any work.
        peak: PSNR/SSIM peak in dB (default: the reference's valid dB range).
    """
    run = Run.of(progress, is_cancelled, log)
    run.progress(0.0)
    if html_path is not None:
        from ...raster_io import check_writable

        check_writable(html_path)
    check_choice(reference_kind, INPUT_KINDS, "kind")
    check_input_kind(reference, band, reference_kind, parameter="REFERENCE_KIND", run=run)
    compressed = is_compressed_file(reconstruction)
    with _reconstruction(reconstruction, compressed, reconstruction_kind, run.span(0.05, 0.5), band,
                         reconstruction_band) as rec:
        figures = _stream(reference, band, reference_kind, rec, peak, html_path is not None,
                          run.span(0.5, 0.97))
    report = QualityReport(figures.psnr, figures.ssim, figures.enl_ratio, figures.epi,
                           bits_per_pixel(reconstruction, band) if compressed else None, figures.peak_db,
                           figures.valid_pixels, figures.homogeneous_blocks)
    run.say(
        f"PSNR {report.psnr:.2f} dB, SSIM {report.ssim:.4f}, ENL ratio {report.enl_ratio:.3f}, "
        f"EPI {report.epi:.4f}" + (f", {report.bpp:.3f} bits per pixel" if report.bpp is not None else ""),
        logger=logger,
    )
    run.check("Quality assessment")
    if html_path is not None and figures.pictures is not None:
        from .report import write_html_report

        write_html_report(html_path, figures.pictures, report,
                          title=f"{Path(reconstruction).name} vs {Path(reference).name}",
                          sizes=compression_sizes(reference, band, reconstruction if compressed else None))
    run.progress(1.0)
    return report


@contextlib.contextmanager
def _reconstruction(path: str | os.PathLike[str], compressed: bool, kind: str, run: Run,
                    band: int = 1, raster_band: int | None = None) -> Iterator[tuple[Path, int, str]]:
    """``(raster, band, kind)`` of the reconstruction: a raster as ``kind`` (``raster_band`` when given,
    else its band 1, or ``band`` when it has several), or a compressed file decoded first into a temporary
    GeoTIFF, removed afterwards (of a file of several bands, the band coded from source ``band``)."""
    check_choice(kind, INPUT_KINDS, "kind")
    if not compressed:
        from ...raster_io import inspect_raster

        count = inspect_raster(path, raster_band).count
        yield Path(path), raster_band or (band if count > 1 else 1), kind
        return
    from ..decode import decompress_file
    from ..fileformat import read_scene

    index = read_scene(path).index_of(band)
    with tempfile.TemporaryDirectory(prefix="sar_quality_") as tmp:
        decoded = Path(tmp) / "decoded.tif"
        decompress_file(path, decoded, output_kind="db", progress=lambda pct: run.progress(pct / 100),
                        is_cancelled=run.is_cancelled)
        yield decoded, index + 1, "db"


def _stream(reference: str | os.PathLike[str], band: int, kind: str, rec: tuple[Path, int, str],
            peak: float | None, pictures: bool, run: Run) -> StreamedFigures:
    """The figures of the two rasters, streamed by strips (:func:`.strips.stream_figures`)."""
    from ...raster_io import inspect_raster, open_raster

    ref_info, rec_info = inspect_raster(reference, band), inspect_raster(rec[0], rec[1])
    if ref_info.shape != rec_info.shape:
        raise InputError(
            f"Reference {ref_info.shape} and reconstruction {rec_info.shape} differ in size; "
            "compare a reconstruction with the raster it was compressed from."
        )
    with open_raster(reference) as ref_src, open_raster(rec[0]) as rec_src:
        return stream_figures(row_reader(ref_src, band, kind, ref_info.nodata),
                              row_reader(rec_src, rec[1], rec[2], rec_info.nodata), ref_info.shape,
                              peak=peak, block=ENL_BLOCK, fraction=HOMOGENEOUS_FRACTION,
                              ssim_window=SSIM_WINDOW, pictures=pictures, run=run)


def compression_sizes(reference: str | os.PathLike[str], band: int,
                      compressed: str | os.PathLike[str] | None) -> Sizes:
    """File and band sizes for the report; with a compressed file, its size and the codec that wrote it."""
    from ...raster_io import inspect_raster
    from ..fileformat import read_scene

    info = inspect_raster(reference, band)
    dtype = info.dtype(band)
    sizes = Sizes(reference_file_bytes=Path(reference).stat().st_size,
                  band_bytes=info.width * info.height * np.dtype(dtype).itemsize, band_dtype=dtype)
    if compressed is None:
        return sizes
    scene = read_scene(compressed)
    coded = scene.bands[scene.index_of(band)]
    header = coded.header
    model = (f"{header.model_id} (weights {header.weights_sha256[:12]}), restoration filter "
             f"{'on' if header.post_filter else 'off'}")
    size = scene.size_bytes if len(scene.bands) == 1 else coded.coded_bytes  # the band's share
    return replace(sizes, compressed_bytes=size, model=model)
