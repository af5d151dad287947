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
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from benchmarks.investigations import rift_calibration, uncertainty_refusal
from benchmarks.keypoints import Case, outcome_counts, registered
from engine.registration.transforms import corner_error

logger = logging.getLogger(__name__)

KINDS = ("homography", "affine", "similarity")


def held_out_choice(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The fit of the kind (of :data:`KINDS`) with the least held-out quadrant error."""
    from engine.registration.keypoints.dense import held_out_error
    from engine.registration.transforms import fit_matrix

    errors = {kind: held_out_error(src, dst, kind) for kind in KINDS}
    return fit_matrix(src, dst, min(KINDS, key=lambda k: (errors[k], KINDS.index(k))))


def _fit(kind: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    from engine.registration.transforms import fit_matrix

    return lambda src, dst: fit_matrix(src, dst, kind)


RULES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    **{kind: _fit(kind) for kind in KINDS}, "held-out": held_out_choice}


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


def rule_errors(rec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mean corner error of every rule on every case (inf where the registration refused)."""
    bounds = np.concatenate([[0], np.cumsum(rec["count"])])
    errors = {rule: np.full(len(rec["name"]), np.inf) for rule in ("default", *RULES)}
    for i, (truth, (w, h), matrix) in enumerate(zip(rec["truth"], rec["size"], rec["matrix"], strict=True)):
        if not np.isfinite(matrix).all():
            continue
        src, dst = (rec[k][bounds[i]:bounds[i + 1]] for k in ("src", "dst"))
        errors["default"][i] = corner_error(matrix, truth, w, h)
        for rule, fit in RULES.items():
            errors[rule][i] = corner_error(fit(src, dst), truth, w, h)
    return errors


def source(name: str) -> str:
    """The set a case name comes from."""
    prefixes = (("cfog", "cfog_hopc"), ("os", "os_sift"), ("seed", "synthetic"), ("pair2", "OSdataset"))
    for prefix, label in prefixes:
        if name.startswith(prefix):
            return label
    return "3MOS"


def report(rec: dict[str, np.ndarray]) -> None:
    """correct / wrong / refused and the median corner error of every rule, per source and over all."""
    sources = np.array([source(str(n)) for n in rec["name"]])
    errors = rule_errors(rec)
    for group in [*sorted(set(sources)), "all"]:
        pick = np.ones(len(sources), bool) if group == "all" else sources == group
        for rule, e in errors.items():
            answered = e[pick & np.isfinite(e)]
            logger.info("%-10s %-10s %s, median corner error %.2f px", group, rule, outcome_counts(e[pick]),
                        float(np.median(answered)) if len(answered) else float("nan"))


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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.from_npz:
        rec = merged(args.from_npz)
    else:
        rec = record(uncertainty_refusal.split_cases(args), args.finer_search)
        if args.npz:
            np.savez_compressed(args.npz, **rec)
    report(rec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
