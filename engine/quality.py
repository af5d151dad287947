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

Both rasters are read into memory: quality assessment is meant for scenes of
up to a few tens of megapixels.
"""

from __future__ import annotations

import base64
import html
import logging
import math
import os
import struct
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DependencyError, InputError
from .preprocess import INPUT_KINDS, LINEAR_KINDS, db_to_linear, linear_to_db, valid_mask

logger = logging.getLogger(__name__)

HOMOGENEOUS_FRACTION = 0.1
"""Share of blocks (lowest coefficient of variation) taken as homogeneous for the ENL ratio."""
ENL_BLOCK = 16
"""Side of the blocks in which homogeneity and ENL are measured."""
SSIM_WINDOW = 7
NOISE_FLOOR_DB = -40.0


@dataclass(frozen=True)
class QualityReport:
    """Figures comparing a reconstruction with its reference."""

    psnr: float
    ssim: float
    enl_ratio: float
    epi: float
    bpp: float | None
    peak_db: float
    valid_pixels: int
    homogeneous_blocks: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def bits_per_pixel(path: str | os.PathLike[str]) -> float:
    """``8 * bytes / (width * height)`` of a compressed file (size from its verified header)."""
    from .codec.fileformat import read_compressed

    cf = read_compressed(path)
    return 8.0 * cf.size_bytes / (cf.header.width * cf.header.height)


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
    from .raster_io import inspect_raster, open_raster, read_window
    from .tiling import Window

    if kind not in INPUT_KINDS:
        raise InputError(f"Unknown kind '{kind}'; use one of {', '.join(INPUT_KINDS)}.")
    info = inspect_raster(path, band)
    with open_raster(path) as src:
        raw = read_window(src, band, Window(0, 0, info.height, info.width), fill=np.nan, dtype=np.float64)
    if kind in LINEAR_KINDS:
        valid = valid_mask(raw, info.nodata, positive=True)
        return linear_to_db(np.where(valid, raw, np.nan), kind, noise_floor_db)
    valid = valid_mask(raw, info.nodata, positive=False)
    return np.where(valid, np.maximum(raw, noise_floor_db), np.nan).astype(np.float32)


def is_compressed_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` starts with the compressed-file signature."""
    from .codec.fileformat import MAGIC

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
    reference_kind: str = "intensity",
    reconstruction_kind: str = "db",
    html_path: str | os.PathLike[str] | None = None,
    peak: float | None = None,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    log: Callable[[str], None] | None = None,
) -> QualityReport:
    """Compare a reconstruction (a raster, or a ``.sarz`` file that is decoded first) with its reference.

    Args:
        reference: the original raster.
        reconstruction: a decoded raster or a compressed file (then ``bpp`` is filled in).
        band: band of the reference (the reconstruction's band 1 is used).
        reference_kind: what the reference holds (``intensity``, ``amplitude``, ``db``).
        reconstruction_kind: what a reconstruction raster holds (ignored for compressed files).
        html_path: if given, an HTML report with the images and the figures is written there.
        peak: PSNR/SSIM peak in dB (default: the reference's valid dB range).
    """
    from .errors import CancelledError

    say = log or (lambda _msg: None)
    bpp = None
    ref_db = read_db(reference, band, reference_kind)
    if progress:
        progress(20.0)
    if is_compressed_file(reconstruction):
        from .codec.decode import decompress_file

        bpp = bits_per_pixel(reconstruction)
        with tempfile.TemporaryDirectory(prefix="sar_quality_") as tmp:
            decoded = Path(tmp) / "decoded.tif"
            decompress_file(reconstruction, decoded, output_kind="db", is_cancelled=is_cancelled)
            rec_db = read_db(decoded, 1, "db")
    else:
        rec_db = read_db(reconstruction, 1, reconstruction_kind)
    if is_cancelled is not None and is_cancelled():
        raise CancelledError("Quality assessment was cancelled; nothing was written.")
    if progress:
        progress(60.0)
    report = compare(ref_db, rec_db, peak=peak, bpp=bpp)
    say(
        f"PSNR {report.psnr:.2f} dB, SSIM {report.ssim:.4f}, ENL ratio {report.enl_ratio:.3f}, "
        f"EPI {report.epi:.4f}" + (f", {bpp:.3f} bits per pixel" if bpp is not None else "")
    )
    if html_path is not None:
        write_html_report(html_path, ref_db, rec_db, report, title=f"{Path(reconstruction).name} vs "
                          f"{Path(reference).name}")
    if progress:
        progress(100.0)
    return report


