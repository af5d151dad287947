"""The compression quality report: one self-contained HTML page a user can read.

It shows the reference and the reconstruction with the grey stretch used, the
difference image with its colour bar, a full-resolution crop of the window
where the difference is largest (where artefacts show), the figures, and what
was compressed into how much (model, file sizes, compression ratio). Images
are PNGs embedded as data URIs, written with numpy and zlib only (no plotting
library at run time); the colour bars are PNG strips with HTML labels.
"""

from __future__ import annotations

import base64
import html
import math
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

THUMB_SIDE = 1024
"""Longest side of the overview images (every n-th pixel of larger rasters)."""
CROP_SIDE = 128
"""Side of the full-resolution crop, in pixels."""
STRETCH_PERCENTILES = (1.0, 99.0)
"""Grey stretch of the dB images: these percentiles of the reference's valid pixels."""
DIFFERENCE_PERCENTILE = 99.0
"""The difference colour scale ends at this percentile of |difference|."""
BAR_STEPS = 256


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


@dataclass(frozen=True)
class Sizes:
    """What was compressed and into how much (``None`` where it does not apply)."""

    reference_file_bytes: int
    band_bytes: int
    """The reference band as stored: width x height x bytes per pixel of its data type."""
    band_dtype: str
    compressed_bytes: int | None = None
    model: str | None = None
    """The codec, e.g. ``sarcodec-r2 (weights 13090a93acaf), restoration filter on``."""

    @property
    def ratio(self) -> float | None:
        """Compression ratio against the band as stored."""
        return self.band_bytes / self.compressed_bytes if self.compressed_bytes else None


# ------------------------------------------------------------------ pictures
def png(pixels: np.ndarray) -> bytes:
    """Encode ``(h, w)`` grey or ``(h, w, 3)`` RGB uint8 as PNG (zlib only)."""
    arr = np.ascontiguousarray(pixels, dtype=np.uint8)
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


