"""Plausibility of the declared kind of SAR values (intensity, amplitude or dB) before a run.

A raster in dB declared as intensity silently turns every negative value into nodata (93 % of a
typical scene); linear digital numbers declared as dB are taken for +60 dB backscatter. Entry
points that take an input kind call :func:`check_input_kind` first, which refuses (nothing is
written) when:

* the band's description, unit or metadata says dB / decibel and the declared kind is linear;
* more than :data:`NEGATIVE_SHARE` of the valid values are negative and the declared kind is
  linear (intensity and amplitude cannot be negative);
* more than :data:`ABOVE_DB_SHARE` of the valid values exceed :data:`MAX_PLAUSIBLE_DB` and the
  declared kind is dB (no backscatter reaches it; linear digital numbers do);

and warns through the run log when the raster looks like an optical picture (three or more 8-bit
bands that are not copies of one grey band, with RGB colour interpretation or strongly correlated
bands). Values are read decimated (:func:`engine.raster_io.read_decimated`), so the check costs
about the same on any scene size.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .preprocess import LINEAR_KINDS
from .run import QUIET, Run

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
SAMPLE_SIDE = 1024
"""Longer side of the decimated read the values are judged on."""
_DB_WORDS = re.compile(r"(?<![A-Za-z])dB(?![A-Za-z])|decibel", re.IGNORECASE)


@dataclass(frozen=True)
class KindAdvice:
    """What to tell the user when the values look like another kind: one sentence per apparent kind."""

    looks_db: str
    looks_linear: str

    @classmethod
    def for_parameter(cls, parameter: str) -> KindAdvice:
        return cls(f"Choose {parameter}=db.", f"Choose {parameter}=intensity or {parameter}=amplitude.")


def check_input_kind(path: str | os.PathLike[str], band: int, kind: str, *, run: Run = QUIET,
                     parameter: str = "INPUT_KIND", advice: KindAdvice | None = None) -> None:
    """Raise :class:`InputError` when band ``band`` of ``path`` does not look like ``kind`` values.

    ``parameter`` names the setting the user changes (used by the default ``advice``). Warns through
    ``run`` when the raster looks like an optical picture. Expects a raster that
    :func:`engine.raster_io.inspect_raster` accepted.
    """
    from .raster_io import open_raster, read_decimated

    advice = advice or KindAdvice.for_parameter(parameter)
    name = Path(path).name
    with open_raster(path) as src:
        _check_metadata(src, band, kind, name, parameter, advice)
        nodata = None if src.nodata is None else float(src.nodata)
        sample = read_decimated(src, band, SAMPLE_SIDE)
        _check_values(sample, nodata, band, kind, name, advice)
        optical = _optical_evidence(src, nodata)
    if optical:
        run.warn(f"'{name}' looks like an optical picture, not SAR backscatter ({optical}); band {band} "
                 f"is processed as SAR {kind} values. Choose a SAR raster if that is not what you meant.",
                 logger=logger)


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


def _check_values(sample: np.ndarray, nodata: float | None, band: int, kind: str, name: str,
                  advice: KindAdvice) -> None:
    valid = np.isfinite(sample) & (sample != 0)
    if nodata is not None and not np.isnan(nodata):
        valid &= sample != nodata
    values = sample[valid]
    if values.size < MIN_VALUES:
        return  # too little to judge on (an empty band is reported by the entry point itself)
    where = f"band {band} of '{name}' (judged on a {sample.shape[1]} x {sample.shape[0]} sample)"
    if kind in LINEAR_KINDS:
        negative = float(np.mean(values < 0))
        if negative > NEGATIVE_SHARE:
            raise InputError(
                f"{100 * negative:.1f} % of the valid values of {where} are negative, which {kind} cannot "
                f"be: the values look like dB. {advice.looks_db}"
            )
    else:
        above = float(np.mean(values > MAX_PLAUSIBLE_DB))
        if above > ABOVE_DB_SHARE:
            raise InputError(
                f"{100 * above:.1f} % of the valid values of {where} are above {MAX_PLAUSIBLE_DB:.0f} dB, "
                "which no SAR backscatter reaches: the values look linear (intensity, amplitude or "
                f"digital numbers). {advice.looks_linear}"
            )


def _optical_evidence(src: Any, nodata: float | None) -> str:
    """Why the raster looks like an optical 8-bit picture ('' when it does not)."""
    from .raster_io import read_decimated

    if src.count < 3 or any(dtype != "uint8" for dtype in src.dtypes[:3]):
        return ""
    rgb = read_decimated(src, [1, 2, 3], SAMPLE_SIDE // 2).reshape(3, -1)
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
