"""Codec speed against GDAL's JPEG2000 (OpenJPEG) on the same machine, in the same run, at matched bpp.

    python -m benchmarks.codec_speed --data ../shared/data/real --sizes 2048 16000x12000 \
        --markdown docs/BENCHMARKS.md

For each scene size, a scene is tiled (mirrored, strip by strip) from the real GF-3 HH amplitude image
of ``os_sift/`` (without the data folder: one-look speckle, uint16 amplitude). Each
step runs in a fresh process that reports its wall and CPU seconds and its peak RSS (VmHWM): the codec
compresses the GeoTIFF into a ``.sarz`` file and decompresses it into a float32 GeoTIFF (the engine's
output profile); GDAL writes the same GeoTIFF as JPEG2000 (JP2OpenJPEG, UInt16 amplitude as read,
``QUALITY`` bisected on the smallest scene to the codec's file bpp) and decodes it into a GeoTIFF of
the same output profile, and also into memory. Steps alternate (codec, JPEG2000, codec, ...) and each
is repeated ``--repeats`` times on scenes up to 8 Mpix (once above); the medians are reported with the
load average. ``--profile`` adds one profiled run of the codec on the scenes up to 8 Mpix (CPU seconds
per stage, cProfile).

The engine picks its execution provider (``SAR_TOOLBOX_PROVIDERS`` forces one), so the same command
compares GPU and CPU (``scripts/gpu_check.sh``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import machine_line, publish, section_head

logger = logging.getLogger("benchmarks.codec_speed")

SECTION = "## Codec speed against JPEG2000 (make bench-codec-speed)"
NOTES_MARKER = "<!-- codec speed notes: kept when the table is regenerated -->"
REPO_ROOT = Path(__file__).resolve().parents[1]
GF3_GLOB = "GF3_*HH*.tif*"
STRIP = 512
"""Rows per strip when writing a scene (flat memory)."""
REPEAT_MAX_PIXELS = 8_000_000
"""Scenes up to this many pixels are timed ``--repeats`` times (medians); larger ones once."""
TARGETS = {"encode": 5.0, "decode": 3.0}
"""The issue's targets: codec wall time at most this many times OpenJPEG's."""
MEMORY_TARGET_MB = 1024.0


# ------------------------------------------------------------------ scenes
def write_tiled_scene(path: Path, width: int, height: int, source: Path | None) -> str:
    """A ``width x height`` GeoTIFF of uint16 amplitude tiled from ``source`` (a real SAR image, mirrored
    at every repeat so that the content stays continuous; zeros are nodata), written strip by strip;
    without a source, one-look speckle on a ramp (seeded). Returns the input kind (``amplitude``)."""
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.windows import Window

    if source is not None:
        with rasterio.open(source) as src:
            image = src.read(1)
            crs, transform = src.crs, src.transform
    else:
        rng = np.random.default_rng(0)
        ramp = np.linspace(0.02, 0.2, 1024)[None, :]
        image = np.clip(3000.0 * np.sqrt(rng.standard_exponential((1024, 1024)) * ramp), 1, 65535)
        image = image.astype(np.uint16)
        crs, transform = CRS.from_epsg(32631), Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)
    h, w = image.shape
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": image.dtype.name,
               "crs": crs, "transform": transform, "nodata": 0, "tiled": True, "blockxsize": 256,
               "blockysize": 256, "BIGTIFF": "IF_SAFER"}
    cols = _mirrored_indices(width, w)
    with rasterio.Env(GDAL_CACHEMAX=64 * 1024 * 1024), rasterio.open(path, "w", **profile) as dst:
        for top in range(0, height, STRIP):
            rows = _mirrored_indices(min(STRIP, height - top), h, start=top)
            dst.write(image[rows][:, cols], 1, window=Window(0, top, width, len(rows)))
    return "amplitude"


def _mirrored_indices(n: int, size: int, start: int = 0) -> np.ndarray:
    """Indices ``start .. start + n - 1`` folded into ``0 .. size - 1`` (repeats mirrored)."""
    period = np.mod(np.arange(start, start + n), 2 * size)
    return np.where(period >= size, 2 * size - 1 - period, period)


def parse_size(text: str) -> tuple[int, int]:
    """``2048`` or ``16000x12000`` (width x height)."""
    parts = text.lower().split("x")
    if len(parts) == 1:
        return int(parts[0]), int(parts[0])
    if len(parts) == 2:
        return int(parts[0]), int(parts[1])
    raise argparse.ArgumentTypeError(f"scene size {text!r}: use N or WIDTHxHEIGHT")


# ------------------------------------------------------------------ one step in a fresh process
def _peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text().splitlines()
    return next(float(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024.0


def _step(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run one step (in the child process) and return what it measured."""
    wall, cpu = time.perf_counter(), time.process_time()
    extra: dict[str, Any] = {}
    if op == "encode":
        from engine.codec.encode import compress_raster

        result = compress_raster(args["scene"], args["sarz"], rate=args["rate"], input_kind=args["kind"])
        extra = {"bpp": result.bpp, "bytes": result.bytes}
    elif op == "decode":
        from engine.codec.decode import decompress_file

        decompress_file(args["sarz"], args["out"])
    elif op == "jp2-encode":
        _gdal_translate(args["scene"], args["jp2"], "JP2OpenJPEG",
                        [f"QUALITY={args['quality']:.4f}", "REVERSIBLE=NO", "GMLJP2=NO"])
        extra = {"bytes": Path(args["jp2"]).stat().st_size}
    elif op == "jp2-decode":
        from engine.raster_io import default_profile

        options = default_profile(1, 1, 1, "uint16", None, None, 0)
        creation = [f"{k.upper()}={'YES' if v is True else v}" for k, v in options.items()
                    if k.lower() in ("compress", "predictor", "blockxsize", "blockysize", "tiled", "zlevel",
                                     "bigtiff")]
        _gdal_translate(args["jp2"], args["out"], "GTiff", creation)
    elif op == "jp2-read":
        import rasterio

        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(args["jp2"]) as src:
            src.read(1)
    else:
        raise ValueError(f"unknown step {op!r}")
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
            "peak_rss_mb": _peak_rss_mb(), **extra}


