"""Command line: ``python -m training.compression train|export|evaluate|classify|hyper ...``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cli_common import (
    add_field_arguments,
    add_run_arguments,
    config_from_args,
    new_parser,
    run_command,
)
from .hyper.cli import add_hyper, run_hyper

logger = logging.getLogger(__name__)


def _add_train(sub: Any) -> None:
    from .data import DataConfig, Preprocessing
    from .losses import LossWeights
    from .models import MODEL_VARIANTS, ModelConfig
    from .train import TrainConfig

    t, m, lw, d, pre = TrainConfig(), ModelConfig(), LossWeights(), DataConfig(), Preprocessing()
    tr = sub.add_parser("train", help="train (or resume) a rate point")
    add_run_arguments(tr, t, "training crop side (multiple of 16)")
    tr.add_argument("--prior-lr-scale", type=float, default=t.prior_lr_scale,
                    help="entropy model learning rate = lr x this (e.g. 10 for variant D)")
    tr.add_argument("--eval-every", type=int, default=t.eval_every, help="0 disables held-out checks")
    tr.add_argument("--stop-at", type=int, default=None,
                    help="stop after this step (with a checkpoint) although the learning-rate schedule "
                         "runs to --steps; reproduces a run that a time limit stopped")
    tr.add_argument("--warm-start", default=None,
                    help="fine-tune a shipped hyperprior model jointly (transform + hyperprior): its "
                         "encoder, e.g. models/sarcodec-h1-encoder.onnx (architecture, latent step and "
                         "preprocessing are taken from its metadata)")
    tr.add_argument("--lambda", dest="lmbda", type=float, default=lw.lmbda, help="rate-distortion lambda")
    add_field_arguments(tr, lw, ("w_mse", "w_ssim"))
    tr.add_argument("--variant", choices=sorted(MODEL_VARIANTS), default=m.variant)
    tr.add_argument("--widths", type=int, nargs=3, default=list(m.widths))
    add_field_arguments(tr, m, ("latent_channels",))
    tr.add_argument("--dct-step", type=float, default=m.dct_step,
                    help="variant D: starting quantisation step of the DCT path (larger = fewer bits)")
    tr.add_argument("--real-root", default=d.real_root, help="folder of the real samples")
    tr.add_argument("--no-real", action="store_true", help="do not use the real samples")
    add_field_arguments(tr, d, ("synthetic_scenes", "synthetic_size"))
    tr.add_argument("--geotiff-dir", action="append", default=[], help="folder of GeoTIFFs (repeatable)")
    tr.add_argument("--geotiff-kind", choices=("intensity", "amplitude", "db"), default=d.geotiff_kind)
    tr.add_argument("--sen12-root", default=None, help="SEN1-2 root (ROIs*/s1_*/*.png)")
    add_field_arguments(tr, pre, ("db_min", "db_max", "noise_floor_db"))


def _add_export(sub: Any) -> None:
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


def _add_evaluate(sub: Any, d: Any) -> None:
    ev = sub.add_parser("evaluate", help="held-out scores of a checkpoint or an exported pair")
    ev.add_argument("checkpoint")
    ev.add_argument("--json", dest="json_out", default=None, help="write the scores here")
    ev.add_argument("--real-root", default=d.real_root)
    ev.add_argument("--synthetic", type=int, default=4, help="held-out synthetic scenes")
    ev.add_argument("--onnx-encoder", default=None,
                    help="also code every image into a file with this exported encoder (and the "
                         "matching -decoder.onnx) through engine.codec: file-level bpp")


def _add_classify(sub: Any, d: Any) -> None:
    cl = sub.add_parser("classify", help="fit a classified entropy table to an exported codec (in place)")
    cl.add_argument("encoder", help="models/sarcodec-rX-encoder.onnx (its -decoder.onnx is updated too)")
    cl.add_argument("--classes", type=int, default=16, help="number of cell classes (>= 2)")
    cl.add_argument("--smoothing", type=float, default=20.0,
                    help="pseudo-counts of the factorised pmf mixed into every class pmf")
    cl.add_argument("--iterations", type=int, default=20, help="most Lloyd iterations")
    cl.add_argument("--rdo-scale", type=float, default=3.0,
                    help="optimised quantisation: rdo_lambda = this x the training lambda (0: rounding)")
    cl.add_argument("--weight-images", type=int, default=4,
                    help="training images used to measure the decoder's per-channel error weights")
    cl.add_argument("--seed", type=int, default=4, help="the training run's seed (its synthetic scenes)")
    cl.add_argument("--synthetic-scenes", type=int, default=d.synthetic_scenes)
    cl.add_argument("--real-root", default=d.real_root)
    cl.add_argument("--card", default=None, help="model card to update (default: <model-id>.md beside)")
    cl.add_argument("--no-engine-scores", action="store_true",
                    help="skip the held-out round trip through engine.codec (faster)")
    cl.add_argument("--json", dest="json_out", default=None, help="write the figures here")


def _parser() -> argparse.ArgumentParser:
    from .data import DataConfig

    p, sub = new_parser("python -m training.compression", __doc__)
    _add_train(sub)
    _add_export(sub)
    _add_evaluate(sub, DataConfig())
    _add_classify(sub, DataConfig())
    add_hyper(sub)
    return p


def _train(args: argparse.Namespace) -> int:
    from .data import DataConfig, Preprocessing
    from .losses import LossWeights
    from .models import ModelConfig
    from .train import TrainConfig, train

    if args.crop % 16:
        raise SystemExit(f"--crop {args.crop} must be a multiple of 16.")
    parts = {"model": config_from_args(ModelConfig, args), "pre": config_from_args(Preprocessing, args)}
    if args.warm_start:
        parts = warm_start_configs(Path(args.warm_start))
    cfg = config_from_args(
        TrainConfig, args,
        loss=config_from_args(LossWeights, args),
        data=config_from_args(DataConfig, args, use_real=not args.no_real, geotiff_dirs=args.geotiff_dir),
        **parts,
    )
    path = train(cfg, resume=not args.no_resume, progress=not args.no_progress, stop_at=args.stop_at)
    logger.info("checkpoint: %s", path)
    return 0


def warm_start_configs(encoder: Path) -> dict[str, Any]:
    """``model``, ``hyper`` and ``pre`` configurations of a shipped hyperprior model (``--warm-start``)."""
    from .classify import preprocessing_of
    from .warmstart import hyper_config_of, model_config_of, shipped_hyperprior

    try:
        meta, spec = shipped_hyperprior(encoder)
    except ValueError as exc:
        raise SystemExit(f"--warm-start: {exc}") from None
    return {"model": model_config_of(meta, encoder), "hyper": hyper_config_of(spec),
            "pre": preprocessing_of(meta)}


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
    logger.info("wrote %s and %s", enc, dec)
    if not args.no_card:
        scores = json.loads(Path(args.scores).read_text()) if args.scores else None
        commands = args.commands or [f"python -m training.compression train --run-dir {cfg.run_dir} ..."]
        text = render_model_card(
            args.model_id, rate, cfg, int(ckpt["step"]), [enc, dec], sha256_of_state(codec.state_dict()),
            scores, commands, args.notes, stages=training_stages(cfg, int(ckpt["step"])),
        )
        card = write_model_card(out / f"{args.model_id}.md", text)
        logger.info("wrote %s", card)
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


def _classify(args: argparse.Namespace) -> int:
    import dataclasses

    from engine.codec.models import ENTROPY_KEY, entropy_table, load_encoder, training_lambda
    from engine.metadata import Task
    from engine.runtime import OnnxModel
    from training.onnx_io import attach_metadata

    from .classify import (
        ClassifyConfig,
        card_section,
        distortion_weights,
        fit_table,
        heldout_figures,
        preprocessing_of,
        training_latents,
        update_card,
    )
    from .data import DataConfig, training_scenes
    from .evaluate import evaluate_exported

    enc_path = Path(args.encoder)
    dec_path = enc_path.with_name(enc_path.name.replace("-encoder.onnx", "-decoder.onnx"))
    encoder = load_encoder(enc_path)
    decoder = OnnxModel(dec_path, tasks=[Task.COMPRESS_DECODER])
    meta, decoder_meta = encoder.metadata, decoder.metadata
    if (decoder_meta.model_id, decoder_meta.weights_sha256) != (meta.model_id, meta.weights_sha256):
        raise SystemExit(f"{dec_path.name} is not the decoder of {enc_path.name} (model id or weights "
                         "differ).")
    base = entropy_table(meta, enc_path.name).factorised()
    cfg = ClassifyConfig(classes=args.classes, smoothing=args.smoothing, iterations=args.iterations,
                         rdo_scale=args.rdo_scale)
    data = DataConfig(real_root=args.real_root, synthetic_scenes=args.synthetic_scenes)
    pre = preprocessing_of(meta)
    scenes = [db for _, db in training_scenes(data, pre, args.seed)]
    y = training_latents(encoder, scenes, pre)
    weights = None
    if cfg.rdo_scale > 0:  # a spread of training images (synthetic first, then real)
        step = max(1, len(scenes) // max(args.weight_images, 1))
        weights = distortion_weights(encoder, decoder, base, scenes[::step][: args.weight_images], pre)
    logger.info("fitting %d classes to %d training latent cells", cfg.classes, y.shape[2])
    fitted = fit_table(y, base, cfg, weights, training_lambda(meta) or 0.0)
    classified_only = dataclasses.replace(fitted, distortion_weights=(), rdo_lambda=0.0)
    figures = heldout_figures(encoder, decoder, [base, classified_only, fitted], data, pre)
    for path, m in ((enc_path, meta), (dec_path, decoder_meta)):
        attach_metadata(path, dataclasses.replace(m, extra={**m.extra, ENTROPY_KEY: fitted.to_json()}))
    logger.info("wrote the entropy table into %s and %s", enc_path, dec_path)
    scores = None if args.no_engine_scores else evaluate_exported(enc_path, dec_path, pre, data)
    command = (f"python -m training.compression classify {args.encoder} --classes {cfg.classes} "
               f"--smoothing {cfg.smoothing:g} --iterations {cfg.iterations} --rdo-scale {cfg.rdo_scale:g} "
               f"--seed {args.seed} --synthetic-scenes {args.synthetic_scenes}")
    card = Path(args.card) if args.card else enc_path.with_name(f"{meta.model_id}.md")
    update_card(card, card_section(cfg, command, int(y.shape[2]), figures, scores, fitted))
    result = {"config": dataclasses.asdict(cfg), "training_cells": int(y.shape[2]),
              "rdo_lambda": fitted.rdo_lambda,
              "heldout": {n: {"factorised": f[0], "classified": f[1], "classified_rdo": f[2]}
                          for n, f in figures.items()},
              "engine": scores, "command": command}
    text = json.dumps(result, indent=2)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input)."""
    args = _parser().parse_args(argv)
    commands = {"train": _train, "export": _export, "evaluate": _evaluate, "classify": _classify,
                "hyper": run_hyper}
    return run_command(args, commands)
