"""How far can the dense stage of keypoint registration go on optical-SAR pairs?

Keypoint registration of optical-SAR pairs rests on its dense stages
(:mod:`engine.registration.keypoints.coarse`, :mod:`engine.registration.keypoints.dense`), which compare
CFOG oriented-gradient channels. This investigation separates their two
possible limits on the benchmark's cases with a known transform
(``benchmarks.keypoints``: 3MOS and OSdataset pairs under seeded random
homographies):

* the *search*: mean corner error of each of the coarse similarity search's
  best distinct candidates against the truth;
* the *features*: the dense fine stage started from the **true** transform
  (the best start there can be) — where it ends (mean corner error, the
  success criterion of the benchmark is < 3 px) and how many distinct
  template matches agree (``sharp``: the registration accepts a fit with at
  least 4); and the masked NCC of the CFOG channels over the whole overlap at
  the truth and at that fit. A fit that ends away from the truth while
  scoring higher than the truth means the features, not the search or the
  model fit, put the optimum elsewhere.

Run from the repository root: ``make bench-keypoints-ceiling``, i.e.
``python -m benchmarks.investigations.keypoints_ceiling --data ../shared/data/real``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import RegistrationError
from engine.registration.keypoints.coarse import features, search
from engine.registration.keypoints.dense import refine
from engine.registration.keypoints.register import DENSE_STARTS, MIN_SHARP_INLIERS
from engine.registration.keypoints.warp import warp_onto
from engine.registration.prepare import prepare_image
from engine.registration.transforms import corner_error

from ..keypoints import CORRECT_PX, Case, cases_3mos, cases_osdataset

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ceiling:
    """What the dense stages reach on one case (corner errors in REFERENCE pixels)."""

    name: str
    candidate_errors: tuple[float, ...]
    from_truth_error: float  # inf when the fine stage refuses
    sharp: int
    ncc_truth: float
    ncc_fit: float


def feature_ncc(inp: tuple[np.ndarray, np.ndarray], ref_feats: tuple[np.ndarray, np.ndarray],
                h: np.ndarray) -> float:
    """Masked NCC of the CFOG channels of the INPUT moved by ``h`` and the REFERENCE's, over both
    images' valid pixels (all channels together)."""
    rf, rok = ref_feats
    mf, mok = features(*warp_onto(inp[0], inp[1], h, (rok.shape[0], rok.shape[1])))
    ok = mok & rok
    a, b = mf[:, ok], rf[:, ok]
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / den if den > 0 else 0.0


def measure(case: Case) -> Ceiling:
    """The search's candidates and the fine stage from the truth on one case."""
    assert case.truth is not None
    inp = (prepare_image(case.inp, case.inp_kind, case.inp_valid), case.inp_valid)
    ref = (prepare_image(case.ref, case.ref_kind, case.ref_valid), case.ref_valid)
    size = (float(case.inp.shape[1]), float(case.inp.shape[0]))
    found = search(inp[0], inp[1], ref[0], ref[1])
    errors = tuple(corner_error(c.matrix, case.truth, *size) for c in found)
    ref_feats = features(*ref)
    try:
        fit = refine(inp, ref, case.truth, "homography")
    except RegistrationError:
        at_truth = feature_ncc(inp, ref_feats, case.truth)
        return Ceiling(case.name, errors, float("inf"), 0, at_truth, float("nan"))
    return Ceiling(case.name, errors, corner_error(fit.matrix, case.truth, *size), fit.sharp_inliers,
                   feature_ncc(inp, ref_feats, case.truth), feature_ncc(inp, ref_feats, fit.matrix))


def table(rows: Sequence[Ceiling]) -> str:
    """Markdown table of the per-case figures and a summary line."""
    lines = ["| case | coarse candidates: corner error (px) | fine stage from the truth: corner error (px) "
             "| sharp | CFOG NCC at the truth | ... at that fit |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        cands = ", ".join(f"{e:.1f}" for e in r.candidate_errors)
        lines.append(f"| {r.name} | {cands} | {r.from_truth_error:.2f} | {r.sharp} | {r.ncc_truth:.3f} "
                     f"| {r.ncc_fit:.3f} |")
    reach = sum(r.from_truth_error < CORRECT_PX for r in rows)
    accept = sum(r.from_truth_error < CORRECT_PX and r.sharp >= MIN_SHARP_INLIERS for r in rows)
    found = sum(any(e < CORRECT_PX * 3 for e in r.candidate_errors[:DENSE_STARTS]) for r in rows)
    lines.append("")
    lines.append(f"Cases: {len(rows)}. From the truth the fine stage ends within {CORRECT_PX:g} px on "
                 f"{reach} "
                 f"({accept} with at least {MIN_SHARP_INLIERS} sharp matches, i.e. accepted); one of the "
                 f"{DENSE_STARTS} best coarse starts lies within {3 * CORRECT_PX:g} px of the truth on "
                 f"{found}.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--mos-pairs", type=int, default=15)
    parser.add_argument("--mos-homographies", type=int, default=1, choices=(1, 2),
                        help="random homographies per 3MOS pair (1: the benchmark's first round)")
    parser.add_argument("--osdataset", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    cases = [*cases_3mos(args.data, args.mos_pairs, args.mos_homographies),
             *cases_osdataset(args.data, args.osdataset)]
    for case in cases:
        rows.append(measure(case))
        logger.info("%s: from the truth %.2f px", case.name, rows[-1].from_truth_error)
    logger.info("\n%s", table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
