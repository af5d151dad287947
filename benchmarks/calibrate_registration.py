"""Calibration of co-registration's refusal threshold (``make calibrate-registration``).

Global co-registration answers only when the correlation peak stands out: its
*distinctness* (peak minus the next local maximum, in robust standard deviations of
the surface) must reach a threshold, and the peak's main lobe must not touch the edge
of the search. This script chooses the threshold per method from data, so that wrong
answers (>= :data:`WRONG_PX` px off) stay at most :data:`MAX_WRONG_SHARE` of the
answered cases while as many cases as possible are answered, and writes the threshold
with the whole curve to ``engine/registration/shift/refusal_calibration.json`` (read by the
engine).

CALIBRATION split, disjoint from every benchmark case (``make bench-registration``
uses the 3MOS, OSdataset and CFOG pairs and synthetic seeds below 1000):

- real: the WorldView-pan / GF-3 pair of ``os_sift/`` (not in any benchmark), aligned
  once by a 1092-px global match (:data:`OS_SIFT_OFFSET`, checked to 0.3 px by a second
  match); crops of 100-256 px at seeded positions, the GF-3 crop moved by a seeded
  shift (up to 6, 16 or 32 px), the WorldView crop as REFERENCE;
- synthetic: engine.synthetic scene pairs (seeds from :data:`SYNTHETIC_SEED`), the
  same sizes and shifts.

Every case runs ``coregister`` in global mode with the default search and the
distinctness rule off; the rows (distinctness, error, shift, refused at the edge) and the
curve (answered and wrong shares per threshold) are written with the chosen value. Methods:
``deep``, ``classical`` and ``combined`` (the two stacked in one surface); the file also
holds, for analysis, the curve of the rule "answer when ``deep`` and ``classical`` agree".
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.registration.shifted import _write_tif

logger = logging.getLogger(__name__)

OUTPUT = Path("engine/registration/shift/refusal_calibration.json")
WRONG_PX = 3.0
MAX_WRONG_SHARE = 0.01
THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.0, 4.01, 0.1))
SIZES = (100, 128, 192, 256)
SHIFT_RANGES = (6, 16, 32)
OS_SIFT_OFFSET = (165.31, 132.75)
"""GF-3 pixel = WorldView pixel + this (x, y), from a 1092-px classical global match of the whole
WorldView image (MAX_SHIFT 128 from the geotransforms' (238, 146); the re-match from (165, 133) gave
(-0.31, +0.25))."""
SYNTHETIC_SEED = 50_000


@dataclass(frozen=True)
class Trial:
    """One calibration case: INPUT and REFERENCE files and the shift that aligns them."""

    source: str
    name: str
    size: int
    inp: Path
    ref: Path
    truth: tuple[float, float]


def _shift_range(rng: np.random.Generator, size: int) -> int:
    fitting = [r for r in SHIFT_RANGES if size - 2 * (r + 1) >= 64]
    return int(rng.choice(fitting))


def read_os_sift_pair(data: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The WorldView and GF-3 images of ``data/os_sift`` (band 1, float32; aligned up to
    :data:`OS_SIFT_OFFSET`), or ``None`` when the pair is absent."""
    import rasterio

    folder = data / "os_sift"
    wv_path = next(iter(sorted(folder.glob("18APR*.tiff"))), None)
    sar_path = next(iter(sorted(folder.glob("GF3_*.tiff"))), None)
    if wv_path is None or sar_path is None:
        return None
    with rasterio.open(wv_path) as src:
        wv = src.read(1).astype(np.float32)
    with rasterio.open(sar_path) as src:
        sar = src.read(1).astype(np.float32)
    return wv, sar


def os_sift_trials(data: Path, work: Path, n: int, seed: int = 1) -> Iterator[Trial]:
    """Crops of the aligned WorldView / GF-3 pair (see the module doc)."""
    pair = read_os_sift_pair(data)
    if pair is None:
        return
    wv, sar = pair
    rng = np.random.default_rng(seed)
    ox, oy = (round(v) for v in OS_SIFT_OFFSET)
    for i in range(n):
        size = int(rng.choice(SIZES))
        reach = _shift_range(rng, size)
        m = reach + 1
        ax, ay = (int(v) for v in rng.integers(-reach, reach + 1, 2))
        r = int(rng.integers(0, wv.shape[0] - size))
        c = int(rng.integers(0, wv.shape[1] - size))
        sr, sc = r + oy + ay + m, c + ox + ax + m
        crop = sar[sr:sr + size - 2 * m, sc:sc + size - 2 * m]
        if crop.shape != (size - 2 * m, size - 2 * m) or (crop == 0).mean() > 0.05:
            continue
        inp, ref = work / f"os{i}_sar.tif", work / f"os{i}_opt.tif"
        _write_tif(inp, crop, m, m)
        _write_tif(ref, wv[r:r + size, c:c + size])
        truth = (ox + ax - OS_SIFT_OFFSET[0], oy + ay - OS_SIFT_OFFSET[1])
        yield Trial("os_sift WV/GF-3 (real)", f"os{i}@{r},{c}", size, inp, ref, truth)


