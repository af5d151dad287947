"""The rate-distortion hull check of the shipped codec rate points, stated by ``make bench-compression``.

On the benchmark's own codec rows (every shipped point on every benchmark image) and on the committed
validation measurement that chose the points (``engine/codec/rate_points.json``): which points are
dominated (:func:`engine.codec.rate_points.dominated`: beaten by another point, or by a mix of two
others), per group of images (real, synthetic). Also labels the codec points of the plot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from engine.codec.rate_points import HULL_GROUPS, MEASURE_COMMAND, hull_check, load_measurement


def measurement_of(rows: Iterable[Any], method: str, image_names: Sequence[str]) -> dict[str, Any]:
    """The codec rows of ``method`` (benchmark :class:`benchmarks.compression.Row`) as a rate-point
    measurement (:func:`engine.codec.rate_points.hull_check` takes it); synthetic images by name."""
    images = [{"name": n, "group": "synthetic" if n.startswith("synthetic") else "real"} for n in image_names]
    return {"images": images,
            "rows": [{"image": r.image, "rate": r.setting, "bpp": r.bpp, "psnr": r.psnr}
                     for r in rows if r.method == method]}


def _verdicts(checks: dict[str, dict[str, str]]) -> list[str]:
    lines = []
    for group in (*HULL_GROUPS, "all"):
        if group not in checks:
            continue
        found = checks[group]
        verdict = "no point dominated" if not found else "; ".join(found.values())
        lines.append(f"| {group} | {verdict} |")
    return lines


def hull_lines(rows: Iterable[Any], method: str, image_names: Sequence[str], rates: Sequence[str],
               ) -> list[str]:
    """Markdown lines: the hull check of ``rates`` on the benchmark images and on the validation set."""
    lines = [
        "",
        "Rate-distortion hull of the shipped rate points (issue 29): a point is dominated when another "
        "point gives more PSNR for no more bits, or when coding a share of the tiles with one of two other "
        "points and the rest with the other (bits and squared errors mix linearly) would give more PSNR "
        "for its bits; mean bits per pixel and PSNR of the mean squared error over each group's images. "
        "The validation set (not these images) chose the shipped points "
        f"(`{MEASURE_COMMAND}`; docs/decisions/2026-12-07-codec-rate-choice.md).",
        "",
        "| Images | Hull check |",
        "|---|---|",
    ]
    bench = hull_check(measurement_of(rows, method, image_names), rates)
    lines += [line.replace("| ", "| benchmark, ", 1) for line in _verdicts(bench)]
    validation = hull_check(load_measurement(), rates)
    lines += [line.replace("| ", "| validation, ", 1) for line in _verdicts(validation)]
    return lines


def label_points(ax: Any, rows: Iterable[Any], image: str, method: str) -> None:
    """Write the rate name beside each point of ``method`` on ``image`` on the matplotlib axes ``ax``."""
    for row in rows:
        if row.image == image and row.method == method:
            ax.annotate(row.setting, (row.bpp, row.psnr), textcoords="offset points", xytext=(4, -10),
                        fontsize=7, color="C0")
