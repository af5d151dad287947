"""Helpers shared by the benchmarks: their Markdown section and machine line, the GeoTIFF profile of
their scenes, the child processes whose peak memory they measure, and the per-case rows of the
investigations."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def section_head(section: str, command: str, machine: str) -> list[str]:
    """The first lines of a benchmark's Markdown section: its heading, the command that reproduces
    it and the machine line, each followed by a blank line."""
    return [section, "", f"Command: `{command}`", "", machine, ""]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows of it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_description(more_versions: str = "") -> str:
    """Cores, CPU, OS, Python, numpy and onnxruntime versions, then ``more_versions`` (e.g. ``", GDAL
    3.6.2"``): the machine a benchmark ran on."""
    import onnxruntime

    return (
        f"{os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, onnxruntime {onnxruntime.__version__}"
        f"{more_versions}"
    )


def utc_now() -> str:
    """The date and time of a benchmark run, ``YYYY-MM-DD HH:MM UTC``."""
    return f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"


def rasterio_versions() -> str:
    """``", rasterio X (GDAL Y)"``: the ``more_versions`` of :func:`machine_line` for a benchmark that
    reads and writes GeoTIFFs through rasterio."""
    import rasterio

    return f", rasterio {rasterio.__version__} (GDAL {rasterio.__gdal_version__})"


def machine_line(more_versions: str = "", note: str = "") -> str:
    """'Machine: ...' (:func:`machine_description`), the date and ``note``: the machine line of the
    benchmark sections."""
    return f"Machine: {machine_description(more_versions)}. Date: {utc_now()}." + (f" {note}" if note else "")


def replace_section(markdown: Path, section: str, keep: str | None = None) -> None:
    """Write ``section`` into ``markdown``, replacing only the previous section with the same heading.

    The heading is the section's first line (e.g. ``## Compression (make bench-compression)``);
    a missing file starts as ``# Benchmarks`` and a section not there yet is appended at the end.
    The old section ends where the next ``## `` heading starts; the sections around it are kept as
    they are. With ``keep``, the old section's text from the marker ``keep`` on (hand-written notes)
    is carried over to the end of the new one, unless the new one has the marker itself. The file
    is replaced atomically and ends with one newline.
    """
    heading = section.split("\n", 1)[0]
    text = markdown.read_text(encoding="utf-8") if markdown.exists() else "# Benchmarks\n"
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        old = text[start:] if end < 0 else text[start:end]
        if keep is not None and keep in old and keep not in section:
            section = section.rstrip("\n") + "\n\n" + old[old.index(keep) :].rstrip("\n") + "\n"
        text = text[:start] + section + ("" if end < 0 else text[end:])
    markdown.parent.mkdir(parents=True, exist_ok=True)
    tmp = markdown.with_name(f".{markdown.name}.tmp")
    tmp.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    os.replace(tmp, markdown)


def float32_tiled_profile(
    size: int, crs: Any, transform: Any, *, height: int | None = None, **options: Any
) -> dict[str, Any]:
    """rasterio profile of a one-band float32 GeoTIFF in 256 px tiles, ``size`` pixels wide and ``height``
    (default ``size``) high.

    ``options`` adds to it (e.g. ``nodata``, ``BIGTIFF``); the benchmarks write such scenes strip by
    strip so that their memory stays flat.
    """
    return {
        "driver": "GTiff",
        "width": size,
        "height": size if height is None else height,
        "count": 1,
        "dtype": "float32",
        "crs": crs,
        "transform": transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        **options,
    }


def add_child_benchmark_arguments(parser: argparse.ArgumentParser, *, write: int, child: int) -> None:
    """The arguments of a benchmark that measures each run in a fresh child process (:func:`run_child`):
    ``--markdown``, ``--workdir`` and ``--note``, and the hidden ``--write`` (``write`` values) and
    ``--child`` (``child`` values) with which it calls itself to write a scene and to run one
    measurement."""
    parser.add_argument("--markdown", type=Path, help="Markdown file whose section is replaced")
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the temporary scenes")
    parser.add_argument("--note", default="", help="remark added to the machine line (e.g. shared load)")
    parser.add_argument("--write", nargs=write, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=child, help=argparse.SUPPRESS)


@contextmanager
def scratch_folder(prefix: str, workdir: Path | None) -> Iterator[Path]:
    """A temporary folder for one measurement's scenes (in ``workdir``, else the system's temporary
    folder), removed afterwards, also when the measurement fails."""
    with tempfile.TemporaryDirectory(prefix=prefix, dir=workdir, ignore_cleanup_errors=True) as tmp:
        yield Path(tmp)


def run_child(module: str, args: Sequence[str]) -> tuple[int, float, str]:
    """Run ``python -m MODULE ARGS`` as a fresh child process; (exit status, peak RSS in MB from ``wait4``,
    stdout)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=out)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return proc.returncode, usage.ru_maxrss / 1024.0, out.read()


def run_child_step(module: str, args: Sequence[str], what: str) -> tuple[float, str]:
    """:func:`run_child` that must succeed: (peak RSS in MB, stdout); ``RuntimeError('<what> failed (exit
    N)')`` otherwise."""
    status, rss_mb, stdout = run_child(module, args)
    if status:
        raise RuntimeError(f"{what} failed (exit {status})")
    return rss_mb, stdout


def timed_child_step(module: str, args: Sequence[str], what: str) -> float:
    """:func:`run_child_step` of a child that writes a measurement's scene: the seconds it took."""
    started = time.perf_counter()
    run_child_step(module, args, what)
    return time.perf_counter() - started


def child_figures(module: str, args: Sequence[str], what: str) -> tuple[dict[str, Any], float]:
    """:func:`run_child_step` of a child that prints its figures as JSON on its last line: (figures, peak
    RSS in MB)."""
    rss_mb, stdout = run_child_step(module, args, what)
    return dict(json.loads(stdout.strip().splitlines()[-1])), rss_mb


def publish(section: str, markdown: Path | None, keep: str | None = None) -> None:
    """Print ``section`` and, when ``markdown`` is given, write it there (:func:`replace_section`,
    hand-written notes from the marker ``keep`` on carried over)."""
    print(section)
    if markdown:
        replace_section(markdown, section, keep=keep)


def log_row(rows: list[dict[str, Any]], row: dict[str, Any], logger: Any) -> None:
    """Append a per-case ``row`` to ``rows`` and log it as one JSON line (infinities as ``Infinity``)."""
    rows.append(row)
    logger.info("%s", json.dumps(row, default=float))


def save_rows(path: Path | None, rows: list[dict[str, Any]]) -> None:
    """Write the per-case rows as JSON to ``path`` (an investigation's ``--json``), unless it is None."""
    if path:
        path.write_text(json.dumps(rows, indent=1, default=float))


GRD_GCP_GRID = 10
"""GCPs per side of :func:`grd_gcps` (a Sentinel-1 GRD has about 10 x 21)."""


def grd_gcps(height: int, width: int) -> list[Any]:
    """A ``GRD_GCP_GRID`` x ``GRD_GCP_GRID`` grid of GCPs in EPSG:4326 over a ``height x width`` image, as a
    Sentinel-1 GRD is georeferenced (the tests' ``write_grd_like``, benchmarks of products):
    an ascending pass near 45 N, 5 E, rotated by 12 degrees, about 10 m pixels."""
    from rasterio.control import GroundControlPoint

    angle = np.radians(12.0)
    deg_x, deg_y = 10.0 / 78_850.0, 10.0 / 111_320.0  # 10 m in degrees of longitude/latitude at 45 N
    points = []
    for row in np.linspace(0, height, GRD_GCP_GRID):
        for col in np.linspace(0, width, GRD_GCP_GRID):
            east = col * np.cos(angle) + row * np.sin(angle)
            north = col * np.sin(angle) - row * np.cos(angle)
            points.append(GroundControlPoint(row=float(row), col=float(col), x=5.0 + east * deg_x,
                                             y=45.0 + north * deg_y, z=120.0))
    return points
