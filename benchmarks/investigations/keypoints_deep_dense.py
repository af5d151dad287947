"""Does the learned embedding help the optical-SAR dense fine stage of keypoint registration?

The dense fine stage (:mod:`engine.registration.keypoints.dense`) compares CFOG channels
(``cfog``). The shift front's ``combined`` method stacks the learned embedding of
``regembed-guided-v3`` and the CFOG channels at equal energy; ``combined`` here is that same
extractor (:func:`engine.registration.keypoints.dense.dense_feature_maps`). Two measurements,
each with both channel kinds:

* ``ceiling``: the fine stage started from the **true** transform (the best start there can be):
  accepted within 3 px (correct), accepted but >= 3 px off (wrong), or refused (an error, or fewer
  sharp agreeing template matches than the registration accepts); mean corner error; CPU seconds;
* ``register``: the whole registration (``register_images(..., dense_features=...)``): correct /
  wrong / refused, CPU seconds per pair.

Case sets: ``calibration`` (the optical-SAR calibration split of
:mod:`.rift_calibration`: os_sift crops and synthetic scenes, in no benchmark) and ``benchmark``
(the 3MOS and OSdataset cases of ``python -m benchmarks.keypoints``). The embedding model was
trained on 10 of the 15 3MOS pairs: their rows are reported apart as contaminated
(:data:`training.registration.data.HELD_OUT` are the valid ones).

``python -m benchmarks.investigations.keypoints_deep_dense --mode ceiling --set calibration``
(decision record ``docs/decisions/2026-12-07-keypoints-deep-dense.md``).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.errors import RegistrationError
from engine.registration.keypoints.dense import DENSE_FEATURES, FeatureMaps, dense_feature_maps, refine
from engine.registration.keypoints.register import _sharp, register_images
from engine.registration.prepare import prepare_image

from ..common import log_row, save_rows
from ..keypoints import CORRECT_PX, Case, cases_3mos, cases_osdataset
from .rift_calibration import calibration_cases

logger = logging.getLogger(__name__)


def group(case: Case) -> str:
    """The case's report group: calibration set, OSdataset, or 3MOS held-out / trained-on (contaminated)."""
    from training.registration.data import HELD_OUT

    if case.set_name.startswith("3MOS"):
        pair = case.name.split("-h")[0]
        return "3MOS held-out" if pair in HELD_OUT else "3MOS trained-on (contaminated)"
    return case.set_name


def ceiling(case: Case, maps: FeatureMaps) -> dict[str, object]:
    """The fine stage from the truth with ``maps``: its corner error, sharp counts, acceptance."""
    assert case.truth is not None
    inp = (prepare_image(case.inp, case.inp_kind, case.inp_valid), case.inp_valid)
    ref = (prepare_image(case.ref, case.ref_kind, case.ref_valid), case.ref_valid)
    try:
        fit = refine(inp, ref, case.truth, "homography", feature_maps=maps)
    except RegistrationError as exc:
        return {"error": float("inf"), "accepted": False, "why": str(exc).split(";")[0]}
    return {"error": case.corner_error(fit.matrix), "accepted": _sharp(fit),
            "sharp": fit.sharp, "sharp_inliers": fit.sharp_inliers, "inliers": len(fit.src)}


def register(case: Case, dense_features: str) -> dict[str, object]:
    """The whole registration with ``dense_features``: corner error, or the refusal."""
    from engine.registration.keypoints.api import make_detector

    try:
        reg = register_images(*case.sides(), make_detector(None), dense_features=dense_features)
    except RegistrationError as exc:
        return {"error": float("inf"), "accepted": False, "why": str(exc).split(";")[0]}
    return {"error": case.corner_error(reg.matrix), "accepted": True,
            "inliers": reg.n_inliers, "coarse": reg.coarse}


def outcome(row: dict[str, object]) -> str:
    """'correct' (accepted within :data:`CORRECT_PX`), 'wrong' (accepted, farther) or 'refused'."""
    if not row["accepted"]:
        return "refused"
    return "correct" if float(str(row["error"])) < CORRECT_PX else "wrong"


def summary(rows: Sequence[dict[str, object]]) -> str:
    """Markdown table: per group and channel kind, correct / wrong / refused, mean corner error of the
    accepted, mean CPU seconds."""
    lines = ["| cases | channels | n | correct | wrong | refused | mean corner error of accepted (px) "
             "| CPU s/case |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    groups = sorted({str(r["group"]) for r in rows}, key=lambda g: ("contaminated" in g, g))
    for g in groups:
        for features in DENSE_FEATURES:
            sel = [r for r in rows if r["group"] == g and r["features"] == features]
            if not sel:
                continue
            kinds = [outcome(r) for r in sel]
            acc = [float(str(r["error"])) for r in sel if r["accepted"]]
            mean = f"{np.mean(acc):.2f}" if acc else "-"
            cpu = np.mean([float(str(r["cpu_s"])) for r in sel])
            counts = " | ".join(str(kinds.count(k)) for k in ("correct", "wrong", "refused"))
            lines.append(f"| {g} | {features} | {len(sel)} | {counts} | {mean} | {cpu:.2f} |")
    return "\n".join(lines)


def cases_for(args: argparse.Namespace) -> list[Case]:
    if args.set == "calibration":
        return calibration_cases(args.data, args.real, args.synthetic)
    return [*cases_3mos(args.data, args.mos_pairs, args.mos_homographies),
            *cases_osdataset(args.data, args.osdataset)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("ceiling", "register"), default="ceiling")
    parser.add_argument("--set", choices=("calibration", "benchmark"), default="calibration")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--real", type=int, default=24, help="os_sift calibration crops")
    parser.add_argument("--synthetic", type=int, default=6, help="synthetic calibration scenes")
    parser.add_argument("--mos-pairs", type=int, default=15)
    parser.add_argument("--mos-homographies", type=int, default=2, choices=(1, 2))
    parser.add_argument("--osdataset", type=int, default=3)
    parser.add_argument("--held-out-only", action="store_true",
                        help="3MOS: only the embedding's held-out pairs")
    parser.add_argument("--features", nargs="+", choices=DENSE_FEATURES, default=list(DENSE_FEATURES))
    parser.add_argument("--json", type=Path, help="write the per-case rows here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    maps = {name: dense_feature_maps(name) for name in args.features}
    rows: list[dict[str, object]] = []
    for case in cases_for(args):
        if args.held_out_only and group(case) == "3MOS trained-on (contaminated)":
            continue
        for name in args.features:
            started = time.process_time()
            row = ceiling(case, maps[name]) if args.mode == "ceiling" else register(case, name)
            row |= {"case": case.name, "group": group(case), "features": name,
                    "cpu_s": time.process_time() - started}
            log_row(rows, row, logger)
        save_rows(args.json, rows)
    logger.info("\n%s", summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
