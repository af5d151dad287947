"""The keypoint fronts' final refit rule, compared on the calibration splits (no benchmark case).

After RANSAC, the keypoint fine stage and each dense pass refit the model by least squares on the
hypothesis's inliers. ``ransac.refit_unless_worse`` (the default since the review of 2026-12-07) keeps the
hypothesis when that refit reprojects the inliers worse; the alternatives here: ``always`` (the refit,
as before the review) and ``geometric`` (a homography refit that minimises the reprojection error itself:
the DLT, then Levenberg-Marquardt on the inliers' geometric error). Each rule is patched into
``keypoints.register`` and ``keypoints.dense`` in turn and the whole default registration is run on
the optical-SAR split of :mod:`.rift_calibration` (os_sift crops and synthetic scenes) and the SAR-SAR
split of :mod:`.keypoints_sar_precision`.

``python -m benchmarks.investigations.refit_rule --data ../shared/data/real --json runs/refit-rule.json``
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from benchmarks.common import log_row, save_rows
from benchmarks.investigations import keypoints_sar_precision, rift_calibration
from benchmarks.keypoints import CORRECT_PX, Case, outcome_counts, registered

logger = logging.getLogger(__name__)

Rule = Callable[..., np.ndarray]
"""``(refit, found, src, dst, weights=None) -> matrix`` as
:func:`engine.registration.ransac.refit_unless_worse` (``weights``: one per inlier, the weighted last
pass of the SAR-SAR sharpening)."""


def always(refit: np.ndarray, found: Any, src: np.ndarray, dst: np.ndarray,
           weights: np.ndarray | None = None) -> np.ndarray:
    """The least-squares refit (weighted when it was), whatever its reprojection error."""
    return refit


def geometric(refit: np.ndarray, found: Any, src: np.ndarray, dst: np.ndarray,
              weights: np.ndarray | None = None) -> np.ndarray:
    """A homography refit minimising the inliers' reprojection error (weighted by ``weights``), started
    from the DLT refit (affine and similarity least squares already minimise it)."""
    from scipy.optimize import least_squares

    from engine.registration.transforms import project

    if refit[2, 0] == 0 and refit[2, 1] == 0:
        return refit
    s, d = src[found.inliers], dst[found.inliers]

    root_w = np.ones((len(s), 1)) if weights is None else np.sqrt(weights)[:, None]

    def residuals(p: np.ndarray) -> np.ndarray:
        return np.asarray(root_w * (project(np.append(p, 1.0).reshape(3, 3), s) - d)).ravel()

    solution = least_squares(residuals, (refit / refit[2, 2]).ravel()[:8], method="lm")
    return np.append(solution.x, 1.0).reshape(3, 3)


def rules() -> dict[str, Rule]:
    from engine.registration.ransac import refit_unless_worse

    return {"unless_worse": refit_unless_worse, "always": always, "geometric": geometric}


def corner_error_with(rule: Rule, case: Case, detector: Any) -> float:
    """The default registration's mean corner error with ``rule`` as the final refit (inf: refused)."""
    with mock.patch("engine.registration.keypoints.register.refit_unless_worse", rule), \
            mock.patch("engine.registration.keypoints.dense.refit_unless_worse", rule):
        reg = registered(case, detector)
    return float("inf") if reg is None else case.corner_error(reg.matrix)


def summary(split: str, rule: str, errors: np.ndarray) -> str:
    counts = outcome_counts(errors)
    good = errors[errors < CORRECT_PX]
    return (f"{split} {rule}: {len(errors)} cases, correct {counts['correct']}, wrong {counts['wrong']}, "
            f"refused {counts['refused']}; corner error of the correct: mean {good.mean():.3f}, "
            f"median {np.median(good):.3f} px")


def main(argv: list[str] | None = None) -> int:
    from engine.registration.keypoints.api import make_detector

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    rift_calibration.add_case_arguments(parser, real=100, synthetic=12)
    parser.add_argument("--rules", nargs="+", default=list(rules()), choices=list(rules()))
    parser.add_argument("--json", type=Path, help="write the per-case rows here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    detector, chosen = make_detector(None), {name: rules()[name] for name in args.rules}
    splits = {"sar-sar": list(keypoints_sar_precision.calibration_cases(args.data)),
              "optical-sar": rift_calibration.cases_of(args)}
    rows: list[dict[str, Any]] = []
    for split, cases in splits.items():
        for case in cases:
            row: dict[str, Any] = {"split": split, "case": case.name}
            for name, rule in chosen.items():
                started = time.process_time()
                row[name] = corner_error_with(rule, case, detector)
                row[f"{name}_cpu_s"] = time.process_time() - started
            log_row(rows, row, logger)
    for split in splits:
        for name in chosen:
            logger.info("%s", summary(split, name, np.array([r[name] for r in rows if r["split"] == split])))
    save_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
