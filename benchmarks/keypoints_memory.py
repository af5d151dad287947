"""Peak memory and time of ``keypointregister`` (:func:`engine.registration.keypoint_register`) by size.

For each size N, a synthetic SAR / optical pair of N x N pixels (``engine.synthetic``, seed 1, shifted
by (3, -2) px) is written, then the registration runs with its corrected raster and report in a fresh
child process whose peak resident memory (``ru_maxrss`` from ``wait4``) is recorded; ``--model`` runs a
learned keypoint model instead of the classical detector. The SAR-SAR pair (``--pairs sar-sar``) is the
same scene's SAR twice, each side under its own single-look speckle, as amplitudes: the classical method
runs SAR-SIFT and its dense sharpening on it. The table replaces the section :data:`SECTION` of the
Markdown file.

    python -m benchmarks.keypoints_memory --sizes 1400 2000 --markdown docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    add_child_benchmark_arguments,
    child_figures,
    machine_line,
    publish,
    run_child_step,
    scratch_folder,
    section_head,
)

log = logging.getLogger("benchmarks.keypoints_memory")

SECTION = "## Keypoint registration memory (python -m benchmarks.keypoints_memory)"
MODULE = "benchmarks.keypoints_memory"


PAIRS = {"sar-optical": "SAR / optical", "sar-sar": "SAR / SAR, 1-look amplitudes"}
"""The kinds of pair (``--pairs``) and how the table names them."""


@dataclass(frozen=True)
class Row:
    size: int
    pair: str
    detector: str
    seconds: float
    peak_rss_mb: float
    outcome: str


def write_sar_sar(folder: Path, size: int) -> None:
    """The SAR-SAR pair: INPUT the scene's shifted SAR, REFERENCE its unshifted reflectivity under another
    single-look speckle (independent of the INPUT's), both as amplitudes on the same grid."""
    import numpy as np
    import rasterio

    from engine.raster_io import write_raster
    from engine.synthetic.noise import speckle
    from engine.synthetic.scene import generate_scene_pair

    pair = generate_scene_pair(size, size, seed=1, looks=1, shift_x=3.0, shift_y=-2.0)
    crs = rasterio.crs.CRS.from_epsg(32631).to_wkt()
    transform = rasterio.transform.from_origin(500000.0, 5000000.0, pair.pixel_size, pair.pixel_size)
    reference = speckle(pair.sigma0_aligned, 1, seed=2)
    for name, intensity in (("sar.tif", pair.sar), ("sar_ref.tif", reference)):
        write_raster(folder / name, np.sqrt(intensity), crs, transform, nodata=None)


def register(folder: Path, model: str, pair: str) -> dict[str, object]:
    """The registration (in the child process): its outcome and seconds."""
    from engine.errors import SarToolboxError
    from engine.registration.keypoints.api import keypoint_register

    sar_sar = pair == "sar-sar"
    reference = folder / ("sar_ref.tif" if sar_sar else "optical.tif")
    kind = "amplitude" if sar_sar else "auto"
    started = time.perf_counter()
    try:
        result = keypoint_register(folder / "sar.tif", reference, output_path=folder / "out.tif",
                                   report_path=folder / "report.json", model_path=model or None,
                                   input_kind=kind, reference_kind=kind)
        outcome = f"{result.n_inliers} inliers, RMSE {result.rmse:.2f} px"
    except SarToolboxError as exc:
        outcome = f"refused: {str(exc)[:80]}"
    return {"seconds": time.perf_counter() - started, "outcome": outcome}


def measure(size: int, model: str, pair: str, workdir: Path | None) -> Row:
    with scratch_folder(f"keypoints{size}-", workdir) as folder:
        run_child_step(MODULE, ["--write", str(folder), str(size), pair],
                       f"writing the {size} px {pair} pair")
        figures, rss = child_figures(MODULE, ["--child", str(folder), model, pair],
                                     f"the registration child on {size} px ({pair})")
        return Row(size, PAIRS[pair], Path(model).stem if model else "classical", float(figures["seconds"]),
                   rss, str(figures["outcome"]))


def markdown_section(rows: Sequence[Row], command: str, note: str = "") -> str:
    lines = [
        *section_head(SECTION, command, machine_line("", note)),
        "`engine.registration.keypoints.api.keypoint_register` (homography, corrected raster and JSON "
        "report) on a synthetic pair of N x N px (SAR / SAR: the classical method runs SAR-SIFT and its "
        "dense sharpening). Peak RSS is `ru_maxrss` of a fresh child "
        "process that runs only the registration (interpreter and libraries included). Both images are "
        "read whole: memory grows with the area (`engine.registration.keypoints.api.MAX_PIXELS` bounds it).",
        "",
        "| Pair (px) | Images | Detector | Time (s) | Peak RSS (MB) | Outcome |",
        "|---|---|---|---:|---:|---|",
    ]
    lines += [f"| {r.size} x {r.size} | {r.pair} | {r.detector} | {r.seconds:.0f} | {r.peak_rss_mb:.0f} "
              f"| {r.outcome} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1400, 2000])
    parser.add_argument("--model", action="append", default=[],
                        help="also run this keypoints .onnx (repeatable); the classical detector always runs")
    parser.add_argument("--pairs", nargs="+", choices=sorted(PAIRS), default=list(PAIRS),
                        help="kinds of pair (the learned models run on the SAR / optical pairs only)")
    add_child_benchmark_arguments(parser, write=3, child=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.write:
        from engine.synthetic.writing import write_scene_pair

        folder, size = Path(args.write[0]), int(args.write[1])
        if args.write[2] == "sar-sar":
            write_sar_sar(folder, size)
            return 0
        write_scene_pair(folder / "sar.tif", folder / "optical.tif", width=size, height=size, seed=1,
                         shift_x=3.0, shift_y=-2.0)
        return 0
    if args.child:
        print(json.dumps(register(Path(args.child[0]), args.child[1], args.child[2])))
        return 0
    runs = [("", pair) for pair in args.pairs]
    runs += [(m, "sar-optical") for m in args.model if "sar-optical" in args.pairs]
    rows = [measure(size, model, pair, args.workdir) for model, pair in runs for size in args.sizes]
    for row in rows:
        log.info("%s", row)
    command = (f"python -m {MODULE} --sizes {' '.join(map(str, args.sizes))} --pairs {' '.join(args.pairs)}"
               + "".join(f" --model {m}" for m in args.model)
               + (f" --markdown {args.markdown}" if args.markdown else ""))
    publish(markdown_section(rows, command, args.note), args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
