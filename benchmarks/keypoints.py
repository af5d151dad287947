"""Keypoint registration benchmark (``make bench-keypoints``) -> docs/BENCHMARKS.md.

Protocol of the optical-SAR keypoint literature, on pairs with a known pixel
transform: a co-registered pair (SAR, REFERENCE) is turned into a test case by
warping the SAR with a seeded random homography ``G`` (rotation +-30 deg, scale
0.75-1.33 log-uniform, perspective terms up to 1e-4 x 256 / side, shift up to 4 %
of the side, about the image centre); the true INPUT -> REFERENCE map is ``G^-1``.
For every method and case:

- matches = the point pairs the method returns after its own outlier rejection
  (RANSAC inliers); a match is *correct* when the true map puts its INPUT point
  within 3 px of its REFERENCE point;
- NCM = number of correct matches; CMR = NCM / matches (0 when a method returns
  none); RMSE over the correct matches (true error);
- answered = a transform returned (not refused); correct (success) = mean
  distance of the four image corners mapped by the estimated and the true
  transform < 3 px; wrong = answered and not correct (a refusal was due);
  seconds per pair (wall clock, whole pipeline).

Sets: 3MOS pairs (SAR INPUT, optical REFERENCE, 256 px; each under two random
homographies), the OSdataset pair
(SAR.png onto VIS_unwarped_derived.png, 512 px), SAR-SAR crops of the GF-3 image
of ``os_sift/`` (512 px: its single-look intensity multilooked 3 x 3 as the reflectivity,
then each side multiplied by its own 1-look or 4-look gamma speckle, so that the two
sides share the scene but not the speckle, as two acquisitions do),
synthetic scene pairs (engine.synthetic, SAR onto optical), and the real
``sar_sar_r2d2/`` pairs (no ground truth: inliers and their RMSE only).
Baselines: OpenCV SIFT and ORB on the same prepared 8-bit images, ratio test,
``cv2.findHomography`` RANSAC (3 px) — as a new user would run them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import RegistrationError, SarToolboxError
from engine.registration.keypoints.api import make_detector
from engine.registration.keypoints.detect import Detector
from engine.registration.keypoints.register import MIN_INLIERS, ImageSide, Registration, register_images
from engine.registration.keypoints.warp import warp_onto
from engine.registration.prepare import prepare_image
from engine.registration.transforms import corner_error, project

from .common import replace_section

logger = logging.getLogger(__name__)

HEADING = "## Keypoint registration (make bench-keypoints)"
NOTES_MARKER = "<!-- keypoint notes: kept when the table is regenerated -->"
CORRECT_PX = 3.0
RIFT = "rift-v1"
"""Model id of the optional RIFT optical-SAR keypoints (``--rift``)."""
FINER = "finer-search"
"""Method label of the optional finer second coarse search of the optical-SAR path (``--finer-search``)."""
COMBINED = "dense-combined"
"""Method label of the optional combined dense channels of the optical-SAR path (``--dense-combined``)."""


@dataclass
class Case:
    """One registration case: INPUT and REFERENCE images with kinds, validity and (maybe) the truth."""

    set_name: str
    name: str
    inp: np.ndarray
    inp_valid: np.ndarray
    inp_kind: str
    ref: np.ndarray
    ref_valid: np.ndarray
    ref_kind: str
    truth: np.ndarray | None  # INPUT -> REFERENCE pixel-corner map

    def sides(self) -> tuple[ImageSide, ImageSide]:
        """INPUT and REFERENCE as :func:`register_images` takes them."""
        return (ImageSide(self.inp, self.inp_valid, self.inp_kind, "INPUT"),
                ImageSide(self.ref, self.ref_valid, self.ref_kind, "REFERENCE"))

    def corner_error(self, h: np.ndarray) -> float:
        """Mean corner error (INPUT image corners, REFERENCE pixels) of the map ``h`` against the truth."""
        assert self.truth is not None
        return corner_error(h, self.truth, float(self.inp.shape[1]), float(self.inp.shape[0]))


def registered(case: Case, detector: Detector, **options: Any) -> Registration | None:
    """:func:`register_images` of the case (``options`` passed on); None when it refuses."""
    try:
        return register_images(*case.sides(), detector, **options)
    except RegistrationError:
        return None


def outcome_counts(errors: Any) -> dict[str, int]:
    """Correct (mean corner error < :data:`CORRECT_PX`), wrong (answered, farther) and refused (not finite)
    among the corner errors of some cases."""
    e = np.asarray(errors, dtype=float)
    correct, answered = e < CORRECT_PX, np.isfinite(e)
    return {"correct": int(correct.sum()), "wrong": int((answered & ~correct).sum()),
            "refused": int((~answered).sum())}


# ------------------------------------------------------------------ case generation
def random_homography(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A seeded random homography about the image centre (see the module doc)."""
    angle = np.deg2rad(rng.uniform(-30, 30))
    scale = float(np.exp(rng.uniform(np.log(0.75), np.log(1.33))))
    c = np.array([width / 2, height / 2])
    a = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    h = np.eye(3)
    h[:2, :2] = a
    h[:2, 2] = c - a @ c + rng.uniform(-0.04, 0.04, 2) * [width, height]
    p = np.eye(3)
    p[2, :2] = rng.uniform(-1e-4, 1e-4, 2) * 256 / max(width, height)
    # perspective about the centre: conjugate by the centring shift
    t = np.array([[1, 0, -c[0]], [0, 1, -c[1]], [0, 0, 1.0]])
    return np.linalg.inv(t) @ p @ t @ h


