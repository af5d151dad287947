"""Calibration of a keypoint-supported acceptance rule for the optical-SAR path with RIFT keypoints.

The rule the decision record ``docs/decisions/2026-12-07-keypoints-rift.md`` names as the next step:
compare the dense stage's answer with a strongly supported RIFT keypoint fit *at the RIFT inliers*
(not at the image corners, where a similarity fit extrapolates), and

- ``refuse``: refuse an answer that disagrees with a RIFT fit of at least ``n`` inliers;
- ``accept``: answer a refused case with a dense fit (sharp or not) that agrees with such a RIFT fit;
- ``both``: the two together.

Agreement = the median distance (REFERENCE pixels) between the RIFT inliers' REFERENCE positions
and their INPUT positions mapped by the dense fit. Every case is from the calibration split of
:mod:`benchmarks.investigations.rift_calibration` (os_sift crops, synthetic scenes; seeds disjoint
from the benchmark's), never a benchmark case. One pass per case runs the engine's registration
(``optical_sar_method="rift"``) and records, through wrappers of ``register._keypoint_fit`` and
``register.refine``, the RIFT fit and every dense fit; the rules are then evaluated on the rows::

    python -m benchmarks.investigations.rift_support --data ../shared/data/real --real 90 --synthetic 20 \\
        --json runs/rift-support.json
    python -m benchmarks.investigations.rift_support --rows runs/rift-support.json

and, once, with the setting the calibration chose, the 3MOS and OSdataset benchmark cases (same
homography seeds as ``python -m benchmarks.keypoints``)::

    python -m benchmarks.investigations.rift_support --benchmark --setting RULE SUPPORT STRONG MEASURE AGREE
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.investigations.rift_calibration import add_case_arguments, cases_of
from benchmarks.keypoints import CORRECT_PX, Case

logger = logging.getLogger(__name__)

STRONG = (8, 10, 12, 15, 20, 25)
"""RIFT inlier counts tried as 'strongly supported'."""


@contextmanager
def _recording(seen: dict[str, list[Any]]) -> Iterator[None]:
    """Wrap ``register._keypoint_fit`` and ``register.refine`` so that each result is kept in ``seen``."""
    from engine.registration.keypoints import register

    originals = register._keypoint_fit, register.refine

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            seen[name].append(out)
            if name == "keypoints":  # its stages (argument 5): putative matches, coarse RANSAC inliers
                seen["stages"].append(dict(args[4]))
            return out
        return recorded

    register._keypoint_fit = wrap("keypoints", originals[0])
    register.refine = wrap("dense", originals[1])
    try:
        yield
    finally:
        register._keypoint_fit, register.refine = originals


def support_row(case: Case, detector: Any) -> dict[str, Any]:
    """The registration's outcome, the RIFT fit and every dense fit of one case (see the module doc)."""
    from engine.errors import RegistrationError
    from engine.registration.keypoints.register import _sharp, register_images
    from engine.registration.transforms import corner_error

    assert case.truth is not None
    size = (float(case.inp.shape[1]), float(case.inp.shape[0]))
    seen: dict[str, list[Any]] = {"keypoints": [], "dense": [], "stages": []}
    row: dict[str, Any] = {"case": case.name}
    with _recording(seen):
        try:
            reg = register_images(*case.sides(), detector, optical_sar_method="rift")
            row["answer"] = reg.matrix.tolist()
            row["error"] = corner_error(reg.matrix, case.truth, *size)
        except RegistrationError as exc:
            row["refused"] = str(exc).split(";")[0]
    kp = seen["keypoints"][0] if seen["keypoints"] else None
    row["kp_inliers"] = 0 if kp is None else len(kp.src)
    row["kp_error"] = float("inf") if kp is None else corner_error(kp.matrix, case.truth, *size)
    row["kp_stages"] = seen["stages"][0] if seen["stages"] else {}
    if kp is not None:  # for other agreement measures than the median
        row["kp_src"], row["kp_dst"] = np.round(kp.src, 2).tolist(), np.round(kp.dst, 2).tolist()
    row["dense"] = [{"matrix": d.matrix.tolist(), "error": corner_error(d.matrix, case.truth, *size),
                     "inliers": len(d.src), "sharp": bool(_sharp(d))}
                    for d in seen["dense"]]
    return row


SUPPORT = ("coarse", "guided")
"""What counts the RIFT fit's support: its coarse RANSAC inliers among the putative matches, or the
inliers of its guided fine passes (inflated: local matching around a predicted position)."""
MEASURES = {"median": (1.5, 2.0, 3.0, 4.0, 6.0), "outside": (0.3, 0.4, 0.5, 0.6, 0.7)}
"""Disagreement of a fit with the RIFT inliers: their median distance (px), or the share of them farther
than 3 px (the keypoint fit's own tolerance); the thresholds tried."""


