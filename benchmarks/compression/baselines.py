"""GDAL JPEG2000 and LERC matched to the codec's bits per pixel, and their fixed-setting sweeps."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.codec.quality import metrics as quality

from .rows import BenchImage, Row, scored_row

# ------------------------------------------------------------------ baselines
#: (bpp, dB image back, encode s, decode s) of one round trip through a codec.
RoundTripResult = tuple[float, np.ndarray, float, float]
#: A codec round trip of a dB image at one setting, into one file: ``jp2_roundtrip``, ``lerc_roundtrip``.
RoundTrip = Callable[[np.ndarray, float, Path], RoundTripResult]
Trial = Callable[[float, Path], RoundTripResult]


def _valid_range(ref: np.ndarray) -> tuple[float, float]:
    values = ref[np.isfinite(ref)]
    lo, hi = float(values.min()), float(values.max())
    return lo, hi if hi > lo else lo + 1.0


def gdal_roundtrip(
    path: Path, band: np.ndarray, read_dtype: type | None = None, **creation: Any
) -> RoundTripResult:
    """Write ``band`` with the ``creation`` options (driver, codec settings), read it back.

    Returns (bpp of the file, the band read back, cast to ``read_dtype`` if given, encode s, decode s).
    """
    import rasterio

    h, w = band.shape
    start = time.perf_counter()
    with (
        rasterio.Env(GDAL_PAM_ENABLED="NO"),
        rasterio.open(path, "w", width=w, height=h, count=1, dtype=band.dtype.name, **creation) as dst,
    ):
        dst.write(band, 1)
    enc_s = time.perf_counter() - start
    start = time.perf_counter()
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path) as src:
        back = src.read(1)
        if read_dtype is not None:
            back = back.astype(read_dtype)
    dec_s = time.perf_counter() - start
    return 8.0 * path.stat().st_size / (h * w), back, enc_s, dec_s


def jp2_roundtrip(ref: np.ndarray, quality_pct: float, path: Path) -> RoundTripResult:
    """Write the dB image scaled to UInt16 as JPEG2000 with ``QUALITY``; (bpp, dB back, enc s, dec s)."""
    lo, hi = _valid_range(ref)
    valid = np.isfinite(ref)
    u16 = np.where(valid, np.round((np.where(valid, ref, lo) - lo) / (hi - lo) * 65535.0), 0).astype(
        np.uint16
    )
    bpp, back, enc_s, dec_s = gdal_roundtrip(
        path,
        u16,
        np.float64,
        driver="JP2OpenJPEG",
        QUALITY=f"{quality_pct:.4f}",
        REVERSIBLE="NO",
        GMLJP2="NO",
    )
    db = np.where(valid, back / 65535.0 * (hi - lo) + lo, np.nan).astype(np.float32)
    return bpp, db, enc_s, dec_s


def lerc_roundtrip(ref: np.ndarray, max_z_error: float, path: Path) -> RoundTripResult:
    """Write the float32 dB image as GTiff LERC with ``MAX_Z_ERROR``; (bpp, dB back, enc s, dec s)."""
    lo, _ = _valid_range(ref)
    valid = np.isfinite(ref)
    bpp, back, enc_s, dec_s = gdal_roundtrip(
        path,
        np.where(valid, ref, lo).astype(np.float32),
        driver="GTiff",
        COMPRESS="LERC",
        MAX_Z_ERROR=f"{max_z_error:.6g}",
        TILED="YES",
        BLOCKXSIZE=256,
        BLOCKYSIZE=256,
    )
    db = np.where(valid, back, np.nan).astype(np.float32)
    return bpp, db, enc_s, dec_s


def match_bpp(
    trial: Trial, target: float, low: float, high: float, path: Path, increasing: bool, iterations: int = 9
) -> tuple[float, RoundTripResult]:
    """Bisect a codec parameter (log scale) so that its real bpp is closest to ``target``."""
    best: tuple[float, RoundTripResult] | None = None
    a, b = math.log(low), math.log(high)
    for _ in range(iterations):
        mid = 0.5 * (a + b)
        result = trial(math.exp(mid), path)
        if best is None or abs(result[0] - target) < abs(best[1][0] - target):
            best = (math.exp(mid), result)
        too_big = result[0] > target
        if too_big == increasing:
            b = mid
        else:
            a = mid
        if abs(result[0] - target) <= 0.01 * target:
            break
    assert best is not None
    return best


def run_baselines(image: BenchImage, target_bpp: float, rate: str, work: Path) -> list[Row]:
    """JPEG2000 and LERC, each with its setting bisected to ``target_bpp`` (the codec's at ``rate``)."""
    lo, hi = _valid_range(image.ref_db)
    q0 = 100.0 * target_bpp / 16.0
    searches: tuple[tuple[str, RoundTrip, str, float, float, str, bool, int], ...] = (
        # method, round trip, setting, bisection range, file, bpp grows with the setting, iterations
        ("JPEG2000", jp2_roundtrip, "QUALITY={:.3g}", q0 / 8, min(q0 * 8, 100.0), "bench.jp2", True, 9),
        ("LERC", lerc_roundtrip, "MAX_Z_ERROR={:.3g} dB", 1e-3, hi - lo, "bench_lerc.tif", False, 12),
    )
    rows = []
    for method, roundtrip, setting, low, high, name, increasing, iterations in searches:
        value, (bpp, rec, enc_s, dec_s) = match_bpp(
            functools.partial(roundtrip, image.ref_db),
            target_bpp,
            low,
            high,
            work / name,
            increasing=increasing,
            iterations=iterations,
        )
        rows.append(scored_row(image, method, f"{setting.format(value)} (vs {rate})", bpp, rec, enc_s, dec_s))
    return rows


SWEEP_BPP = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
LERC_SWEEP_DB = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0)


def _sweep_row(image: str, method: str, bpp: float, psnr: float) -> Row:
    nan = math.nan
    return Row(image, method, "sweep", bpp, psnr, nan, nan, nan, nan, nan)


def sweep_baselines(image: BenchImage, work: Path) -> list[Row]:
    """JPEG2000 and LERC at fixed settings, for the rate-distortion curves of the plot."""
    rows = []
    for bpp_target in SWEEP_BPP:
        bpp, rec, _, _ = jp2_roundtrip(image.ref_db, 100.0 * bpp_target / 16.0, work / "sweep.jp2")
        rows.append(_sweep_row(image.name, "JPEG2000", bpp, quality.psnr(image.ref_db, rec)))
    for z in LERC_SWEEP_DB:
        bpp, rec, _, _ = lerc_roundtrip(image.ref_db, z, work / "sweep_lerc.tif")
        rows.append(_sweep_row(image.name, "LERC", bpp, quality.psnr(image.ref_db, rec)))
    return rows
