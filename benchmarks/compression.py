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
import datetime as dt
import functools
import hashlib
import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import compression_bright, rate_hull
from benchmarks.common import replace_section
from engine.codec import fileformat
from engine.codec.decode import decompress_file
from engine.codec.encode import compress_raster
from engine.codec.layout import TILE_FACTOR, default_tiling
from engine.codec.models import bundled_codec, models_dir, shipped_rates
from engine.codec.quality import metrics as quality

log = logging.getLogger("benchmarks.compression")

SECTION = "## Compression (make bench-compression)"
NOTES_MARKER = "<!-- compression notes: kept when the table is regenerated -->"
REPO_ROOT = Path(__file__).resolve().parents[1]
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
    from training.data import DisplayPngMapping, load_display_png_db

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
            db = load_display_png_db(png, DisplayPngMapping(), noise_floor_db)
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


# ------------------------------------------------------------------ baselines
#: (bpp, dB image back, encode s, decode s) of one round trip through a codec.
RoundTripResult = tuple[float, np.ndarray, float, float]
#: A codec round trip of a dB image at one setting, into one file: ``jp2_roundtrip``, ``lerc_roundtrip``.
RoundTrip = Callable[[np.ndarray, float, Path], RoundTripResult]
Trial = Callable[[float, Path], RoundTripResult]


def _valid_range(ref: np.ndarray) -> tuple[float, float]:
    values = ref[np.isfinite(ref)]
    lo, hi = float(values.min()), float(values.max())
    return lo, hi if hi > lo else lo + 1.0


def gdal_roundtrip(
    path: Path, band: np.ndarray, read_dtype: type | None = None, **creation: Any
) -> RoundTripResult:
    """Write ``band`` with the ``creation`` options (driver, codec settings), read it back.

    Returns (bpp of the file, the band read back, cast to ``read_dtype`` if given, encode s, decode s).
    """
    import rasterio

    h, w = band.shape
    start = time.perf_counter()
    with (
        rasterio.Env(GDAL_PAM_ENABLED="NO"),
        rasterio.open(path, "w", width=w, height=h, count=1, dtype=band.dtype.name, **creation) as dst,
    ):
        dst.write(band, 1)
    enc_s = time.perf_counter() - start
    start = time.perf_counter()
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path) as src:
        back = src.read(1)
        if read_dtype is not None:
            back = back.astype(read_dtype)
    dec_s = time.perf_counter() - start
    return 8.0 * path.stat().st_size / (h * w), back, enc_s, dec_s


def jp2_roundtrip(ref: np.ndarray, quality_pct: float, path: Path) -> RoundTripResult:
    """Write the dB image scaled to UInt16 as JPEG2000 with ``QUALITY``; (bpp, dB back, enc s, dec s)."""
    lo, hi = _valid_range(ref)
    valid = np.isfinite(ref)
    u16 = np.where(valid, np.round((np.where(valid, ref, lo) - lo) / (hi - lo) * 65535.0), 0).astype(
        np.uint16
    )
    bpp, back, enc_s, dec_s = gdal_roundtrip(
        path,
        u16,
        np.float64,
        driver="JP2OpenJPEG",
        QUALITY=f"{quality_pct:.4f}",
        REVERSIBLE="NO",
        GMLJP2="NO",
    )
    db = np.where(valid, back / 65535.0 * (hi - lo) + lo, np.nan).astype(np.float32)
    return bpp, db, enc_s, dec_s


def lerc_roundtrip(ref: np.ndarray, max_z_error: float, path: Path) -> RoundTripResult:
    """Write the float32 dB image as GTiff LERC with ``MAX_Z_ERROR``; (bpp, dB back, enc s, dec s)."""
    lo, _ = _valid_range(ref)
    valid = np.isfinite(ref)
    bpp, back, enc_s, dec_s = gdal_roundtrip(
        path,
        np.where(valid, ref, lo).astype(np.float32),
        driver="GTiff",
        COMPRESS="LERC",
        MAX_Z_ERROR=f"{max_z_error:.6g}",
        TILED="YES",
        BLOCKXSIZE=256,
        BLOCKYSIZE=256,
    )
    db = np.where(valid, back, np.nan).astype(np.float32)
    return bpp, db, enc_s, dec_s