def _support(row: dict[str, Any], support: str) -> int:
    return int(row["kp_stages"].get("coarse_inliers", 0)) if support == "coarse" else int(row["kp_inliers"])


def disagreement(matrix: Any, row: dict[str, Any], measure: str) -> float:
    """How far ``matrix`` is from the RIFT inliers of ``row`` (see :data:`MEASURES`; nan: no RIFT fit)."""
    from engine.registration.transforms import reprojection_errors

    if not row.get("kp_src"):
        return float("nan")
    d = reprojection_errors(np.asarray(matrix), np.asarray(row["kp_src"]), np.asarray(row["kp_dst"]))
    return float(np.median(d)) if measure == "median" else float(np.mean(d > CORRECT_PX))


def _outcome(row: dict[str, Any], rule: str, setting: tuple[str, int, str, float]) -> float | None:
    """Corner error of what ``rule`` answers on ``row`` (None: refused) at ``setting`` =
    (support measure, strong support, disagreement measure, agreement threshold)."""
    support, strong, measure, agree = setting
    supported = _support(row, support) >= strong
    if "answer" in row:
        far = not disagreement(row["answer"], row, measure) <= agree
        if rule in ("refuse", "both") and supported and far:
            return None
        return float(row["error"])
    if rule in ("accept", "both") and supported:
        agreeing = [d for d in row["dense"] if disagreement(d["matrix"], row, measure) <= agree]
        if agreeing:
            return float(max(agreeing, key=lambda d: d["inliers"])["error"])
    return None


Setting = tuple[str, int, str, float]


def counts(rows: list[dict[str, Any]], rule: str, setting: Setting) -> tuple[int, int, int]:
    """(answered, correct, wrong) of ``rule`` on ``rows``."""
    errors = [e for e in (_outcome(r, rule, setting) for r in rows) if e is not None]
    correct = sum(e < CORRECT_PX for e in errors)
    return len(errors), correct, len(errors) - correct


def report(rows: list[dict[str, Any]], best: int = 6) -> None:
    """Log today's counts and, per rule, the settings that gain most (correct gained minus wrong added,
    never more wrong than today), the most conservative first among equals."""
    today = counts(rows, "none", ("coarse", 0, "median", 0.0))
    logger.info("today (no rule): answered %d, correct %d, wrong %d of %d", *today, len(rows))
    for rule in ("refuse", "accept", "both"):
        scored = []
        for support in SUPPORT:
            for strong in STRONG:
                for measure, thresholds in MEASURES.items():
                    for agree in thresholds:
                        setting = (support, strong, measure, agree)
                        n, ok, bad = counts(rows, rule, setting)
                        gain = (ok - today[1]) - (bad - today[2])
                        scored.append((bad > today[2], -gain, -strong, setting, (n, ok, bad)))
        scored.sort(key=lambda x: x[:3])
        for _, minus_gain, _, setting, (n, ok, bad) in scored[:best]:
            logger.info("%s %s>=%d %s<=%.2f: answered %d, correct %d, wrong %d (gain %+d)", rule, setting[0],
                        setting[1], setting[2], setting[3], n, ok, bad, -minus_gain)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_case_arguments(parser, real=90, synthetic=20)
    parser.add_argument("--json", type=Path, help="write the per-case rows here (rewritten after each case)")
    parser.add_argument("--rows", type=Path, help="evaluate the rules on these rows instead of running cases")
    parser.add_argument("--benchmark", action="store_true",
                        help="the 3MOS and OSdataset benchmark cases instead (once, after calibration)")
    parser.add_argument("--setting", nargs=5, metavar=("RULE", "SUPPORT", "STRONG", "MEASURE", "AGREE"),
                        help="also count this one setting, chosen on the calibration split")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = json.loads(args.rows.read_text()) if args.rows else _run(args)
    report(rows)
    if args.setting:
        rule, support, strong, measure, agree = args.setting
        logger.info("%s %s: answered %d, correct %d, wrong %d of %d", rule, args.setting[1:],
                    *counts(rows, rule, (support, int(strong), measure, float(agree))), len(rows))
    return 0


def _cases(args: argparse.Namespace) -> list[Case]:
    if not args.benchmark:
        return cases_of(args)
    from benchmarks.keypoints import cases_3mos, cases_osdataset

    return list(cases_3mos(args.data, 15)) + list(cases_osdataset(args.data, 3))


def _run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from engine.registration.keypoints.api import make_detector

    detector = make_detector(None)
    rows = []
    for case in _cases(args):
        started = time.perf_counter()
        row = support_row(case, detector) | {"seconds": time.perf_counter() - started}
        brief = {k: v for k, v in row.items() if k not in ("dense", "answer", "kp_src", "kp_dst")}
        logger.info("%s", json.dumps(brief, default=float))
        rows.append(row)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(rows, default=float))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
