"""Calibration split of the optical-SAR keypoint method (``rift-v1``): cases no benchmark reports.

Every parameter and threshold of :mod:`engine.registration.keypoints.rift` and of the optical-SAR
acceptance rules was chosen on these cases, never on the 3MOS / OSdataset cases of
``python -m benchmarks.keypoints`` (decision record ``docs/decisions/2026-12-07-keypoints-rift.md``):

- real: the WorldView pan / GF-3 HH pair of ``os_sift/`` (in no keypoint benchmark), aligned
  by :data:`benchmarks.calibrate_registration.OS_SIFT_OFFSET`; crops at seeded positions,
  256 or 512 px, at full resolution or averaged 2 x 2 (about the 3MOS pairs' detail); the GF-3
  crop (amplitude, INPUT) warped by a random homography of the benchmark's distribution
  (rotation +-30 deg, scale 0.75-1.33) with seeds from :data:`SEED` (the benchmark's are
  1000-8100), the WorldView crop as REFERENCE;
- synthetic: engine.synthetic scene pairs, seeds from :data:`SYNTHETIC_SEED` (the benchmark
  uses 4000-4102);
- with ``--cfog N``: crops of the three ``cfog_hopc/`` optical-SAR pairs, whose truth is the affine
  fitted to each pair's check points (:func:`cfog_hopc_cases`, seeds from :data:`CFOG_SEED`).

``python -m benchmarks.investigations.rift_calibration --data ../shared/data/real`` prints, per
case, what the registration returns (corner error, inliers, the fit's statistics): the rows
the thresholds were read from.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.calibrate_registration import OS_SIFT_OFFSET, read_os_sift_pair
from benchmarks.common import log_row, save_rows
from benchmarks.keypoints import Case, warped_case

logger = logging.getLogger(__name__)

SEED = 60_000
SYNTHETIC_SEED = 61_000
SIZES = (256, 512)
POOLING = (1, 2)


def _pool(img: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return img
    h, w = (s // factor * factor for s in img.shape)
    return img[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def os_sift_cases(data: Path, n: int, seed: int = SEED) -> Iterator[Case]:
    """Warped GF-3 crops onto WorldView crops of ``os_sift/`` (see the module doc)."""
    pair = read_os_sift_pair(data)
    if pair is None:
        return
    wv, sar = pair
    rng = np.random.default_rng(seed)
    ox, oy = (int(np.floor(v)) for v in OS_SIFT_OFFSET)
    i = 0
    while i < n:
        size, factor = int(rng.choice(SIZES)), int(rng.choice(POOLING))
        span = size * factor
        if span > min(wv.shape):
            continue
        r, c = (int(rng.integers(0, s - span + 1)) for s in wv.shape)
        sar_crop = sar[r + oy:r + oy + span, c + ox:c + ox + span]
        if sar_crop.shape != (span, span) or (sar_crop <= 0).mean() > 0.02:
            continue
        # GF-3 crop pixel p lies at WorldView crop pixel p + (ox, oy) - OS_SIFT_OFFSET (full resolution)
        base = _translation((ox - OS_SIFT_OFFSET[0]) / factor, (oy - OS_SIFT_OFFSET[1]) / factor)
        amp = np.sqrt(_pool(sar_crop.astype(np.float64) ** 2, factor)).astype(np.float32)
        case = warped_case("os_sift calibration", f"os{i}@{r},{c}x{factor}/{size}", amp, "amplitude",
                           _pool(wv[r:r + span, c:c + span], factor).astype(np.float32), "optical",
                           seed=seed + 100 + i, sar_valid=amp > 0)
        assert case.truth is not None
        case.truth = base @ case.truth
        yield case
        i += 1


CFOG_SEED = 62_000
CFOG_PAIRS = (("A", "SAR_sen.png", "optical_ref.png", "OpticaltoSAR_CP.txt"),
              ("B", "SAR1_sen.tif", "visible1_ref.tif", "visibleToSAR1_CP.txt"),
              ("C", "Stest3_sen.tif", "Stest3_ref.tif", "Stest3gcp.pts"))
"""The three optical-SAR pairs of ``cfog_hopc/``: name, SAR, optical, check-point file."""


def cfog_truth(points: np.ndarray) -> np.ndarray:
    """The affine SAR -> optical pixel-corner map least-squares fitted to a ``cfog_hopc`` check-point list
    (rows ``x_ref y_ref x_sen y_sen``, 1-based pixel centres, hence the half-pixel shift)."""
    from engine.registration.transforms import fit_matrix

    return fit_matrix(points[:, 2:4] - 0.5, points[:, 0:2] - 0.5, "affine")


def cfog_hopc_cases(data: Path, n: int, seed: int = CFOG_SEED) -> Iterator[Case]:
    """Warped SAR crops onto optical crops of the ``cfog_hopc/`` pairs, whose truth is the affine fitted to
    each pair's 145-294 check points (RMS residual 0.74-0.90 px), not a global offset as for ``os_sift``.

    Crops at seeded positions of 256 px at full resolution or averaged 2 x 2 (the 8-bit display values
    averaged as they are, not as intensities as for ``os_sift``), or 512 px where the pair allows; the SAR
    crop warped by a random homography of the benchmark's distribution."""
    from benchmarks.registration.shifted import _gray

    folder = data / "cfog_hopc"
    pairs = [(name, _gray(folder / sen), _gray(folder / opt), cfog_truth(np.loadtxt(folder / pts)))
             for name, sen, opt, pts in CFOG_PAIRS if (folder / sen).exists()]
    if not pairs:
        return
    rng = np.random.default_rng(seed)
    i = 0
    while i < n:
        name, sar, opt, affine = pairs[i % len(pairs)]
        size, factor = int(rng.choice(SIZES)), int(rng.choice(POOLING))
        span = size * factor
        common = [min(a, b) for a, b in zip(sar.shape, opt.shape, strict=True)]
        if span > min(common):
            continue
        r, c = (int(rng.integers(0, s - span + 1)) for s in common)
        scale = np.diag([1.0 / factor, 1.0 / factor, 1.0])
        # SAR crop pixel p (pooled) -> optical crop pixel: pool^-1, into the pair's frame, the affine, back
        base = scale @ _translation(-c, -r) @ affine @ _translation(c, r) @ np.linalg.inv(scale)
        case = warped_case("cfog_hopc calibration", f"cfog{name}{i}@{r},{c}x{factor}/{size}",
                           _pool(sar[r:r + span, c:c + span], factor).astype(np.float32), "amplitude",
                           _pool(opt[r:r + span, c:c + span], factor).astype(np.float32), "optical",
                           seed=seed + 100 + i)
        assert case.truth is not None
        case.truth = base @ case.truth
        yield case
        i += 1


