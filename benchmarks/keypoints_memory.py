"""Peak memory and time of ``keypointregister`` (:func:`engine.registration.keypoint_register`) by size.

For each size N, a synthetic SAR / optical pair of N x N pixels (``engine.synthetic``, seed 1, shifted
by (3, -2) px) is written, then the registration runs with its corrected raster and report in a fresh
child process whose peak resident memory (``ru_maxrss`` from ``wait4``) is recorded; ``--model`` runs a
learned keypoint model instead of the classical detector. The table replaces the section
:data:`SECTION` of the Markdown file.

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


@dataclass(frozen=True)
class Row:
    size: int
    detector: str
    seconds: float
    peak_rss_mb: float
    outcome: str


def register(folder: Path, model: str) -> dict[str, object]:
    """The registration (in the child process): its outcome and seconds."""
    from engine.errors import SarToolboxError
    from engine.registration.keypoints.api import keypoint_register

    started = time.perf_counter()
    try:
        result = keypoint_register(folder / "sar.tif", folder / "optical.tif", output_path=folder / "out.tif",
                                   report_path=folder / "report.json", model_path=model or None)
        outcome = f"{result.n_inliers} inliers, RMSE {result.rmse:.2f} px"
    except SarToolboxError as exc:
        outcome = f"refused: {str(exc)[:80]}"
    return {"seconds": time.perf_counter() - started, "outcome": outcome}


def measure(size: int, model: str, workdir: Path | None) -> Row:
    with scratch_folder(f"keypoints{size}-", workdir) as folder:
        run_child_step(MODULE, ["--write", str(folder), str(size)], f"writing the {size} px pair")
        figures, rss = child_figures(MODULE, ["--child", str(folder), model],
                                     f"the registration child on {size} px")
        return Row(size, Path(model).stem if model else "classical", float(figures["seconds"]), rss,
                   str(figures["outcome"]))


def markdown_section(rows: Sequence[Row], command: str, note: str = "") -> str:
    lines = [
        *section_head(SECTION, command, machine_line("", note)),
        "`engine.registration.keypoints.api.keypoint_register` (homography, corrected raster and JSON "
        "report) on a synthetic SAR / optical pair of N x N px. Peak RSS is `ru_maxrss` of a fresh child "
        "process that runs only the registration (interpreter and libraries included). Both images are "
        "read whole: memory grows with the area (`engine.registration.keypoints.api.MAX_PIXELS` bounds it).",
        "",
        "| Pair (px) | Detector | Time (s) | Peak RSS (MB) | Outcome |",
        "|---|---|---:|---:|---|",
    ]
    lines += [f"| {r.size} x {r.size} | {r.detector} | {r.seconds:.0f} | {r.peak_rss_mb:.0f} | {r.outcome} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1400, 2000])
    parser.add_argument("--model", action="append", default=[],
                        help="also run this keypoints .onnx (repeatable); the classical detector always runs")
    add_child_benchmark_arguments(parser, write=2, child=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.write:
        from engine.synthetic.writing import write_scene_pair

        folder, size = Path(args.write[0]), int(args.write[1])
        write_scene_pair(folder / "sar.tif", folder / "optical.tif", width=size, height=size, seed=1,
                         shift_x=3.0, shift_y=-2.0)
        return 0
    if args.child:
        print(json.dumps(register(Path(args.child[0]), args.child[1])))
        return 0
    rows = [measure(size, model, args.workdir)
            for model in ["", *args.model] for size in args.sizes]
    for row in rows:
        log.info("%s", row)
    command = (f"python -m {MODULE} --sizes {' '.join(map(str, args.sizes))}"
               + "".join(f" --model {m}" for m in args.model)
               + (f" --markdown {args.markdown}" if args.markdown else ""))
    publish(markdown_section(rows, command, args.note), args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
