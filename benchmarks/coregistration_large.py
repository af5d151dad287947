"""Co-registration of a large pair: wall time, peak memory and accuracy (``make bench-coregister-large``).

A SAR/optical pair of N x N pixels with a known shift is written strip by strip (flat memory): a
seeded fractal terrain (:func:`engine.synthetic.noise.fbm` on map coordinates, so each strip is
computed on its own and the SAR's strips sample the same terrain moved by the shift) gives the SAR
backscatter (dB, 4-look gamma speckle, float32 intensity) and a 3-band optical reflectance of another
contrast (bright where the SAR is dark). ``coregister`` then runs in a fresh child process with the
QGIS dialog's defaults (method, global mode, search radius) and its default outputs: the corrected
raster (geotransform), the JSON report and the checkerboard. The child's peak RSS (``wait4``) and
wall time are recorded with the stage times (from its progress reports) and the error of the
measured shift. The table replaces the section "## Co-registration of large scenes (make
bench-coregister-large)" of the Markdown file.

    python -m benchmarks.coregistration_large --sizes 2048 10000 --markdown docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    add_child_benchmark_arguments,
    child_figures,
    float32_tiled_profile,
    machine_line,
    publish,
    scratch_folder,
    section_head,
    timed_child_step,
)

log = logging.getLogger("benchmarks.coregistration_large")

SECTION = "## Co-registration of large scenes (make bench-coregister-large)"
NOTES_MARKER = "<!-- coregister-large notes: kept when the table is regenerated -->"
PIXEL_M = 10.0
STRIP_ROWS = 512
SHIFT = (3.3, -2.6)
"""SAR shift (pixels, +x right, +y down) against the optical image; coregister measures it."""
ORIGIN = (600000.0, 5000000.0)

MODULE = "benchmarks.coregistration_large"


@dataclass(frozen=True)
class Row:
    size: int
    seconds: float
    peak_rss_mb: float
    shift_x: float
    shift_y: float
    error_px: float
    n_points: int
    stages: dict[str, float]
    write_scene_s: float


def _terrain(xm: np.ndarray, ym: np.ndarray, seed: int) -> np.ndarray:
    from engine.synthetic.noise import fbm

    return fbm(xm, ym, 400.0, 6, seed)


def write_pair(folder: Path, size: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``sar.tif`` (float32 intensity) and ``optical.tif`` (3 x float32) strip by strip."""
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.windows import Window

    crs, transform = CRS.from_epsg(32631), Affine(PIXEL_M, 0.0, ORIGIN[0], 0.0, -PIXEL_M, ORIGIN[1])
    sar_path, opt_path = folder / "sar.tif", folder / "optical.tif"
    rng = np.random.default_rng(seed)
    xm = ORIGIN[0] + (np.arange(size) + 0.5) * PIXEL_M
    sar_profile = float32_tiled_profile(size, crs, transform, nodata=0.0, BIGTIFF="IF_SAFER")
    opt_profile = {**float32_tiled_profile(size, crs, transform, BIGTIFF="IF_SAFER"), "count": 3}
    with rasterio.open(sar_path, "w", **sar_profile) as sar, \
            rasterio.open(opt_path, "w", **opt_profile) as opt:
        for top in range(0, size, STRIP_ROWS):
            rows = min(STRIP_ROWS, size - top)
            ym = ORIGIN[1] - (top + np.arange(rows) + 0.5) * PIXEL_M
            # SAR pixel (c, r) shows the terrain at (c - shift_x, r - shift_y)
            t_sar = _terrain(xm - SHIFT[0] * PIXEL_M, ym + SHIFT[1] * PIXEL_M, seed)
            db = -22.0 + 20.0 * t_sar
            speckle = rng.standard_gamma(4.0, size=db.shape).astype(np.float32) / 4.0
            intensity = (10.0 ** (db / 10.0) * speckle).astype(np.float32)
            sar.write(intensity, 1, window=Window(0, top, size, rows))
            t_opt = _terrain(xm, ym, seed)
            refl = np.stack([0.45 - 0.35 * t_opt, 0.40 - 0.30 * t_opt, 0.35 - 0.25 * t_opt ** 2])
            refl += rng.normal(0.0, 0.004, refl.shape)
            opt.write(refl.astype(np.float32), window=Window(0, top, size, rows))
    return sar_path, opt_path