def match_bpp(
    trial: Trial, target: float, low: float, high: float, path: Path, increasing: bool, iterations: int = 9
) -> tuple[float, RoundTripResult]:
    """Bisect a codec parameter (log scale) so that its real bpp is closest to ``target``."""
    best: tuple[float, RoundTripResult] | None = None
    a, b = math.log(low), math.log(high)
    for _ in range(iterations):
        mid = 0.5 * (a + b)
        result = trial(math.exp(mid), path)
        if best is None or abs(result[0] - target) < abs(best[1][0] - target):
            best = (math.exp(mid), result)
        too_big = result[0] > target
        if too_big == increasing:
            b = mid
        else:
            a = mid
        if abs(result[0] - target) <= 0.01 * target:
            break
    assert best is not None
    return best


def run_baselines(image: BenchImage, target_bpp: float, rate: str, work: Path) -> list[Row]:
    """JPEG2000 and LERC, each with its setting bisected to ``target_bpp`` (the codec's at ``rate``)."""
    lo, hi = _valid_range(image.ref_db)
    q0 = 100.0 * target_bpp / 16.0
    searches: tuple[tuple[str, RoundTrip, str, float, float, str, bool, int], ...] = (
        # method, round trip, setting, bisection range, file, bpp grows with the setting, iterations
        ("JPEG2000", jp2_roundtrip, "QUALITY={:.3g}", q0 / 8, min(q0 * 8, 100.0), "bench.jp2", True, 9),
        ("LERC", lerc_roundtrip, "MAX_Z_ERROR={:.3g} dB", 1e-3, hi - lo, "bench_lerc.tif", False, 12),
    )
    rows = []
    for method, roundtrip, setting, low, high, name, increasing, iterations in searches:
        value, (bpp, rec, enc_s, dec_s) = match_bpp(
            functools.partial(roundtrip, image.ref_db),
            target_bpp,
            low,
            high,
            work / name,
            increasing=increasing,
            iterations=iterations,
        )
        rows.append(scored_row(image, method, f"{setting.format(value)} (vs {rate})", bpp, rec, enc_s, dec_s))
    return rows


