"""Calibration of the SAR-SAR keypoint path's precision (issue 27 item 2): which dense refinement of the
SAR-SIFT fit, if any, brings its answers closer to the truth.

Cases of a CALIBRATION split, disjoint from every case of ``benchmarks.keypoints`` (whose SAR-SAR cases
are six 512 px crops of the GF-3 image of ``os_sift/`` at the windows :data:`BENCHMARK_WINDOWS`, speckle
seeds 3100+, homography seeds 3200+): each source's single-look intensity multilooked 3 x 3 as the
reflectivity (as the benchmark does), each side multiplied by its own 1-look or 4-look speckle, the
INPUT after a random homography of the benchmark's law (:func:`benchmarks.keypoints.warped_case`),
seeds from :data:`SEED`. Sources (:func:`sources`):

- the GF-3 image of ``os_sift/``: the only windows with >= 95 % valid pixels that overlap none of the
  benchmark's six (a 320 px and two 256 px crops);
- ``os_sift/t1.tif`` (an airport, 8-bit SAR display, in no benchmark): two 512 px crops;
- ``sar_single_deepdespeckling/``: the Sentinel-1 GRD-like ``sar2sar_noisy.png`` (two 480 px crops) and
  the TerraSAR-X-like 400 px image.

For every case, the mean corner error of: the SAR-SIFT keypoint fit alone; a tighter LO-RANSAC refit
of its inliers (:data:`TIGHT_THRESHOLD`); the dense fine stage
(:func:`engine.registration.keypoints.dense.refine`) started from it on the CFOG channels of the
prepared (dB) images as the optical-SAR path runs it (a homography request may end as an affine there),
and on those of the dB images smoothed by 2 px; the same stage on the ROEWA channels of the linear
intensities (:func:`engine.registration.keypoints.sarsift.dense_features`) at alpha 3 and, with the
affine choice, at the adopted alpha 2; and the engine's answer: that stage fitting the requested model,
with its acceptance rule (:func:`engine.registration.keypoints.register._sharpened`), with each last pass
of :data:`SHARPENINGS` (and its CPU seconds).

Run from the repository root: ``OMP_NUM_THREADS=1 python -m benchmarks.investigations.keypoints_sar_precision
--data ../shared/data/real``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.errors import RegistrationError
from engine.registration.features import OrientedGradientFeatures, oriented_channels
from engine.registration.keypoints import register, sarsift
from engine.registration.keypoints.coarse import eroded, features
from engine.registration.keypoints.dense import FeatureMaps, LastPass, refine
from engine.registration.keypoints.detect import Keypoints
from engine.registration.prepare import prepare_image
from engine.registration.ransac import ransac_matrix
from engine.registration.transforms import corner_error, project
from engine.run import QUIET

from ..keypoints import REFLECTIVITY_BOX, Case, _grey, _speckle, gf3_reflectivity, warped_case

logger = logging.getLogger(__name__)

SEED = 60_000
"""Speckle seeds ``SEED + k``, homography seeds ``SEED + 1000 + k`` (the benchmark's are 3000-3300)."""
BENCHMARK_WINDOWS = ((672, 382), (228, 287), (628, 170), (700, 244), (286, 152), (201, 538))
"""Top-left (row, column) of the benchmark's 512 px GF-3 crops (``benchmarks.keypoints.cases_gf3``)."""
GF3_WINDOWS = ((720, 896, 320), (176, 1056, 256), (1104, 896, 256))
"""(row, column, side) of the calibration's GF-3 crops: >= 95 % valid, none overlaps a benchmark crop."""
LOOKS = (1, 4)
SHARPENINGS = {"dense ROEWA, last pass 48 px on 16": None,
               "dense ROEWA, last pass 32 px on 32": LastPass(32, 32, weighted=False),
               "engine (dense ROEWA, last pass 32 px on 32, weighted)": register.SHARPEN_LAST_PASS}
"""The sharpening (:func:`engine.registration.keypoints.register._sharpened`) with each last pass: the
optical-SAR path's (its templates and grid, the adopted one until 2026-12-07 13:50 UTC), the adopted
templates and grid unweighted, and the engine's."""
METHODS = ("keypoints", "keypoints, LO refit at 1.5 px", "dense CFOG dB", "dense CFOG dB smoothed 2 px",
           "dense ROEWA alpha 3", "dense ROEWA, affine choice", *SHARPENINGS)
TIGHT_THRESHOLD = 1.5
"""Inlier threshold (px) of the tighter LO-RANSAC refit tried on the keypoint matches."""


def multilooked(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An 8-bit SAR display image as a reflectivity: its intensity averaged over the benchmark's box."""
    from scipy import ndimage

    valid = grey > 0
    box = REFLECTIVITY_BOX
    weight = ndimage.uniform_filter(valid.astype(np.float64), box, mode="constant")
    mean = ndimage.uniform_filter(np.where(valid, grey.astype(np.float64) ** 2, 0.0), box, mode="constant")
    full = weight > 1 - 1e-9
    return np.where(full, mean / np.maximum(weight, 1e-9), 0.0).astype(np.float32), full


def sources(data: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, reflectivity crop, valid)`` of every calibration source (see the module doc)."""
    found = gf3_reflectivity(data)
    if found is not None:
        refl, full = found
        for r, c, side in GF3_WINDOWS:
            overlaps = any(r < br + 512 and br < r + side and c < bc + 512 and bc < c + side
                           for br, bc in BENCHMARK_WINDOWS)
            assert not overlaps, "a calibration crop overlaps a benchmark crop"
            yield f"GF-3@{r},{c}", refl[r:r + side, c:c + side], full[r:r + side, c:c + side]
    airport = data / "os_sift" / "t1.tif"
    if airport.is_file():
        refl, full = multilooked(_grey(airport))
        for r, c in ((0, 0), (380, 280)):
            yield f"t1@{r},{c}", refl[r:r + 512, c:c + 512], full[r:r + 512, c:c + 512]
    folder = data / "sar_single_deepdespeckling"
    if (folder / "sar2sar_noisy.png").is_file():
        refl, full = multilooked(_grey(folder / "sar2sar_noisy.png"))
        for c in (0, 500):
            yield f"S1-GRD@{c}", refl[:480, c:c + 480], full[:480, c:c + 480]
    if (folder / "noisy_test_image_data_coordinates.png").is_file():
        refl, full = multilooked(_grey(folder / "noisy_test_image_data_coordinates.png"))
        yield "TSX", refl, full


def calibration_cases(data: Path, draws: int = 2) -> Iterator[Case]:
    """Each source under each look setting of :data:`LOOKS`, ``draws`` times (other speckle, another
    homography; see the module doc)."""
    k = 0
    for name, crop, ok in sources(data):
        for draw, looks in ((d, n) for d in range(draws) for n in LOOKS):
            name_k = name if draw == 0 else f"{name}-h{draw}"
            rng = np.random.default_rng(SEED + k)
            ref = np.where(ok, _speckle(rng, crop, looks), 0.0).astype(np.float32)

            def speckled(a: np.ndarray, rng: np.random.Generator = rng, n: int = looks) -> np.ndarray:
                return _speckle(rng, np.maximum(a, 0.0), n)

            yield warped_case(f"calibration {looks}-look", name_k, np.where(ok, crop, 0.0), "amplitude",
                              ref, "amplitude", seed=SEED + 1000 + k, ref_valid=ok, after_warp=speckled,
                              sar_valid=ok)
            k += 1


def smoothed_db_features(img: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CFOG channels of a prepared (dB) image pre-smoothed by 2 px instead of the default 1 px."""
    ok = eroded(valid)
    feats = OrientedGradientFeatures(log_scale=False, pre_sigma=2.0)(img, valid)
    feats[:, ~ok] = 0.0
    return feats, ok


def roewa3_features(intensity: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`engine.registration.keypoints.sarsift.dense_features` with ROEWA gradients at alpha 3."""
    usable = valid & (intensity > 0)
    ok = eroded(usable)
    gx, gy = sarsift.roewa_gradients(intensity, usable, 3.0)
    return oriented_channels(gx, gy, ok), ok


def _dense_error(case: Case, sides: list[tuple[np.ndarray, np.ndarray]], h: np.ndarray, kind: str,
                 maps: FeatureMaps, affine_choice: bool) -> float:
    """Mean corner error of the dense fine stage from ``h`` on ``sides`` with ``maps`` (inf if it fails)."""
    assert case.truth is not None
    try:
        fit = refine(sides[0], sides[1], h, kind, QUIET, maps, affine_choice)
    except RegistrationError:
        return float("inf")
    return corner_error(fit.matrix, case.truth, float(case.inp.shape[1]), float(case.inp.shape[0]))


SCALE_BANDS = ((2.0, 3.0), (3.0, 5.0), (5.0, 8.1))
"""Bands of keypoint scale (alpha, px; geometric mean of the two keypoints) of :func:`match_errors`."""


def match_errors(case: Case, fit: register._Fit, a: Keypoints, b: Keypoints) -> dict[str, float]:
    """True error (px) of the keypoint fit's inlier matches: RMS within each of :data:`SCALE_BANDS`
    (``"rms alpha lo-hi"``) and the share of matches in it (``"share alpha lo-hi"``)."""
    assert case.truth is not None
    index_a = {tuple(p): i for i, p in enumerate(a.xy)}
    index_b = {tuple(p): i for i, p in enumerate(b.xy)}
    alpha = np.sqrt(a.scale[[index_a[tuple(p)] for p in fit.src]]
                    * b.scale[[index_b[tuple(p)] for p in fit.dst]])
    err = np.hypot(*(project(case.truth, fit.src) - fit.dst).T)
    out = {}
    for lo, hi in SCALE_BANDS:
        band = (alpha >= lo) & (alpha < hi)
        rms = float(np.sqrt(np.mean(err[band] ** 2))) if band.any() else float("nan")
        out[f"rms alpha {lo:g}-{hi:g}"] = rms
        out[f"share alpha {lo:g}-{hi:g}"] = float(band.mean())
    return out


def errors(case: Case, kind: str = "homography") -> dict[str, float]:
    """Mean corner error (px) of each of :data:`METHODS` on ``case`` (inf where it fails), and the
    keypoint inliers' true errors by scale (:func:`match_errors`)."""
    inp = register.ImageSide(case.inp, case.inp_valid, case.inp_kind, "INPUT")
    ref = register.ImageSide(case.ref, case.ref_valid, case.ref_kind, "REFERENCE")
    size = (float(case.inp.shape[1]), float(case.inp.shape[0]))
    assert case.truth is not None
    a, b = (sarsift.extract(*sarsift.linear_intensity(s.values, s.kind, s.valid), register.MAX_KEYPOINTS)
            for s in (inp, ref))
    out = dict.fromkeys(METHODS, float("inf"))
    try:
        fit = register._sar_sift_fit(a, b, kind, size, {}, QUIET)
    except RegistrationError:
        return out
    out["keypoints"] = corner_error(fit.matrix, case.truth, *size)
    out.update(match_errors(case, fit, a, b))
    tight = ransac_matrix(fit.src, fit.dst, kind, TIGHT_THRESHOLD, size)
    if tight is not None:
        out["keypoints, LO refit at 1.5 px"] = corner_error(tight.matrix, case.truth, *size)
    prepared = [(prepare_image(s.values, s.kind, s.valid), s.valid) for s in (inp, ref)]
    linear = [sarsift.linear_intensity(s.values, s.kind, s.valid) for s in (inp, ref)]
    for method, sides, maps, affine_choice in (
            ("dense CFOG dB", prepared, features, True),
            ("dense CFOG dB smoothed 2 px", prepared, smoothed_db_features, True),
            ("dense ROEWA alpha 3", linear, roewa3_features, False),
            ("dense ROEWA, affine choice", linear, sarsift.dense_features, True)):
        out[method] = _dense_error(case, sides, fit.matrix, kind, maps, affine_choice)
    for method, last_pass in SHARPENINGS.items():
        started = time.process_time()
        final = register._sharpened(fit, inp, ref, kind, {}, QUIET, last_pass)
        out[f"CPU s {method}"] = time.process_time() - started
        out[method] = corner_error(final.matrix, case.truth, *size)
    return out


def summary(rows: list[dict[str, object]]) -> str:
    """Mean / median / max corner error of each method, per look setting and overall, then the keypoint
    inliers' true RMS error by scale band, mean over the cases (Markdown)."""
    bands = [f"{lo:g}-{hi:g}" for lo, hi in SCALE_BANDS]
    by_scale = ["", "| cases | " + " | ".join(f"RMS error, alpha {b} px (share)" for b in bands) + " |",
                "|---|" + "---|" * len(bands)]
    for looks in LOOKS:
        sel = [r for r in rows if r["set"] == f"calibration {looks}-look" and f"rms alpha {bands[0]}" in r]
        if not sel:
            continue
        cells = [f"{np.nanmean([float(r[f'rms alpha {b}']) for r in sel]):.2f} "  # type: ignore[arg-type]
                 f"({100 * np.mean([float(r[f'share alpha {b}']) for r in sel]):.0f} %)"  # type: ignore[arg-type]
                 for b in bands]
        by_scale.append(f"| calibration {looks}-look ({len(sel)}) | " + " | ".join(cells) + " |")
    lines = ["| cases | method | mean (px) | median (px) | max (px) | < 1 px | CPU s of the sharpening |",
             "|---|---|---|---|---|---|---|"]
    for label in [*(f"calibration {n}-look" for n in LOOKS), "all"]:
        sel = [r for r in rows if label == "all" or r["set"] == label]
        if not sel:
            continue
        for method in METHODS:
            e = np.array([float(r[method]) for r in sel])  # type: ignore[arg-type]
            cpu = [float(r[f"CPU s {method}"]) for r in sel if f"CPU s {method}" in r]  # type: ignore[arg-type]
            lines.append(f"| {label} ({len(sel)}) | {method} | {e.mean():.3f} | {np.median(e):.3f} | "
                         f"{e.max():.2f} | {(e < 1).sum()} | {f'{np.mean(cpu):.2f}' if cpu else ''} |")
    return "\n".join(lines + by_scale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--draws", type=int, default=2,
                        help="speckle and homography draws per source and look setting")
    parser.add_argument("--json", type=Path, help="write the per-case rows here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("engine").setLevel(logging.WARNING)
    rows: list[dict[str, object]] = []
    for case in calibration_cases(args.data, args.draws):
        found = errors(case)
        rows.append({"set": case.set_name, "case": case.name, **found})
        logger.info("%s %s: %s", case.set_name, case.name,
                    ", ".join(f"{k} {v:.2f}" for k, v in found.items()))
    text = summary(rows)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
