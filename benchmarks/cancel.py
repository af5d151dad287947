"""Progress and cancel latency of every algorithm on a 2048 x 2048 scene (``make bench-cancel``).

For each engine entry point that a QGIS algorithm calls, three runs on the same inputs:

1. a full run whose callbacks record the time of every progress report and every cancel poll:
   the time to the first progress report and to the first poll, and the longest stretch without a
   poll (from the start, between two polls, or from the last poll to the return) - the worst case
   of "cancel at any point";
2. two cancelled runs: the flag turns True at the first progress report above 0 %, and at the first
   report at or above 50 %; the time from the flag to the return (the run must raise the project's
   ``CancelledError`` and leave no file in its output folder).

The scenes come from the ``syntheticscene`` entry point itself (a SAR intensity and a 4-band optical
image, 2048 x 2048 float32, tiled GeoTIFFs, with a known shift), which is measured first. Timings
are wall clock on a shared machine; the table replaces the section "## Progress and cancel (make
bench-cancel)" of the Markdown file.

    python -m benchmarks.cancel --size 2048 --markdown docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import itertools
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import machine_line, publish, section_head

log = logging.getLogger("benchmarks.cancel")

SECTION = "## Progress and cancel (make bench-cancel)"
NOTES_MARKER = "<!-- bench-cancel notes: kept when the table is regenerated -->"
TARGET_S = 1.0
"""Cancel must be honoured within this many seconds at any point of a run."""


@dataclass
class Clock:
    """Callbacks that record when progress was reported and cancel polled; cancel at a progress report."""

    cancel_at_percent: float | None = None
    """Set the flag at the first progress report above this percentage (``None``: never)."""
    start: float = field(default_factory=time.perf_counter)
    polls: list[float] = field(default_factory=list)
    reports: list[tuple[float, float]] = field(default_factory=list)
    flagged: float | None = None

    def now(self) -> float:
        return time.perf_counter() - self.start

    def progress(self, percent: float) -> None:
        self.reports.append((self.now(), float(percent)))
        if self.cancel_at_percent is not None and percent > self.cancel_at_percent and self.flagged is None:
            self.flagged = self.now()

    def is_cancelled(self) -> bool:
        self.polls.append(self.now())
        return self.flagged is not None

    def callbacks(self) -> dict[str, Any]:
        return {"progress": self.progress, "is_cancelled": self.is_cancelled}


@dataclass(frozen=True)
class Case:
    """One algorithm: its id and a function running its entry point into an output folder."""

    algorithm: str
    call: Callable[[Path, dict[str, Any]], object]


@dataclass(frozen=True)
class Row:
    algorithm: str
    seconds: float
    first_progress: float
    first_poll: float
    longest_gap: float
    gap_at_percent: float
    polls: int
    cancel_early: float
    cancel_middle: float
    leftovers: int


def longest_gap(polls: Sequence[float], end: float) -> tuple[float, float]:
    """The longest stretch without a poll (start -> first, between polls, last -> end) and where it starts."""
    marks = [0.0, *polls, end]
    gaps = [(b - a, a) for a, b in itertools.pairwise(marks)]
    return max(gaps)


def percent_at(reports: Sequence[tuple[float, float]], t: float) -> float:
    """The progress shown at time ``t`` (0 before the first report)."""
    shown = [p for when, p in reports if when <= t]
    return shown[-1] if shown else 0.0


def full_run(case: Case, out: Path) -> tuple[float, Clock]:
    out.mkdir()
    clock = Clock()
    case.call(out, clock.callbacks())
    return clock.now(), clock


def cancelled_run(case: Case, out: Path, clock: Clock) -> tuple[float, int]:
    """Seconds from the flag to the return, and the files left in the output folder."""
    from engine.errors import CancelledError

    out.mkdir()
    try:
        case.call(out, clock.callbacks())
    except CancelledError:
        pass
    else:
        log.warning("%s finished without noticing the cancel flag", case.algorithm)
    end = clock.now()
    latency = float("nan") if clock.flagged is None else end - clock.flagged
    return latency, sum(1 for _ in out.rglob("*"))


def measure(case: Case, work: Path) -> Row:
    seconds, clock = full_run(case, work / f"{case.algorithm}-full")
    gap, gap_start = longest_gap(clock.polls, seconds)
    first_progress = clock.reports[0][0] if clock.reports else float("nan")
    early, left_early = cancelled_run(case, work / f"{case.algorithm}-early", Clock(cancel_at_percent=0.0))
    middle, left_middle = cancelled_run(case, work / f"{case.algorithm}-middle",
                                        Clock(cancel_at_percent=49.99))
    row = Row(case.algorithm, seconds, first_progress, clock.polls[0] if clock.polls else float("nan"), gap,
              percent_at(clock.reports, gap_start), len(clock.polls), early, middle, left_early + left_middle)
    log.info("%s", row)
    return row


def cases(inputs: Path, size: int) -> list[Case]:
    """Every algorithm's entry point, reading the scenes in ``inputs`` (written by the first case)."""
    from engine.codec.decode import decompress_file
    from engine.codec.encode import compress_raster
    from engine.codec.quality.metrics import assess
    from engine.radiometry.convert import convert_db
    from engine.registration.keypoints.api import keypoint_register
    from engine.registration.shift.api import apply_transform, coregister
    from engine.synthetic.writing import write_scene_pair
    from engine.translation.api import translate

    sar, optical = inputs / "sar.tif", inputs / "optical.tif"
    sarz, report = inputs / "scene.sarz", inputs / "coregistration.json"
    return [
        Case("syntheticscene", lambda out, cb: write_scene_pair(
            out / "sar.tif", out / "optical.tif", width=size, height=size, seed=1, shift_x=3.4, shift_y=-2.2,
            **cb)),
        Case("todb", lambda out, cb: convert_db(sar, out / "db.tif", **cb)),
        Case("compress", lambda out, cb: compress_raster(sar, out / "scene.sarz", rate="r2", **cb)),
        Case("decompress", lambda out, cb: decompress_file(sarz, out / "decoded.tif", **cb)),
        Case("compressionquality", lambda out, cb: assess(sar, sarz, html_path=out / "quality.html", **cb)),
        Case("coregister", lambda out, cb: coregister(
            sar, optical, output_path=out / "corrected.tif", report_path=out / "coregistration.json",
            checkerboard_path=out / "checkerboard.tif", resample=True, **cb)),
        Case("applytransform", lambda out, cb: apply_transform(
            report, sar, out / "applied.tif", resample=True, **cb)),
        Case("keypointregister", lambda out, cb: keypoint_register(
            sar, optical, output_path=out / "registered.tif", report_path=out / "keypoints.json", **cb)),
        Case("translate", lambda out, cb: translate(sar, out / "rgb.tif", **cb)),
    ]


