"""A refusal by the per-corner bootstrap uncertainty for the optical-SAR keypoint path, calibrated.

Issue 27 item 3 asks for 0 wrong optical-SAR answers; item 4 chose the shift front's refusal threshold
on a calibration split so that wrong answers stay at most 1 % of the answered cases. This applies that
rule to the keypoint registration's own confidence figure, the largest of its four corner
uncertainties (``Registration.corner_uncertainty``, the bootstrap of :mod:`engine.registration.keypoints.
uncertainty`, in the report as ``corner_uncertainty_px``): ``--split calibration`` runs the default
registration on the optical-SAR calibration cases of :mod:`.rift_calibration` (os_sift crops, synthetic
scenes and, with ``--cfog N``, cfog_hopc crops whose truth comes from check points; no benchmark case)
and chooses the largest threshold that keeps wrong answers at most
:data:`WRONG_SHARE` of the answered ones; ``--split benchmark --threshold T`` applies a chosen threshold
once to the benchmark's optical-SAR cases (3MOS x 2 homographies, OSdataset); ``--split fresh`` to the
same pairs under homographies no benchmark draws (:data:`FRESH_3MOS_SEEDS`, :data:`FRESH_OSDATASET_SEED`):
cases whose uncertainties nobody has seen when the threshold is chosen.

``python -m benchmarks.investigations.uncertainty_refusal --split calibration --json runs/unc-cal.json``
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import log_row, save_rows
from benchmarks.investigations import rift_calibration
from benchmarks.keypoints import Case, cases_3mos, cases_osdataset, outcome_counts, registered

logger = logging.getLogger(__name__)

FRESH_3MOS_SEEDS = (33_000, 39_000)
"""Homography rounds of the 3MOS pairs of ``--split fresh`` (the benchmark's are
:data:`benchmarks.keypoints.MOS_SEEDS`)."""
FRESH_OSDATASET_SEED = 35_000
FRESH_OSDATASET_COUNT = 6
WRONG_SHARE = 0.01
"""Wrong answers allowed per answered calibration case (the shift front's rule, issue 27 item 4)."""


def register_case(case: Case, detector: Any) -> dict[str, Any]:
    """The default registration's corner error and largest corner uncertainty (both inf when refused)."""
    reg = registered(case, detector)
    if reg is None:
        return {"case": case.name, "error": float("inf"), "uncertainty": float("inf")}
    spread = np.asarray(reg.corner_uncertainty)
    return {"case": case.name, "error": case.corner_error(reg.matrix),
            "uncertainty": float(np.max(spread)) if np.all(np.isfinite(spread)) else float("nan"),
            "inliers": reg.n_inliers}


def outcome_counts_at(rows: list[dict[str, Any]], threshold: float) -> dict[str, int]:
    """correct / wrong / refused when answers whose uncertainty exceeds a finite ``threshold`` (or is
    unknown) are refused as well; ``inf``: the registration's own answers."""
    errors = np.array([r["error"] for r in rows], dtype=float)
    spread = np.array([r["uncertainty"] for r in rows], dtype=float)
    kept = (spread <= threshold) | np.isinf(threshold)
    return outcome_counts(np.where(kept, errors, np.inf))


def choose_threshold(rows: list[dict[str, Any]], wrong_share: float = WRONG_SHARE) -> float:
    """The largest uncertainty threshold (among the rows' own values) keeping wrong <= ``wrong_share``
    of the answered cases; 0 when none does."""
    best = 0.0
    for t in sorted({float(r["uncertainty"]) for r in rows if np.isfinite(r["uncertainty"])}):
        counts = outcome_counts_at(rows, t)
        if counts["wrong"] <= wrong_share * (counts["correct"] + counts["wrong"]):
            best = t
    return best


def split_cases(args: argparse.Namespace) -> list[Case]:
    """The cases of ``args.split``: ``calibration`` (:func:`.rift_calibration.cases_of`), ``benchmark`` or
    ``fresh`` (see the module doc)."""
    if args.split == "calibration":
        return rift_calibration.cases_of(args)
    if args.split == "benchmark":
        return [*cases_3mos(args.data, 15), *cases_osdataset(args.data, 3)]
    return [*cases_3mos(args.data, 15, seeds=FRESH_3MOS_SEEDS, tag="f"),
            *cases_osdataset(args.data, FRESH_OSDATASET_COUNT, FRESH_OSDATASET_SEED, tag="f")]


def main(argv: list[str] | None = None) -> int:
    from engine.registration.keypoints.api import make_detector

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    rift_calibration.add_case_arguments(parser, real=100, synthetic=12)
    parser.add_argument("--split", choices=("calibration", "benchmark", "fresh"), default="calibration",
                        help="fresh: the benchmark's optical-SAR pairs under homographies it does not draw")
    parser.add_argument("--threshold", type=float, help="(benchmark, fresh) the one chosen on calibration")
    parser.add_argument("--json", type=Path, help="write the per-case rows here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cases = split_cases(args)
    detector = make_detector(None)
    rows: list[dict[str, Any]] = []
    for case in cases:
        log_row(rows, register_case(case, detector), logger)
    save_rows(args.json, rows)
    threshold = choose_threshold(rows) if args.split == "calibration" else args.threshold
    logger.info("without the rule: %s", outcome_counts_at(rows, float("inf")))
    if threshold is not None:
        logger.info("threshold %.3f px: %s", threshold, outcome_counts_at(rows, threshold))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
