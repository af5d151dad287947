"""Which last pass of the dense fine stage brings optical-SAR answers closest to the truth? Calibration only.

The optical-SAR answers that miss by 3 px or more are right at the image centre and off at the corners
(decision record ``2026-12-07-optical-sar-corner-errors.md``): the template matches of the fine stage are
displaced by 1-2 px each relative to the truth, in spatially correlated patches, and the fitted model
extrapolates them to the corners. The SAR-SAR path gained from a last pass of smaller templates on a denser
grid fitted by least squares weighted by each match's NCC signal-to-noise ratio
(:class:`engine.registration.keypoints.dense.LastPass`); this measures such last passes on optical-SAR
pairs.

Cases: the optical-SAR calibration split of :mod:`.rift_calibration` (os_sift crops, synthetic scenes and
cfog_hopc crops; no benchmark case). Each case's fine stage starts from the truth moved by a seeded
similarity of about a coarse estimate's error (:func:`perturbed`: up to 2 deg, 3 % scale and 4 px), the
same start for every variant of :data:`VARIANTS`; its answer counts as accepted when the fine stage keeps
at least ``MIN_SHARP_INLIERS`` sharp matches (looser than the registration, which also wants them to be
half of the sharp matches at least: ``register._sharp``).

``OMP_NUM_THREADS=1 python -m benchmarks.investigations.optical_sar_precision --data ../shared/data/real
--cfog 60 --json runs/osp-cal.json``
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from benchmarks.common import log_row, save_rows
from benchmarks.investigations import rift_calibration
from benchmarks.keypoints import Case, outcome_counts
from engine.errors import RegistrationError
from engine.registration.keypoints.dense import LastPass, refine
from engine.registration.keypoints.register import MIN_SHARP_INLIERS
from engine.registration.prepare import prepare_image
from engine.registration.transforms import corner_error

logger = logging.getLogger(__name__)

VARIANTS: dict[str, LastPass | None] = {
    "default": None,
    "48 px on 16, weighted": LastPass(48, 16, weighted=True),
    "64 px on 16, weighted": LastPass(64, 16, weighted=True),
    "96 px on 12, weighted": LastPass(96, 12, weighted=True),
    "32 px on 32, weighted": LastPass(32, 32, weighted=True),
}
"""The last passes compared (``None``: the stage's own, :data:`..dense.TEMPLATES` and ``GRID_POINTS``)."""
SEED = 64_000
COARSE_LEVELS = ((64, 128), (64, 256), (96, 192), (128, 256))
"""``(grid side, coarse side)`` of the coarse searches ``--coarse-levels`` compares (the first is the
registration's, the last :data:`engine.registration.keypoints.coarse.FINER_LEVELS`)."""
NEAR_PX = 9.0
"""A coarse candidate within this mean corner error of the truth is a start the fine stage can use."""


def perturbed(truth: np.ndarray, width: float, height: float, rng: np.random.Generator) -> np.ndarray:
    """``truth`` followed by a random similarity about the image centre: rotation up to 2 deg, scale
    within 3 %, shift up to 4 px."""
    from engine.registration.keypoints.coarse import similarity

    angle = rng.uniform(-2, 2)
    a = similarity(angle, float(np.exp(rng.uniform(np.log(0.97), np.log(1.03)))))
    c = np.array([width / 2, height / 2])
    m = np.eye(3)
    m[:2, :2] = a
    m[:2, 2] = c - a @ c + rng.uniform(-4, 4, 2)
    return m @ truth


def errors(case: Case, start: np.ndarray) -> dict[str, float]:
    """Corner error of each variant's answer from ``start`` (inf when refused or not accepted) and its
    CPU seconds."""
    assert case.truth is not None
    inp = (prepare_image(case.inp, case.inp_kind, case.inp_valid), case.inp_valid)
    ref = (prepare_image(case.ref, case.ref_kind, case.ref_valid), case.ref_valid)
    size = (float(case.inp.shape[1]), float(case.inp.shape[0]))
    row: dict[str, float] = {}
    for name, last in VARIANTS.items():
        started = time.process_time()
        try:
            fit = refine(inp, ref, start, "homography", last_pass=last)
            accepted = fit.sharp_inliers >= MIN_SHARP_INLIERS
            row[name] = corner_error(fit.matrix, case.truth, *size) if accepted else float("inf")
        except RegistrationError:
            row[name] = float("inf")
        row[f"{name} s"] = time.process_time() - started
    return row


def coarse_levels(case: Case) -> dict[str, float]:
    """Per level pair of :data:`COARSE_LEVELS`: the smaller corner error of the search's
    ``DENSE_STARTS`` best candidates, and the search's CPU seconds."""
    from engine.registration.keypoints.coarse import search
    from engine.registration.keypoints.register import DENSE_STARTS

    assert case.truth is not None
    inp = prepare_image(case.inp, case.inp_kind, case.inp_valid)
    ref = prepare_image(case.ref, case.ref_kind, case.ref_valid)
    size = (float(case.inp.shape[1]), float(case.inp.shape[0]))
    row: dict[str, float] = {}
    for levels in COARSE_LEVELS:
        started = time.process_time()
        found = search(inp, case.inp_valid, ref, case.ref_valid, levels=levels)
        name = f"{levels[0]} / {levels[1]}"
        row[f"{name} s"] = time.process_time() - started
        row[name] = min(corner_error(c.matrix, case.truth, *size) for c in found[:DENSE_STARTS])
    return row


def levels_summary(rows: list[dict[str, float | str]]) -> str:
    """Per level pair: cases with a start within :data:`NEAR_PX`, median CPU seconds of the search."""
    lines = []
    for grid_side, coarse_side in COARSE_LEVELS:
        name = f"{grid_side} / {coarse_side}"
        near = sum(float(r[name]) < NEAR_PX for r in rows)
        seconds = float(np.median([float(r[f"{name} s"]) for r in rows]))
        lines.append(f"levels {name}: a start within {NEAR_PX:g} px on {near} of {len(rows)}, "
                     f"{seconds:.2f} CPU s")
    return "\n".join(lines)


def summary(rows: list[dict[str, float | str]]) -> str:
    """Per variant: correct / wrong / refused, the median corner error of the answers, CPU s per case."""
    lines = []
    for name in VARIANTS:
        e = np.array([float(r[name]) for r in rows])
        answered = e[np.isfinite(e)]
        median = float(np.median(answered)) if len(answered) else float("nan")
        seconds = float(np.mean([float(r[f"{name} s"]) for r in rows]))
        lines.append(f"{name:24s} {outcome_counts(e)} median {median:.2f} px, {seconds:.2f} CPU s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    rift_calibration.add_case_arguments(parser, real=100, synthetic=12)
    parser.add_argument("--json", type=Path, help="write the per-case rows here")
    parser.add_argument("--coarse-levels", action="store_true",
                        help="compare the coarse search's levels (COARSE_LEVELS) instead of the last passes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rng = np.random.default_rng(SEED)
    rows: list[dict[str, float | str]] = []
    for case in rift_calibration.cases_of(args):
        assert case.truth is not None
        if args.coarse_levels:
            log_row(rows, {"case": case.name, **coarse_levels(case)}, logger)
            continue
        start = perturbed(case.truth, float(case.inp.shape[1]), float(case.inp.shape[0]), rng)
        log_row(rows, {"case": case.name, **errors(case, start)}, logger)
    save_rows(args.json, rows)
    logger.info("\n%s", levels_summary(rows) if args.coarse_levels else summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
