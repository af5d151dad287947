"""Which model should the optical-SAR fine stage fit to its final matches? Measured on their inliers.

The optical-SAR registrations that end 3 px or more off are right at the image centre: on the os_sift
calibration crops the estimate lies within about 1 px (full resolution) of the truth at the centre, even
where the mean corner error is 3-7 px. The error is in the model's rotation, scale, shear and perspective
terms, extrapolated from template matches that cover the image's interior. This script keeps, per case, the
final inlier correspondences of the default registration (``Registration.src`` / ``dst``) with the truth,
and refits them offline by each rule of :data:`RULES`:

- ``default``: the registration's own matrix;
- ``homography`` / ``affine`` / ``similarity``: a least-squares fit of that kind to the inliers;
- ``held-out``: the kind among the three whose fits predict held-out quadrants of the matches best
  (:func:`engine.registration.keypoints.dense.held_out_error`), the rule the dense stage applies between
  homography and affine, extended to similarity.

``--split calibration`` (os_sift, synthetic and cfog_hopc crops of :mod:`.rift_calibration`; no benchmark
case), ``benchmark`` or ``fresh`` (:mod:`.uncertainty_refusal`'s splits); ``--npz`` keeps the inliers, and
``--from-npz`` re-reads them without registering again.

``OMP_NUM_THREADS=1 python -m benchmarks.investigations.fine_model_choice --data ../shared/data/real
--split calibration --cfog 60 --npz runs/fine-cal.npz``
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.investigations import rift_calibration, uncertainty_refusal
from benchmarks.keypoints import CORRECT_PX, Case, outcome_counts, registered
from engine.registration.keypoints.dense import held_out_error
from engine.registration.transforms import corner_error, fit_matrix, project

logger = logging.getLogger(__name__)

REFIT_KINDS = ("homography", "affine", "similarity")
COVERAGE_THRESHOLDS = tuple(round(0.05 + 0.01 * k, 2) for k in range(75))
"""Thresholds of the coverage rule's sweep (``--coverage-sweep``): shares of the INPUT image, 0.05-0.79."""


def held_out_choice(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The fit of the kind (of :data:`REFIT_KINDS`, the first on ties) with the least held-out quadrant
    error."""
    return fit_matrix(src, dst, min(REFIT_KINDS, key=lambda kind: held_out_error(src, dst, kind)))


RULES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    **{kind: partial(fit_matrix, kind=kind) for kind in REFIT_KINDS}, "held-out": held_out_choice}


def record(cases: Iterable[Case], finer_search: bool = False) -> dict[str, np.ndarray]:
    """Per case: name, truth, size, the registration's matrix and its inliers (empty when refused);
    ``finer_search``: the registration's option of that name."""
    from engine.registration.keypoints.api import make_detector

    detector = make_detector(None)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("name", "truth", "size", "matrix", "src", "dst")}
    for case in cases:
        reg = registered(case, detector, finer_search=finer_search)
        assert case.truth is not None
        out["name"].append(np.array(case.name))
        out["truth"].append(case.truth)
        out["size"].append(np.array([case.inp.shape[1], case.inp.shape[0]], float))
        out["matrix"].append(np.full((3, 3), np.nan) if reg is None else reg.matrix)
        out["src"].append(np.zeros((0, 2)) if reg is None else reg.src)
        out["dst"].append(np.zeros((0, 2)) if reg is None else reg.dst)
        logger.info("%s: %s", case.name,
                    "refused" if reg is None else f"{case.corner_error(reg.matrix):.2f} px")
    counts = np.array([len(s) for s in out["src"]])
    return {"name": np.array(out["name"]), "truth": np.array(out["truth"]), "size": np.array(out["size"]),
            "matrix": np.array(out["matrix"]), "count": counts,
            "src": np.concatenate(out["src"]), "dst": np.concatenate(out["dst"])}


@dataclass(frozen=True)
class Answer:
    """One answered case of a record: the registration's matrix, its inliers and the truth."""

    index: int
    name: str
    truth: np.ndarray
    width: float
    height: float
    matrix: np.ndarray
    src: np.ndarray
    dst: np.ndarray

    def error(self, h: np.ndarray) -> float:
        """Mean corner error of ``h`` against the truth."""
        return corner_error(h, self.truth, self.width, self.height)


def answers(rec: dict[str, np.ndarray]) -> Iterator[Answer]:
    """The answered cases of a record (:func:`record`), in order."""
    bounds = np.concatenate([[0], np.cumsum(rec["count"])])
    for i, (truth, (w, h), matrix) in enumerate(zip(rec["truth"], rec["size"], rec["matrix"], strict=True)):
        if np.isfinite(matrix).all():
            yield Answer(i, str(rec["name"][i]), truth, float(w), float(h), matrix,
                         rec["src"][bounds[i]:bounds[i + 1]], rec["dst"][bounds[i]:bounds[i + 1]])