def grey(db: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear stretch of dB values: ``lo`` black, ``hi`` white, invalid black."""
    scaled = np.clip((db - lo) / max(hi - lo, 1e-6), 0, 1)
    return np.where(np.isfinite(scaled), scaled * 255, 0).astype(np.uint8)


def diverging(diff: np.ndarray, limit: float) -> np.ndarray:
    """Blue (negative) - white (0) - red (positive), clipped at ``±limit``; black where invalid."""
    t = np.clip(np.nan_to_num(diff / max(limit, 1e-6)), -1, 1)
    r = np.where(t < 0, 1 + t, 1.0)
    g = 1 - np.abs(t)
    b = np.where(t > 0, 1 - t, 1.0)
    rgb = (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)
    rgb[~np.isfinite(diff)] = 0
    return rgb


def colour_bar(colour: Callable[[np.ndarray], np.ndarray], lo: float, hi: float) -> np.ndarray:
    """A horizontal strip of ``colour`` applied to values from ``lo`` (left) to ``hi`` (right)."""
    values = np.linspace(lo, hi, BAR_STEPS, dtype=np.float64)
    return np.repeat(colour(values[np.newaxis, :]), 14, axis=0)


def worst_window(reference_db: np.ndarray, reconstruction_db: np.ndarray,
                 side: int = CROP_SIDE) -> tuple[int, int, int]:
    """``(row, col, side)`` of the square window with the largest mean squared difference.

    Windows are tried on a grid of a quarter of their side; a window must be at
    least half valid. Sums come from integral images, so any raster size is cheap.
    """
    h, w = reference_db.shape
    side = max(1, min(side, h, w))
    diff = reconstruction_db.astype(np.float64) - reference_db
    valid = np.isfinite(diff)
    sq = np.where(valid, diff, 0.0) ** 2

    def integral(a: np.ndarray) -> np.ndarray:
        return np.pad(np.cumsum(np.cumsum(a, axis=0), axis=1), ((1, 0), (1, 0)))

    step = max(1, side // 4)
    rows = np.unique(np.r_[np.arange(0, h - side + 1, step), h - side])
    cols = np.unique(np.r_[np.arange(0, w - side + 1, step), w - side])
    r, c = np.meshgrid(rows, cols, indexing="ij")

    def window_sums(ii: np.ndarray) -> np.ndarray:
        return ii[r + side, c + side] - ii[r, c + side] - ii[r + side, c] + ii[r, c]

    counts = window_sums(integral(valid.astype(np.float64)))
    means = np.where(counts >= 0.5 * side * side, window_sums(integral(sq)) / np.maximum(counts, 1), -1.0)
    best = np.unravel_index(int(np.argmax(means)), means.shape)
    return int(rows[best[0]]), int(cols[best[1]]), side


# ------------------------------------------------------------------ page
@dataclass(frozen=True)
class Pictures:
    """What the page shows: overview thumbnails (every ``step``-th pixel), the worst window's crops and the
    stretches (grey ``lo``..``hi`` dB, difference ``±limit`` dB). Built from whole images
    (:meth:`of_arrays`) or strip by strip (:mod:`engine.codec.quality.strips`)."""

    ref_thumb: np.ndarray
    rec_thumb: np.ndarray
    step: int
    window: tuple[int, int, int]  # row, col, side
    ref_crop: np.ndarray
    rec_crop: np.ndarray
    lo: float
    hi: float
    limit: float

    @classmethod
    def of_arrays(cls, reference_db: np.ndarray, reconstruction_db: np.ndarray) -> Pictures:
        valid = np.isfinite(reference_db)
        lo, hi = (np.percentile(reference_db[valid], STRETCH_PERCENTILES) if valid.any() else (0.0, 1.0))
        diff = reconstruction_db - reference_db
        finite = np.isfinite(diff)
        limit = float(np.percentile(np.abs(diff[finite]), DIFFERENCE_PERCENTILE)) if finite.any() else 1.0
        step = max(1, math.ceil(max(reference_db.shape) / THUMB_SIDE))
        row, col, side = worst_window(reference_db, reconstruction_db)
        window = (slice(row, row + side), slice(col, col + side))
        return cls(reference_db[::step, ::step], reconstruction_db[::step, ::step], step, (row, col, side),
                   reference_db[window], reconstruction_db[window], float(lo), float(hi), max(limit, 1e-3))


def _figure(caption: str, pixels: np.ndarray, scale: int = 1) -> str:
    data = base64.b64encode(png(pixels)).decode("ascii")
    width = f' width="{pixels.shape[1] * scale}"' if scale != 1 else ""
    return (f'<figure><img alt="{html.escape(caption)}"{width} src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _bar(caption: str, pixels: np.ndarray, lo: str, mid: str, hi: str) -> str:
    data = base64.b64encode(png(pixels)).decode("ascii")
    return (f'<div class="bar"><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f'<div class="ticks"><span>{lo}</span><span>{mid}</span><span>{hi}</span></div>'
            f"<div>{html.escape(caption)}</div></div>")


def _megabytes(n: int) -> str:
    return f"{n:,} bytes ({n / 1e6:.2f} MB)" if n >= 100_000 else f"{n:,} bytes ({n / 1e3:.1f} kB)"


def _ordinal(p: float) -> str:
    suffix = "th" if 10 <= p % 100 < 20 or p != int(p) else {1: "st", 2: "nd", 3: "rd"}.get(int(p) % 10, "th")
    return f"{p:g}{suffix}"


def _rows(report: QualityReport, sizes: Sizes | None) -> list[tuple[str, str]]:
    rows = [
        (f"PSNR (dB, peak = {report.peak_db:.2f} dB)", f"{report.psnr:.3f}"),
        ("SSIM", f"{report.ssim:.4f}"),
        ("ENL ratio (reconstruction / original)", f"{report.enl_ratio:.3f}"),
        ("EPI", f"{report.epi:.4f}"),
        ("Bits per pixel", "-" if report.bpp is None else f"{report.bpp:.4f}"),
        ("Valid pixels", f"{report.valid_pixels:,}"),
        ("Homogeneous blocks (ENL)", str(report.homogeneous_blocks)),
    ]
    if sizes is None:
        return rows
    if sizes.model:
        rows.insert(0, ("Model / rate point", sizes.model))
    rows.append(("Reference file on disk", _megabytes(sizes.reference_file_bytes)))
    rows.append((f"Reference band as stored ({sizes.band_dtype})", _megabytes(sizes.band_bytes)))
    if sizes.compressed_bytes is not None and sizes.ratio is not None:
        rows.append(("Compressed file", _megabytes(sizes.compressed_bytes)))
        rows.append(("Compression ratio (band as stored / compressed file)", f"{sizes.ratio:.1f} : 1"))
    return rows


def render_html(reference_db: np.ndarray, reconstruction_db: np.ndarray, report: QualityReport,
                title: str = "Compression quality", sizes: Sizes | None = None) -> str:
    """The report page of two whole dB images (see the module docstring)."""
    return render_page(Pictures.of_arrays(reference_db, reconstruction_db), report, title, sizes)


def render_page(s: Pictures, report: QualityReport, title: str = "Compression quality",
                sizes: Sizes | None = None) -> str:
    """The report page (see the module docstring)."""
    step, ref, rec = s.step, s.ref_thumb, s.rec_thumb
    scale = "full resolution" if step == 1 else f"every {step}th pixel (1:{step})"
    row, col, side = s.window
    crop_scale = max(1, min(4, 256 // side))
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                    for k, v in _rows(report, sizes))
    overview = "".join([
        _figure(f"Reference (dB), {scale}", grey(ref, s.lo, s.hi)),
        _figure(f"Reconstruction (dB), {scale}", grey(rec, s.lo, s.hi)),
        _figure(f"Difference, reconstruction - reference (dB), {scale}", diverging(rec - ref, s.limit)),
    ])
    ref_crop, rec_crop = s.ref_crop, s.rec_crop
    crops = "".join([
        _figure("Reference", grey(ref_crop, s.lo, s.hi), crop_scale),
        _figure("Reconstruction", grey(rec_crop, s.lo, s.hi), crop_scale),
        _figure("Difference", diverging(rec_crop - ref_crop, s.limit), crop_scale),
    ])
    bars = (
        _bar(f"Grey stretch: {s.lo:.1f} dB (black) to {s.hi:.1f} dB (white), the "
             f"{_ordinal(STRETCH_PERCENTILES[0])} to {_ordinal(STRETCH_PERCENTILES[1])} percentile of the "
             "reference's "
             "valid pixels; the same for both images",
             colour_bar(lambda v: grey(v, 0.0, 1.0), 0.0, 1.0),
             f"{s.lo:.1f} dB", f"{(s.lo + s.hi) / 2:.1f} dB", f"{s.hi:.1f} dB")
        + _bar(f"Difference scale: ±{s.limit:.2f} dB (the {_ordinal(DIFFERENCE_PERCENTILE)} percentile of "
               "|difference|; larger differences take the end colours); black = invalid",
               colour_bar(lambda v: diverging(v, s.limit), -s.limit, s.limit),
               f"-{s.limit:.2f} dB", "0", f"+{s.limit:.2f} dB")
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:1.5em}}"
        "table{border-collapse:collapse}th,td{border:1px solid #bbb;padding:4px 10px;text-align:left}"
        "figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}"
        "img{max-width:480px;image-rendering:pixelated}.bar{display:inline-block;width:256px;"
        "margin:0 2em 1em 0;vertical-align:top;font-size:90%}.bar img{width:256px;height:14px}"
        ".ticks{display:flex;justify-content:space-between}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table>{table}</table>"
        f"<h2>Overview</h2>{bars}<br>{overview}"
        f"<h2>Full-resolution crop where the difference is largest</h2>"
        f"<p>Rows {row}-{row + side - 1}, columns {col}-{col + side - 1} ({side} x {side} pixels, the "
        f"window with the largest mean squared difference), shown {crop_scale}x enlarged, same stretches."
        f"</p>{crops}"
        "<p>PSNR and SSIM in the dB domain; ENL ratio on the homogeneous blocks of the original "
        "(lowest coefficient of variation of linear intensity); EPI = correlation of Sobel gradient "
        "magnitudes.</p></body></html>"
    )


def write_html_report(path: str | os.PathLike[str], pictures: Pictures, report: QualityReport,
                      title: str = "Compression quality", sizes: Sizes | None = None) -> Path:
    """Write :func:`render_page` to ``path`` atomically."""
    from ...raster_io import atomic_output

    page = render_page(pictures, report, title, sizes)
    with atomic_output(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return Path(path)
