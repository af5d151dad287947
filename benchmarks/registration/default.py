"""Evidence for co-registration's default METHOD (``make bench-registration-default``).

Global mode with the default search (MAX_SHIFT_M), as a new user would run it,
on real pairs with *secret* shifts: the INPUT's georeferencing is moved by a
seeded offset of up to +-50 px (pixels untouched), so the answer the method
must find is the pair's own offset minus the secret one. The pairs' own
offsets: 3MOS (co-registered, 0), the CFOG/HOPC pairs (median offset of their
published check points), os_sift (GF-3 HH as INPUT, WorldView as REFERENCE,
(+73.0, +13.8) px, where both methods agree with wide searches and an edge
overlay confirms it) and RIFT (no ground truth: the error is measured against
the method's own answer on the unshifted pair, i.e. consistency only).
A refusal (RegistrationError) counts as a failure, never as an error of zero.
``deep`` is scored on 3MOS only on the pairs it was not trained on.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import replace_section
from benchmarks.registration.shifted import CFOG_PAIRS, Case, _gray, _write_tif, markdown, run_cases
from training.registration.data import HELD_OUT

logger = logging.getLogger(__name__)

SECTION = "## Co-registration: choice of the default method (make bench-registration-default)"
SECRET = 50.0
"""Largest secret offset (pixels, per axis)."""
OS_SIFT = (
    "os_sift/GF3_KAS_SL_015331_W95.9_N41.3_20190709_L1B_HH_L10004105495-1-L2.tiff",
    "os_sift/18APR24174447-P2AS-013202438020_01_P001L1-1-L2.tiff",
    (73.0, 13.8),
)


def _coregister(method: str, inp: Path, ref: Path) -> tuple[float, float]:
    from engine.registration.shift.api import coregister

    r = coregister(inp, ref, method=method)
    return r.shift_x, r.shift_y


def _error_case(dataset: str, name: str, inp: Path, ref: Path, truth: tuple[float, float]) -> Case:
    def run(method: str) -> tuple[float, float, float]:
        sx, sy = _coregister(method, inp, ref)
        return float(np.hypot(sx - truth[0], sy - truth[1])), sx, sy

    return Case(dataset, name, truth, run)


def _offsets(rng: np.random.Generator, n: int) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in rng.uniform(-SECRET, SECRET, (n, 2))]


def image_pair_cases(
    dataset: str, name: str, sen: np.ndarray, ref: np.ndarray, base: tuple[float, float], n: int,
    rng: np.random.Generator, work: Path,
) -> list[Case]:  # fmt: skip
    """``n`` secret georeferencing offsets of an image pair (1 m pixels) whose own offset is ``base``."""
    refp = work / f"{name}_ref.tif"
    _write_tif(refp, ref)
    cases = []
    for i, (ox, oy) in enumerate(_offsets(rng, n)):
        inp = work / f"{name}_{i}_sen.tif"
        _write_tif(inp, sen, ox, oy)
        cases.append(_error_case(dataset, f"{name}#{i}", inp, refp, (base[0] - ox, base[1] - oy)))
    return cases


def threemos(data: Path, work: Path, rng: np.random.Generator, n: int) -> list[Case]:
    folder = data / "opt_sar_3mos"
    cases: list[Case] = []
    for name in HELD_OUT:
        sar, opt = _gray(folder / f"{name}_sar.png"), _gray(folder / f"{name}_opt.png")
        cases += image_pair_cases("3MOS held-out pairs", name, sar, opt, (0.0, 0.0), n, rng, work)
    return cases


def cfog(data: Path, work: Path, rng: np.random.Generator, n: int) -> list[Case]:
    folder = data / "cfog_hopc"
    cases: list[Case] = []
    for name, sen, ref, pts in CFOG_PAIRS:
        cp = np.loadtxt(folder / pts)  # x_ref y_ref x_sen y_sen
        base = tuple(float(v) for v in np.median(cp[:, 0:2] - cp[:, 2:4], axis=0))
        sen_img, ref_img = _gray(folder / sen), _gray(folder / ref)
        cases += image_pair_cases("cfog_hopc", f"cfog{name}", sen_img, ref_img, base, n, rng, work)  # type: ignore[arg-type]
    return cases


def os_sift(data: Path, work: Path, rng: np.random.Generator, n: int) -> list[Case]:
    """The georeferenced pair: the secret offset moves the INPUT's geotransform (a VRT, pixels untouched)."""
    from osgeo import gdal

    gdal.UseExceptions()
    sar, opt, base = OS_SIFT
    cases = []
    for i, (ox, oy) in enumerate(_offsets(rng, n)):
        vrt = work / f"os_sift_{i}.vrt"
        ds = gdal.Translate(str(vrt), str(data / sar), format="VRT")
        g = list(ds.GetGeoTransform())
        g[0] += ox * g[1]
        g[3] += oy * g[5]
        ds.SetGeoTransform(g)
        ds = None
        cases.append(_error_case("os_sift (georeferenced)", f"os_sift#{i}", vrt, data / opt,
                                 (base[0] - ox, base[1] - oy)))  # fmt: skip
    return cases


