"""Co-registration accuracy benchmark (``make bench-registration``).

Runs the engine's ``coregister`` end to end (GeoTIFFs written to a temporary
folder) for the classical method and for a simple baseline (bounded FFT
cross-correlation of gradient magnitudes, same search code), on:

- synthetic SAR/optical pairs with known sub-pixel shifts up to +-32 px (seeded);
- the 3MOS optical/SAR pairs (co-registered to about 1 px) with seeded known
  sub-pixel shifts applied to the SAR (Fourier shift, valid centre cropped);
- the OSdataset pair (``VIS_unwarped_derived.png`` vs ``SAR.png``) with seeded shifts;
- the CFOG/HOPC pairs: local affine fit, error measured at their check points.

Error = distance between the estimated and the true shift (input pixels).
Writes the section "## Co-registration (make bench-registration)" of a markdown file.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import float32_tiled_profile, replace_section
from engine.registration.shift.deep import find_embed_model
from engine.registration.shift.methods import MODEL_METHODS
from training.registration.data import HELD_OUT as DEEP_HELD_OUT

log = logging.getLogger(__name__)

SECTION = "## Co-registration (make bench-registration)"
CRS = "EPSG:32631"
MAX_SHIFT = 40  # search range of the benchmark runs (true shifts are up to +-32 px)
APPLIED = 32.0  # largest applied shift


@dataclass
class Case:
    dataset: str
    name: str
    truth: tuple[float, float] | None  # expected (shift_x, shift_y) in the engine's convention
    run: Callable[[str], tuple[float, float, float]]  # method -> (error px, shift_x, shift_y)


@dataclass
class Row:
    dataset: str
    method: str
    errors: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    failures: int = 0

    def cells(self) -> list[str]:
        e = np.array(self.errors + [np.inf] * self.failures)
        n = len(e)
        finite = e[np.isfinite(e)]
        med = float(np.median(e)) if n else float("nan")
        return [
            self.dataset,
            self.method,
            str(n),
            f"{med:.2f}" if np.isfinite(med) else "fail",
            f"{float(np.mean(finite)):.2f}" if len(finite) else "-",
            f"{100 * np.mean(e < 1):.0f} %",
            f"{100 * np.mean(e < 3):.0f} %",
            f"{statistics.mean(self.seconds):.2f}" if self.seconds else "-",
            str(self.failures),
            str(len(self.errors)),
            str(sum(err >= 3 for err in self.errors)),
        ]


def _write_tif(path: Path, data: np.ndarray, col_off: float = 0.0, row_off: float = 0.0) -> None:
    import rasterio
    from rasterio.transform import Affine

    arr = data if data.ndim == 3 else data[np.newaxis]
    transform = Affine(1.0, 0.0, 500000.0 + col_off, 0.0, -1.0, 5000000.0 - row_off)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype="float32",
        crs=CRS,
        transform=transform,
    ) as dst:
        dst.write(arr.astype(np.float32))


def fourier_shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Move the content of ``img`` by (+dx, +dy) pixels (right/down), periodic."""
    ky = np.fft.fftfreq(img.shape[0], d=1.0)[:, None]
    kx = np.fft.fftfreq(img.shape[1], d=1.0)[None, :]
    spec = np.fft.fft2(img.astype(np.float64))
    return np.fft.ifft2(spec * np.exp(-2j * np.pi * (kx * dx + ky * dy))).real.astype(np.float32)


