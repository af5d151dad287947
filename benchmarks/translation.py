"""SAR-to-optical translation benchmark (``make bench-translation``) -> docs/BENCHMARKS.md + an example PNG.

Scores (PSNR, SSIM, structure score, colour error) of the translation model(s) on held-out
3MOS pairs and synthetic pairs (:mod:`training.translation.evaluate`), against the two trivial
renderings (grey stretch of the SAR as RGB; the mean colour of the training optical images);
tiles per second of the engine on CPU; and a PNG of examples (SAR, translation, optical).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import machine_line, publish, section_head

logger = logging.getLogger(__name__)

SECTION = "## SAR-to-optical translation (make bench-translation)"
NOTES_MARKER = "<!-- translation notes: kept when the table is regenerated -->"
SET_LABELS = {
    "3mos_sentinel1": "3MOS held-out, Sentinel-1 (4 pairs)",
    "3mos_gaofen3": "3MOS held-out, Gaofen-3 (1 pair)",
    "synthetic": "synthetic held-out (seeds 900000+)",
}


def tiles_per_second(model_path: str, size: int = 1024, repeats: int = 2) -> dict[str, float]:
    """Engine throughput (``translate_array``) on a ``size`` px synthetic SAR scene, best of ``repeats``."""
    from engine.runtime import OnnxModel
    from engine.synthetic import generate_training_pair
    from engine.tiling import plan_tiles
    from engine.translation import translate_array

    net = OnnxModel(model_path, providers=["CPUExecutionProvider"])
    sar_db = generate_training_pair(size, seed=123, max_shift=0.0).sar_db
    n_tiles = len(plan_tiles(size, size, net.metadata.tile_size, net.metadata.overlap))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        translate_array(sar_db, net, input_kind="db")
        best = min(best, time.perf_counter() - t0)
    return {
        "size": size,
        "tiles": n_tiles,
        "seconds": best,
        "tiles_per_second": n_tiles / best,
        "tile_size": net.metadata.tile_size,
        "overlap": net.metadata.overlap,
    }


def coregistration_aid(
    model_path: str, real_root: str, synthetic: int = 4, shifts: int = 4, radius: int = 12, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Does translating the SAR first help matching it to the optical image? (issue 17, METHOD=translate)

    On each held-out pair, the moving image is shifted by a known sub-pixel ``(sx, sy)`` (|s| <= 6 px,
    cubic spline) and matched to the optical luminance with the classical method's features and
    search (``engine.registration.shift``): moving = the optical luminance itself (control), the SAR dB,
    or the luminance of the translated SAR. Returns the median and the share under 1 px of the error.
    """
    from scipy import ndimage

    from engine.registration.correlation import match
    from engine.registration.features import get_extractor
    from engine.translation import translate_array
    from training.translation.data import HELD_OUT, load_3mos, split_held_out, synthetic_pairs
    from training.translation.metrics import LUMA

    extractor = get_extractor("classical")

    def lum(rgb: np.ndarray) -> np.ndarray:
        return np.tensordot(LUMA, rgb, axes=1).astype(np.float32)

    def error(moving: np.ndarray, reference: np.ndarray, sx: float, sy: float) -> float:
        moved = ndimage.shift(moving, (sy, sx), order=3, mode="nearest")
        fa = extractor(np.nan_to_num(moved), np.isfinite(moved))
        fb = extractor(np.nan_to_num(reference), np.isfinite(reference))
        m = match(fa[:, radius:-radius, radius:-radius], fb, radius)
        return float(np.hypot(m.dx + sx, m.dy + sy))  # the match is the shift that undoes (sx, sy)

    pairs = (
        split_held_out(load_3mos(real_root), HELD_OUT)[1] if Path(real_root, "opt_sar_3mos").is_dir() else []
    )
    pairs += synthetic_pairs(synthetic, 256, 900000)
    rng = np.random.default_rng(seed)
    errors: dict[str, list[float]] = {"optical (control)": [], "SAR dB": [], "translated SAR": []}
    for pair in pairs:
        ref = lum(pair.rgb)
        translated = lum(translate_array(pair.sar_db, model_path, input_kind="db"))
        for _ in range(shifts):
            sx, sy = (float(v) for v in rng.uniform(-6, 6, 2))
            for name, moving in zip(errors, (ref, pair.sar_db, translated), strict=True):
                errors[name].append(error(moving, ref, sx, sy))
    return {
        name: {"median_px": float(np.median(e)), "under_1px": float(np.mean(np.array(e) < 1.0)), "n": len(e)}
        for name, e in errors.items()
    }


