"""Peak memory and time of ``compressionquality`` (:func:`engine.codec.quality.assess`) by scene size.

For each size W x H, a float32 intensity reference (speckled, with a nodata border) and a float32 dB
reconstruction (the reference's dB, smoothed by 3 x 3 and with 0.5 dB noise) are written strip by
strip; :func:`engine.codec.quality.assess` then runs, with the HTML report, in a fresh child process whose
peak resident memory (``ru_maxrss`` from ``wait4``) is recorded. With ``--in-memory-check SIZE`` the
whole-image reference (:func:`engine.codec.quality.metrics.compare` on
:func:`engine.codec.quality.metrics.read_db` arrays, what ``assess`` did before it streamed) also
runs on the sizes up to SIZE Mpix, in its own child, and the figures are compared. The table
replaces the section :data:`SECTION` of the Markdown file.

    python -m benchmarks.quality_memory --sizes 2000x1500 8000x6000 16000x12000 --in-memory-check 3 \\
        --markdown docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import (
    add_child_benchmark_arguments,
    child_figures,
    float32_tiled_profile,
    machine_line,
    publish,
    run_child_step,
    scratch_folder,
    section_head,
)

log = logging.getLogger("benchmarks.quality_memory")

SECTION = "## Compression quality memory (python -m benchmarks.quality_memory)"
MODULE = "benchmarks.quality_memory"
WRITE_ROWS = 256
FIGURES = ("psnr", "ssim", "enl_ratio", "epi")


@dataclass(frozen=True)
class Row:
    width: int
    height: int
    megapixels: float
    seconds: float
    peak_rss_mb: float
    figures: dict[str, float]
    in_memory_rss_mb: float | None = None
    in_memory_seconds: float | None = None
    largest_difference: dict[str, float] | None = None


def write_pair(folder: Path, width: int, height: int, seed: int = 0) -> tuple[Path, Path]:
    """The reference (intensity, nodata 0 on a 40 px left border) and the reconstruction (dB)."""
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.windows import Window
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    transform = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)
    profile = float32_tiled_profile(width, CRS.from_epsg(32631), transform, height=height, BIGTIFF="IF_SAFER")
    ref_path, rec_path = folder / "reference.tif", folder / "reconstruction.tif"
    fields = np.where((np.arange(width) // 300) % 2 == 0, 0.02, 0.15).astype(np.float32)
    with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(ref_path, "w", nodata=0.0, **profile) as ref, \
            rasterio.open(rec_path, "w", nodata=float("nan"), **profile) as rec:
        for top in range(0, height, WRITE_ROWS):
            rows = min(WRITE_ROWS, height - top)
            intensity = fields * rng.gamma(4.0, 0.25, (rows, width)).astype(np.float32)
            intensity[:, :40] = 0.0
            db = 10 * np.log10(np.maximum(intensity, 1e-12))
            smooth = ndimage.uniform_filter(db, 3) + rng.normal(0, 0.5, db.shape)
            window = Window(0, top, width, rows)
            ref.write(intensity, 1, window=window)
            rec.write(np.where(intensity > 0, smooth, np.nan).astype(np.float32), 1, window=window)
    return ref_path, rec_path


def streamed(reference: Path, reconstruction: Path, html: Path) -> dict[str, float]:
    """``assess`` with the report (in the child process): its figures and seconds."""
    from engine.codec.quality.metrics import assess

    started = time.perf_counter()
    report = assess(reference, reconstruction, reference_kind="intensity", reconstruction_kind="db",
                    html_path=html)
    return {**{k: float(getattr(report, k)) for k in FIGURES}, "seconds": time.perf_counter() - started}


def in_memory(reference: Path, reconstruction: Path, html: Path) -> dict[str, float]:
    """The whole-image path (in the child process): both images read, compared and rendered at once."""
    from engine.codec.quality.metrics import compare, read_db
    from engine.codec.quality.report import render_html

    started = time.perf_counter()
    ref, rec = read_db(reference, 1, "intensity"), read_db(reconstruction, 1, "db")
    report = compare(ref, rec)
    html.write_text(render_html(ref, rec, report), encoding="utf-8")
    return {**{k: float(getattr(report, k)) for k in FIGURES}, "seconds": time.perf_counter() - started}


def _run(mode: str, ref: Path, rec: Path, html: Path) -> tuple[dict[str, float], float]:
    return child_figures(MODULE, ["--child", mode, str(ref), str(rec), str(html)], f"the {mode} child")


def measure(width: int, height: int, workdir: Path | None, check_up_to_mpix: float) -> Row:
    with scratch_folder(f"quality{width}x{height}-", workdir) as folder:
        run_child_step(MODULE, ["--write", str(folder), str(width), str(height)],
                       f"writing the {width} x {height} scenes")
        ref, rec = folder / "reference.tif", folder / "reconstruction.tif"
        figures, rss = _run("streamed", ref, rec, folder / "streamed.html")
        row = Row(width, height, width * height / 1e6, figures.pop("seconds"), rss, figures)
        if row.megapixels <= check_up_to_mpix:
            whole, whole_rss = _run("in-memory", ref, rec, folder / "in_memory.html")
            seconds = whole.pop("seconds")
            diff = {k: abs(figures[k] - whole[k]) for k in FIGURES}
            row = Row(**{**asdict(row), "in_memory_rss_mb": whole_rss, "in_memory_seconds": seconds,
                         "largest_difference": diff})
        return row


def markdown_section(rows: Sequence[Row], command: str, note: str = "") -> str:
    from engine.codec.quality.strips import STRIP_PIXELS

    lines = [
        *section_head(SECTION, command, machine_line("", note)),
        "`engine.codec.quality.assess` (PSNR, SSIM, ENL ratio, EPI and the HTML report) on a float32 "
        "intensity reference and a float32 dB reconstruction, both tiled GeoTIFFs, streamed by strips of "
        f"about {STRIP_PIXELS:,} pixels (`engine.codec.quality.strips.STRIP_PIXELS`). Peak RSS is "
        "`ru_maxrss` of a fresh child process that runs only "
        "the assessment (interpreter and libraries included). Where the whole-image path ran (what "
        "`assess` did before: both images read and compared at once), its peak RSS and the largest "
        "difference of the figures are given. It runs only on the small scenes: issue 24 measured it at "
        "6.9 GB at 48 Mpix and out of memory at 192 Mpix.",
        "",
        "| Scene (px) | Mpix | Time (s) | Peak RSS (MB) | PSNR (dB) | SSIM | Whole-image peak RSS (MB) "
        "| Whole-image time (s) | Largest difference (PSNR dB / SSIM / EPI / ENL ratio) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        d = r.largest_difference
        diff = "-" if d is None else (f"{d['psnr']:.1e} / {d['ssim']:.1e} / {d['epi']:.1e} / "
                                      f"{d['enl_ratio']:.1e}")
        whole = "-" if r.in_memory_rss_mb is None else f"{r.in_memory_rss_mb:.0f}"
        whole_s = "-" if r.in_memory_seconds is None else f"{r.in_memory_seconds:.1f}"
        lines.append(f"| {r.width} x {r.height} | {r.megapixels:.0f} | {r.seconds:.0f} | "
                     f"{r.peak_rss_mb:.0f} | {r.figures['psnr']:.3f} | {r.figures['ssim']:.4f} | {whole} | "
                     f"{whole_s} | {diff} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["2000x1500", "8000x6000", "16000x12000"])
    parser.add_argument("--in-memory-check", type=float, default=3.0,
                        help="also run the whole-image path on sizes up to this many Mpix")
    add_child_benchmark_arguments(parser, write=3, child=4)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.write:
        write_pair(Path(args.write[0]), int(args.write[1]), int(args.write[2]))
        return 0
    if args.child:
        mode, ref, rec, html = args.child
        run = streamed if mode == "streamed" else in_memory
        print(json.dumps(run(Path(ref), Path(rec), Path(html))))
        return 0
    rows = []
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        rows.append(measure(width, height, args.workdir, args.in_memory_check))
        log.info("%s", rows[-1])
    command = (f"python -m {MODULE} --sizes {' '.join(args.sizes)} --in-memory-check {args.in_memory_check:g}"
               + (f" --markdown {args.markdown}" if args.markdown else ""))
    publish(markdown_section(rows, command, args.note), args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
