"""What a raster's values are (SAR intensity, amplitude, dB or an optical picture), judged on a sample.

One place for every algorithm that takes SAR values:

* :func:`check_input_kind` (the declared kind) refuses (nothing is written) when

  * the band's description, unit or metadata says dB / decibel and the declared kind is linear;
  * more than :data:`NEGATIVE_SHARE` of the valid values are negative and the declared kind is
    linear (intensity and amplitude cannot be negative);
  * more than :data:`ABOVE_DB_SHARE` of the valid values exceed :data:`MAX_PLAUSIBLE_DB` and the
    declared kind is dB (no backscatter reaches it; linear digital numbers do);

  and warns through the run log when the values do not look like SAR backscatter: an 8-bit colour
  picture (three bands that are not copies of one grey band, RGB colour interpretation or strongly
  correlated bands), or, whatever the data type, a band without speckle (:func:`optical_evidence`:
  neighbouring pixels differ by less than :data:`SPECKLE_CONTRAST`, no heavy bright tail; in dB,
  a spread below :data:`DB_MIN_SPREAD`) - a 4-band float reflectance image, a panchromatic band.
  It returns the :class:`ValueStats` it judged, from which :func:`uncalibrated_shift_db` tells
  raw digital numbers from calibrated backscatter.
* :func:`classify` resolves an ``auto`` kind (keypointregister): negative values or a float band
  spread over tens of dB are SAR in dB (never optical), speckled linear values are amplitude,
  the rest optical.

Values are read from a bounded sample (:func:`read_sample`: at most :data:`SAMPLE_WINDOWS` windows
of :data:`SAMPLE_WINDOW` pixels spread over the raster, every band needed read in the same pass), so
the check costs the same on any scene size and polls for cancel between windows.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .preprocess import LINEAR_KINDS, range_shift_db, source_db
from .run import QUIET, Run
from .tiling import Window, band_list

logger = logging.getLogger(__name__)

NEGATIVE_SHARE = 0.05
"""Largest share of negative valid values accepted for linear intensity or amplitude."""
MAX_PLAUSIBLE_DB = 100.0
"""No SAR backscatter lies above this many dB (uint16 amplitude numbers reach 96 dB)."""
ABOVE_DB_SHARE = 0.01
"""Largest share of valid values above :data:`MAX_PLAUSIBLE_DB` accepted for dB."""
OPTICAL_CORRELATION = 0.8
"""8-bit bands correlated at least this much (pairwise) look like an optical picture."""
MIN_VALUES = 64
"""Fewer valid values than this are not judged (a share of a handful says nothing)."""
SAMPLE_WINDOWS = 16
"""At most this many windows (a 4 x 4 grid over the raster) are read to judge the values."""
SAMPLE_WINDOW = 256
"""Side of each sample window, in pixels (smaller rasters are read whole)."""
SPECKLE_CONTRAST = 0.05
"""Median ``|a - b| / (a + b)`` of horizontal neighbours at or above which linear values are speckled.
Independent speckle gives 0.50 (1-look intensity), 0.27 (1-look amplitude), 0.12 (4.4-look amplitude,
a Sentinel-1 GRD) and 0.054 even at 20 looks in amplitude; optical images of the same scenes give
0.00-0.03 (a smooth surface barely changes from one pixel to the next)."""
HEAVY_TAIL = 20.0
"""Linear values whose 99.9th percentile exceeds this many times the median have SAR's bright tail."""
DB_MIN_SPREAD = 6.0
"""dB values spread over at least this many dB (1st to 99th percentile); SAR scenes span 15-40 dB, a
reflectance of 0..1 read as dB spans less than 1."""
LINEAR_SKEW = 3.0
"""Linear SAR values: (99th percentile - median) / (median - 1st percentile) of about 15 (amplitude) to
200 (intensity) on a scene; SAR values in dB: 0.4-1.5."""
MAX_CALIBRATED_MEDIAN_DB = 5.0
"""Calibrated backscatter (sigma0, gamma0, beta0) has its median below this many dB, even in cities;
digital numbers do not (a Sentinel-1 GRD's amplitude numbers lie near +40 dB)."""
_DB_WORDS = re.compile(r"(?<![A-Za-z])dB(?![A-Za-z])|decibel", re.IGNORECASE)


def heavy_tailed(values: np.ndarray) -> bool:
    """Whether ``values`` (finite) are non-negative with a 99.9th percentile above :data:`HEAVY_TAIL` times
    their median: linear SAR's bright tail, which a display-stretched 8-bit image or dB values lack."""
    if values.size == 0 or float(values.min()) < 0:
        return False
    median, top = (float(v) for v in np.percentile(values, [50, 99.9]))
    return top > HEAVY_TAIL * max(median, 1e-12)