def run_worker(sar: Path, optical: Path, out: Path) -> dict[str, Any]:
    """Co-register in this (child) process with the dialog's defaults; the figures."""
    from engine.registration.shift.api import coregister

    marks: list[tuple[float, float]] = []
    started = time.perf_counter()
    result = coregister(sar, optical, output_path=out / "corrected.tif", report_path=out / "report.json",
                        checkerboard_path=out / "checkerboard.tif",
                        progress=lambda pct: marks.append((time.perf_counter() - started, pct)))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "shift_x": result.shift_x, "shift_y": result.shift_y,
            "n_points": result.n_points, "stages": stage_times(marks, seconds)}


STAGES = (("plan", 0.0, 2.0), ("measure", 2.0, 85.0), ("fit and preview", 85.0, 90.0), ("write", 90.0, 100.0))
"""``coregister``'s progress spans (percent)."""


def stage_times(marks: Sequence[tuple[float, float]], seconds: float) -> dict[str, float]:
    """Seconds spent in each of :data:`STAGES`, from the progress reports ``(time, percent)``."""

    def reached(percent: float) -> float:
        return next((t for t, p in marks if p >= percent), seconds)

    return {name: round(reached(hi) - reached(lo) if lo else reached(hi), 2) for name, lo, hi in STAGES}


def measure(size: int, workdir: Path | None) -> Row:
    with scratch_folder(f"coreg{size}-", workdir) as folder:
        write_s = timed_child_step(MODULE, ["--write", str(folder), str(size)], f"writing the {size} px pair")
        out = folder / "out"
        out.mkdir()
        pair = [str(folder / "sar.tif"), str(folder / "optical.tif"), str(out)]
        f, rss_mb = child_figures(MODULE, ["--child", *pair], f"coregister on the {size} px pair")
        error = float(np.hypot(f["shift_x"] + SHIFT[0], f["shift_y"] + SHIFT[1]))
        return Row(size, float(f["seconds"]), rss_mb, float(f["shift_x"]), float(f["shift_y"]), error,
                   int(f["n_points"]), dict(f["stages"]), write_s)


def markdown_section(rows: Sequence[Row], command: str, note: str = "") -> str:
    from engine.registration.shift.methods import DEFAULT_METHOD

    lines = [
        *section_head(SECTION, command, machine_line(note=note)),
        f"`coregister` with the QGIS dialog's defaults ({DEFAULT_METHOD} method, global mode, ±150 m search) "
        "and its "
        "default outputs (corrected raster as a geotransform, JSON report, checkerboard) on a synthetic "
        f"SAR/optical pair written strip by strip (fractal terrain, 4-look speckle; SAR shifted by "
        f"({SHIFT[0]}, {SHIFT[1]}) px). Peak RSS of the child process that runs only `coregister`; the "
        "shift error is the distance of the measured correction from the true one. Stage times from the "
        "progress reports. Wall-clock figures on 2 shared, busy cores: noisy.",
        "",
        "| Scene (px) | Time (s) | Peak RSS (MB) | Tie points | Shift error (px) | Plan (s) | Measure (s) "
        "| Fit + preview (s) | Write (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s = r.stages
        lines.append(
            f"| {r.size} x {r.size} | {r.seconds:.1f} | {r.peak_rss_mb:.0f} | {r.n_points} | "
            f"{r.error_px:.3f} | "
            f"{s['plan']:.1f} | {s['measure']:.1f} | {s['fit and preview']:.1f} | {s['write']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 10000])
    add_child_benchmark_arguments(parser, write=2, child=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.write:
        write_pair(Path(args.write[0]), int(args.write[1]))
        return 0
    if args.child:
        sar, optical, out = (Path(v) for v in args.child)
        print(json.dumps(run_worker(sar, optical, out)))
        return 0
    rows = []
    for size in args.sizes:
        rows.append(measure(size, args.workdir))
        log.info("%s", asdict(rows[-1]))
    command = "python -m benchmarks.coregistration_large --sizes " + " ".join(map(str, args.sizes))
    publish(markdown_section(rows, command, args.note), args.markdown, keep=NOTES_MARKER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
