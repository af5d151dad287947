"""Batch-runner benchmark: scenes per minute with 1 and 2 local Dask workers (``make bench-batch``).

Writes ``--scenes`` seeded speckled intensity scenes of ``--size`` pixels into a temporary
folder, then runs ``python -m engine.batch compress`` (rate r2, the default restoration filter)
over them once per worker count, each in a fresh output folder, side by side in one run. The
table replaces the section "## Batch runner (make bench-batch)" of the Markdown file.

    python -m benchmarks.batch --size 2048 --scenes 4 --workers 1 2 --markdown docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import machine_line, publish, section_head
from benchmarks.pipeline import write_scene
from engine.batch.cli import main as batch_main

logger = logging.getLogger("benchmarks.batch")

SECTION = "## Batch runner (make bench-batch)"


def run(size: int, scenes: int, workers: Sequence[int], algorithm: str) -> list[tuple[int, float]]:
    """Seconds of one batch per worker count (same scenes, fresh output folder each time)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="sar-bench-batch-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i in range(scenes):
            write_scene(folder / f"scene{i}.tif", size, seed=i)
        for n in workers:
            out = Path(tmp) / f"out-{n}"
            start = time.perf_counter()
            status = batch_main([algorithm, "--input-dir", str(folder), "--output-dir", str(out),
                                 "--workers", str(n), "--no-progress"])
            seconds = time.perf_counter() - start
            if status != 0:
                raise SystemExit(f"the batch with {n} workers failed (exit {status}); see {out}/summary.json")
            results.append((n, seconds))
            logger.info("%d worker(s): %d scenes in %.1f s", n, scenes, seconds)
    return results


def markdown(size: int, scenes: int, algorithm: str, results: list[tuple[int, float]], command: str) -> str:
    """The benchmark's Markdown section."""
    base = results[0][1]
    rows = [f"| {n} | {s:.1f} | {60 * scenes / s:.2f} | {base / s:.2f}x |" for n, s in results]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return "\n".join([
        *section_head(SECTION, command, machine_line(note=f"Load average before the run: {load}.")),
        f"`python -m engine.batch {algorithm}` over {scenes} float32 intensity scenes of {size} x {size} px "
        "on a Dask LocalCluster (one process per worker, ONNX Runtime threads = cores / workers); time "
        "includes starting the cluster. Scenes per minute = scenes / wall time.", "",
        "| Workers | Wall time (s) | Scenes / minute | Speed-up vs first row |",
        "|---:|---:|---:|---:|",
        *rows, "",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table and optionally write it into a Markdown file."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--algorithm", default="compress", choices=("compress", "todb"))
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    results = run(args.size, args.scenes, args.workers, args.algorithm)
    command = (f"python -m benchmarks.batch --size {args.size} --scenes {args.scenes} --workers "
               f"{' '.join(map(str, args.workers))} --algorithm {args.algorithm}"
               + (f" --markdown {args.markdown}" if args.markdown else ""))
    publish(markdown(args.size, args.scenes, args.algorithm, results, command), args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