def synthetic_trials(work: Path, n: int, seed: int = SYNTHETIC_SEED) -> Iterator[Trial]:
    from engine.synthetic import write_scene_pair

    rng = np.random.default_rng(seed)
    for i in range(n):
        size = int(rng.choice(SIZES))
        reach = _shift_range(rng, size)
        sx, sy = (float(v) for v in rng.uniform(-reach, reach, 2))
        files = write_scene_pair(work / f"syn{i}_sar.tif", work / f"syn{i}_opt.tif", width=size, height=size,
                                 seed=seed + i, shift_x=sx, shift_y=sy)
        yield Trial("synthetic", f"seed{seed + i}", size, files.sar_path, files.optical_path, (-sx, -sy))


def measure(trial: Trial, method: str) -> dict[str, Any]:
    """Global co-registration with the distinctness rule off: distinctness, error, refusal."""
    from engine.errors import RegistrationError
    from engine.registration.shift.api import coregister
    from engine.registration.shift.fitting import FitLimits

    row: dict[str, Any] = {"source": trial.source, "case": trial.name, "size": trial.size, "method": method}
    try:
        r = coregister(trial.inp, trial.ref, method=method, limits=FitLimits(min_distinctness=0.0))
    except RegistrationError as exc:
        return row | {"refused": str(exc).split(";")[0], "distinctness": None, "error": None}
    err = float(np.hypot(r.shift_x - trial.truth[0], r.shift_y - trial.truth[1]))
    d = r.tiepoints[0].distinctness
    return row | {"refused": None, "distinctness": float(d) if np.isfinite(d) else 1e9, "error": err,
                  "shift": [r.shift_x, r.shift_y]}


def curve(rows: list[dict[str, Any]], total: int | None = None) -> list[dict[str, float]]:
    """Answered share (of all ``total`` cases, default ``len(rows)``) and wrong share (of the answered)
    per threshold."""
    out, n = [], total or len(rows)
    for t in THRESHOLDS:
        answered = [r for r in rows if r["refused"] is None and r["distinctness"] >= t]
        wrong = sum(r["error"] >= WRONG_PX for r in answered)
        within1 = sum(r["error"] < 1.0 for r in answered)
        out.append({"threshold": t, "answered": len(answered) / max(1, n),
                    "wrong_of_answered": wrong / max(1, len(answered)), "wrong": wrong,
                    "within_1px": within1 / max(1, n)})
    return out


AGREE_PX = 1.0
"""Two matchers agree when their shifts are this close (pixels)."""


def agreement(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> dict[str, Any]:
    """The rule "answer when two matchers agree": ``first``'s shift is answered when both answered,
    their shifts lie within AGREE_PX and the weaker peak reaches the threshold. Analysis only (the
    engine does not use it; see the decision record 2026-12-07-registration-combined-evidence.md)."""
    rows = [a | {"distinctness": min(a["distinctness"], b["distinctness"])}
            for a, b in zip(first, second, strict=True)
            if a["refused"] is None and b["refused"] is None
            and np.hypot(*np.subtract(a["shift"], b["shift"])) <= AGREE_PX]
    points = curve(rows, total=len(first))
    return {"rule": f"{first[0]['method']} and {second[0]['method']} within {AGREE_PX:g} px, weaker peak's "
                    "distinctness >= threshold", "min_distinctness": choose(points), "curve": points}


def choose(points: list[dict[str, float]]) -> float:
    """The smallest threshold whose wrong share of the answered cases is at most MAX_WRONG_SHARE."""
    ok = [p["threshold"] for p in points if p["wrong_of_answered"] <= MAX_WRONG_SHARE]
    return min(ok) if ok else THRESHOLDS[-1]


def by_size(rows: list[dict[str, Any]], threshold: float) -> dict[str, float]:
    """Answered share per scene size at ``threshold`` (for the small-scene advice)."""
    out = {}
    for size in SIZES:
        sel = [r for r in rows if r["size"] == size]
        if sel:
            ans = [r for r in sel if r["refused"] is None and r["distinctness"] >= threshold]
            out[str(size)] = len(ans) / len(sel)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--methods", nargs="+", default=["deep", "classical", "combined"])
    parser.add_argument("--real", type=int, default=400, help="os_sift crops drawn (nodata crops dropped)")
    parser.add_argument("--synthetic", type=int, default=200)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("engine").setLevel(logging.ERROR)
    result: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.calibrate_registration",
                             *(sys.argv[1:] if argv is None else argv)]),
        "wrong_px": WRONG_PX, "max_wrong_share": MAX_WRONG_SHARE,
        "split": "os_sift WorldView/GF-3 crops and synthetic seeds >= 50000; no benchmark case",
        "methods": {}}
    with tempfile.TemporaryDirectory(prefix="calibrate_registration_") as tmp:
        work = Path(tmp)
        trials = [*os_sift_trials(args.data, work, args.real), *synthetic_trials(work, args.synthetic)]
        for method in args.methods:
            rows = []
            for trial in trials:
                rows.append(measure(trial, method))
                logger.info("%s %s: %s", method, trial.name, {k: rows[-1][k] for k in
                                                               ("distinctness", "error", "refused")})
            points = curve(rows)
            threshold = choose(points)
            result["methods"][method] = {"min_distinctness": threshold,
                                         "answered_by_size": by_size(rows, threshold),
                                         "curve": points, "rows": rows}
            logger.info("%s: threshold %.1f", method, threshold)
        found = result["methods"]
        if "deep" in found and "classical" in found:
            result["agreement"] = agreement(found["deep"]["rows"], found["classical"]["rows"])
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