def _gdal_translate(src: str, dst: str, driver: str, creation: list[str]) -> None:
    from osgeo import gdal

    from engine.raster_io import osgeo_thread_options

    gdal.UseExceptions()
    # scoped: match_quality runs this in the caller's process (a test's too), which must not inherit them
    with osgeo_thread_options(gdal, GDAL_NUM_THREADS="ALL_CPUS", GDAL_PAM_ENABLED="NO"):
        if gdal.Translate(dst, src, format=driver, creationOptions=creation) is None:
            raise RuntimeError(f"gdal.Translate {src} -> {dst} failed")


def _preload() -> None:
    """Import what the steps use before any timer starts (a QGIS session has them loaded already)."""
    import rasterio  # noqa: F401
    from osgeo import gdal  # noqa: F401

    import engine.codec.decode
    import engine.codec.encode  # noqa: F401
    from engine.runtime import available_providers

    available_providers()  # imports onnxruntime


def _profiled_step(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """The step under cProfile (CPU time of all threads): seconds per stage."""
    import cProfile
    import pstats

    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    figures = _step(op, args)
    profiler.disable()
    figures["stages"] = stage_seconds(pstats.Stats(profiler), op)
    return figures


ENCODE_STAGES: tuple[tuple[str, str, str, str | None], ...] = (
    # (label, module path suffix, function, calling function or None)
    ("model loading and planning", "codec/encode.py", "_plan_encoding", None),
    ("input checks and scans (kind, dB shift, bright pixels)", "input_kind.py", "check_input_kind", None),
    ("", "codec/source.py", "auto_shift_db", None),
    ("", "codec/bright_pixels.py", "scan_range", None),
    ("reading and preprocessing tiles", "codec/source.py", "read_tile", "_encode_latents"),
    ("", "codec/source.py", "model_input", "_encode_latents"),
    ("encoder network (ONNX Runtime)", "engine/runtime.py", "run", "_encode_latents"),
    ("entropy coding", "codec/encode.py", "_emit", None),
    ("restoration filter (decoding pass and fit)", "codec/encode.py", "_with_post_filter", None),
    ("file writing", "codec/encode.py", "_write_file", None),
)
DECODE_STAGES: tuple[tuple[str, str, str, str | None], ...] = (
    ("file reading, model loading and planning", "codec/decode.py", "_plan_decoding", None),
    ("entropy decoding", "codec/decode.py", "_decode_strip", None),
    ("decoder network (ONNX Runtime)", "engine/runtime.py", "run_all", None),
    ("blending", "engine/tiling.py", "add", "decoded_blocks"),
    ("", "engine/tiling.py", "finished", "decoded_blocks"),
    ("restoration filter", "codec/postfilter.py", "apply", None),
    ("conversion to dB and GeoTIFF writing", "codec/decode.py", "_to_output", None),
    ("", "engine/raster_io.py", "write_rows", None),
)


def stage_seconds(stats: Any, op: str) -> dict[str, float]:
    """Cumulative seconds of each stage of ``op`` (``encode``/``decode``) from profiler ``stats``; a
    label-less row adds to the stage above it; ``other`` is the rest of the step."""
    stages = ENCODE_STAGES if op == "encode" else DECODE_STAGES
    top = "compress_raster" if op == "encode" else "decompress_file"
    table: dict[tuple[str, int, str], Any] = stats.stats
    total = sum(v[3] for k, v in table.items() if k[2] == top)
    out: dict[str, float] = {}
    label = ""
    for name, module, function, caller in stages:
        label = name or label
        seconds = 0.0
        for (path, _line, func), (_cc, _nc, _tt, cum, callers) in table.items():
            if func != function or not path.endswith(module):
                continue
            if caller is None:
                seconds += cum
            else:
                seconds += sum(v[3] for k, v in callers.items() if k[2] == caller)
        out[label] = out.get(label, 0.0) + seconds
    out["other"] = max(0.0, total - sum(out.values()))
    out["total"] = total
    return {k: round(v, 3) for k, v in out.items()}


def run_step(op: str, args: dict[str, Any], profile: bool = False) -> dict[str, Any]:
    """One step in a fresh Python process (its own peak RSS); raises if it fails."""
    payload = json.dumps({"op": op, "args": args, "profile": profile})
    done = subprocess.run([sys.executable, "-m", "benchmarks.codec_speed", "--child", payload],
                          cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"step {op} failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ------------------------------------------------------------------ matching and measuring
def match_quality(scene: Path, target_bpp: float, work: Path, pixels: int, iterations: int = 10) -> float:
    """The JPEG2000 ``QUALITY`` whose file on ``scene`` comes closest to ``target_bpp`` (bisection)."""
    import math

    low, high = math.log(0.5), math.log(60.0)
    best = (float("inf"), 10.0)
    for _ in range(iterations):
        quality = math.exp(0.5 * (low + high))
        jp2 = work / "match.jp2"
        _gdal_translate(str(scene), str(jp2), "JP2OpenJPEG",
                        [f"QUALITY={quality:.4f}", "REVERSIBLE=NO", "GMLJP2=NO"])
        bpp = 8.0 * jp2.stat().st_size / pixels
        if abs(bpp - target_bpp) < best[0]:
            best = (abs(bpp - target_bpp), quality)
        if abs(bpp - target_bpp) <= 0.005 * target_bpp:
            break
        if bpp > target_bpp:
            high = math.log(quality)
        else:
            low = math.log(quality)
    return best[1]


def _provider(rate: str) -> str:
    """The execution provider the engine gives the rate's encoder (``SAR_TOOLBOX_PROVIDERS`` forces one)."""
    from engine.codec.models import bundled_codec
    from engine.runtime import OnnxModel

    return str(OnnxModel(bundled_codec(rate)[0]).provider)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def measure_scene(width: int, height: int, rate: str, source: Path | None, work: Path, repeats: int,
                  quality: float | None, profile: bool) -> dict[str, Any]:
    """Codec and JPEG2000 steps side by side on one scene; medians of the repeats."""
    scene = work / f"scene_{width}x{height}.tif"
    kind = write_tiled_scene(scene, width, height, source)
    pixels = width * height
    files: dict[str, Any] = {"scene": str(scene), "sarz": str(work / "s.sarz"), "out": str(work / "d.tif"),
             "jp2": str(work / "s.jp2"), "rate": rate, "kind": kind}
    load = [os.getloadavg()[0]]
    first = run_step("encode", files)
    if quality is None:
        quality = match_quality(scene, first["bpp"], work, pixels)
    files["quality"] = quality
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in
                                              ("encode", "jp2-encode", "decode", "jp2-decode", "jp2-read")}
    n = repeats if pixels <= REPEAT_MAX_PIXELS else 1
    for i in range(n):
        runs["encode"].append(first if i == 0 else run_step("encode", files))
        for op in ("jp2-encode", "decode", "jp2-decode", "jp2-read"):
            runs[op].append(run_step(op, files))
        logger.info("%d x %d run %d/%d: %s", width, height, i + 1, n,
                    {k: round(v[-1]["seconds"], 2) for k, v in runs.items()})
    load.append(os.getloadavg()[0])
    result: dict[str, Any] = {
        "width": width, "height": height, "rate": rate, "provider": _provider(rate), "input_kind": kind,
        "repeats": n,
        "codec_bpp": round(first["bpp"], 3), "jp2_quality": round(quality, 3),
        "jp2_bpp": round(8.0 * runs["jp2-encode"][0]["bytes"] / pixels, 3),
        "load_average": [round(v, 2) for v in load],
    }
    for op, rs in runs.items():
        key = op.replace("-", "_")
        result[f"{key}_s"] = round(_median(rs, "seconds"), 3)
        result[f"{key}_cpu_s"] = round(_median(rs, "cpu_seconds"), 3)
        result[f"{key}_rss_mb"] = round(max(r["peak_rss_mb"] for r in rs), 1)
    result["encode_mpix_s"] = round(pixels / 1e6 / result["encode_s"], 3)
    result["decode_mpix_s"] = round(pixels / 1e6 / result["decode_s"], 3)
    result["encode_ratio"] = round(result["encode_s"] / result["jp2_encode_s"], 2)
    result["decode_ratio"] = round(result["decode_s"] / result["jp2_decode_s"], 2)
    result["decode_ratio_in_memory"] = round(result["decode_s"] / result["jp2_read_s"], 2)
    if profile and pixels <= REPEAT_MAX_PIXELS:
        result["encode_stages"] = run_step("encode", files, profile=True)["stages"]
        result["decode_stages"] = run_step("decode", files, profile=True)["stages"]
    for path in (scene, work / "s.sarz", work / "d.tif", work / "s.jp2"):
        path.unlink(missing_ok=True)
    return result


# ------------------------------------------------------------------ report
def markdown_section(results: list[dict[str, Any]], command: str, machine: str) -> str:
    """The Markdown section: the side-by-side table, the targets and the stage breakdowns."""
    lines = section_head(SECTION, command, machine)
    lines += [
        "Each step is a fresh process (wall seconds, peak RSS = VmHWM, interpreter and libraries "
        "included), medians of the repeats; the codec's bpp is its real file size, JPEG2000's `QUALITY` was "
        "bisected to it on the smallest scene and kept for the larger ones. Decode = file to float32 "
        "GeoTIFF for the codec (the engine's output profile), file to GeoTIFF (same compression) for "
        "JPEG2000; 'in memory' = JPEG2000 read into an array only.",
        "",
        "| Scene (px) | Rate (provider) | bpp codec / JPEG2000 | encode s codec / JPEG2000 (ratio) | "
        "decode s codec / JPEG2000 (ratio; in memory) | CPU s encode / decode, codec | "
        "CPU s encode / decode, JPEG2000 | peak RSS MB enc / dec, codec | peak RSS MB enc / dec, JPEG2000 | "
        "load avg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['width']} x {r['height']} | {r['rate']} ({r['provider']}) | "
            f"{r['codec_bpp']:.3f} / {r['jp2_bpp']:.3f} | "
            f"{r['encode_s']:.2f} / {r['jp2_encode_s']:.2f} ({r['encode_ratio']:.1f}x) | "
            f"{r['decode_s']:.2f} / {r['jp2_decode_s']:.2f} ({r['decode_ratio']:.1f}x; "
            f"{r['decode_ratio_in_memory']:.1f}x) | {r['encode_cpu_s']:.2f} / {r['decode_cpu_s']:.2f} | "
            f"{r['jp2_encode_cpu_s']:.2f} / {r['jp2_decode_cpu_s']:.2f} | "
            f"{r['encode_rss_mb']:.0f} / {r['decode_rss_mb']:.0f} | "
            f"{r['jp2_encode_rss_mb']:.0f} / {r['jp2_decode_rss_mb']:.0f} | "
            f"{r['load_average'][0]:.1f}-{r['load_average'][1]:.1f} |")
    lines += ["", "Targets (issue 25): encode <= 5 x and decode <= 3 x OpenJPEG wall time, RSS < 1 GB:",
              ""]
    for r in results:
        lines.append(f"- {r['width']} x {r['height']}: " + "; ".join(_verdicts(r)) + ".")
    for r in results:
        for op in ("encode", "decode"):
            stages = r.get(f"{op}_stages")
            if stages:
                lines += ["", f"Where the codec's {op} time goes, {r['width']} x {r['height']} "
                          "(CPU seconds of all threads, one profiled run, cProfile):", "",
                          "| Stage | CPU s | share |", "|---|---:|---:|"]
                total = stages["total"] or 1.0
                lines += [f"| {k} | {v:.2f} | {100 * v / total:.0f} % |" for k, v in stages.items()
                          if k != "total"]
                lines.append(f"| total | {stages['total']:.2f} | 100 % |")
    return "\n".join(lines) + "\n"


def _verdicts(r: dict[str, Any]) -> list[str]:
    out = []
    for op, limit in TARGETS.items():
        ratio = r[f"{op}_ratio"]
        verdict = "met" if ratio <= limit else f"missed by {ratio / limit:.1f}x"
        out.append(f"{op} {ratio:.1f}x (target <= {limit:.0f}x: {verdict})")
    peak = max(r["encode_rss_mb"], r["decode_rss_mb"])
    out.append(f"peak RSS {peak:.0f} MB (target < {MEMORY_TARGET_MB:.0f} MB: "
               f"{'met' if peak < MEMORY_TARGET_MB else 'missed'})")
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.codec_speed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="the real-data folder (os_sift/ GF-3 image); default: synthetic speckle")
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=None,
                        help="scene sizes, N or WIDTHxHEIGHT (default 2048)")
    parser.add_argument("--size", type=int, default=None, help="one square scene (same as --sizes N)")
    parser.add_argument("--rate", default="r2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quality", type=float, default=None,
                        help="JPEG2000 QUALITY (default: bisected to the codec's bpp on the first scene)")
    parser.add_argument("--profile", action="store_true",
                        help="add one profiled codec run per scene (up to 8 Mpix)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print, and optionally save (JSON) and write the Markdown section."""
    args = _parser().parse_args(argv)
    if args.child:
        job = json.loads(args.child)
        _preload()
        step = _profiled_step if job["profile"] else _step
        print(json.dumps(step(job["op"], job["args"])))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sizes = args.sizes or [(args.size, args.size) if args.size else (2048, 2048)]
    source = None
    if args.data is not None:
        found = sorted((args.data / "os_sift").glob(GF3_GLOB))
        source = found[0] if found else None
        if source is None:
            logger.warning("no GF-3 image under %s/os_sift: synthetic speckle scenes instead", args.data)
    results: list[dict[str, Any]] = []
    quality = args.quality
    with tempfile.TemporaryDirectory(prefix="sar-codec-speed-") as tmp:
        for width, height in sorted(sizes, key=lambda s: s[0] * s[1]):
            result = measure_scene(width, height, args.rate, source, Path(tmp), args.repeats, quality,
                                   args.profile)
            quality = result["jp2_quality"]
            results.append(result)
            logger.info("%s", json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    command = "python -m benchmarks.codec_speed " + " ".join(argv if argv is not None else sys.argv[1:])
    from osgeo import gdal

    section = markdown_section(results, command, machine_line(f", GDAL {gdal.__version__} (OpenJPEG)"))
    publish(section, args.markdown, keep=NOTES_MARKER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
