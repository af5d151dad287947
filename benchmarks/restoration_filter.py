"""What the codec's restoration filter costs and gains: encoding time and PSNR with and without it.

    python -m benchmarks.restoration_filter --data ../shared/data/real --markdown docs/BENCHMARKS.md

For a 2048 x 2048 synthetic intensity scene (4.2 Mpix, seed 2048), the GF-3 HH scene of
``os_sift/`` (1388 x 1385, amplitude) and a 1000 x 1000 crop of it, every shipped rate point is
encoded three times side by side in one process: without the filter; with the filter fitted on a
sample of tiles of about :data:`engine.codec.fit_filter.FIT_SAMPLE_PIXELS` pixels (1 Mpix, the
shipped setting; scenes up to that size are fitted whole); and with the 4 Mpix sample shipped before
(the 1388 x 1385 scene was fitted whole then). Each file is decoded and scored against the source in
dB (:func:`engine.codec.quality.metrics.compare`). The table replaces the section :data:`SECTION` of
the markdown file.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np

from benchmarks.common import machine_line, publish, section_head
from engine.codec import fit_filter
from engine.codec.decode import decompress_file
from engine.codec.encode import compress_raster
from engine.codec.models import shipped_rates
from engine.codec.quality import metrics as quality

logger = logging.getLogger(__name__)

SECTION = "## Restoration filter cost (make bench-filter)"
GF3_GLOB = "GF3_*HH*.tiff"
SYNTHETIC_SIZE = 2048
CROP = (192, 194, 1000, 1000)
"""A 1 Mpix window of the GF-3 scene (row, column, height, width): fitted on the whole scene."""
VARIANTS = {"none": 0, "1 Mpix sample": 1_000_000, "4 Mpix sample": 4_000_000}
"""Filter variants: none, or fitted on a tile sample of about this many pixels (FIT_SAMPLE_PIXELS)."""


def _crop(path: Path, out: Path, window: tuple[int, int, int, int]) -> Path:
    """``window`` (row, column, height, width) of band 1 of ``path``, georeferenced, as a GeoTIFF."""
    from engine.raster_io import inspect_raster, read_window, write_raster
    from engine.tiling import Window

    info = inspect_raster(path, 1)
    win = Window(*window)
    data = read_window(path, 1, win, dtype=np.float64).astype(info.dtype(1))  # inside: no fill
    transform = info.transform * info.transform.translation(win.col_off, win.row_off)
    return write_raster(out, data, info.crs_wkt, transform, nodata=info.nodata)


@dataclass(frozen=True)
class Scene:
    name: str
    path: Path
    kind: str
    ref_db: np.ndarray


@dataclass(frozen=True)
class Row:
    scene: str
    rate: str
    variant: str
    encode_s: float
    bpp: float
    psnr: float


def scenes(data: Path, work: Path, size: int = SYNTHETIC_SIZE) -> list[Scene]:
    """The synthetic ``size`` x ``size`` scene and, when present, the GF-3 HH scene."""
    from affine import Affine

    from engine.raster_io import write_raster
    from engine.synthetic import generate_scene_pair

    pair = generate_scene_pair(size, size, seed=size)
    syn = write_raster(work / "synthetic.tif", pair.sar, None, Affine(10, 0, 0, 0, -10, 0), nodata=None)
    out = [Scene(f"synthetic {size} x {size}", syn, "intensity",
                 quality.read_db(syn, 1, "intensity"))]
    gf3 = sorted((data / "os_sift").glob(GF3_GLOB))
    if gf3:
        out.append(Scene("GF-3 HH (os_sift) 1388 x 1385", gf3[0], "amplitude",
                         quality.read_db(gf3[0], 1, "amplitude")))
        crop = _crop(gf3[0], work / "gf3_crop.tif", CROP)
        out.append(Scene(f"GF-3 HH crop {CROP[3]} x {CROP[2]} (from row {CROP[0]}, column {CROP[1]})", crop,
                         "amplitude", quality.read_db(crop, 1, "amplitude")))
    else:
        logger.warning("no GF-3 scene under %s; synthetic only", data)
    return out


def measure(scene: Scene, rate: str, variant: str, work: Path) -> Row:
    """Encode (timed) with ``variant``, decode, score."""
    sample = VARIANTS[variant]
    sarz, dec = work / f"{rate}_{sample}.sarz", work / f"{rate}_{sample}.tif"
    with mock.patch.object(fit_filter, "FIT_SAMPLE_PIXELS", sample or fit_filter.FIT_SAMPLE_PIXELS):
        start = time.perf_counter()
        result = compress_raster(scene.path, sarz, input_kind=scene.kind, rate=rate,
                                 post_filter=VARIANTS[variant] > 0)
        seconds = time.perf_counter() - start
    decompress_file(sarz, dec)
    report = quality.compare(scene.ref_db, quality.read_db(dec, 1, "db"))
    return Row(scene.name, rate, variant, seconds, result.bpp, report.psnr)


def markdown_section(rows: list[Row], command: str) -> str:
    lines = [
        *section_head(SECTION, command, machine_line()),
        "The three encodings of a row ran side by side in one process "
        "(the machine was shared, so seconds are comparable within a row, less so between rows). "
        "Scenes of up to 1 Mpix are fitted on the whole scene with either sample size, so the two filter "
        "columns of such a row are the same work: their difference is the timing noise.",
        "",
        "| scene | rate | encode s: no filter | filter, 1 Mpix sample (default) | filter, 4 Mpix sample "
        "(before) | x slower (1 / 4 Mpix) | PSNR no filter (dB) | PSNR gain 1 / 4 Mpix (dB) | "
        "bpp no filter / with |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by_key = {(r.scene, r.rate, r.variant): r for r in rows}
    for scene, rate in dict.fromkeys((r.scene, r.rate) for r in rows):
        none, samp, old = (by_key[(scene, rate, v)] for v in VARIANTS)
        lines.append(
            f"| {scene} | {rate} | {none.encode_s:.1f} | {samp.encode_s:.1f} | {old.encode_s:.1f} | "
            f"{samp.encode_s / none.encode_s:.1f} / {old.encode_s / none.encode_s:.1f} | "
            f"{none.psnr:.2f} | {samp.psnr - none.psnr:+.3f} / {old.psnr - none.psnr:+.3f} | "
            f"{none.bpp:.4f} / {samp.bpp:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--size", type=int, default=SYNTHETIC_SIZE, help="side of the synthetic scene")
    parser.add_argument("--rates", nargs="*", default=None, help="rate points (default: all shipped)")
    parser.add_argument("--markdown", type=Path, help="Markdown file whose section is replaced")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rates = args.rates or shipped_rates()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench_filter_") as tmp:
        work = Path(tmp)
        for scene in scenes(args.data, work, args.size):
            for rate in rates:
                for variant in VARIANTS:
                    rows.append(measure(scene, rate, variant, work))
                    logger.info("%s", rows[-1])
    command = "make bench-filter"
    publish(markdown_section(rows, command), args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