# ------------------------------------------------------------ HTML report
def _png(rgb: np.ndarray) -> bytes:
    """Encode ``(h, w)`` grey or ``(h, w, 3)`` RGB uint8 as PNG (zlib only)."""
    arr = np.ascontiguousarray(rgb, dtype=np.uint8)
    colour = 2 if arr.ndim == 3 else 0
    h, w = arr.shape[:2]
    rows = arr.reshape(h, -1)
    raw = b"".join(b"\x00" + rows[i].tobytes() for i in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + \
        chunk(b"IEND", b"")


def _thumb(img: np.ndarray, max_side: int = 1024) -> np.ndarray:
    step = max(1, math.ceil(max(img.shape) / max_side))
    return img[::step, ::step]


def _grey(db: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scaled = np.clip((db - lo) / max(hi - lo, 1e-6), 0, 1)
    out = np.where(np.isfinite(scaled), scaled * 255, 0)
    return out.astype(np.uint8)


def _diverging(diff: np.ndarray, limit: float) -> np.ndarray:
    """Blue (negative) - white - red (positive) colouring of a difference image; black where invalid."""
    t = np.clip(np.nan_to_num(diff / max(limit, 1e-6)), -1, 1)
    r = np.where(t < 0, 1 + t, 1.0)
    g = 1 - np.abs(t)
    b = np.where(t > 0, 1 - t, 1.0)
    rgb = (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)
    rgb[~np.isfinite(diff)] = 0
    return rgb


def write_html_report(path: str | os.PathLike[str], reference_db: np.ndarray, reconstruction_db: np.ndarray,
                      report: QualityReport, title: str = "Compression quality") -> Path:
    """Write a self-contained HTML page: reference, reconstruction, difference (embedded PNGs), figures."""
    from .raster_io import atomic_output

    ref, rec = _thumb(reference_db), _thumb(reconstruction_db)
    valid = np.isfinite(ref)
    lo, hi = (np.percentile(ref[valid], [1, 99]) if valid.any() else (0.0, 1.0))
    diff = rec - ref
    finite = np.isfinite(diff)
    limit = float(np.percentile(np.abs(diff[finite]), 99)) if finite.any() else 1.0
    images = [
        ("Reference (dB)", _png(_grey(ref, lo, hi))),
        ("Reconstruction (dB)", _png(_grey(rec, lo, hi))),
        (f"Difference (reconstruction - reference, ±{limit:.2f} dB)", _png(_diverging(diff, limit))),
    ]
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in [
            (f"PSNR (dB, peak = {report.peak_db:.2f} dB)", f"{report.psnr:.3f}"),
            ("SSIM", f"{report.ssim:.4f}"),
            ("ENL ratio (reconstruction / original)", f"{report.enl_ratio:.3f}"),
            ("EPI", f"{report.epi:.4f}"),
            ("Bits per pixel", "-" if report.bpp is None else f"{report.bpp:.4f}"),
            ("Valid pixels", str(report.valid_pixels)),
            ("Homogeneous blocks (ENL)", str(report.homogeneous_blocks)),
        ]
    )
    figures = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}"><figcaption>{html.escape(name)}</figcaption></figure>'
        for name, png in images
    )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:1.5em}}"
        "table{border-collapse:collapse}th,td{border:1px solid #bbb;padding:4px 10px;text-align:left}"
        "figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}"
        "img{max-width:480px;image-rendering:pixelated}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table>{rows}</table>{figures}"
        "<p>PSNR and SSIM in the dB domain; ENL ratio on the homogeneous blocks of the original "
        "(lowest coefficient of variation of linear intensity); EPI = correlation of Sobel gradient "
        "magnitudes.</p></body></html>"
    )
    with atomic_output(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return Path(path)