def rule_errors(rec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mean corner error of every rule on every case (inf where the registration refused)."""
    errors = {rule: np.full(len(rec["name"]), np.inf) for rule in ("default", *RULES)}
    for a in answers(rec):
        errors["default"][a.index] = a.error(a.matrix)
        for rule, fit in RULES.items():
            errors[rule][a.index] = a.error(fit(a.src, a.dst))
    return errors


def coverage_sweep(rec: dict[str, np.ndarray]) -> dict[float, dict[str, int]]:
    """correct / wrong / refused of the coverage rule at each of :data:`COVERAGE_THRESHOLDS` (and 0: the
    registration's own answers): the similarity fit of the inliers where their convex hull covers less
    than that share of the INPUT image, the registration's matrix elsewhere."""
    from scipy.spatial import ConvexHull

    rows = [(ConvexHull(a.src).volume / (a.width * a.height), a) for a in answers(rec)]
    own = {a.index: a.error(a.matrix) for _, a in rows}
    similar = {a.index: a.error(fit_matrix(a.src, a.dst, "similarity")) for _, a in rows}
    sweep = {}
    for c in (0.0, *COVERAGE_THRESHOLDS):
        errors = np.full(len(rec["name"]), np.inf)
        for cover, a in rows:
            errors[a.index] = similar[a.index] if cover < c else own[a.index]
        sweep[c] = outcome_counts(errors)
    return sweep


def centre_offsets(rec: dict[str, np.ndarray]) -> list[tuple[str, float, float]]:
    """Per answered case: name, distance (full-resolution pixels: a crop pooled ``x2`` counts double)
    between the registration's and the truth's image of the INPUT centre, and the mean corner error."""
    out = []
    for a in answers(rec):
        centre = np.array([[a.width / 2, a.height / 2]])
        factor = 2.0 if "x2/" in a.name else 1.0
        shift = float(np.hypot(*(project(a.matrix, centre) - project(a.truth, centre))[0])) * factor
        out.append((a.name, shift, a.error(a.matrix)))
    return out


def source(name: str) -> str:
    """The set a case name comes from."""
    prefixes = (("cfog", "cfog_hopc"), ("os", "os_sift"), ("seed", "synthetic"), ("pair2", "OSdataset"))
    for prefix, label in prefixes:
        if name.startswith(prefix):
            return label
    return "3MOS"


def truth_residuals(rec: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per answered case, the RMS distance of its inliers' REFERENCE positions from where the truth puts
    them, and their mean offset ``(dx, dy)`` (the case's own pixels)."""
    rms, mean = [], []
    for a in answers(rec):
        d = a.dst - project(a.truth, a.src)
        rms.append(float(np.sqrt((d**2).sum(axis=1).mean())))
        mean.append(d.mean(axis=0))
    return np.array(rms), np.array(mean).reshape(-1, 2)


def report(rec: dict[str, np.ndarray], sweep: bool = False) -> None:
    """correct / wrong / refused and the median corner error of every rule, per source and over all; the
    centre offsets of the correct and the wrong answers; with ``sweep``, the coverage rule's sweep."""
    sources = np.array([source(str(n)) for n in rec["name"]])
    errors = rule_errors(rec)
    for group in [*sorted(set(sources)), "all"]:
        pick = np.ones(len(sources), bool) if group == "all" else sources == group
        for rule, e in errors.items():
            answered = e[pick & np.isfinite(e)]
            logger.info("%-10s %-10s %s, median corner error %.2f px", group, rule, outcome_counts(e[pick]),
                        float(np.median(answered)) if len(answered) else float("nan"))
    offsets = centre_offsets(rec)
    for label, wrong in (("correct", False), ("wrong", True)):
        picked = [(shift, err) for _, shift, err in offsets if (err >= CORRECT_PX) == wrong]
        if picked:
            shifts, errs = np.array(picked).T
            logger.info("%s answers (%d): centre offset median %.2f / max %.2f px (full resolution), mean "
                        "corner error median %.2f px", label, len(picked), np.median(shifts), shifts.max(),
                        np.median(errs))
    rms, mean = truth_residuals(rec)
    if len(rms):
        logger.info("inliers from the truth: RMS %.2f-%.2f px per answer; mean offset (%+.2f, %+.2f) px",
                    rms.min(), rms.max(), *mean.mean(axis=0))
    if sweep:
        for c, counts in coverage_sweep(rec).items():
            logger.info("coverage rule c = %.2f: %s", c, counts)


def merged(paths: list[Path]) -> dict[str, np.ndarray]:
    """The records of several ``--npz`` files as one."""
    parts = []
    for path in paths:
        with np.load(path) as z:
            parts.append({k: z[k] for k in z.files})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    rift_calibration.add_case_arguments(parser, real=100, synthetic=12)
    parser.add_argument("--split", choices=("calibration", "benchmark", "fresh"), default="calibration")
    parser.add_argument("--npz", type=Path, help="keep the per-case inliers here")
    parser.add_argument("--finer-search", action="store_true",
                        help="register with the second, finer coarse search (finer_search=True)")
    parser.add_argument("--from-npz", type=Path, nargs="+", help="read the inliers of earlier runs instead")
    parser.add_argument("--coverage-sweep", action="store_true",
                        help="also the coverage rule (similarity where inliers cover little), per threshold")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.from_npz:
        rec = merged(args.from_npz)
    else:
        rec = record(uncertainty_refusal.split_cases(args), args.finer_search)
        if args.npz:
            np.savez_compressed(args.npz, **rec)
    report(rec, args.coverage_sweep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
