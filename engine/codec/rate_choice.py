"""Which rate point a compression runs: by name (``RATE``), by a quality in words, or by a target.

The RATE parameter's option order is a contract (scripts and graphical models pass indices), so it
is fixed here (:data:`RATE_OPTIONS`), retired points included. A retired point (dominated on the
validation set: :mod:`.rate_points`) still runs: it maps to the nearest surviving point in bits per
pixel, with a deprecation message in the log (:data:`RETIRED`). The surviving points, from the most
bits to the fewest, carry the words of :data:`QUALITIES`; a target in bits per pixel or PSNR is
met by :mod:`.target`, starting from :func:`first_guess`.

How the choices interact (the plugin, the batch runner and :func:`.target.compress_choice` agree):
a custom encoder model overrides everything; else a target (bits per pixel or PSNR, one of them)
overrides the quality and the rate; else a quality overrides the rate; else the rate decides.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InputError
from ..run import QUIET, Run
from .rate_points import MEASURE_COMMAND, RateFigures, real_sar_figures

logger = logging.getLogger(__name__)

RATE_OPTIONS = ("r1", "r2", "r3", "h1", "h4", "h5")
"""Every rate point the RATE parameter ever offered, in its option order (index = the value scripts
and graphical models pass: RATE=1 is r2). New points are appended; none is ever removed."""
DEFAULT_RATE = "r2"
RETIRED: Mapping[str, str] = {"h5": "h1"}
"""Retired rate point -> the surviving point it runs (the nearest in bits per pixel on the validation
set). h5 was retired on 2026-12-07: off the rate-distortion hull on the synthetic validation scenes
(docs/decisions/2026-12-07-codec-rate-choice.md). Its decoder stays, so its files still decode."""


@dataclass(frozen=True)
class Quality:
    """A quality/size choice in words: its name, the rate point it runs and what it is good for."""

    name: str
    rate: str
    good_for: str


QUALITIES = (
    Quality("archive", "h4", "near-lossless looking: speckle and edges kept; archives, quantitative work"),
    Quality("high", "r3", "speckle and edges kept; measurements on the decoded image"),
    Quality("balanced", "r2", "speckle kept, edges slightly softened; general storage and sharing"),
    Quality("compact", "r1", "speckle kept, fine detail blurred; browsing, mosaics"),
    Quality("smallest", "h1", "speckle smoothed away (ENL ratio about 2), edges blurred; quick looks "
                              "only, not for speckle statistics"),
)
"""The quality choices, from the most bits to the fewest (every surviving rate point has one)."""
QUALITY_NAMES = tuple(q.name for q in QUALITIES)


def surviving_rates() -> list[str]:
    """The rate points a user can get, from the fewest bits to the most."""
    return [q.rate for q in reversed(QUALITIES)]


def quality_word(rate: str) -> str | None:
    """The quality word of the surviving rate point ``rate`` (``None`` for any other point)."""
    return next((q.name for q in QUALITIES if q.rate == rate), None)


def rate_label(rate: str) -> str:
    """How the RATE option ``rate`` is shown: its quality word, or where a retired point goes."""
    if rate in RETIRED:
        return f"{rate} - retired, runs {RETIRED[rate]}"
    word = quality_word(rate)
    return f"{rate} - {word}" if word else rate


def resolve_rate(rate: str, run: Run = QUIET) -> str:
    """The rate point ``rate`` runs: itself, or for a retired point the surviving one (logged)."""
    if rate not in RETIRED:
        return rate
    new = RETIRED[rate]
    word = quality_word(new)
    run.warn(f"Deprecated: rate point '{rate}' (RATE={RATE_OPTIONS.index(rate)}) is retired - it was beaten "
             f"on the rate-distortion curve by the other points - and runs '{new}' instead; choose "
             f"QUALITY '{word}' (or RATE={RATE_OPTIONS.index(new)}) to say so.", logger=logger)
    return new


def rate_for_quality(name: str) -> str:
    """The rate point of the quality word ``name`` (case-insensitive); :class:`InputError` if unknown."""
    for quality in QUALITIES:
        if quality.name == name.strip().lower():
            return quality.rate
    raise InputError(f"Unknown quality '{name}'; choose one of: {', '.join(QUALITY_NAMES)}.")


def check_target(target_bpp: float | None, target_psnr: float | None) -> None:
    """:class:`InputError` unless at most one target is given and it is a positive finite number."""
    if target_bpp is not None and target_psnr is not None:
        raise InputError("Give one target: bits per pixel or PSNR, not both.")
    for name, value in (("bits per pixel", target_bpp), ("PSNR", target_psnr)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f"The target {name} must be a positive number, got {value}.")


def first_guess(target_bpp: float | None = None, target_psnr: float | None = None,
                figures: Mapping[str, RateFigures] | None = None) -> str:
    """The surviving point whose typical real-SAR figures meet the target: for bits per pixel, the
    one with the most bits that stays within it (else the smallest); for PSNR, the one with the fewest
    bits that reaches it (else the highest)."""
    check_target(target_bpp, target_psnr)
    if target_bpp is None and target_psnr is None:
        raise InputError("Give a target in bits per pixel or PSNR.")
    figures = figures if figures is not None else real_sar_figures()
    order = [r for r in surviving_rates() if r in figures]
    if not order:
        raise InputError(f"No measured rate point to choose from; rerun: {MEASURE_COMMAND}")
    if target_bpp is not None:
        within = [r for r in order if figures[r].bpp <= target_bpp]
        return within[-1] if within else order[0]
    assert target_psnr is not None
    reaching = [r for r in order if figures[r].psnr >= target_psnr]
    return reaching[0] if reaching else order[-1]


def choice_table(figures: Mapping[str, RateFigures] | None = None, html: bool = True) -> str:
    """The quality choices with their typical bpp, PSNR, ENL ratio and EPI on real SAR, as a table."""
    figures = figures if figures is not None else real_sar_figures()
    head = ("QUALITY", "rate", "bpp", "PSNR dB", "ENL ratio", "EPI", "good for")
    rows = []
    for quality in QUALITIES:
        f = figures.get(quality.rate)
        numbers = ((f"{f.bpp:.2f}", f"{f.psnr:.1f}", f"{f.enl_ratio:.2f}", f"{f.epi:.2f}") if f
                   else ("-", "-", "-", "-"))
        rows.append((quality.name, quality.rate, *numbers, quality.good_for))
    if not html:
        return "\n".join("  " + " | ".join(row) for row in (head, *rows))
    cells = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"