#: The outputs of a full run that later cases read: case -> files copied into the inputs folder.
FEEDS = {"syntheticscene": ("sar.tif", "optical.tif"), "compress": ("scene.sarz",),
         "coregister": ("coregistration.json",)}
#: The case whose output each case reads (besides the scene pair, which every case reads).
NEEDS = {"decompress": "compress", "compressionquality": "compress", "applytransform": "coregister"}


def run_all(size: int, only: Sequence[str], work: Path) -> list[Row]:
    import shutil

    inputs = work / "inputs"
    inputs.mkdir()
    wanted = set(only) | {NEEDS[a] for a in only if a in NEEDS} | {"syntheticscene"} if only else None
    rows = []
    for case in cases(inputs, size):
        if wanted is None or case.algorithm in wanted:
            rows.append(measure(case, work))
            for name in FEEDS.get(case.algorithm, ()):
                shutil.copy(work / f"{case.algorithm}-full" / name, inputs / name)
    return [r for r in rows if not only or r.algorithm in only]


def kept_rows(markdown: Path, measured: Sequence[Row]) -> list[str]:
    """The table lines of the file's current section for the algorithms not measured now (``--only``)."""
    if not markdown.exists():
        return []
    text = markdown.read_text(encoding="utf-8")
    start = text.find(SECTION)
    if start < 0:
        return []
    end = text.find("\n## ", start + len(SECTION))
    names = {r.algorithm for r in measured}
    lines = text[start:] if end < 0 else text[start:end]
    return [line for line in lines.splitlines()
            if line.startswith("| ") and not line.startswith("| Algorithm")
            and line.split("|")[1].strip() not in names]


def markdown_section(rows: Sequence[Row], size: int, command: str, note: str = "",
                     kept: Sequence[str] = ()) -> str:
    lines = [
        *section_head(SECTION, command, machine_line(note=note)),
        f"Each engine entry point that a QGIS algorithm calls, on {size} x {size} float32 tiled GeoTIFFs "
        "(the scene pair of `syntheticscene`), with the shipped models and the algorithms' defaults. "
        "*Full run*: wall time; when the first progress report and the first cancel poll came; the longest "
        "stretch without a cancel poll (start, between polls or before the return: the worst case of a "
        "cancel at any point) and the progress shown when it began. *Cancel*: seconds from the flag turning "
        "True to the run's return with `CancelledError`, the flag set at the first progress report above "
        "0 % (*early*) or at 50 % or more (*middle*); *files left*: in the output folders of "
        f"both cancelled runs (must be 0). Target: cancel honoured within {TARGET_S:.0f} s at any point. "
        "Wall-clock figures on 2 shared, busy cores: noisy.",
        "",
        "| Algorithm | Full run (s) | First progress (s) | First poll (s) | Longest without a poll (s) "
        "| ... starting at | Polls | Cancel early (s) | Cancel middle (s) | Files left |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.algorithm} | {r.seconds:.2f} | {r.first_progress:.3f} | {r.first_poll:.3f} | "
            f"{r.longest_gap:.2f} | {r.gap_at_percent:.0f} % | {r.polls} | {r.cancel_early:.3f} | "
            f"{r.cancel_middle:.3f} | {r.leftovers} |"
        )
    lines += kept
    gaps = [(r.longest_gap, r.algorithm) for r in rows]
    gaps += [(float(line.split("|")[5]), line.split("|")[1].strip()) for line in kept]
    gap, name = max(gaps)
    verdict = "met" if gap <= TARGET_S else "missed"
    lines += ["", f"Longest stretch without a cancel poll: {gap:.2f} s ({name}); target {TARGET_S:.0f} s "
              f"{verdict}."]
    if kept:
        lines += ["", f"Only {', '.join(r.algorithm for r in rows)} were measured by this command "
                  "(`--only`); the other rows are kept from the previous run of the section."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="scene side in pixels")
    parser.add_argument("--only", nargs="*", default=[], help="algorithms to measure (default: all)")
    parser.add_argument("--markdown", type=Path, help="Markdown file whose section is replaced")
    parser.add_argument("--note", default="", help="added to the machine line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="bench_cancel_") as tmp:
        rows = run_all(args.size, args.only, Path(tmp))
    command = f"python -m benchmarks.cancel --size {args.size}"
    command += f" --only {' '.join(args.only)}" if args.only else ""
    kept = kept_rows(args.markdown, rows) if args.markdown and args.only else []
    publish(markdown_section(rows, args.size, command, args.note, kept), args.markdown, keep=NOTES_MARKER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