def rift(data: Path, work: Path, rng: np.random.Generator, n: int) -> list[Case]:
    """No ground truth: error against the method's own answer on the unshifted pair (consistency)."""
    folder = data / "rift"
    sen, ref = _gray(folder / "sar-optical_pair1.jpg"), _gray(folder / "sar-optical_pair2.jpg")
    refp, base_in = work / "rift_ref.tif", work / "rift_sen.tif"
    _write_tif(refp, ref)
    _write_tif(base_in, sen)
    own: dict[str, tuple[float, float]] = {}
    cases = []
    for i, (ox, oy) in enumerate(_offsets(rng, n)):
        inp = work / f"rift_{i}_sen.tif"
        _write_tif(inp, sen, ox, oy)

        def run(method: str, p: Path = inp, o: tuple[float, float] = (ox, oy)) -> tuple[float, float, float]:
            if method not in own:
                own[method] = _coregister(method, base_in, refp)
            sx, sy = _coregister(method, p, refp)
            return float(np.hypot(sx - (own[method][0] - o[0]), sy - (own[method][1] - o[1]))), sx, sy

        cases.append(Case("rift (consistency only)", f"rift#{i}", None, run))
    return cases


SETS = {"3mos": threemos, "cfog": cfog, "os_sift": os_sift, "rift": rift}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.registration.default",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shifts", type=int, default=3, help="secret offsets per pair (os_sift: 2 x this)")
    parser.add_argument("--methods", nargs="+", default=["deep", "classical", "combined"])
    parser.add_argument("--only", nargs="*", default=list(SETS), help=f"data sets: {' '.join(SETS)}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("engine").setLevel(logging.WARNING)
    if not args.data.is_dir():
        logger.error("real data folder %s not found", args.data)
        return 2
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench_regdef_") as tmp:
        cases: list[Case] = []
        for key in args.only:
            n = 2 * args.shifts if key in ("os_sift", "rift") else args.shifts
            cases += SETS[key](args.data, Path(tmp), rng, n)
        rows, details = run_cases(cases, args.methods)
    notes: list[Any] = [
        "Global mode, default search (MAX_SHIFT_M 150 m; 1 m pixels here, so ±150 px, limited to half the "
        f"common area), secret georeferencing offsets uniform in ±{SECRET:.0f} px per axis (seed "
        f"{args.seed}). Error = distance to the expected shift (input pixels); a refusal is a failure.",
        f"Command: `python -m benchmarks.registration.default --data ../shared/data/real --seed {args.seed} "
        f"--shifts {args.shifts} --markdown docs/BENCHMARKS.md`.",
    ]
    text = markdown(rows, notes).replace("## Co-registration (make bench-registration)", SECTION)
    print(text)
    for d in details:
        print(d)
    if args.markdown is not None:
        replace_section(args.markdown, text, keep="<!-- default method notes -->")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
