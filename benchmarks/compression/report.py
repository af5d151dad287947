"""The Markdown section and the rate-distortion plot of the compression benchmark."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import rate_hull
from benchmarks.common import machine_line, rasterio_versions, section_head
from engine.codec.layout import TILE_FACTOR, default_tiling
from engine.codec.models import bundled_codec

from .rows import CODEC, CODEC_RDO, RDO_SUFFIX, SECTION, BenchImage, Row


# ------------------------------------------------------------------ output
def _f(value: float, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


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
    lines = [
        *section_head(SECTION, command, machine_line(rasterio_versions())),
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