def example_png(model_path: str, report: dict[str, Any], out: Path, real_root: str) -> Path:
    """Rows of (SAR grey stretch, translation, optical) for the held-out pairs, written to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.translation import translate_array
    from training.translation.data import load_3mos, synthetic_pairs
    from training.translation.evaluate import EvalConfig, grey_stretch

    cfg = EvalConfig(**report["config"])
    names = [n for k in ("3mos_sentinel1", "3mos_gaofen3") for n in report["pairs"].get(k, [])]
    pairs = [p for p in load_3mos(real_root) if p.name in names] if names else []
    pairs += synthetic_pairs(2, cfg.synthetic_size, cfg.synthetic_first_seed)
    fig, axes = plt.subplots(len(pairs), 3, figsize=(7.5, 2.5 * len(pairs)))
    for row, pair in zip(np.atleast_2d(axes), pairs, strict=True):
        images = (
            grey_stretch(pair.sar_db),
            translate_array(pair.sar_db, model_path, input_kind="db"),
            pair.rgb,
        )
        for ax, img, title in zip(row, images, ("SAR (grey stretch)", "translation", "optical"), strict=True):
            ax.imshow(np.clip(np.nan_to_num(img).transpose(1, 2, 0), 0, 1))
            ax.set_title(f"{pair.name}: {title}" if title == "SAR (grey stretch)" else title, fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def _table(summary: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    lines = [
        "| Set | Method | PSNR (dB) | SSIM | Structure | Colour error | Colour distribution |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for set_name, methods in summary.items():
        for method, s in methods.items():
            lines.append(
                f"| {SET_LABELS.get(set_name, set_name)} | {method} | {s['psnr']:.2f} | {s['ssim']:.3f} | "
                f"{s['structure']:.3f} | {s['colour_error']:.3f} | "
                f"{s.get('colour_distribution', float('nan')):.3f} |"
            )
    return lines


TARGETS = (
    ("structure", "structure", +1, ("grey-stretch", "mean-colour")),
    ("colour_error", "colour error", -1, ("mean-colour", "grey-stretch")),
    ("colour_distribution", "colour distribution distance", -1, ("mean-colour", "grey-stretch")),
)
"""(score, label, +1 if higher is better else -1, the trivial renderings it must beat)."""
BASELINE_LABELS = {"grey-stretch": "grey stretch", "mean-colour": "flat mean colour"}


def _verdict(summary: dict[str, dict[str, dict[str, float]]], model_id: str) -> list[str]:
    s = summary.get("3mos_sentinel1")
    if not s or model_id not in s:
        return ["Targets not evaluated: the 3MOS pairs are absent."]
    m = s[model_id]
    lines = ["Targets on held-out Sentinel-1 pairs (the model's own colours):"]
    for key, label, sign, baselines in TARGETS:
        if key not in m:
            continue
        parts = []
        for base in baselines:
            diff = m[key] - s[base][key]
            ok = sign * diff > 0
            parts.append(f"vs {BASELINE_LABELS[base]} {s[base][key]:.3f} ({'met' if ok else 'missed'}, "
                         f"difference {diff:+.3f})")
        lines.append(f"- {label} {m[key]:.3f}: " + "; ".join(parts) + ".")
    return lines


def markdown_section(
    report: dict[str, Any],
    speed: dict[str, float],
    model_id: str,
    png: Path | None,
    command: str,
    note: str = "",
    aid: dict[str, dict[str, Any]] | None = None,
) -> str:

    lines = [
        *section_head(SECTION, command, machine_line(note=note)),
        f"Model `{model_id}` (card: `models/{model_id}.md`) through `engine.translation.translate_array` "
        "(tiles, overlap, blending) on SAR in dB. Held-out 3MOS pairs: "
        + ", ".join(n for k in ("3mos_sentinel1", "3mos_gaofen3") for n in report["pairs"].get(k, []))
        + ". Scores are means over pairs; images in [0, 1]. Structure = SSIM of the z-scored luminance "
        "(ignores brightness and colour); colour error = mean absolute RGB error; colour distribution = "
        "mean over R, G, B of the Wasserstein distance between the rendering's and the optical image's "
        "pixel values (the right colours in the right amounts, wherever they are). FID is not reported "
        "(no Inception-v3 weights are shipped or downloaded). Baselines: grey-stretch = the SAR dB "
        "stretched between its 2nd and 98th percentiles as R = G = B; mean-colour = every pixel the mean "
        "RGB of the training optical images of that kind of data.",
        "",
        *_table(report["summary"]),
        "",
        *_verdict(report["summary"], model_id),
        "",
        f"Speed: {speed['tiles_per_second']:.2f} tiles/s ({speed['tile_size']} px tiles, overlap "
        f"{speed['overlap']} px; a {speed['size']} x {speed['size']} px scene = {speed['tiles']} tiles in "
        f"{speed['seconds']:.1f} s, CPUExecutionProvider, default threads).",
    ]
    if aid:
        lines += [
            "",
            "Co-registration aid (translate the SAR, then match optical to optical): held-out 3MOS "
            "and synthetic pairs, known sub-pixel shifts up to 6 px, classical features and search "
            "of `engine.registration.shift`; error = distance to the true shift.",
            "",
            "| Moving image | Median error (px) | Share under 1 px | Matches |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| {k} | {v['median_px']:.2f} | {v['under_1px']:.2f} | {v['n']} |" for k, v in aid.items()]
    if png is not None:
        lines += [
            "",
            f"Examples (held-out pairs; SAR, translation, optical): ![translation examples]({png.name})",
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from training.translation.data import DEFAULT_REAL_ROOT
    from training.translation.evaluate import EvalConfig, evaluate

    p = argparse.ArgumentParser(prog="python -m benchmarks.translation", description=__doc__)
    p.add_argument("--model", default=None, help="translation .onnx (default: the shipped model)")
    p.add_argument("--data", default=DEFAULT_REAL_ROOT, help="folder holding opt_sar_3mos/")
    p.add_argument("--synthetic", type=int, default=8)
    p.add_argument("--markdown", default=None, help="write the section into this file (docs/BENCHMARKS.md)")
    p.add_argument("--png", default="docs/translation_examples.png")
    p.add_argument("--no-coreg-aid", action="store_true", help="skip the co-registration aid experiment")
    p.add_argument("--note", default="", help="remark added to the machine line (e.g. shared load)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from engine.runtime import read_metadata
    from engine.translation import default_model_path

    model = args.model or str(default_model_path())
    model_id = read_metadata(model).model_id
    report = evaluate([model], EvalConfig(real_root=args.data, synthetic=args.synthetic))
    speed = tiles_per_second(model)
    png = example_png(model, report, Path(args.png), args.data) if args.png else None
    aid = None if args.no_coreg_aid else coregistration_aid(model, args.data)
    command = "python -m benchmarks.translation " + shlex.join(argv if argv is not None else sys.argv[1:])
    section = markdown_section(report, speed, model_id, png, command.strip(), args.note, aid)
    publish(section, Path(args.markdown) if args.markdown else None, keep=NOTES_MARKER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