def synthetic_cases(n: int, side: int = 384, seed: int = SYNTHETIC_SEED) -> Iterator[Case]:
    """engine.synthetic SAR / optical scenes, the SAR warped (seeds the benchmark does not use)."""
    from engine.synthetic import generate_scene_pair

    for i in range(n):
        pair = generate_scene_pair(side, side, seed=seed + i)
        sar = np.maximum(np.asarray(pair.sar, np.float32).reshape(side, side), 1e-6)
        opt = np.asarray(pair.optical, np.float32)[:3].mean(axis=0)
        yield warped_case("synthetic calibration", f"seed{seed + i}", sar, "intensity", opt, "optical",
                          seed=seed + 500 + i)


HALF_EMPTY_SEED = 63_000


def half_empty(cases: list[Case], seed: int = HALF_EMPTY_SEED) -> list[Case]:
    """The cases with half of each INPUT (a seeded side: left, right, top or bottom) made invalid, as water
    or a nodata border leaves one part of a scene without structure: the matches then cover the other half
    only, and the fit must extrapolate to the empty corners."""
    rng = np.random.default_rng(seed)
    out = []
    for case in cases:
        rows, cols = case.inp.shape
        side = int(rng.integers(4))
        keep = np.ones((rows, cols), bool)
        if side == 0:
            keep[:, : cols // 2] = False
        elif side == 1:
            keep[:, cols // 2:] = False
        elif side == 2:
            keep[: rows // 2] = False
        else:
            keep[rows // 2:] = False
        valid = case.inp_valid & keep
        out.append(replace(case, name=f"{case.name}-half{side}", inp_valid=valid,
                           inp=np.where(valid, case.inp, 0.0).astype(np.float32)))
    return out


def calibration_cases(data: Path, n_real: int, n_synthetic: int, n_cfog: int = 0) -> list[Case]:
    return [*os_sift_cases(data, n_real), *synthetic_cases(n_synthetic), *cfog_hopc_cases(data, n_cfog)]


def add_case_arguments(parser: argparse.ArgumentParser, real: int, synthetic: int) -> None:
    """``--data``, ``--real``, ``--synthetic`` and ``--cfog`` (defaults ``real``, ``synthetic`` and 0): the
    calibration cases of a run, read back by :func:`cases_of`."""
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--real", type=int, default=real, help="os_sift crops")
    parser.add_argument("--synthetic", type=int, default=synthetic)
    parser.add_argument("--cfog", type=int, default=0, help="cfog_hopc crops (truth from check points)")
    parser.add_argument("--half-empty", action="store_true", help="half of each INPUT made invalid")


def cases_of(args: argparse.Namespace) -> list[Case]:
    """:func:`calibration_cases` of the arguments of :func:`add_case_arguments`."""
    cases = calibration_cases(args.data, args.real, args.synthetic, args.cfog)
    return half_empty(cases) if getattr(args, "half_empty", False) else cases


def keypoint_fits(case: Case) -> dict[str, float]:
    """Corner error of the RIFT keypoint fit alone (no dense stage) for each model kind (inf: refused)."""
    from engine.errors import RegistrationError
    from engine.registration.keypoints import register
    from engine.registration.prepare import prepare_image
    from engine.registration.transforms import MATRIX_KINDS
    from engine.run import QUIET

    kps = [register._keypoints(side, prepare_image(side.values, side.kind, side.valid), "rift-v1",
                               register.MAX_KEYPOINTS, QUIET) for side in case.sides()]
    size = (float(case.inp.shape[1]), float(case.inp.shape[0]))
    out = {}
    for kind in MATRIX_KINDS:
        try:
            fit = register._keypoint_fit(kps[0], kps[1], kind, size, {}, QUIET)
            out[kind] = case.corner_error(fit.matrix)
        except RegistrationError:
            out[kind] = float("inf")
    return out


def main(argv: list[str] | None = None) -> int:
    from engine.registration.keypoints.api import make_detector

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_case_arguments(parser, real=24, synthetic=6)
    parser.add_argument("--json", type=Path, help="write the per-case rows here")
    parser.add_argument("--keypoint-fits", action="store_true",
                        help="the RIFT keypoint fit alone, per model kind, instead of the whole registration")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    detector = make_detector(None)
    rows: list[dict[str, Any]] = []
    for case in cases_of(args):
        started = time.perf_counter()
        row: dict[str, object] = {"case": case.name}
        if args.keypoint_fits:
            row |= keypoint_fits(case)
        else:
            row |= _register(case, detector)
        row["seconds"] = time.perf_counter() - started
        log_row(rows, row, logger)
    if args.keypoint_fits:
        for kind in ("similarity", "affine", "homography"):
            errors = np.array([float(str(r[kind])) for r in rows])
            logger.info("%s: within 3 px %d, within 8 px %d, answered %d of %d", kind, (errors < 3).sum(),
                        (errors < 8).sum(), np.isfinite(errors).sum(), len(errors))
    save_rows(args.json, rows)
    return 0


def _register(case: Case, detector: Any) -> dict[str, object]:
    """The whole registration of a case with RIFT keypoints: corner error, inliers, where its fit started;
    or the refusal."""
    from engine.errors import RegistrationError
    from engine.registration.keypoints.register import register_images

    try:
        reg = register_images(*case.sides(), detector, optical_sar_method="rift")
    except RegistrationError as exc:
        return {"refused": str(exc).split(";")[0]}
    return {"error": case.corner_error(reg.matrix), "inliers": reg.n_inliers,
            "coarse": reg.coarse, "stages": reg.stages, "corner_uncertainty": reg.corner_uncertainty.tolist()}


if __name__ == "__main__":
    raise SystemExit(main())