@dataclass(frozen=True)
class KindAdvice:
    """What to tell the user when the values look like another kind: one sentence per apparent kind."""

    looks_db: str
    looks_linear: str

    @classmethod
    def for_parameter(cls, parameter: str) -> KindAdvice:
        return cls(f"Choose {parameter}=db.", f"Choose {parameter}=intensity or {parameter}=amplitude.")


# ------------------------------------------------------------------ the sample
def sample_windows(height: int, width: int, count: int = SAMPLE_WINDOWS,
                   side: int = SAMPLE_WINDOW) -> list[Window]:
    """Up to ``count`` windows of ``side`` pixels (clipped to the raster) on an even grid over it."""
    per_axis = max(1, math.isqrt(count))
    h, w = min(side, height), min(side, width)
    rows = sorted({round(r) for r in np.linspace(0, height - h, min(per_axis, -(-height // h)))})
    cols = sorted({round(c) for c in np.linspace(0, width - w, min(per_axis, -(-width // w)))})
    return [Window(r, c, h, w) for r in rows for c in cols]


def read_sample(src: Any, bands: int | Sequence[int], run: Run = QUIET) -> np.ndarray:
    """The sample windows of each of ``bands``, read together: ``(bands, n, h, w)`` float64; cancel is
    polled before each window."""
    from .raster_io import read_window

    chosen = band_list(bands)
    out = []
    for window in sample_windows(src.height, src.width):
        run.check("Reading a sample of the values")
        out.append(read_window(src, chosen, window, dtype=np.float64))
    return np.stack(out, axis=1)


def _band_mean(samples: np.ndarray) -> np.ndarray:
    """``(n, h, w)``: the mean of the bands' samples ``(bands, n, h, w)`` (one band: its sample)."""
    return samples.mean(axis=0) if len(samples) > 1 else samples[0]


def _colour_bands(src: Any) -> tuple[int, ...]:
    """Bands 1-3 when the raster may be an 8-bit colour picture, else none."""
    return (1, 2, 3) if src.count >= 3 and all(dtype == "uint8" for dtype in src.dtypes[:3]) else ()


def _samples(src: Any, bands: Sequence[int], run: Run) -> dict[int, np.ndarray]:
    """The sample of each of ``bands`` and of the colour bands (:func:`_colour_bands`), in one pass."""
    wanted = list(dict.fromkeys([*bands, *_colour_bands(src)]))
    return dict(zip(wanted, read_sample(src, wanted, run), strict=True))


@dataclass(frozen=True)
class ValueStats:
    """What the sample of one band says about its values (raw values, as stored)."""

    values: np.ndarray
    """The valid sample values (finite, not nodata, not 0), 1-D float64."""
    windows: str
    """How the sample was taken, for messages."""
    contrast: float
    """Median ``|a - b| / (a + b)`` of horizontal neighbours that are both valid and positive."""
    integral: bool
    """Whether the stored values are whole numbers (digital numbers: never fractions of a dB)."""

    @classmethod
    def of(cls, sample: np.ndarray, nodata: float | None, stored: np.ndarray | None = None) -> ValueStats:
        """Statistics of ``sample`` ``(n, h, w)`` (NaN, 0 and ``nodata`` are invalid); ``stored``: the
        band samples ``sample`` was computed from (their mean), judged for whole numbers instead of it -
        the mean of two integer bands has halves, yet the raster holds digital numbers."""
        valid = np.isfinite(sample) & (sample != 0)
        if nodata is not None and not np.isnan(nodata):
            valid &= sample != nodata
        pair = valid[..., 1:] & valid[..., :-1] & (sample[..., 1:] > 0) & (sample[..., :-1] > 0)
        a, b = sample[..., 1:][pair], sample[..., :-1][pair]
        contrast = float(np.median(np.abs(a - b) / (a + b))) if a.size else math.nan
        n, h, w = sample.shape
        raw = sample[valid] if stored is None else stored[:, valid]
        integral = bool(np.all(raw == np.round(raw)))
        return cls(sample[valid], f"{n} window(s) of {w} x {h} px", contrast, integral)

    @property
    def enough(self) -> bool:
        return self.values.size >= MIN_VALUES

    def share(self, condition: np.ndarray) -> float:
        return float(np.mean(condition)) if self.values.size else 0.0

    @property
    def negative(self) -> float:
        return self.share(self.values < 0)

    def percentiles(self, *q: float) -> list[float]:
        return [float(v) for v in np.percentile(self.values, q)]

    @property
    def speckled(self) -> bool:
        """Linear values with SAR's speckle or bright tail."""
        if self.values.size == 0 or float(self.values.min()) < 0:
            return False
        return (self.contrast >= SPECKLE_CONTRAST) or heavy_tailed(self.values)

    @property
    def db_spread(self) -> float:
        low, high = self.percentiles(1, 99)
        return high - low

    @property
    def db_like(self) -> bool:
        """Stored as fractions, no higher than any backscatter in dB, spread like a SAR scene in dB and
        not skewed like linear values (whose 99th percentile lies far above the median, at least
        :data:`LINEAR_SKEW` times as far as the 1st lies below it; dB values are nearly symmetric)."""
        if self.integral:
            return False
        low, median, high = self.percentiles(1, 50, 99)
        return (high <= MAX_PLAUSIBLE_DB and high - low >= DB_MIN_SPREAD
                and high - median < LINEAR_SKEW * (median - low))


# ------------------------------------------------------------------ declared kinds
def check_input_kind(path: str | os.PathLike[str], band: int, kind: str, *, run: Run = QUIET,
                     parameter: str = "INPUT_KIND", advice: KindAdvice | None = None) -> ValueStats:
    """Raise :class:`InputError` when band ``band`` of ``path`` does not look like ``kind`` values.

    ``parameter`` names the setting the user changes (used by the default ``advice``). Warns through
    ``run`` when the values do not look like SAR backscatter. Expects a raster that
    :func:`engine.raster_io.inspect_raster` accepted. Returns the statistics it judged.
    """
    from .raster_io import open_raster

    advice = advice or KindAdvice.for_parameter(parameter)
    name = Path(path).name
    with open_raster(path) as src:
        _check_metadata(src, band, kind, name, parameter, advice)
        nodata = None if src.nodata is None else float(src.nodata)
        samples = _samples(src, [band], run)
        stats = ValueStats.of(samples[band], nodata)
        _check_values(stats, band, kind, name, advice)
        optical = _colour_evidence(src, samples, nodata) or optical_evidence(stats, kind)
    if optical:
        run.warn(f"'{name}' looks like an optical picture (or a smoothed display rendering), not SAR "
                 f"backscatter ({optical}); band {band} is processed as SAR {kind} values. Choose a SAR "
                 "raster if that is not what you meant.", logger=logger)
    return stats


def _metadata_texts(src: Any, band: int) -> Mapping[str, str]:
    """Where the band's unit may be written: description, unit type, band and (single band) dataset tags."""
    texts = {"band description": src.descriptions[band - 1] or "", "band unit": src.units[band - 1] or ""}
    texts.update({f"band tag {k}": str(v) for k, v in src.tags(band).items()})
    if src.count == 1:
        texts.update({f"tag {k}": str(v) for k, v in src.tags().items()})
    return texts


def _check_metadata(src: Any, band: int, kind: str, name: str, parameter: str, advice: KindAdvice) -> None:
    if kind not in LINEAR_KINDS:
        return
    for where, text in _metadata_texts(src, band).items():
        if _DB_WORDS.search(text):
            raise InputError(
                f"Band {band} of '{name}' is marked as decibels ({where}: '{text[:80]}'), but "
                f"{parameter} says {kind}. {advice.looks_db}"
            )


def _check_values(stats: ValueStats, band: int, kind: str, name: str, advice: KindAdvice) -> None:
    if not stats.enough:
        return  # too little to judge on (an empty band is reported by the entry point itself)
    where = f"band {band} of '{name}' (judged on {stats.windows})"
    if kind in LINEAR_KINDS:
        if stats.negative > NEGATIVE_SHARE:
            raise InputError(
                f"{100 * stats.negative:.1f} % of the valid values of {where} are negative, which {kind} "
                f"cannot be: the values look like dB. {advice.looks_db}"
            )
        return
    above = stats.share(stats.values > MAX_PLAUSIBLE_DB)
    if above > ABOVE_DB_SHARE:
        raise InputError(
            f"{100 * above:.1f} % of the valid values of {where} are above {MAX_PLAUSIBLE_DB:.0f} dB, "
            "which no SAR backscatter reaches: the values look linear (intensity, amplitude or "
            f"digital numbers). {advice.looks_linear}"
        )


def optical_evidence(stats: ValueStats, kind: str) -> str:
    """Why values declared as SAR ``kind`` look like an optical image ('' when they do not)."""
    if not stats.enough or stats.negative > NEGATIVE_SHARE:
        return ""
    if kind in LINEAR_KINDS:
        if stats.speckled:
            return ""
        return (f"no speckle: neighbouring pixels differ by {100 * stats.contrast:.1f} % (SAR: at least "
                f"{100 * SPECKLE_CONTRAST:.0f} %), and no bright tail")
    if stats.db_spread >= DB_MIN_SPREAD:
        return ""
    return (f"the values span {stats.db_spread:.2f} dB from the 1st to the 99th percentile (a SAR scene: "
            f"at least {DB_MIN_SPREAD:.0f} dB)")


def _colour_evidence(src: Any, samples: Mapping[int, np.ndarray], nodata: float | None) -> str:
    """Why the raster looks like an optical 8-bit colour picture ('' when it does not), from the
    ``samples`` of its bands (:func:`_samples`)."""
    if not _colour_bands(src):
        return ""
    rgb = np.stack([samples[b] for b in (1, 2, 3)]).reshape(3, -1)
    if nodata is not None:
        rgb = rgb[:, np.all(rgb != nodata, axis=0)]
    if rgb.shape[1] < 2 or np.all(rgb == rgb[:1]):
        return ""  # one grey band stored three times (a SAR display picture may be)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(rgb)
    lowest = float(np.nanmin(corr[np.triu_indices(3, 1)])) if np.isfinite(corr).any() else float("nan")
    colour = [str(getattr(c, "name", c)) for c in src.colorinterp[:3]] == ["red", "green", "blue"]
    if not colour and not lowest >= OPTICAL_CORRELATION:
        return ""
    parts = [f"{src.count} bands of 8-bit values"]
    if colour:
        parts.append("colour interpretation red, green, blue")
    if np.isfinite(lowest):
        parts.append(f"band correlation at least {lowest:.2f}")
    return ", ".join(parts)


# ------------------------------------------------------------------ raw numbers and auto kinds
def uncalibrated_shift_db(stats: ValueStats, kind: str, db_min: float, db_max: float) -> float:
    """The dB shift that brings digital numbers into a model's range; 0 for calibrated backscatter.

    Values whose median lies above :data:`MAX_CALIBRATED_MEDIAN_DB` (as ``kind``) are raw digital
    numbers: they are shifted with the codec's rule (:func:`engine.preprocess.range_shift_db`).
    """
    if not stats.enough:
        return 0.0
    db, valid = source_db(stats.values, kind, None)
    values = db[valid]
    if values.size < MIN_VALUES or float(np.median(values)) <= MAX_CALIBRATED_MEDIAN_DB:
        return 0.0
    low, high = (float(v) for v in np.percentile(values, [1, 99]))
    return range_shift_db(low, high, db_min, db_max)


def classify(stats: ValueStats, role: str = "REFERENCE", pictures: bool = False) -> str:
    """``db``, ``amplitude`` or ``optical`` for an ``auto`` kind, from the values alone.

    Negative values, or fractional values spread over :data:`DB_MIN_SPREAD` dB or more below
    :data:`MAX_PLAUSIBLE_DB` and not skewed like linear values, are dB (a dB raster is never taken as
    optical). Otherwise the ``INPUT`` role is SAR by the algorithm's contract (linear amplitude;
    intensity gives the same prepared image); a REFERENCE is optical when ``pictures`` (several
    different bands, or an 8-bit colour picture) or when its values have no speckle, else amplitude.
    """
    if stats.enough and (stats.negative > NEGATIVE_SHARE or stats.db_like):
        return "db"
    if role == "INPUT":
        return "amplitude"
    return "amplitude" if stats.enough and not pictures and stats.speckled else "optical"


def auto_kind(path: str | os.PathLike[str], bands: Sequence[int], role: str, run: Run = QUIET) -> str:
    """:func:`classify` the mean of ``bands`` of ``path`` (read from the bounded sample)."""
    from .raster_io import open_raster

    with open_raster(path) as src:
        nodata = None if src.nodata is None else float(src.nodata)
        samples = _samples(src, bands, run)
        chosen = np.stack([samples[b] for b in bands])
        stats = ValueStats.of(_band_mean(chosen), nodata, stored=chosen)
        # several different bands (not one grey band stored again, as a SAR picture saved as RGB may be)
        several = len(bands) >= 3 and not all(np.array_equal(chosen[0], c) for c in chosen[1:])
        pictures = several or bool(_colour_evidence(src, samples, nodata))
    kind = classify(stats, role, pictures)
    run.say(f"{role} values taken as {kind} (judged on {stats.windows}; set the kind to override)",
            logger=logger)
    return kind
