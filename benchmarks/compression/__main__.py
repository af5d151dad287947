"""Rate-distortion benchmark of the learned SAR codec against GDAL JPEG2000 and LERC.

    python -m benchmarks.compression --data ../shared/data/real --markdown docs/BENCHMARKS.md

For every image (the GF-3 HH scene in ``os_sift/``, ``sar_sar_r2d2/g1.png``,
``g2.png``, the despeckling samples and a held-out synthetic scene) and every
shipped rate point, the codec writes a real ``.sarz`` file; JPEG2000
(JP2OpenJPEG on the dB image scaled to UInt16, ``QUALITY`` searched) and LERC
(GTiff ``COMPRESS=LERC`` on the float32 dB image, ``MAX_Z_ERROR`` searched)
are matched to the codec's bits per pixel, measured on the files' real sizes.
Models whose entropy table carries optimised-quantisation settings are also run
with ``rdo=True`` (method :data:`CODEC_RDO`), each with its own matched anchors.
Metrics come from :mod:`engine.codec.quality.metrics` (PSNR/SSIM in dB with peak = the
reference's dB range, ENL ratio, EPI). It also measures encode/decode
throughput, ONNX Runtime vs PyTorch eager speed for the same network, the seam
metric along tile boundaries and whether decoding is bit-identical (twice in
process and once in a fresh process). Results replace the section
:data:`SECTION` of the markdown file; the plot goes to ``docs/rd_curve.png``.
PyTorch is used here only (never in the engine).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import compression_bright
from benchmarks.common import machine_line, publish
from engine.codec import fileformat
from engine.codec.layout import default_tiling
from engine.codec.models import bundled_codec, models_dir, shipped_rates
from engine.codec.quality import metrics as quality

from .baselines import run_baselines, sweep_baselines
from .checks import determinism, memory_scaling, seam_ratio, speed_onnx_vs_torch
from .report import markdown_section, plot
from .rows import NOTES_MARKER, RDO_SUFFIX, REPO_ROOT, Row, collect_images, has_rdo, run_codec

log = logging.getLogger("benchmarks.compression")


# ------------------------------------------------------------------ main
def _parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compression", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", type=Path, default=REPO_ROOT / ".." / "shared" / "data" / "real")
    parser.add_argument("--markdown", type=Path, default=None, help="write the section into this file")
    parser.add_argument("--plot", type=Path, default=REPO_ROOT / "docs" / "rd_curve.png")
    parser.add_argument("--rates", nargs="*", default=None, help="rate points (default: all shipped)")
    parser.add_argument(
        "--images", nargs="*", default=(), help="only images whose name contains one of these"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the ONNX Runtime vs PyTorch timing")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--no-rdo", action="store_true", help="skip the optimised-quantisation codec runs")
    parser.add_argument("--json", type=Path, default=None, help="also dump the raw rows as JSON")
    parser.add_argument("--bright-targets", action="store_true",
                        help="only the bright-target table (benchmarks.compression_bright) of the images")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    rates = args.rates or shipped_rates()
    if not rates:
        print(
            f"No codec models in {models_dir()}; train and export them first (make train-compression).",
            file=sys.stderr,
        )
        return 2
    from engine.runtime import read_metadata

    floor = read_metadata(bundled_codec(rates[0])[0]).noise_floor_db
    command = "python -m benchmarks.compression " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.bright_targets:
        return _bright_only(args, rates, floor, command)
    rdo_rates = {rate: not args.no_rdo and has_rdo(rate) for rate in rates}
    bright: list[compression_bright.BrightRow] = []
    rows: list[Row] = []
    seams: dict[str, float] = {}
    sweeps: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench_compression_") as tmp:
        work = Path(tmp)
        images = collect_images(args.data, work, floor, args.images)
        det: dict[str, bool] = {}
        for image in images:
            for rate in rates:
                log.info("%s: codec %s", image.name, rate)
                row, sarz, dec = run_codec(image, rate, work)
                rows.append(row)
                coded = fileformat.read_compressed(sarz)
                if coded.exceptions and coded.header.entropy_model == fileformat.FACTORISED:
                    # the table compares against format 3 (no bright-target section), which only
                    # factorised payloads can be written in
                    bright.append(compression_bright.bright_row(image.name, rate, image.ref_db, sarz, dec,
                                                                work))
                tile, overlap = default_tiling(read_metadata(bundled_codec(rate)[1]), None, None)
                rec = quality.read_db(dec, 1, "db")
                if min(image.ref_db.shape) > tile:
                    seams[f"{image.name} / {rate}"] = seam_ratio(image.ref_db, rec, tile, overlap)
                if not det and min(image.ref_db.shape) > tile:
                    det = determinism(sarz, work)
                log.info("%s: baselines at %.3f bpp", image.name, row.bpp)
                rows.extend(run_baselines(image, row.bpp, rate, work))
                if rdo_rates[rate]:
                    log.info("%s: codec %s, optimised quantisation", image.name, rate)
                    row, _, _ = run_codec(image, rate, work, rdo=True)
                    rows.append(row)
                    rows.extend(run_baselines(image, row.bpp, rate + RDO_SUFFIX, work))
            sweeps.extend(sweep_baselines(image, work))
        speed = None
        if not args.no_torch:
            try:
                speed = speed_onnx_vs_torch(rates[len(rates) // 2])
            except Exception as exc:  # the timing is informative only; report why it is missing
                log.warning("ONNX Runtime vs PyTorch timing skipped: %s", exc)
        memory = {} if args.no_memory else memory_scaling(rates[len(rates) // 2], work)
        plot(rows, args.plot, sweeps)
        section = markdown_section(
            rows,
            images,
            rates,
            speed,
            seams,
            det,
            memory,
            command,
            args.plot,
            args.markdown or REPO_ROOT / "docs" / "BENCHMARKS.md",
        )
    publish(section, args.markdown, keep=NOTES_MARKER)
    if bright:
        _write_bright(bright, command, args.markdown)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1, default=float))
    return 0


def _write_bright(rows: list[compression_bright.BrightRow], command: str, markdown: Path | None) -> None:
    publish(compression_bright.markdown_section(rows, command, machine_line()), markdown)


def _bright_only(args: argparse.Namespace, rates: list[str], floor: float, command: str) -> int:
    """The bright-target table alone: the codec at every rate on the chosen images."""
    rows: list[compression_bright.BrightRow] = []
    with tempfile.TemporaryDirectory(prefix="bench_bright_") as tmp:
        work = Path(tmp)
        for image in collect_images(args.data, work, floor, args.images):
            for rate in rates:
                log.info("%s: codec %s (bright targets)", image.name, rate)
                _, sarz, dec = run_codec(image, rate, work)
                rows.append(compression_bright.bright_row(image.name, rate, image.ref_db, sarz, dec, work))
    _write_bright(rows, command, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
