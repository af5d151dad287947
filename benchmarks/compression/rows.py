"""Images, rows and the codec runs of the compression benchmark."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.codec.decode import decompress_file
from engine.codec.encode import compress_raster
from engine.codec.models import bundled_codec
from engine.codec.quality import metrics as quality

SECTION = "## Compression (make bench-compression)"
NOTES_MARKER = "<!-- compression notes: kept when the table is regenerated -->"
REPO_ROOT = Path(__file__).resolve().parents[2]
GF3_GLOB = "GF3_*HH*.tif*"
SYNTHETIC_SIZE = 1024
SYNTHETIC_SEED = 10_007  # held out: training uses synthetic seeds from 20000
SEAM_BAND = 4
CODEC = "learned codec"
CODEC_RDO = "learned codec, optimised quantisation"
RDO_SUFFIX = " RDO"


@dataclass
class BenchImage:
    name: str
    path: Path  # what the codec compresses
    kind: str  # intensity | amplitude | db (what ``path`` holds)
    ref_db: np.ndarray  # reference in dB, NaN where invalid
    note: str

    @property
    def pixels(self) -> int:
        return int(self.ref_db.size)


@dataclass
class Row:
    image: str
    method: str
    setting: str
    bpp: float
    psnr: float
    ssim: float
    enl_ratio: float
    epi: float
    enc_mpix_s: float
    dec_mpix_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")[:40]


# ------------------------------------------------------------------ images
def _write_db(path: Path, db: np.ndarray) -> Path:
    from affine import Affine

    from engine.raster_io import OUTPUT_NODATA, write_raster

    write_raster(
        path,
        np.where(np.isfinite(db), db, OUTPUT_NODATA).astype(np.float32),
        None,
        Affine.identity(),
        nodata=OUTPUT_NODATA,
    )
    return path


def collect_images(
    data: Path, work: Path, noise_floor_db: float, only: Sequence[str] = ()
) -> list[BenchImage]:
    """The benchmark images that exist under ``data`` plus the synthetic scene."""
    from engine.synthetic import write_scene_pair
    from training.compression.data import DESPECKLING_SAMPLES, split_despeckling
    from training.data import load_display_png_db

    images: list[BenchImage] = []
    gf3 = sorted((data / "os_sift").glob(GF3_GLOB))
    if gf3:
        ref = quality.read_db(gf3[0], 1, "amplitude", noise_floor_db)
        images.append(
            BenchImage(
                "GF-3 HH (os_sift)",
                gf3[0],
                "amplitude",
                ref,
                "uint16 amplitude DN, geocoded (EPSG:4326), zeros = nodata",
            )
        )
    despeckling = data / "sar_single_deepdespeckling"
    pngs = [
        ("g1 (sar_sar_r2d2)", data / "sar_sar_r2d2" / "g1.png"),
        ("g2 (sar_sar_r2d2)", data / "sar_sar_r2d2" / "g2.png"),
        ("sar2sar_noisy (despeckling, held-out part)", despeckling / DESPECKLING_SAMPLES[0]),
        ("noisy_test_image (despeckling, held-out part)", despeckling / DESPECKLING_SAMPLES[1]),
    ]
    for name, png in pngs:
        if png.is_file():
            db = load_display_png_db(png, noise_floor_db=noise_floor_db)
            note = "8-bit display PNG read as amplitude (training.data.DisplayPngMapping)"
            if png.name in DESPECKLING_SAMPLES:
                # The rest of these samples is training data of the shipped codec.
                db = split_despeckling(png.name, db, heldout=True)
                note += "; only the part the shipped codec was not trained on"
            path = _write_db(work / f"{png.stem}_db.tif", db)
            images.append(
                BenchImage(name, path, "db", quality.read_db(path, 1, "db", noise_floor_db), note)
            )
    sar = work / "synthetic_sar.tif"
    write_scene_pair(
        sar,
        work / "synthetic_optical.tif",
        width=SYNTHETIC_SIZE,
        height=SYNTHETIC_SIZE,
        seed=SYNTHETIC_SEED,
        looks=4,
    )
    images.append(
        BenchImage(
            f"synthetic {SYNTHETIC_SIZE} px (seed {SYNTHETIC_SEED})",
            sar,
            "intensity",
            quality.read_db(sar, 1, "intensity", noise_floor_db),
            "engine.synthetic, 4-look intensity, held-out seed",
        )
    )
    if only:
        images = [im for im in images if any(key.lower() in im.name.lower() for key in only)]
    return images


# ------------------------------------------------------------------ codec
def has_rdo(rate: str) -> bool:
    """Whether the shipped ``rate`` model carries optimised-quantisation settings (never a hyperprior
    model: optimised quantisation belongs to the factorised tables)."""
    from engine.codec.entropy import EntropyModelTable
    from engine.codec.models import latent_model
    from engine.runtime import read_metadata

    model = latent_model(read_metadata(bundled_codec(rate)[0]), rate)
    return isinstance(model, EntropyModelTable) and model.rdo_lambda > 0


def run_codec(image: BenchImage, rate: str, work: Path, rdo: bool = False) -> tuple[Row, Path, Path]:
    label = f"{rate}{'_rdo' if rdo else ''}"
    sarz = work / f"{_slug(image.name)}_{label}.sarz"
    dec = work / f"{_slug(image.name)}_{label}.tif"
    start = time.perf_counter()
    # the named model itself (a retired rate name would run its successor)
    result = compress_raster(image.path, sarz, input_kind=image.kind, rate=None,
                             encoder_path=bundled_codec(rate)[0], rdo=rdo)
    enc_s = time.perf_counter() - start
    start = time.perf_counter()
    decompress_file(sarz, dec, output_kind="db")
    dec_s = time.perf_counter() - start
    rec = quality.read_db(dec, 1, "db")
    row = scored_row(image, CODEC_RDO if rdo else CODEC, rate, result.bpp, rec, enc_s, dec_s,
                     {"bytes": result.bytes})
    return row, sarz, dec


def scored_row(
    image: BenchImage,
    method: str,
    setting: str,
    bpp: float,
    rec: np.ndarray,
    enc_s: float,
    dec_s: float,
    extra: dict[str, Any] | None = None,
) -> Row:
    """The table row of one reconstruction ``rec`` (dB) of ``image``: its metrics and throughputs."""
    report = quality.compare(image.ref_db, rec)
    mpix = image.pixels / 1e6
    return Row(
        image.name,
        method,
        setting,
        bpp,
        report.psnr,
        report.ssim,
        report.enl_ratio,
        report.epi,
        mpix / enc_s,
        mpix / dec_s,
        extra or {},
    )
