"""The measured figures of the codec's rate points and the rate-distortion hull check.

A rate point is *dominated* when another point gives more PSNR for no more bits (or as much for
fewer), or when mixing two other points, tile by tile, would give more PSNR for its bits (the line
between them, drawn in bits and squared error: :func:`dominated`). Every shipped point must be on
this hull on the real and on the synthetic validation images (:func:`hull_check`).

The measurement (``rate_points.json`` beside this module) is written by
``python -m benchmarks.rate_points`` on the rate-choice validation set; :func:`typical` averages it
per rate point over the images of one group (``real`` or ``synthetic``), giving the figures the help
tables show and the targets are chosen with.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ModelError

MEASUREMENT = Path(__file__).with_name("rate_points.json")
"""The committed measurement of the shipped rate points on the validation set."""
MEASURE_COMMAND = "make bench-rate-points"
"""The command that writes :data:`MEASUREMENT` (``python -m benchmarks.rate_points --data ../shared/data/real
--json engine/codec/rate_points.json --markdown docs/BENCHMARKS.md``)."""


@dataclass(frozen=True)
class RateFigures:
    """Mean figures of one rate point over a set of images (file bits per pixel, PSNR in dB with
    peak = each image's dB range, SSIM, ENL ratio, EPI) and how many images they average."""

    rate: str
    bpp: float
    psnr: float
    ssim: float
    enl_ratio: float
    epi: float
    images: int


def dominated(points: Mapping[str, tuple[float, float]], tolerance_db: float = 0.0) -> dict[str, str]:
    """The points of ``{name: (bpp, psnr)}`` that are not on the rate-distortion hull, with the reason.

    A point is dominated by another point with no more bits and more PSNR (or fewer bits and no less
    PSNR), or by the mix of two points on either side of it in bpp: coding a share ``t`` of the
    tiles with one and the rest with the other mixes their bits and their squared errors linearly,
    so the line between them is drawn in (bpp, mean squared error) and the mix's PSNR at the point's
    bpp is ``-10 log10`` of the interpolated error (below the straight PSNR chord). ``tolerance_db``:
    how far (dB) below another point or a mix a point may lie before it counts as dominated.
    """
    reasons: dict[str, str] = {}
    for name, (bpp, psnr) in points.items():
        others = [(n, b, p) for n, (b, p) in points.items() if n != name]
        bar = psnr + tolerance_db
        beaten = [(n, b, p) for n, b, p in others if (b <= bpp and p > bar) or (b < bpp and p >= bar)]
        if beaten:
            other, b, p = beaten[0]
            reasons[name] = (f"{name} ({bpp:.3f} bpp, {psnr:.2f} dB) is beaten by {other} "
                             f"({b:.3f} bpp, {p:.2f} dB)")
            continue
        mix = _best_mix(bpp, others)
        if mix is not None and mix[0] > bar:
            best, low, high = mix
            reasons[name] = (f"{name} ({bpp:.3f} bpp, {psnr:.2f} dB) lies below the mix of {low} and "
                             f"{high} ({best:.2f} dB at {bpp:.3f} bpp)")
    return reasons


def _best_mix(bpp: float, others: Iterable[tuple[str, float, float]]) -> tuple[float, str, str] | None:
    """The highest PSNR at ``bpp`` of a mix of a point below and a point above it in bpp."""
    below = [(n, b, _error(p)) for n, b, p in others if b < bpp]
    above = [(n, b, _error(p)) for n, b, p in others if b > bpp]
    best: tuple[float, str, str] | None = None
    for low, b0, e0 in below:
        for high, b1, e1 in above:
            error = e0 + (e1 - e0) * (bpp - b0) / (b1 - b0)
            psnr = -10.0 * math.log10(error)
            if best is None or psnr > best[0]:
                best = (psnr, low, high)
    return best


def _error(psnr: float) -> float:
    """Mean squared error relative to the squared peak of a PSNR in dB."""
    return 10.0 ** (-psnr / 10.0)


def hull_points(rows: Iterable[Mapping[str, Any]], images: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Per rate point over ``images``: (mean bpp, PSNR of the mean relative squared error) - the
    figures a mix of points over these images adds up linearly, which :func:`dominated` takes."""
    keep = set(images)
    sums: dict[str, list[float]] = {}
    for row in rows:
        if row["image"] in keep:
            acc = sums.setdefault(row["rate"], [0.0, 0.0, 0.0])
            acc[0] += float(row["bpp"])
            acc[1] += _error(float(row["psnr"]))
            acc[2] += 1
    return {rate: (b / n, -10.0 * math.log10(e / n)) for rate, (b, e, n) in sums.items()}


HULL_GROUPS = ("real", "synthetic")
"""A shipped point must be on the hull of each group of the validation set (mean over its images)."""


def hull_check(measurement: Mapping[str, Any], rates: Iterable[str] | None = None,
               ) -> dict[str, dict[str, str]]:
    """Per group of the measurement's images (:data:`HULL_GROUPS`, and ``all`` of them), the rate
    points (all measured, or ``rates``) that are dominated there, with the reason."""
    keep = None if rates is None else set(rates)
    rows = [r for r in measurement["rows"] if keep is None or r["rate"] in keep]
    groups = {g: group_images(measurement, g) for g in HULL_GROUPS}
    groups["all"] = [im["name"] for im in measurement["images"]]
    return {g: dominated(hull_points(rows, names)) for g, names in groups.items() if names}


def typical(rows: Iterable[Mapping[str, Any]], images: Iterable[str] | None = None) -> dict[str, RateFigures]:
    """Per rate point, the mean figures over its ``rows`` (only those of ``images`` when given)."""
    keep = None if images is None else set(images)
    by_rate: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if keep is None or row["image"] in keep:
            by_rate.setdefault(row["rate"], []).append(row)

    def mean(values: list[Mapping[str, Any]], key: str) -> float:
        finite = [float(v[key]) for v in values if math.isfinite(float(v[key]))]
        return sum(finite) / len(finite) if finite else math.nan

    return {rate: RateFigures(rate, mean(rs, "bpp"), mean(rs, "psnr"), mean(rs, "ssim"),
                              mean(rs, "enl_ratio"), mean(rs, "epi"), len(rs))
            for rate, rs in by_rate.items()}


def group_images(measurement: Mapping[str, Any], group: str) -> list[str]:
    """Names of the measurement's images of ``group`` (``real`` or ``synthetic``)."""
    return [im["name"] for im in measurement["images"] if im["group"] == group]


def load_measurement(path: str | os.PathLike[str] = MEASUREMENT) -> dict[str, Any]:
    """A rate-point measurement written by ``python -m benchmarks.rate_points``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"Cannot read the rate-point measurement '{path}' ({exc}); reinstall the plugin or "
                         f"rerun: {MEASURE_COMMAND}") from exc
    if not isinstance(data, dict) or "rows" not in data or "images" not in data:
        raise ModelError(f"'{path}' is not a rate-point measurement (no rows/images); "
                         f"rerun: {MEASURE_COMMAND}")
    return data


@lru_cache(maxsize=1)
def real_sar_figures() -> dict[str, RateFigures]:
    """The typical figures of every measured rate point on the real SAR validation images."""
    data = load_measurement()
    return typical(data["rows"], group_images(data, "real"))
