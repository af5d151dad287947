"""Command line: ``python -m training.compression train|export|evaluate ...``."""

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
    from .data import DataConfig, Preprocessing
    from .losses import LossWeights
    from .models import MODEL_VARIANTS, ModelConfig
    from .train import TrainConfig

    t, m, lw, d, pre = TrainConfig(), ModelConfig(), LossWeights(), DataConfig(), Preprocessing()
    p = argparse.ArgumentParser(prog="python -m training.compression", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    tr = sub.add_parser("train", help="train (or resume) a rate point")
    tr.add_argument("--run-dir", default=t.run_dir, help="checkpoint + TensorBoard folder (runs/...)")
    tr.add_argument("--steps", type=int, default=t.steps)
    tr.add_argument("--batch", type=int, default=t.batch)
    tr.add_argument("--crop", type=int, default=t.crop, help="training crop side (multiple of 16)")
    tr.add_argument("--lr", type=float, default=t.lr)
    tr.add_argument("--lr-final", type=float, default=t.lr_final)
    tr.add_argument("--prior-lr-scale", type=float, default=t.prior_lr_scale,
                    help="entropy model learning rate = lr x this (e.g. 10 for variant D)")
    tr.add_argument("--seed", type=int, default=t.seed)
    tr.add_argument("--threads", type=int, default=t.threads, help="torch CPU threads")
    tr.add_argument("--log-every", type=int, default=t.log_every)
    tr.add_argument("--eval-every", type=int, default=t.eval_every, help="0 disables held-out checks")
    tr.add_argument("--ckpt-every", type=int, default=t.ckpt_every)
    tr.add_argument("--max-minutes", type=float, default=t.max_minutes)
    tr.add_argument("--stop-at", type=int, default=None,
                    help="stop after this step (with a checkpoint) although the learning-rate schedule "
                         "runs to --steps; reproduces a run that a time limit stopped")
    tr.add_argument("--init-from", default=None, help="fine-tune from this checkpoint's weights")
    tr.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in run-dir")
    tr.add_argument("--lambda", dest="lmbda", type=float, default=lw.lmbda, help="rate-distortion lambda")
    tr.add_argument("--w-mse", type=float, default=lw.w_mse)
    tr.add_argument("--w-ssim", type=float, default=lw.w_ssim)
    tr.add_argument("--variant", choices=sorted(MODEL_VARIANTS), default=m.variant)
    tr.add_argument("--widths", type=int, nargs=3, default=list(m.widths))
    tr.add_argument("--latent-channels", type=int, default=m.latent_channels)
    tr.add_argument("--dct-step", type=float, default=m.dct_step,
                    help="variant D: starting quantisation step of the DCT path (larger = fewer bits)")
    tr.add_argument("--real-root", default=d.real_root, help="folder of the real samples")
    tr.add_argument("--no-real", action="store_true", help="do not use the real samples")
    tr.add_argument("--synthetic-scenes", type=int, default=d.synthetic_scenes)
    tr.add_argument("--synthetic-size", type=int, default=d.synthetic_size)
    tr.add_argument("--geotiff-dir", action="append", default=[], help="folder of GeoTIFFs (repeatable)")
    tr.add_argument("--geotiff-kind", choices=("intensity", "amplitude", "db"), default=d.geotiff_kind)
    tr.add_argument("--sen12-root", default=None, help="SEN1-2 root (ROIs*/s1_*/*.png)")
    tr.add_argument("--db-min", type=float, default=pre.db_min)
    tr.add_argument("--db-max", type=float, default=pre.db_max)
    tr.add_argument("--noise-floor-db", type=float, default=pre.noise_floor_db)
    tr.add_argument("--no-progress", action="store_true")

    ex = sub.add_parser("export", help="export encoder + decoder ONNX with metadata, check parity")
    ex.add_argument("checkpoint")
    ex.add_argument("--out-dir", default="models")
    ex.add_argument("--model-id", required=True, help="e.g. sarcodec-r2")
    ex.add_argument("--rate-point", default=None, help="e.g. r2 (default: suffix of model-id)")
    ex.add_argument("--tile-size", type=int, default=256)
    ex.add_argument("--overlap", type=int, default=32)
    ex.add_argument("--no-parity", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    ex.add_argument("--scores", default=None, help="JSON from 'evaluate' for the model card")
    ex.add_argument("--command", dest="commands", action="append", default=[],
                    help="command that produced the checkpoint, for the model card (repeatable)")
    ex.add_argument("--notes", default="", help="free text appended to the model card")
    ex.add_argument("--no-card", action="store_true", help="do not write <out-dir>/<model-id>.md")

    ev = sub.add_parser("evaluate", help="held-out scores of a checkpoint or an exported pair")
    ev.add_argument("checkpoint")
    ev.add_argument("--json", dest="json_out", default=None, help="write the scores here")
    ev.add_argument("--real-root", default=d.real_root)
    ev.add_argument("--synthetic", type=int, default=4, help="held-out synthetic scenes")
    ev.add_argument("--onnx-encoder", default=None,
                    help="also code every image into a file with this exported encoder (and the "
                         "matching -decoder.onnx) through engine.codec: file-level bpp")
    return p


def _train(args: argparse.Namespace) -> int:
    from .data import DataConfig, Preprocessing
    from .losses import LossWeights
    from .models import ModelConfig
    from .train import TrainConfig, train

    cfg = TrainConfig(
        run_dir=args.run_dir, steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr,
        lr_final=args.lr_final, prior_lr_scale=args.prior_lr_scale,
        seed=args.seed, threads=args.threads, log_every=args.log_every,
        eval_every=args.eval_every, ckpt_every=args.ckpt_every, max_minutes=args.max_minutes,
        init_from=args.init_from,
        loss=LossWeights(lmbda=args.lmbda, w_mse=args.w_mse, w_ssim=args.w_ssim),
        model=ModelConfig(args.variant, tuple(args.widths), args.latent_channels, args.dct_step),
        data=DataConfig(
            real_root=args.real_root, use_real=not args.no_real, synthetic_scenes=args.synthetic_scenes,
            synthetic_size=args.synthetic_size, geotiff_dirs=tuple(args.geotiff_dir),
            geotiff_kind=args.geotiff_kind, sen12_root=args.sen12_root,
        ),
        pre=Preprocessing(args.db_min, args.db_max, args.noise_floor_db),
    )
    if args.crop % 16:
        raise SystemExit(f"--crop {args.crop} must be a multiple of 16.")
    path = train(cfg, resume=not args.no_resume, progress=not args.no_progress, stop_at=args.stop_at)
    log.info("checkpoint: %s", path)
    return 0


def _export(args: argparse.Namespace) -> int:
    from training.onnx_io import sha256_of_state

    from .card import render_model_card, training_stages, write_model_card
    from .export import export_codec
    from .train import codec_from_checkpoint, load_checkpoint

    rate = args.rate_point or args.model_id.rsplit("-", 1)[-1]
    ckpt = load_checkpoint(args.checkpoint)
    codec, cfg = codec_from_checkpoint(ckpt)
    out = Path(args.out_dir)
    enc, dec = export_codec(
        codec, cfg, out, args.model_id, rate, tile_size=args.tile_size, overlap=args.overlap,
        check_parity=not args.no_parity,
    )
    log.info("wrote %s and %s", enc, dec)
    if not args.no_card:
        scores = json.loads(Path(args.scores).read_text()) if args.scores else None
        commands = args.commands or [f"python -m training.compression train --run-dir {cfg.run_dir} ..."]
        text = render_model_card(
            args.model_id, rate, cfg, int(ckpt["step"]), [enc, dec], sha256_of_state(codec.state_dict()),
            scores, commands, args.notes, stages=training_stages(cfg, int(ckpt["step"])),
        )
        card = write_model_card(out / f"{args.model_id}.md", text)
        log.info("wrote %s", card)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_checkpoint

    scores = evaluate_checkpoint(
        args.checkpoint, real_root=args.real_root, synthetic=args.synthetic,
        encoder=Path(args.onnx_encoder) if args.onnx_encoder else None,
    )
    text = json.dumps(scores, indent=2)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return {"train": _train, "export": _export, "evaluate": _evaluate}[args.command](args)
