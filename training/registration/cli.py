"""Command line: ``python -m training.registration train|export|evaluate ...``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


def _parser() -> argparse.ArgumentParser:
    from .data import DataConfig
    from .evaluate import EvalConfig
    from .losses import LossConfig
    from .models import ARCHITECTURES, OUT_STRIDES, ModelConfig
    from .train import TrainConfig

    t, m, lc, d, e = TrainConfig(), ModelConfig(), LossConfig(), DataConfig(), EvalConfig()
    p = argparse.ArgumentParser(prog="python -m training.registration", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--log-file", default=None, help="also write the log here")
    sub = p.add_subparsers(dest="command", required=True)

    tr = sub.add_parser(
        "train", help="train (or resume) the encoder (phase 1) or the shift regressor (phase 2)"
    )
    tr.add_argument("--run-dir", default=t.run_dir, help="checkpoint + TensorBoard folder (runs/...)")
    tr.add_argument("--phase", type=int, choices=(1, 2), default=t.phase)
    tr.add_argument("--steps", type=int, default=t.steps)
    tr.add_argument("--batch", type=int, default=t.batch)
    tr.add_argument(
        "--crop", type=int, default=t.crop, help="training crop side (256 on a GPU, 96-128 on CPU)"
    )
    tr.add_argument("--lr", type=float, default=t.lr)
    tr.add_argument("--lr-final", type=float, default=t.lr_final)
    tr.add_argument("--seed", type=int, default=t.seed)
    tr.add_argument("--threads", type=int, default=t.threads, help="torch CPU threads")
    tr.add_argument("--log-every", type=int, default=t.log_every)
    tr.add_argument("--ckpt-every", type=int, default=t.ckpt_every)
    tr.add_argument("--max-minutes", type=float, default=t.max_minutes, help="wall-clock budget (0: none)")
    tr.add_argument("--shift-radius", type=int, default=t.shift_radius, help="phase 2: largest |dx|, |dy|")
    tr.add_argument(
        "--init-from", default=None, help="start from this checkpoint's weights (phase 2: phase-1 run)"
    )
    tr.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in run-dir")
    tr.add_argument("--no-progress", action="store_true")
    tr.add_argument("--widths", type=int, nargs=2, default=list(m.widths))
    tr.add_argument("--blocks", type=int, default=m.blocks)
    tr.add_argument("--embed-dim", type=int, default=m.embed_dim)
    tr.add_argument("--out-stride", type=int, choices=OUT_STRIDES, default=m.out_stride)
    tr.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        default=m.arch,
        help="resnet: learned from the pixels; guided: classical oriented-gradient channels + a learned "
        "residual (zero at the start), trained on the engine's NCC search (--nce-radius, --temperature)",
    )
    tr.add_argument("--margin", type=float, default=lc.margin)
    tr.add_argument("--w-contrastive", type=float, default=lc.w_contrastive)
    tr.add_argument("--w-nce", type=float, default=lc.w_nce, help="weight of the shift-softmax term (0: off)")
    tr.add_argument("--nce-radius", type=int, default=lc.nce_radius)
    tr.add_argument("--temperature", type=float, default=lc.temperature)
    tr.add_argument(
        "--match-sigma",
        type=float,
        default=lc.match_sigma,
        help="guided: smooth the embedding by this Gaussian (px) before the search, as the engine will",
    )
    tr.add_argument(
        "--w-subpixel",
        type=float,
        default=lc.w_subpixel,
        help="guided: weight of the sub-pixel term (parabola peak vs the true shift; needs --subpixel)",
    )
    tr.add_argument("--real-root", default=d.real_root, help="folder holding opt_sar_3mos/")
    tr.add_argument("--no-real", action="store_true", help="synthetic pairs only")
    tr.add_argument(
        "--held-out", nargs="*", default=list(d.held_out), help="opt_sar_3mos pairs never trained on"
    )
    tr.add_argument("--p-real", type=float, default=d.p_real, help="share of samples from real pairs")
    tr.add_argument("--synthetic-pairs", type=int, default=d.synthetic_pairs)
    tr.add_argument("--synthetic-size", type=int, default=d.synthetic_size)
    tr.add_argument("--patch", type=int, default=d.patch, help="large patch around a correspondence")
    tr.add_argument("--neg-min", type=int, default=d.neg_min)
    tr.add_argument("--neg-max", type=int, default=d.neg_max)
    tr.add_argument(
        "--subpixel",
        type=float,
        default=d.subpixel,
        help="misalign positive crops by a random sub-pixel shift up to this many px (0: aligned)",
    )

    ex = sub.add_parser("export", help="export the encoder (EMBED) [and regressor] to ONNX, check parity")
    ex.add_argument("checkpoint", help="checkpoint.pt or its run folder")
    ex.add_argument("--out-dir", default="models")
    ex.add_argument("--model-id", required=True, help="e.g. regembed-s1-d16")
    ex.add_argument("--tile-size", type=int, default=256)
    ex.add_argument("--overlap", type=int, default=None, help="default: half the receptive field")
    ex.add_argument("--regressor", action="store_true", help="also export the phase-2 shift regressor")
    ex.add_argument("--no-parity", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    ex.add_argument(
        "--match-sigma",
        type=float,
        default=None,
        help="Gaussian sigma (px) the engine applies to the embedding before the search (metadata; "
        "default: the one the model was trained with, usually 0)",
    )

    ev = sub.add_parser("evaluate", help="shift errors on held-out real and synthetic pairs")
    ev.add_argument(
        "methods", nargs="+", help="checkpoint | model.onnx | engine-deep:model.onnx | classical | gradmag"
    )
    ev.add_argument("--json", dest="json_out", default=None, help="write the full report here")
    ev.add_argument("--real-root", default=e.real_root)
    ev.add_argument("--held-out", nargs="*", default=list(e.held_out))
    ev.add_argument("--shifts-per-pair", type=int, default=e.shifts_per_pair)
    ev.add_argument("--max-shift", type=float, default=e.max_shift, help="largest applied shift (px)")
    ev.add_argument("--search", type=int, default=e.search, help="search radius (px) >= max-shift")
    ev.add_argument("--window", type=int, default=e.window, help="local template side (0: global)")
    ev.add_argument("--synthetic", type=int, default=e.synthetic, help="held-out synthetic pairs")
    ev.add_argument("--synthetic-size", type=int, default=e.synthetic_size)
    ev.add_argument(
        "--synthetic-first-seed",
        type=int,
        default=e.synthetic_first_seed,
        help="first generator seed of the synthetic pairs (another range gives validation pairs)",
    )
    ev.add_argument("--seed", type=int, default=e.seed)
    return p


def _train(args: argparse.Namespace) -> int:
    from .data import DataConfig
    from .losses import LossConfig
    from .models import ModelConfig
    from .train import TrainConfig, train

    cfg = TrainConfig(
        run_dir=args.run_dir,
        phase=args.phase,
        steps=args.steps,
        batch=args.batch,
        crop=args.crop,
        lr=args.lr,
        lr_final=args.lr_final,
        seed=args.seed,
        threads=args.threads,
        log_every=args.log_every,
        ckpt_every=args.ckpt_every,
        max_minutes=args.max_minutes,
        shift_radius=args.shift_radius,
        init_from=args.init_from,
        progress=not args.no_progress,
        model=ModelConfig(
            widths=tuple(args.widths),
            blocks=args.blocks,
            embed_dim=args.embed_dim,
            out_stride=args.out_stride,
            arch=args.arch,
        ),
        loss=LossConfig(
            margin=args.margin,
            w_contrastive=args.w_contrastive,
            w_nce=args.w_nce,
            nce_radius=args.nce_radius,
            temperature=args.temperature,
            w_subpixel=args.w_subpixel,
            match_sigma=args.match_sigma,
        ),
        data=DataConfig(
            real_root=args.real_root,
            use_real=not args.no_real,
            held_out=tuple(args.held_out),
            p_real=args.p_real,
            synthetic_pairs=args.synthetic_pairs,
            synthetic_size=args.synthetic_size,
            patch=args.patch,
            neg_min=args.neg_min,
            neg_max=args.neg_max,
            subpixel=args.subpixel,
        ),
    )
    path = train(cfg, resume=not args.no_resume)
    print(path)
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_models

    res = export_models(
        args.checkpoint,
        args.out_dir,
        args.model_id,
        args.tile_size,
        args.overlap,
        regressor=args.regressor,
        check_parity=not args.no_parity,
        match_sigma=args.match_sigma,
    )
    print(json.dumps(res, indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import EvalConfig, evaluate

    if args.search < args.max_shift:
        raise ValueError(f"--search {args.search} must be >= --max-shift {args.max_shift}.")
    cfg = EvalConfig(
        real_root=args.real_root,
        held_out=tuple(args.held_out),
        shifts_per_pair=args.shifts_per_pair,
        max_shift=args.max_shift,
        search=args.search,
        window=args.window,
        synthetic=args.synthetic,
        synthetic_size=args.synthetic_size,
        synthetic_first_seed=args.synthetic_first_seed,
        seed=args.seed,
    )
    report = evaluate(args.methods, cfg)
    summary = {m: {"model_id": r["model_id"], "sets": r["sets"]} for m, r in report["methods"].items()}
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(report, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input)."""
    args = _parser().parse_args(argv)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log_file:
        handlers.append(logging.FileHandler(args.log_file))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    commands = {"train": _train, "export": _export, "evaluate": _evaluate}
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