def _gray(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        a = src.read().astype(np.float32)
    return a[:3].mean(axis=0) if a.shape[0] >= 3 else a[0]


ANCHORS = ("gefolki", "arosics")
ANCHOR_PYTHON: list[str] = []  # set by --anchor-python
ANCHOR_SCRIPT = Path(__file__).resolve().parent / "anchors.py"
DEFAULT_ANCHOR_PYTHON = Path(__file__).resolve().parents[2] / "bench_output" / "venv" / "bin" / "python"
"""Anchor venv used when --anchor-python is not given (see DESIGN.md section 5 to create it)."""


def _anchor(method: str, inp: Path, ref: Path, max_shift: int = MAX_SHIFT) -> tuple[float, float]:
    """Run a GeFolki/AROSICS anchor in the separate venv (both rasters on one grid)."""
    import json
    import subprocess

    if not ANCHOR_PYTHON:
        raise RuntimeError("no --anchor-python given")
    out = subprocess.run(
        [ANCHOR_PYTHON[0], str(ANCHOR_SCRIPT), method, str(inp), str(ref), str(max_shift)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "anchor failed")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return float(res["shift_x"]), float(res["shift_y"])


def _coreg(method: str, inp: Path, ref: Path, **kw: Any) -> Any:
    from engine.registration.shift.api import coregister

    return coregister(inp, ref, method=method, max_shift=kw.pop("max_shift", MAX_SHIFT), **kw)


def shifted_pair_case(
    dataset: str, name: str, sar: np.ndarray, opt: np.ndarray, shift: tuple[float, float], work: Path,
    applied: float = APPLIED,
) -> Case:
    """INPUT = SAR with its content moved by ``shift`` (at most ``applied`` px), valid centre cropped;
    REFERENCE = optical."""
    m = int(np.ceil(applied)) + 1
    moved = fourier_shift(sar, *shift)[m:-m, m:-m]
    inp, ref = work / f"{name}_sar.tif", work / f"{name}_opt.tif"
    _write_tif(inp, moved, m, m)
    _write_tif(ref, opt)
    ref_crop = work / f"{name}_optcrop.tif"  # the reference on the input's grid, for the anchors
    _write_tif(ref_crop, opt[m:-m, m:-m], m, m)
    truth = (-shift[0], -shift[1])  # the SAR content must move back

    def run(method: str) -> tuple[float, float, float]:
        if method in ANCHORS:
            sx, sy = _anchor(method, inp, ref_crop)
            return float(np.hypot(sx - truth[0], sy - truth[1])), sx, sy
        r = _coreg(method, inp, ref)
        return float(np.hypot(r.shift_x - truth[0], r.shift_y - truth[1])), r.shift_x, r.shift_y

    return Case(dataset, name, truth, run)


def synthetic_cases(work: Path, n: int, size: int, seed: int) -> list[Case]:
    from engine.synthetic import write_scene_pair

    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        sx, sy = (float(v) for v in rng.uniform(-APPLIED, APPLIED, 2))
        files = write_scene_pair(
            work / f"syn{i}_sar.tif",
            work / f"syn{i}_opt.tif",
            width=size,
            height=size,
            seed=seed + i,
            shift_x=sx,
            shift_y=sy,
        )
        truth = (-sx, -sy)  # synthetic: +shift moves the SAR content right/down; it must move back

        def run(method: str, f: Any = files, t: tuple[float, float] = truth) -> tuple[float, float, float]:
            if method in ANCHORS:
                sx, sy = _anchor(method, f.sar_path, f.optical_path)
                return float(np.hypot(sx - t[0], sy - t[1])), sx, sy
            r = _coreg(method, f.sar_path, f.optical_path)
            return float(np.hypot(r.shift_x - t[0], r.shift_y - t[1])), r.shift_x, r.shift_y

        cases.append(Case("synthetic", f"seed{seed + i}", truth, run))
    return cases


def threemos_cases(data: Path, work: Path, seed: int) -> list[Case]:
    folder = data / "opt_sar_3mos"
    rng = np.random.default_rng(seed)
    cases = []
    for opt_path in sorted(folder.glob("*_opt.png")):
        name = opt_path.name[: -len("_opt.png")]
        sar, opt = _gray(folder / f"{name}_sar.png"), _gray(opt_path)
        shift = (float(rng.uniform(-APPLIED, APPLIED)), float(rng.uniform(-APPLIED, APPLIED)))
        cases.append(shifted_pair_case("opt_sar_3mos (real, applied shift)", name, sar, opt, shift, work))
    return cases


CHIP = 100
"""Side (pixels) of the small-chip cases: 3MOS pairs cut to what a user often has (issue 27)."""
CHIP_SHIFT = 6.0


def threemos_chip_cases(data: Path, work: Path, seed: int) -> list[Case]:
    """Each 3MOS pair cut to a seeded CHIP-px INPUT (shift up to CHIP_SHIFT px) inside a reference
    CHIP_SHIFT + 1 px larger on every side."""
    folder = data / "opt_sar_3mos"
    rng = np.random.default_rng(seed + 2)
    m = int(np.ceil(CHIP_SHIFT)) + 1
    side = CHIP + 2 * m
    cases = []
    for opt_path in sorted(folder.glob("*_opt.png")):
        name = opt_path.name[: -len("_opt.png")]
        sar, opt = _gray(folder / f"{name}_sar.png"), _gray(opt_path)
        r, c = (int(v) for v in rng.integers(0, np.array(sar.shape) - side + 1))
        shift = (float(rng.uniform(-CHIP_SHIFT, CHIP_SHIFT)), float(rng.uniform(-CHIP_SHIFT, CHIP_SHIFT)))
        window = (slice(r, r + side), slice(c, c + side))
        cases.append(shifted_pair_case(f"opt_sar_3mos chips (real, {CHIP} px, shift <= {CHIP_SHIFT:g} px)",
                                       f"{name}-chip", sar[window], opt[window], shift, work, CHIP_SHIFT))
    return cases


def osdataset_cases(data: Path, work: Path, seed: int, n: int = 5) -> list[Case]:
    folder = data / "osdataset_hscp"
    if not (folder / "VIS_unwarped_derived.png").exists():
        return []
    sar, opt = _gray(folder / "SAR.png"), _gray(folder / "VIS_unwarped_derived.png")
    rng = np.random.default_rng(seed + 1)
    return [
        shifted_pair_case(
            "osdataset_hscp (real, applied shift)",
            f"osd{i}",
            sar,
            opt,
            (float(rng.uniform(-APPLIED, APPLIED)), float(rng.uniform(-APPLIED, APPLIED))),
            work,
        )
        for i in range(n)
    ]


CFOG_PAIRS = (
    ("A", "SAR_sen.png", "optical_ref.png", "OpticaltoSAR_CP.txt"),
    ("B", "SAR1_sen.tif", "visible1_ref.tif", "visibleToSAR1_CP.txt"),
    ("C", "Stest3_sen.tif", "Stest3_ref.tif", "Stest3gcp.pts"),
)


def cfog_cases(data: Path, work: Path) -> list[Case]:
    folder = data / "cfog_hopc"
    cases = []
    for name, sen, ref, pts in CFOG_PAIRS:
        if not (folder / sen).exists():
            continue
        inp, refp = work / f"cfog{name}_sar.tif", work / f"cfog{name}_opt.tif"
        sen_img, ref_img = _gray(folder / sen), _gray(folder / ref)
        _write_tif(inp, sen_img)
        _write_tif(refp, ref_img)
        h, w = min(sen_img.shape[0], ref_img.shape[0]), min(sen_img.shape[1], ref_img.shape[1])
        a_inp, a_ref = work / f"cfog{name}_sar_common.tif", work / f"cfog{name}_opt_common.tif"
        _write_tif(a_inp, sen_img[:h, :w])
        _write_tif(a_ref, ref_img[:h, :w])
        cp = np.loadtxt(folder / pts)
        # x_ref y_ref x_sen y_sen, 1-based pixel centres -> pixel-corner coordinates (centre at i + 0.5)
        p_ref, p_sen = cp[:, 0:2] - 0.5, cp[:, 2:4] - 0.5

        def run(
            method: str,
            i: Path = inp,
            r: Path = refp,
            pr: np.ndarray = p_ref,
            ps: np.ndarray = p_sen,
            ai: Path = a_inp,
            ar: Path = a_ref,
        ) -> tuple[float, float, float]:
            if method in ANCHORS:  # global shift only
                sx, sy = _anchor(method, ai, ar, 24)
                e = np.hypot(*(ps + np.array([sx, sy]) - pr).T)
                return float(np.sqrt(np.mean(e**2))), sx, sy
            res = _coreg(
                method, i, r, mode="local", transform="affine", window=128, grid_spacing=48, max_shift=24
            )
            err = np.hypot(*(res.transform(ps) - pr).T)
            return float(np.sqrt(np.mean(err**2))), res.shift_x, res.shift_y

        cases.append(Case("cfog_hopc (real, check points RMSE)", name, None, run))
    return cases


def run_cases(cases: Sequence[Case], methods: Sequence[str]) -> tuple[list[Row], list[str]]:
    rows: dict[tuple[str, str], Row] = {}
    details = []
    for case in cases:
        for method in methods:
            pair = case.name.removesuffix("-chip")
            trained_on = case.dataset.startswith("opt_sar_3mos") and pair not in DEEP_HELD_OUT
            if method in MODEL_METHODS and trained_on:
                continue  # the shipped embedding model was trained on this pair
            row = rows.setdefault((case.dataset, method), Row(case.dataset, method))
            t0 = time.perf_counter()
            try:
                err, sx, sy = case.run(method)
            except Exception as exc:  # a failure counts as an error of infinity
                row.failures += 1
                details.append(f"{case.dataset} {case.name} {method}: FAILED ({exc})")
                log.info(details[-1])
                continue
            row.seconds.append(time.perf_counter() - t0)
            row.errors.append(err)
            truth = f"truth ({case.truth[0]:+.2f}, {case.truth[1]:+.2f})" if case.truth else "check points"
            details.append(
                f"{case.dataset} {case.name} {method}: est ({sx:+.2f}, {sy:+.2f}) {truth} error {err:.2f} px"
            )
            log.info(details[-1])
    return list(rows.values()), details


HEADER = (
    "| data | method | pairs | median error (px) | mean error (px, finite) | < 1 px | < 3 px | "
    "s / pair | failed | answered | wrong (>= 3 px) |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def markdown(rows: Sequence[Row], notes: Sequence[str]) -> str:
    lines = [SECTION, "", HEADER]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    lines += ["", *notes, ""]
    return "\n".join(lines)


NOTES_MARKER = "<!-- registration notes: kept when the table is regenerated -->"


def large_timing(size: int, work: Path, points: int = 1000, method: str = "classical") -> str:
    """Local-mode timing of ``method``: a tiled ``size`` x ``size`` synthetic pair, ~``points`` tie points."""
    import resource

    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    from engine.registration.shift import grid
    from engine.synthetic import generate_scene_pair

    tile = 1024
    pair = generate_scene_pair(tile, tile, seed=1, shift_x=-5.3, shift_y=2.6)
    paths = {"sar": work / "large_sar.tif", "opt": work / "large_opt.tif"}
    images = {"sar": pair.sar, "opt": pair.optical[:3].mean(axis=0)}
    profile = float32_tiled_profile(size, CRS, Affine(10.0, 0, 500000.0, 0, -10.0, 5000000.0))
    for key, path in paths.items():
        with rasterio.open(path, "w", **profile) as dst:
            for r in range(0, size, tile):
                h = min(tile, size - r)
                strip = np.tile(images[key][:h], (1, size // tile + 1))[:, :size]
                dst.write(strip.astype(np.float32)[np.newaxis], window=Window(0, r, size, h))
    spacing = int(size / np.sqrt(points))
    t0, c0 = time.perf_counter(), time.process_time()
    r = _coreg(
        method,
        paths["sar"],
        paths["opt"],
        mode="local",
        grid_spacing=spacing,
        window=128,
        max_shift=32,
        transform="affine",
    )
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (
        f"Large scene ({method}): {size} x {size} pair, local mode, {r.n_measured} tie points "
        f"(spacing {spacing}, window 128, MAX_SHIFT 32, affine, {grid.default_workers()} threads): "
        f"{dt:.0f} s wall, "
        f"{cpu:.0f} s CPU, peak RSS of the process {rss:.0f} MiB; "
        f"shift ({r.shift_x:+.2f}, {r.shift_y:+.2f}) for truth (+5.30, -2.60)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.registration",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--synthetic", type=int, default=20, help="number of synthetic pairs")
    parser.add_argument("--size", type=int, default=320, help="synthetic scene side (pixels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="default: classical gradmag, plus gefolki arosics when the anchor venv exists",
    )
    parser.add_argument(
        "--anchor-python",
        default=None,
        help="python of a venv with gefolki and arosics<1.11 (adds both methods; default: "
        "bench_output/venv/bin/python if it exists; 'none' disables)",
    )
    parser.add_argument("--large", type=int, default=0, help="also time a LARGE x LARGE pair (e.g. 10000)")
    parser.add_argument("--large-method", default="classical", help="method of the --large timing")
    parser.add_argument("--only", nargs="*", default=None,
                        help="datasets: synthetic 3mos chips osdataset cfog")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("engine").setLevel(logging.WARNING)
    methods = list(args.methods or ["classical", "gradmag"])
    if args.methods is None and find_embed_model() is not None:
        methods.insert(0, "deep")
    anchor_python = args.anchor_python
    if anchor_python is None and DEFAULT_ANCHOR_PYTHON.exists():
        anchor_python = str(DEFAULT_ANCHOR_PYTHON)
    if anchor_python and anchor_python != "none":
        ANCHOR_PYTHON[:] = [anchor_python]
        if args.methods is None:
            methods += list(ANCHORS)
    only = set(args.only) if args.only else {"synthetic", "3mos", "chips", "osdataset", "cfog"}
    with tempfile.TemporaryDirectory(prefix="bench_reg_") as tmp:
        work = Path(tmp)
        cases: list[Case] = []
        if "synthetic" in only:
            cases += synthetic_cases(work, args.synthetic, args.size, args.seed)
        if args.data.is_dir():
            if "3mos" in only:
                cases += threemos_cases(args.data, work, args.seed)
            if "chips" in only:
                cases += threemos_chip_cases(args.data, work, args.seed)
            if "osdataset" in only:
                cases += osdataset_cases(args.data, work, args.seed)
            if "cfog" in only:
                cases += cfog_cases(args.data, work)
        else:
            log.warning("real data folder %s not found: only synthetic pairs are run", args.data)
        rows, details = run_cases(cases, methods)
        large = large_timing(args.large, work, method=args.large_method) if args.large else ""
    notes = [
        "Methods: `classical` = CFOG/HOPC-style oriented-gradient channels, NCC by FFT over all shifts "
        f"(bounded by MAX_SHIFT={MAX_SHIFT}), coarse to fine, sub-pixel by matrix-DFT upsampling; "
        "`gradmag` = the simple baseline (gradient magnitude, same bounded search). Global mode, "
        "except cfog_hopc (local grid, affine).",
        f"Applied shifts are uniform in +-{APPLIED:.0f} px (seeded, sub-pixel). Error = distance to the true "
        "shift in input pixels; the real pairs' own ground truth is good to about 1 px. cfog_hopc: RMSE of "
        "the fitted affine at the published check points.",
        "Failures (an error, e.g. no reliable match) count as infinite error.",
        "`deep` = the bundled embedding model (models/regembed-*.onnx) in the same search; `combined` = "
        "its embedding and the classical channels stacked at equal energy, one search; on opt_sar_3mos both "
        f"are scored only on the pairs the model was not trained on ({', '.join(DEEP_HELD_OUT)}).",
    ]
    if large:
        notes.append(large)
    text = markdown(rows, notes)
    print(text)
    for d in details:
        print(d)
    if args.markdown is not None:
        replace_section(args.markdown, text, keep=NOTES_MARKER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