# ------------------------------------------------------------------ seams, determinism
def seam_ratio(ref: np.ndarray, rec: np.ndarray, tile: int, overlap: int, band: int = SEAM_BAND) -> float:
    """Mean abs error in ``band``-px strips along tile core boundaries / mean abs error elsewhere."""
    err = np.abs(rec.astype(np.float64) - ref)
    valid = np.isfinite(err)
    stride, half = tile - overlap, overlap // 2
    mask = np.zeros(err.shape, dtype=bool)
    for edge in range(stride + half, max(err.shape), stride):
        mask[max(edge - band // 2, 0) : edge + band // 2, :] = True
        mask[:, max(edge - band // 2, 0) : edge + band // 2] = True
    inside, outside = mask & valid, ~mask & valid
    if not inside.any() or not outside.any():
        return math.nan
    return float(err[inside].mean() / err[outside].mean())


def decoded_digest(sarz: Path, out: Path) -> str:
    decompress_file(sarz, out)
    return hashlib.sha256(quality.read_db(out, 1, "db").tobytes()).hexdigest()


def determinism(sarz: Path, work: Path) -> dict[str, bool]:
    first = decoded_digest(sarz, work / "det_a.tif")
    second = decoded_digest(sarz, work / "det_b.tif")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
        "from benchmarks.compression import decoded_digest; "
        "print(decoded_digest(Path(sys.argv[2]), Path(sys.argv[3])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(REPO_ROOT), str(sarz), str(work / "det_c.tif")],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ),
    )
    other = done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else "failed"
    return {"twice in process": first == second, "fresh process": other == first}


def _rss_child(scene: Path, rate: str, work: Path) -> None:
    """Child process: encode + decode ``scene``, print the peak RSS (MB) and seconds as JSON."""
    start = time.perf_counter()
    compress_raster(scene, work / "mem.sarz", input_kind="intensity", rate=rate)
    decompress_file(work / "mem.sarz", work / "mem.tif")
    # VmHWM belongs to this process image (ru_maxrss would include the forked parent's size)
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(float(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024.0
    print(json.dumps({"peak_rss_mb": peak, "seconds": time.perf_counter() - start}))


MEMORY_SCENES = ((2048, 2048), (2048, 8192), (8192, 2048))
"""(width, height) of the memory runs: 4 x taller shows whether memory grows with the scene's height
(it should not: strips), 4 x wider what one strip row costs."""


def memory_scaling(rate: str, work: Path, sizes: Sequence[tuple[int, int]] = MEMORY_SCENES,
                   ) -> dict[str, dict[str, float]]:
    """Peak RSS of a fresh process that encodes and decodes synthetic scenes of each (width, height)."""
    from engine.synthetic import write_scene_pair

    out: dict[str, dict[str, float]] = {}
    for width, height in sizes:
        label = f"{width} x {height}"
        scene = work / f"mem_{width}x{height}.tif"
        write_scene_pair(scene, work / f"mem_{width}x{height}_opt.tif", width=width, height=height,
                         seed=SYNTHETIC_SEED)
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
            "from benchmarks.compression import _rss_child; _rss_child(Path(sys.argv[2]), sys.argv[3], "
            "Path(sys.argv[4]))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(REPO_ROOT), str(scene), rate, str(work)],
            capture_output=True,
            text=True,
            check=False,
            env=dict(os.environ),
        )
        if done.returncode == 0:
            out[label] = json.loads(done.stdout.strip().splitlines()[-1])
        else:
            log.warning("memory run of %s px failed: %s", label, done.stderr[-500:])
        scene.unlink(missing_ok=True)
    return out


# ------------------------------------------------------------------ ONNX Runtime vs PyTorch
def _encoder_widths(encoder_path: Path) -> tuple[int, int, int] | None:
    import onnx

    model = onnx.load(str(encoder_path))
    inits = {i.name: tuple(i.dims) for i in model.graph.initializer}
    outs: list[int] = []
    for node in model.graph.node:  # the four stride-2 5x5 convolutions: widths..., latent channels
        strides = [list(a.ints) for a in node.attribute if a.name == "strides"]
        if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in inits and strides == [[2, 2]]:
            dims = inits[node.input[1]]
            if len(dims) == 4 and dims[2] == 5:
                outs.append(int(dims[0]))
    return (outs[0], outs[1], outs[2]) if len(outs) >= 4 else None


def speed_onnx_vs_torch(rate: str, batch: int = 4, tile: int = 256, repeats: int = 3) -> dict[str, Any]:
    """Same network (architecture and size of the shipped model, one set of weights) in both runtimes."""
    import onnxruntime as ort
    import torch

    from engine.runtime import read_metadata
    from training.compression.models import ModelConfig, SarCodec

    enc_path, _ = bundled_codec(rate)
    meta = read_metadata(enc_path)
    widths = _encoder_widths(enc_path) or ModelConfig().widths
    cfg = ModelConfig(
        variant=meta.extra.get("architecture", "B"), widths=widths, latent_channels=meta.latent_channels
    )
    torch.manual_seed(0)
    codec = SarCodec(cfg).eval()
    x = torch.rand(batch, 1, tile, tile)
    with torch.no_grad():
        y = torch.round(codec.encoder(x))
    tmp = Path(tempfile.mkdtemp(prefix="bench_speed_"))
    paths = {}
    for name, module, dummy, inp, out in (
        ("encoder", codec.encoder, x, "x", "y"),
        ("decoder", codec.decoder, y, "y_hat", "x_hat"),
    ):
        paths[name] = tmp / f"{name}.onnx"
        torch.onnx.export(
            module,
            (dummy,),
            str(paths[name]),
            input_names=[inp],
            output_names=[out],
            dynamic_axes={inp: {0: "N", 2: "H", 3: "W"}},
            opset_version=17,
            dynamo=False,
        )

    def best(fn: Callable[[], object]) -> float:
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    results: dict[str, Any] = {
        "architecture": cfg.variant,
        "widths": list(widths),
        "latent": cfg.latent_channels,
        "batch": batch,
        "tile": tile,
        "torch_threads": torch.get_num_threads(),
    }
    for name, dummy, inp in (("encoder", x, "x"), ("decoder", y, "y_hat")):
        module = codec.encoder if name == "encoder" else codec.decoder
        session = ort.InferenceSession(str(paths[name]), providers=["CPUExecutionProvider"])
        arr = dummy.numpy()

        def run_torch(m: Any = module, d: Any = dummy) -> object:
            with torch.no_grad():
                return m(d)

        def run_ort(s: Any = session, a: np.ndarray = arr, i: str = inp) -> object:
            return s.run(None, {i: a})

        t_torch = best(run_torch)
        t_ort = best(run_ort)
        mpix = batch * tile * tile / 1e6
        results[name] = {"torch_mpix_s": mpix / t_torch, "onnxruntime_mpix_s": mpix / t_ort}
    return results


# ------------------------------------------------------------------ output
def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")[:40]


def _f(value: float, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


SWEEP_BPP = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
LERC_SWEEP_DB = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0)


def _sweep_row(image: str, method: str, bpp: float, psnr: float) -> Row:
    nan = math.nan
    return Row(image, method, "sweep", bpp, psnr, nan, nan, nan, nan, nan)


def sweep_baselines(image: BenchImage, work: Path) -> list[Row]:
    """JPEG2000 and LERC at fixed settings, for the rate-distortion curves of the plot."""
    rows = []
    for bpp_target in SWEEP_BPP:
        bpp, rec, _, _ = jp2_roundtrip(image.ref_db, 100.0 * bpp_target / 16.0, work / "sweep.jp2")
        rows.append(_sweep_row(image.name, "JPEG2000", bpp, quality.psnr(image.ref_db, rec)))
    for z in LERC_SWEEP_DB:
        bpp, rec, _, _ = lerc_roundtrip(image.ref_db, z, work / "sweep_lerc.tif")
        rows.append(_sweep_row(image.name, "LERC", bpp, quality.psnr(image.ref_db, rec)))
    return rows


def plot(rows: list[Row], path: Path, sweeps: Sequence[Row] = ()) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r.image for r in rows))
    cols = min(3, len(names))
    nrows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.8 * nrows), squeeze=False)
    styles = {CODEC: ("o-", "C0"), CODEC_RDO: ("D-", "C3"), "JPEG2000": ("s", "C1"), "LERC": ("^", "C2")}
    for ax, name in zip(axes.ravel(), names, strict=False):
        top = max([r.bpp for r in rows if r.image == name] + [1.0]) * 1.3
        for method, (style, colour) in styles.items():
            curve = sorted((r.bpp, r.psnr) for r in sweeps if r.image == name and r.method == method)
            if curve:
                ax.plot(*zip(*curve, strict=True), "--", color=colour, alpha=0.6, label=f"{method} (sweep)")
            pts = sorted((r.bpp, r.psnr) for r in rows if r.image == name and r.method == method)
            if pts:
                label = method if method.startswith(CODEC) else f"{method} (matched bpp)"
                ax.plot(*zip(*pts, strict=True), style, color=colour, label=label)
        rate_hull.label_points(ax, rows, name, CODEC)
        shown = [
            r.psnr for r in (*rows, *sweeps) if r.image == name and r.bpp <= top and math.isfinite(r.psnr)
        ]
        main = [r.psnr for r in rows if r.image == name and r.method != "LERC" and math.isfinite(r.psnr)]
        if shown and main:
            ax.set_ylim(min(main) - 4.0, max(shown) + 1.0)
        ax.set_xlim(0, top)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("bits per pixel (real file size)")
        ax.set_ylabel("PSNR (dB domain)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _target_rows(rows: list[Row], real: list[str], rates: list[str], method: str, suffix: str) -> list[str]:
    """Lines of the targets table for the codec rows of ``method`` (rate labels get ``suffix``)."""
    lines = []
    for rate in rates:
        codec = {r.image: r for r in rows if r.method == method and r.setting == rate and r.image in real}
        jp2 = {r.image: r for r in rows
               if r.method == "JPEG2000" and r.setting.endswith(f"(vs {rate}{suffix})")}
        gains = [codec[n].psnr - jp2[n].psnr for n in codec if n in jp2]
        if not codec or not gains:
            continue
        enl = [codec[n].enl_ratio for n in codec]
        epi = [codec[n].epi for n in codec]
        met = min(gains) >= 1.0 and all(0.8 <= e <= 1.2 for e in enl) and min(epi) >= 0.85
        misses = []
        if min(gains) < 1.0:
            misses.append(f"PSNR short by up to {1.0 - min(gains):.2f} dB")
        if not all(0.8 <= e <= 1.2 for e in enl):
            misses.append("ENL ratio outside 0.8-1.2")
        if min(epi) < 0.85:
            misses.append(f"EPI below 0.85 by up to {0.85 - min(epi):.3f}")
        lines.append(
            f"| {rate}{suffix} | {len(codec)} | {np.mean([codec[n].bpp for n in codec]):.3f} | "
            f"{np.mean(gains):+.2f} | "
            f"{sum(g >= 1.0 for g in gains)}/{len(gains)} | {min(enl):.2f}-{max(enl):.2f} | "
            f"{min(epi):.3f}-{max(epi):.3f} | {'yes' if met else 'no: ' + '; '.join(misses)} |"
        )
    return lines


def _intro_lines(rates: list[str], command: str) -> list[str]:
    """Heading, command, machine and method description, and the head of the main table."""
    import onnxruntime
    import rasterio

    lines = [
        SECTION,
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} cores (shared), {platform.system()} {platform.release()}; Python "
        f"{platform.python_version()}, onnxruntime {onnxruntime.__version__} (CPU), rasterio "
        f"{rasterio.__version__} (GDAL {rasterio.__gdal_version__}). "
        f"Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Models: {', '.join(f'`sarcodec-{r}`' for r in rates)} from `models/`. Bits per pixel = 8 x real "
        "file bytes / (width x height) for every method (the codec's file includes header, CRS, nodata "
        "mask and checksum; JPEG2000 and LERC files are written without a mask). JPEG2000: JP2OpenJPEG on "
        "the dB image scaled to UInt16 over the reference's valid dB range, `QUALITY` bisected to the "
        "codec's bpp; LERC: GTiff `COMPRESS=LERC` on float32 dB, `MAX_Z_ERROR` bisected to the codec's "
        "bpp. PSNR and SSIM in the dB domain, peak = dB range of the reference's valid pixels; ENL ratio = "
        "ENL(reconstruction) / ENL(original) on the 10 % most homogeneous 16 x 16 blocks (coefficient of "
        "variation, linear intensity); EPI = correlation of Sobel gradient magnitudes. Throughput "
        "includes file I/O "
        "(Mpix/s of the image).",
        "",
        "| Image | Method | Setting | bpp | PSNR (dB) | SSIM | ENL ratio | EPI | Enc Mpix/s | Dec Mpix/s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    return lines


def _target_lines(rows: list[Row], images: list[BenchImage], rates: list[str], plot_path: Path,
                  markdown: Path) -> list[str]:
    """The plot and the per-rate-point targets table."""
    lines: list[str] = []
    lines += [
        "",
        f"![rate-distortion]({os.path.relpath(plot_path, markdown.parent)})",
        "",
        "Targets per rate point on the real images (PSNR >= JPEG2000 + 1 dB at matched bpp, ENL ratio "
        "0.8-1.2, EPI >= 0.85):",
        "",
        "| Rate | Real images | Mean bpp | Mean PSNR gain vs JPEG2000 (dB) | Images with gain >= 1 dB | "
        "ENL ratio range | EPI range | Met |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    real = [im.name for im in images if not im.name.startswith("synthetic")]
    for method, suffix in ((CODEC, ""), (CODEC_RDO, RDO_SUFFIX)):
        lines += _target_rows(rows, real, rates, method, suffix)
    return lines


def _seam_lines(seams: dict[str, float], det: dict[str, bool], tile: int, overlap: int) -> list[str]:
    """Seam ratios and the determinism line."""
    lines: list[str] = []
    lines += [
        "",
        f"Seams (codec tiles {tile} px with {overlap} px overlap for encoding and decoding, i.e. "
        f"{TILE_FACTOR} x the model's training tile; mean abs dB error in a 4-px band along the tile core "
        "boundaries / elsewhere; target <= 1.05):",
        "",
        "| Image / rate | Seam ratio |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.3f} |" for k, v in seams.items()]
    lines += [
        "",
        "Determinism (decoded pixels, SHA-256): "
        + ", ".join(f"{k}: {'bit-identical' if v else 'DIFFERENT'}" for k, v in det.items())
        + ".",
    ]
    return lines


def _memory_lines(memory: dict[str, dict[str, float]]) -> list[str]:
    """Peak memory table (empty without measurements)."""
    lines: list[str] = []
    if memory:
        lines += [
            "",
            "Memory (peak RSS, VmHWM, of a fresh process that encodes and decodes a synthetic scene; "
            "interpreter and libraries included; latents are entropy-coded and decoded in strips, so a "
            "taller scene should cost no more, a wider one more per strip row):",
            "",
            "| Scene (px) | Peak RSS (MB) | Encode + decode (s) |",
            "|---|---:|---:|",
        ]
        lines += [f"| {k} | {v['peak_rss_mb']:.0f} | {v['seconds']:.1f} |" for k, v in memory.items()]
    return lines


def _speed_lines(speed: dict[str, Any] | None) -> list[str]:
    """ONNX Runtime vs PyTorch table (empty without measurements)."""
    lines: list[str] = []
    if speed:
        lines += [
            "",
            f"ONNX Runtime vs PyTorch eager, same network (variant {speed['architecture']}, widths "
            f"{speed['widths']}, {speed['latent']} latent channels, one set of weights exported to ONNX), "
            f"batch {speed['batch']} x {speed['tile']}^2 tiles, CPU, {speed['torch_threads']} torch threads, "
            "best of 3:",
            "",
            "| Network | PyTorch eager (Mpix/s) | ONNX Runtime (Mpix/s) | Speed-up |",
            "|---|---:|---:|---:|",
        ]
        for part in ("encoder", "decoder"):
            t, o = speed[part]["torch_mpix_s"], speed[part]["onnxruntime_mpix_s"]
            lines.append(f"| {part} | {t:.2f} | {o:.2f} | {o / t:.2f}x |")
    return lines


def markdown_section(
    rows: list[Row],
    images: list[BenchImage],
    rates: list[str],
    speed: dict[str, Any] | None,
    seams: dict[str, float],
    det: dict[str, bool],
    memory: dict[str, dict[str, float]],
    command: str,
    plot_path: Path,
    markdown: Path,
) -> str:
    from engine.runtime import read_metadata

    tile, overlap = default_tiling(read_metadata(bundled_codec(rates[0])[1]), None, None)

    lines = _intro_lines(rates, command)
    for r in rows:
        lines.append(
            f"| {r.image} | {r.method} | {r.setting} | {r.bpp:.3f} | {_f(r.psnr)} | {_f(r.ssim, 3)} | "
            f"{_f(r.enl_ratio)} | {_f(r.epi, 3)} | {_f(r.enc_mpix_s)} | {_f(r.dec_mpix_s)} |"
        )
    lines += _target_lines(rows, images, rates, plot_path, markdown)
    lines += rate_hull.hull_lines(rows, CODEC, [im.name for im in images], rates)
    lines += _seam_lines(seams, det, tile, overlap)
    lines += _memory_lines(memory)
    lines += _speed_lines(speed)
    lines += [
        "",
        "Images: "
        + "; ".join(f"{im.name}: {im.ref_db.shape[1]} x {im.ref_db.shape[0]} px, {im.note}" for im in images)
        + ".",
    ]
    return "\n".join(lines) + "\n"


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
    print(section)
    if args.markdown:
        replace_section(args.markdown, section, keep=NOTES_MARKER)
    if bright:
        _write_bright(bright, command, args.markdown)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1, default=float))
    return 0


def _machine() -> str:
    import onnxruntime

    return (f"{os.cpu_count()} cores (shared), {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, onnxruntime {onnxruntime.__version__} (CPU). "
            f"Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.")


def _write_bright(rows: list[compression_bright.BrightRow], command: str, markdown: Path | None) -> None:
    section = compression_bright.markdown_section(rows, command, _machine())
    print(section)
    if markdown:
        replace_section(markdown, section)


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