def warp(img: np.ndarray, valid: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``out(q) = img(g^-1 q)`` on the same grid (pixel-corner coordinates); outside -> invalid."""
    out, ok = warp_onto(img, valid, g, (img.shape[0], img.shape[1]))
    return np.where(ok, out, 0.0).astype(np.float32), ok


def _grey(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), np.float32).mean(axis=2)


def _speckle(rng: np.random.Generator, intensity: np.ndarray, looks: int) -> np.ndarray:
    """Amplitude of ``intensity`` times its own L-look speckle (unit-mean gamma intensity, shape L)."""
    return np.sqrt(intensity * rng.gamma(looks, 1.0 / looks, intensity.shape)).astype(np.float32)


def warped_case(set_name: str, name: str, sar: np.ndarray, sar_kind: str, ref: np.ndarray, ref_kind: str,
                seed: int, ref_valid: np.ndarray | None = None,
                after_warp: Callable[[np.ndarray], np.ndarray] | None = None,
                sar_valid: np.ndarray | None = None) -> Case:
    """SAR warped by a random homography as INPUT, ``ref`` as REFERENCE; the truth is ``G^-1``.
    ``after_warp`` turns the warped SAR into the INPUT's values (``sar_kind`` is what it returns)."""
    g = random_homography(np.random.default_rng(seed), sar.shape[1], sar.shape[0])
    inp, ok = warp(sar, np.ones(sar.shape, bool) if sar_valid is None else sar_valid, g)
    if after_warp is not None:
        inp = np.where(ok, after_warp(inp), 0.0).astype(np.float32)
    valid = np.ones(ref.shape, bool) if ref_valid is None else ref_valid
    return Case(set_name, name, inp, ok, sar_kind, ref, valid, ref_kind, np.linalg.inv(g))


MOS_SEEDS = (1000, 7000)
"""First seed of each round of random homographies of the 3MOS pairs (pair ``i`` gets ``seed + i``)."""


def cases_3mos(data: Path, limit: int, homographies: int = len(MOS_SEEDS), seeds: tuple[int, ...] = MOS_SEEDS,
               tag: str = "h") -> Iterator[Case]:
    """Each 3MOS pair under ``homographies`` random homographies (first seeds ``seeds``, by default
    :data:`MOS_SEEDS`); the cases of the rounds after the first are named ``<pair>-h1``..., those of
    other ``seeds`` ``<pair>-<tag>0``..."""
    folder = data / "opt_sar_3mos"
    for k, first_seed in enumerate(seeds[:homographies]):
        for i, sar_path in enumerate(sorted(folder.glob("*_sar.png"))[:limit]):
            stem = sar_path.name[:-len("_sar.png")]
            # 8-bit display SAR is read as amplitude (as the keypoint models are trained)
            name = stem if k == 0 and seeds == MOS_SEEDS else f"{stem}-{tag}{k}"
            yield warped_case("3MOS opt-SAR", name, _grey(sar_path), "amplitude",
                              _grey(folder / f"{stem}_opt.png"), "optical", seed=first_seed + i)


def cases_osdataset(data: Path, count: int, first_seed: int = 2000, tag: str = "h") -> Iterator[Case]:
    """The OSdataset pair under ``count`` random homographies (seeds from ``first_seed``), named
    ``pair2-<tag>0``..."""
    folder = data / "osdataset_hscp"
    if not folder.is_dir():
        return
    sar, vis = _grey(folder / "SAR.png"), _grey(folder / "VIS_unwarped_derived.png")
    for i in range(count):
        yield warped_case("OSdataset opt-SAR", f"pair2-{tag}{i}", sar, "amplitude", vis, "optical",
                          seed=first_seed + i,
                          ref_valid=vis > 0)


REFLECTIVITY_BOX = 3
"""The GF-3 image is single-look: its intensity averaged over this many pixels square (a 25-look
multilook on the same grid) stands for the scene's reflectivity, which each side then speckles anew."""
GF3_LOOKS = (1, 4)
"""Looks of the independent speckle of each side of the GF-3 SAR-SAR cases."""
GF3_SEED = 3000
"""Seed of the GF-3 crop positions; the speckle and homography seeds follow from it (``seed + 100 + ...``,
``seed + 200 + i``)."""


def gf3_reflectivity(data: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The GF-3 HH image of ``os_sift/`` multilooked to a reflectivity (intensity) and its validity."""
    import rasterio
    from scipy import ndimage

    paths = sorted((data / "os_sift").glob("GF3_*.tiff"))
    if not paths:
        return None
    with rasterio.open(paths[0]) as src:
        amp = src.read(1).astype(np.float64)
    valid = amp > 0
    box = REFLECTIVITY_BOX
    weight = ndimage.uniform_filter(valid.astype(np.float64), box, mode="constant")
    mean = ndimage.uniform_filter(np.where(valid, amp**2, 0.0), box, mode="constant")
    full = weight > 1 - 1e-9  # the whole box on valid pixels
    return np.where(full, mean / np.maximum(weight, 1e-9), 0.0).astype(np.float32), full


def cases_gf3(data: Path, count: int, side: int = 512, looks: tuple[int, ...] = GF3_LOOKS,
              seed: int = GF3_SEED) -> Iterator[Case]:
    """SAR-SAR cases of the GF-3 image as two acquisitions would give them: crops of its reflectivity
    (:func:`gf3_reflectivity`, at least 95 % valid), each side multiplied by its *own* L-look speckle
    (the INPUT after the random homography, as a sensor would see the warped scene)."""
    found = gf3_reflectivity(data)
    if found is None:
        return
    refl, full = found
    for n_looks in looks:
        rng = np.random.default_rng(seed)
        i = 0
        while i < count:
            r = int(rng.integers(0, refl.shape[0] - side))
            c = int(rng.integers(0, refl.shape[1] - side))
            ok = full[r:r + side, c:c + side]
            if ok.mean() < 0.95:
                continue
            crop = np.where(ok, refl[r:r + side, c:c + side], 0.0)
            speckle_rng = np.random.default_rng(seed + 100 + 97 * n_looks + i)
            ref = np.where(ok, _speckle(speckle_rng, crop, n_looks), 0.0).astype(np.float32)

            def speckled(a: np.ndarray, rng: np.random.Generator = speckle_rng,
                         n: int = n_looks) -> np.ndarray:
                return _speckle(rng, np.maximum(a, 0.0), n)

            case = warped_case(f"GF-3 SAR-SAR ({n_looks}-look, independent speckle)", f"crop{i}@{r},{c}",
                               crop, "amplitude", ref, "amplitude", seed=seed + 200 + i, ref_valid=ok,
                               after_warp=speckled, sar_valid=ok)
            yield case
            i += 1


def cases_synthetic(count: int, side: int = 384) -> Iterator[Case]:
    from engine.synthetic import generate_scene_pair

    for i in range(count):
        pair = generate_scene_pair(side, side, seed=4000 + i)
        sar = np.maximum(np.asarray(pair.sar, np.float32).reshape(side, side), 1e-6)
        opt = np.asarray(pair.optical, np.float32)[:3].mean(axis=0)
        yield warped_case("synthetic opt-SAR", f"seed{4000 + i}", sar, "intensity", opt, "optical",
                          seed=4100 + i)


def cases_r2d2(data: Path) -> Iterator[Case]:
    folder = data / "sar_sar_r2d2"
    for first in sorted(folder.glob("*1.*")):
        second = next(iter(sorted(folder.glob(f"{first.stem[:-1]}2.*"))), None)
        if second is None:
            continue
        a, b = _grey(first), _grey(second)
        yield Case("r2d2 SAR-SAR (real, no truth)", first.stem[:-1], a, a > 0, "amplitude", b, b > 0,
                   "amplitude", None)


# ------------------------------------------------------------------ methods
Method = Callable[[Case], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""``method(case) -> (matrix, src inliers, dst inliers)``; raises on failure."""


def ours(detector: Detector, optical_sar_method: str = "sar-harris", dense_features: str = "cfog",
         finer_search: bool = False) -> Method:
    """Our registration; ``optical_sar_method='rift'``: RIFT optical-SAR keypoints instead of SAR-Harris;
    ``dense_features='combined'``: the dense fine stage on the learned embedding and CFOG channels;
    ``finer_search``: a second, finer coarse search when the first finds no accepted start."""
    def run(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        reg = register_images(*case.sides(), detector, optical_sar_method=optical_sar_method,
                              dense_features=dense_features, finer_search=finer_search)
        return reg.matrix, reg.src, reg.dst

    return run


def _eight_bit(img: np.ndarray, valid: np.ndarray, kind: str) -> np.ndarray:
    return np.clip((prepare_image(img, kind, valid) + 1) * 127.5, 0, 255).astype(np.uint8)


def opencv(name: str) -> Method:
    import cv2 as opencv_module

    cv2: Any = opencv_module  # untyped use: OpenCV's stubs do not cover these overloads

    def run(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = _eight_bit(case.inp, case.inp_valid, case.inp_kind)
        b = _eight_bit(case.ref, case.ref_valid, case.ref_kind)
        if name == "SIFT":
            det, norm = cv2.SIFT_create(nfeatures=2000), cv2.NORM_L2
        else:
            det, norm = cv2.ORB_create(nfeatures=2000), cv2.NORM_HAMMING
        ka, da = det.detectAndCompute(a, case.inp_valid.astype(np.uint8) * 255)
        kb, db = det.detectAndCompute(b, case.ref_valid.astype(np.uint8) * 255)
        if da is None or db is None or len(ka) < 4 or len(kb) < 4:
            raise RuntimeError("too few keypoints")
        pairs = cv2.BFMatcher(norm).knnMatch(da, db, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
        if len(good) < 4:
            raise RuntimeError("too few matches")
        # OpenCV keypoints are in pixel-centre coordinates: + 0.5 to the GDAL corner convention
        src = np.array([ka[m.queryIdx].pt for m in good], np.float32) + 0.5
        dst = np.array([kb[m.trainIdx].pt for m in good], np.float32) + 0.5
        h, mask = cv2.findHomography(src, dst, cv2.RANSAC, 3.0)
        if h is None:
            raise RuntimeError("no homography")
        inl = mask.ravel().astype(bool)
        return h, src[inl].astype(np.float64), dst[inl].astype(np.float64)

    return run


# ------------------------------------------------------------------ evaluation
def evaluate(case: Case, method: Method) -> dict[str, Any]:
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        h, src, dst = method(case)
        failed = None
    except (SarToolboxError, RuntimeError) as exc:
        h, src, dst, failed = None, np.zeros((0, 2)), np.zeros((0, 2)), str(exc).split(";")[0]
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    row: dict[str, Any] = {"set": case.set_name, "case": case.name, "seconds": seconds, "cpu_seconds": cpu,
                           "matches": len(src), "failed": failed, "matrix": None if h is None else h.tolist()}
    if h is not None and len(src):
        residual = np.hypot(*(project(h, src) - dst).T)
        row["fit_rmse"] = float(np.sqrt(np.mean(residual**2)))
    if case.truth is not None:
        err = np.hypot(*(project(case.truth, src) - dst).T) if len(src) else np.zeros(0)
        correct = err < CORRECT_PX
        row["ncm"] = int(correct.sum())
        row["cmr"] = float(correct.mean()) if len(src) else 0.0
        row["rmse_correct"] = float(np.sqrt(np.mean(err[correct] ** 2))) if correct.any() else None
        ce = case.corner_error(h) if h is not None else np.inf
        row["corner_error"] = float(ce)
        row["success"] = bool(ce < CORRECT_PX)
        row["wrong"] = bool(h is not None and not ce < CORRECT_PX)  # returned, yet off: worse than refused
    return row


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for (set_name, method) in dict.fromkeys((r["set"], r["method"]) for r in rows):
        sel = [r for r in rows if r["set"] == set_name and r["method"] == method]
        s: dict[str, Any] = {"set": set_name, "method": method, "n": len(sel),
                             "seconds": float(np.mean([r["seconds"] for r in sel])),
                             "cpu_seconds": float(np.mean([r["cpu_seconds"] for r in sel])),
                             "answered": float(np.mean([r["failed"] is None for r in sel]))}
        if "success" in sel[0]:
            s["success"] = float(np.mean([r["success"] for r in sel]))
            s["wrong"] = float(np.mean([r.get("wrong", False) for r in sel]))
            s["ncm"] = float(np.mean([r["ncm"] for r in sel]))
            s["cmr"] = float(np.mean([r["cmr"] for r in sel]))
            rm = [r["rmse_correct"] for r in sel if r["rmse_correct"] is not None]
            s["rmse_correct"] = float(np.mean(rm)) if rm else None
            ce = [r["corner_error"] for r in sel if r["success"]]
            s["corner_error_correct"] = float(np.mean(ce)) if ce else None
        else:
            s["registered"] = sum(r["failed"] is None and r["matches"] >= MIN_INLIERS for r in sel)
            s["inliers"] = float(np.mean([r["matches"] for r in sel]))
            fr = [r["fit_rmse"] for r in sel if "fit_rmse" in r]
            s["fit_rmse"] = float(np.mean(fr)) if fr else None
        out.append(s)
    return out


def _count(s: dict[str, Any], key: str) -> str:
    """A share of the cases as 'k (p %)'."""
    return f"{round(s[key] * s['n'])} ({100 * s[key]:.0f} %)"


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "–" if v is None else format(v, spec)


def markdown(summary: list[dict[str, Any]], command: str) -> str:
    lines = [HEADING, "",
             f"Command: `{command}`; machine: {platform.machine()}, {os.cpu_count()} CPU(s), shared "
             "with other jobs (seconds are indicative). Protocol and definitions: "
             "`benchmarks/keypoints.py` docstring "
             f"(matches = a method's RANSAC inliers; correct = within {CORRECT_PX:g} px of the truth; "
             f"CMR = NCM / matches; answered = a transform returned (not refused); "
             f"correct = mean corner error < {CORRECT_PX:g} px; wrong = a transform "
             f"returned with a mean corner error of {CORRECT_PX:g} px or more, where a refusal would have "
             "been right; corner error = the mean corner error of the correct answers, averaged). "
             "Wall seconds depend on the other jobs; CPU seconds are this process's (OpenCV may use both "
             "cores).", "",
             "| set | method | cases | answered | correct | wrong | corner error (px) | NCM | CMR "
             "| RMSE correct (px) | s / pair | CPU s / pair |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        if "success" in s:
            lines.append(f"| {s['set']} | {s['method']} | {s['n']} | {_count(s, 'answered')} | "
                         f"{_count(s, 'success')} | {_count(s, 'wrong')} | "
                         f"{_fmt(s['corner_error_correct'])} | "
                         f"{s['ncm']:.1f} | {100 * s['cmr']:.0f} % | {_fmt(s['rmse_correct'])} | "
                         f"{s['seconds']:.2f} | {s['cpu_seconds']:.2f} |")
    lines += ["", "Real SAR-SAR pairs without ground truth (`sar_sar_r2d2/`): registered = a homography "
              f"with at least {MIN_INLIERS} inliers; mean inliers; mean RMSE of the inliers about the "
              "method's own fit (not an accuracy).", "",
              "| set | method | pairs | answered | registered | inliers | fit RMSE (px) | s / pair "
              "| CPU s / pair |",
              "|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        if "registered" in s:
            lines.append(f"| {s['set']} | {s['method']} | {s['n']} | {_count(s, 'answered')} | "
                         f"{s['registered']} | "
                         f"{s['inliers']:.1f} | {_fmt(s['fit_rmse'])} | {s['seconds']:.2f} | "
                         f"{s['cpu_seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def write_checkerboard(case: Case, h: np.ndarray, path: Path, tiles: int = 8) -> None:
    """REFERENCE and the INPUT resampled onto it by ``h`` (INPUT -> REFERENCE), as a checkerboard PNG."""
    from PIL import Image

    from engine.registration.outputs import checkerboard

    def grey(img: np.ndarray, valid: np.ndarray, kind: str) -> np.ndarray:
        return (prepare_image(img, kind, valid) + 1) * 127.5

    moved, _ = warp_onto(grey(case.inp, case.inp_valid, case.inp_kind), np.ones(case.inp.shape, bool), h,
                         (case.ref.shape[0], case.ref.shape[1]))
    board = checkerboard(moved, grey(case.ref, case.ref_valid, case.ref_kind), tiles)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(board, 0, 255).astype(np.uint8)).save(path)


def all_cases(data: Path, args: argparse.Namespace) -> list[Case]:
    cases = list(cases_synthetic(args.synthetic))
    if data.is_dir():
        cases += list(cases_3mos(data, args.mos_pairs, args.mos_homographies))
        cases += list(cases_osdataset(data, args.osdataset))
        cases += list(cases_gf3(data, args.gf3)) + (list(cases_r2d2(data)) if args.r2d2 else [])
    else:
        logger.warning("no real data at %s: synthetic cases only", data)
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--model", action="append", default=[],
                        help="a keypoints ONNX model to benchmark too (repeatable)")
    parser.add_argument("--mos-pairs", type=int, default=15)
    parser.add_argument("--mos-homographies", type=int, default=len(MOS_SEEDS),
                        choices=range(len(MOS_SEEDS) + 1),
                        help="random homographies per 3MOS pair")
    parser.add_argument("--osdataset", type=int, default=3)
    parser.add_argument("--gf3", type=int, default=6, help="GF-3 SAR-SAR crops per speckle setting")
    parser.add_argument("--synthetic", type=int, default=3)
    parser.add_argument("--no-r2d2", dest="r2d2", action="store_false")
    parser.add_argument("--no-opencv", dest="opencv", action="store_false")
    parser.add_argument("--no-classical", dest="classical", action="store_false")
    parser.add_argument("--rift", action="store_true",
                        help=f"also the optical-SAR path with RIFT keypoints ({RIFT}) instead of SAR-Harris")
    parser.add_argument("--dense-combined", action="store_true",
                        help=f"also the optical-SAR path with the dense fine stage on the combined channels "
                             f"({COMBINED}: learned embedding + CFOG) instead of CFOG alone")
    parser.add_argument("--finer-search", action="store_true",
                        help=f"also the optical-SAR path with a second, finer coarse search ({FINER})")
    parser.add_argument("--previous", type=Path,
                        help="--json of an earlier run whose rows are reported too (methods not rerun)")
    parser.add_argument("--markdown", type=Path, help="write the section into this Markdown file")
    parser.add_argument("--json", type=Path, help="write every per-case row here")
    parser.add_argument("--figures", type=Path,
                        help="write a checkerboard PNG per real SAR-SAR pair registered by our method here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    methods: dict[str, Method] = {"ours classical": ours(make_detector(None))} if args.classical else {}
    if args.rift:
        methods[f"ours {RIFT}"] = ours(make_detector(None), optical_sar_method="rift")
    if args.dense_combined:
        methods[f"ours {COMBINED}"] = ours(make_detector(None), dense_features="combined")
    if args.finer_search:
        methods[f"ours {FINER}"] = ours(make_detector(None), finer_search=True)
    for path in args.model:
        detector = make_detector(path)
        methods[f"ours {detector.model_id}"] = ours(detector)
    if args.opencv:
        methods.update({"OpenCV SIFT": opencv("SIFT"), "OpenCV ORB": opencv("ORB")})
    cases = all_cases(args.data, args)
    rows = []
    if args.previous:  # earlier rows, except those this run measures again
        again = {(c.set_name, c.name) for c in cases}
        rows = [r for r in json.loads(args.previous.read_text())["rows"]
                if r["method"] not in methods or (r["set"], r["case"]) not in again]
    for case in cases:
        for name, method in methods.items():
            optical_sar_only = name in (f"ours {RIFT}", f"ours {COMBINED}", f"ours {FINER}")
            if optical_sar_only and "optical" not in (case.inp_kind, case.ref_kind):
                continue  # two SAR images: both paths are SAR-SIFT
            row = evaluate(case, method) | {"method": name}
            rows.append(row)
            if args.figures and case.truth is None and name.startswith("ours") and row["matrix"] is not None:
                slug = name.replace(" ", "-")
                figure = args.figures / f"r2d2-{case.name}-{slug}.png"
                write_checkerboard(case, np.array(row["matrix"]), figure)
            logger.info("%s %s %s: %s", case.set_name, case.name, name,
                        {k: row[k] for k in ("success", "ncm", "matches", "seconds") if k in row})
    summary = summarise(rows)
    command = "python -m benchmarks.keypoints " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(summary, command.strip())
    print(text)
    if args.markdown:
        replace_section(args.markdown, text, keep=NOTES_MARKER)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
