"""The refusal threshold of global co-registration, as chosen from data.

``refusal_calibration.json`` beside this module is written by
``benchmarks/calibrate_registration.py`` (``make calibrate-registration``): per method,
the smallest peak distinctness at which wrong answers (>= 3 px off) stayed at most 1 %
of the answered cases of a calibration split disjoint from the benchmarks, the whole
curve, and the share of scenes of each size answered at that threshold.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ...errors import SarToolboxError
from ..correlation import MIN_DISTINCTNESS

logger = logging.getLogger(__name__)

CALIBRATION_FILE = Path(__file__).with_name("refusal_calibration.json")
FALLBACK_DISTINCTNESS = MIN_DISTINCTNESS
"""Used for a method the calibration does not cover (the hand-set value of issue 15)."""
SMALL_SCENE_PX = 128
EVIDENCE = {
    "deep": "the correlation surface of the learned embedding",
    "classical": "the correlation surface of the CFOG oriented-gradient channels",
    "gradmag": "the correlation surface of the gradient magnitude",
    "combined": "one correlation surface of the learned embedding and the CFOG channels stacked at equal "
                "energy (two matchers' evidence: a peak both share adds up, one's decoy is halved)",
}
"""What the distinctness of each method is measured on (the report's ``confidence.evidence``)."""


@dataclass(frozen=True)
class Calibration:
    """A method's calibrated distinctness threshold and the share of scenes answered per size."""

    min_distinctness: float
    answered_by_size: dict[int, float]
    calibrated: bool


@cache
def calibration(method: str) -> Calibration:
    """The calibration of ``method`` (the fallback threshold when it has none)."""
    try:
        entry = json.loads(CALIBRATION_FILE.read_text())["methods"][method]
    except (OSError, KeyError, ValueError) as exc:
        logger.warning("No refusal calibration for %s in %s (%s): using the distinctness threshold %s",
                       method, CALIBRATION_FILE.name, type(exc).__name__, FALLBACK_DISTINCTNESS)
        return Calibration(FALLBACK_DISTINCTNESS, {}, False)
    try:
        threshold = float(entry["min_distinctness"])
        sizes = {int(k): float(v) for k, v in entry.get("answered_by_size", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SarToolboxError(
            f"The refusal calibration of {method} in '{CALIBRATION_FILE}' is incomplete or malformed "
            f"({type(exc).__name__}: {exc}); regenerate it with `make calibrate-registration`."
        ) from exc
    return Calibration(threshold, sizes, True)


def small_scene_advice(method: str, side_px: int) -> str:
    """What size would work, for a refusal on a scene whose shorter side is ``side_px`` (empty when the
    scene is not small or the calibration says nothing about sizes)."""
    sizes = calibration(method).answered_by_size
    if side_px > SMALL_SCENE_PX or not sizes:
        return ""
    here = min(sizes, key=lambda s: abs(s - side_px))
    best = max(sizes, key=lambda s: (sizes[s], s))
    return (f" The scene is small ({side_px} px): in the calibration, {sizes[here]:.0%} of {here}-px scenes "
            f"were answered, {sizes[best]:.0%} of {best}-px ones; use a common area of at least {best} px, "
            "or a MAX_SHIFT just above the misregistration you expect (fewer competing peaks).")
