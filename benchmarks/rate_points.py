"""Measure every shipped codec rate point on the rate-choice validation set (or the benchmark's images).

    OMP_NUM_THREADS=1 python -m benchmarks.rate_points --data ../shared/data/real \
        --json engine/codec/rate_points.json

The validation set chooses which rate points are shipped (no point may be dominated: more bits and
less PSNR than another point or than the line between two others, :mod:`engine.codec.rate_choice`)
and fills the figures of the rate-choice help table. It holds none of the compression benchmark's
images (:func:`benchmarks.compression.collect_images`: the GF-3 scene of ``os_sift``, ``g1``/``g2``
of ``sar_sar_r2d2``, the despeckling samples, synthetic seed 10007) and none of the codec's
training images:

* real: the four 3MOS tiles held out of codec training (three Sentinel-1, one Gaofen-3, 256 px),
  the SAR images of the CFOG/HOPC pairs (``SAR1_sen.tif``, ``Stest3_sen.tif``, ``SAR_sen.png``),
  the OSdataset GF-3 SAR (``SAR.png``) and the SAR airport image of ``os_sift`` (``t1.tif``), each
  centre-cropped to at most :data:`CROP` px; 8-bit display images read as amplitude as everywhere
  in the project (:class:`training.data.DisplayPngMapping`);
* synthetic: two :mod:`engine.synthetic` scenes of :data:`CROP` px, seeds 10101 (1 look) and
  10102 (4 looks).

Each image is coded with every rate point through the engine (default options: restoration filter
on, no optimised quantisation) into a real file; bpp = 8 x file bytes / pixels; PSNR, SSIM, ENL
ratio and EPI from :mod:`engine.codec.quality.metrics` (peak = the reference's dB range), as in
``make bench-compression``. ``--benchmark-images`` measures the benchmark's own images the same way
(the hull check on them; never used to choose).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import machine_description, utc_now
from benchmarks.compression.rows import BenchImage, _write_db, collect_images, run_codec
from engine.codec.models import shipped_rates
from engine.codec.quality import metrics as quality

log = logging.getLogger("benchmarks.rate_points")

REPO_ROOT = Path(__file__).resolve().parents[1]
CROP = 512
REAL_VALIDATION = (
    ("3MOS SEN_city_8 (Sentinel-1)", "opt_sar_3mos/SEN_city_8_sar.png"),
    ("3MOS SEN_rural_7 (Sentinel-1)", "opt_sar_3mos/SEN_rural_7_sar.png"),
    ("3MOS SEN_water_9 (Sentinel-1)", "opt_sar_3mos/SEN_water_9_sar.png"),
    ("3MOS GF3_water_5 (Gaofen-3)", "opt_sar_3mos/GF3_water_5_sar.png"),
    ("CFOG SAR1_sen", "cfog_hopc/SAR1_sen.tif"),
    ("CFOG Stest3_sen", "cfog_hopc/Stest3_sen.tif"),
    ("CFOG SAR_sen", "cfog_hopc/SAR_sen.png"),
    ("OSdataset SAR (Gaofen-3)", "osdataset_hscp/SAR.png"),
    ("os_sift t1 (airport SAR)", "os_sift/t1.tif"),
)
"""(name, path under the data folder) of the real validation images."""
SYNTHETIC_VALIDATION = ((10_101, 1.0), (10_102, 4.0))
"""(seed, looks) of the synthetic validation scenes."""


def centre_crop(image: np.ndarray, size: int = CROP) -> np.ndarray:
    """The central ``size`` x ``size`` part of ``image`` (the whole image along a shorter side)."""
    h, w = image.shape
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return image[top : top + size, left : left + size]


def validation_images(data: Path, work: Path, noise_floor_db: float) -> list[BenchImage]:
    """The validation images found under ``data`` (missing ones are skipped) and the synthetic scenes."""
    from engine.synthetic import write_scene_pair
    from training.data import load_display_png_db

    images: list[BenchImage] = []
    for name, rel in REAL_VALIDATION:
        if not (data / rel).is_file():
            log.warning("validation image %s not found; skipped", data / rel)
            continue
        db = centre_crop(load_display_png_db(data / rel, noise_floor_db=noise_floor_db))
        path = _write_db(work / f"{Path(rel).stem}_db.tif", db)
        images.append(BenchImage(name, path, "db", quality.read_db(path, 1, "db", noise_floor_db),
                                 f"real: {rel}, 8-bit display read as amplitude"))
    for seed, looks in SYNTHETIC_VALIDATION:
        sar = work / f"synthetic_{seed}.tif"
        write_scene_pair(sar, work / f"synthetic_{seed}_opt.tif", width=CROP, height=CROP, seed=seed,
                         looks=looks)
        images.append(BenchImage(f"synthetic seed {seed} ({looks:g} look{'s' if looks > 1 else ''})", sar,
                                 "intensity", quality.read_db(sar, 1, "intensity", noise_floor_db),
                                 "synthetic: engine.synthetic intensity"))
    return images


def measure(images: Sequence[BenchImage], rates: Sequence[str], work: Path) -> list[dict[str, Any]]:
    """One row per image and rate point: file bpp, PSNR, SSIM, ENL ratio, EPI, encode/decode Mpix/s."""
    rows = []
    for image in images:
        for rate in rates:
            log.info("%s: %s", image.name, rate)
            row, sarz, dec = run_codec(image, rate, work)
            sarz.unlink(missing_ok=True)
            dec.unlink(missing_ok=True)
            rows.append({"image": image.name, "rate": rate, "bpp": round(row.bpp, 4),
                         "psnr": round(row.psnr, 3), "ssim": round(row.ssim, 4),
                         "enl_ratio": round(row.enl_ratio, 3), "epi": round(row.epi, 4),
                         "enc_mpix_s": round(row.enc_mpix_s, 3), "dec_mpix_s": round(row.dec_mpix_s, 3)})
    return rows


SECTION = "## Compression: rate points and the rate choice (issue 29)"


def markdown_section(measurement: dict[str, Any]) -> str:
    """The validation measurement as a Markdown section: mean figures per rate point and group, the
    hull check, the quality words."""
    from engine.codec.rate_choice import QUALITIES, RETIRED
    from engine.codec.rate_points import group_images, hull_check, typical

    lines = [SECTION, "", f"Command: `{measurement['command']}`", "",
             f"Machine: {measurement['machine']}. Date: {measurement['date']}.", "",
             "Every installed rate point coded through the engine (restoration filter on) on the validation "
             "set, which holds none of the compression benchmark's images: "
             + "; ".join(f"{im['name']} ({im['width']} x {im['height']})" for im in measurement["images"])
             + ". Means over each group's images; PSNR in dB with peak = each image's dB range.", "",
             "| Rate | Quality | Real: bpp | PSNR | SSIM | ENL ratio | EPI | Synthetic: bpp | PSNR "
             "| ENL ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = measurement["rows"]
    real, synthetic = (typical(rows, group_images(measurement, g)) for g in ("real", "synthetic"))
    words = {q.rate: q.name for q in QUALITIES}
    words |= {old: f"retired, runs {new}" for old, new in RETIRED.items()}
    for rate in sorted(real, key=lambda r: real[r].bpp):
        f, g = real[rate], synthetic.get(rate)
        tail = f"{g.bpp:.3f} | {g.psnr:.2f} | {g.enl_ratio:.2f}" if g else "- | - | -"
        lines.append(f"| {rate} | {words.get(rate, '-')} | {f.bpp:.3f} | {f.psnr:.2f} | {f.ssim:.3f} | "
                     f"{f.enl_ratio:.2f} | {f.epi:.3f} | {tail} |")
    lines += ["", "Hull check (a point dominated by another point or by a mix of two others, in mean bpp and "
              "PSNR of the mean squared error; `engine.codec.rate_points.hull_check`):", "",
              "| Points | Real | Synthetic | All |", "|---|---|---|---|"]
    for label, rates in (("all measured", None), ("offered (retired left out)",
                                                   [r for r in real if r not in RETIRED])):
        check = hull_check(measurement, rates)
        cells = ["; ".join(check[g].values()) or "none dominated" for g in ("real", "synthetic", "all")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rate_points",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT / ".." / "shared" / "data" / "real")
    parser.add_argument("--json", type=Path, required=True, help="write the measurement here")
    parser.add_argument("--rates", nargs="*", default=None,
                        help="rate points (default: every installed one, retired ones included)")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the validation section into this Markdown file")
    parser.add_argument("--section-only", action="store_true",
                        help="measure nothing: write --markdown's section from the existing --json")
    parser.add_argument("--benchmark-images", action="store_true",
                        help="measure the compression benchmark's images instead of the validation set")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from engine.codec.models import bundled_codec
    from engine.runtime import read_metadata

    if args.section_only:
        return _write_section(json.loads(args.json.read_text(encoding="utf-8")), args.markdown)
    rates = args.rates or shipped_rates(retired=True)
    floor = read_metadata(bundled_codec(rates[0])[0]).noise_floor_db
    command = "python -m benchmarks.rate_points " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="rate_points_") as tmp:
        work = Path(tmp)
        if args.benchmark_images:
            images = collect_images(args.data, work, floor)
        else:
            images = validation_images(args.data, work, floor)
        rows = measure(images, rates, work)
    result = {
        "set": "benchmark" if args.benchmark_images else "validation",
        "command": command,
        "machine": machine_description(),
        "date": utc_now(),
        "images": [{"name": im.name, "group": "synthetic" if im.name.startswith("synthetic") else "real",
                    "width": int(im.ref_db.shape[1]), "height": int(im.ref_db.shape[0]), "note": im.note}
                   for im in images],
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s (%d rows)", args.json, len(rows))
    return _write_section(result, args.markdown) if args.markdown and not args.benchmark_images else 0


def _write_section(measurement: dict[str, Any], markdown: Path | None) -> int:
    from benchmarks.common import replace_section

    if markdown is None:
        log.error("--section-only needs --markdown")
        return 2
    replace_section(markdown, markdown_section(measurement))
    return 0


if __name__ == "__main__":
    sys.exit(main())
