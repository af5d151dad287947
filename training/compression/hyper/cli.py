"""``python -m training.compression hyper cache|train|export ...``: the hyperprior entropy model.

* ``cache``: encode training crops with a shipped encoder, store the latents (``runs/``);
* ``train``: train (or resume) a hyperprior on a cache;
* ``compare``: a codec fine-tuned jointly (``train --warm-start``) against the shipped hyperprior model;
* ``export-joint``: such a codec as an h model pair (ONNX files with the hyperprior in the metadata);
* ``export``: quantise it to integer networks, tabulate the scale pmfs, write
  ``models/<model-id>-{encoder,decoder}.onnx`` (copies of the transform's networks with new
  metadata), measure held-out bits against the transform's shipped table and write the model card.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from ...cli_common import add_field_arguments, config_from_args, report_json

logger = logging.getLogger(__name__)


def add_hyper(sub: Any) -> None:
    """The ``hyper`` subcommand and its own subcommands."""
    from ..data import DataConfig
    from .model import HyperConfig
    from .train import HyperTrainConfig

    hy = sub.add_parser("hyper", help="hyperprior entropy model on a shipped transform's latents")
    hsub = hy.add_subparsers(dest="hyper_command", required=True)
    d, t, m = DataConfig(), HyperTrainConfig(), HyperConfig()

    ca = hsub.add_parser("cache", help="encode training crops with a shipped encoder; store latents")
    ca.add_argument("encoder", help="models/sarcodec-rN-encoder.onnx")
    ca.add_argument("--out", required=True, help="runs/.../latents.npz")
    ca.add_argument("--crops", type=int, default=3072, help="number of 256 px training crops")
    ca.add_argument("--seed", type=int, default=4, help="the transform's training seed (its scenes)")
    ca.add_argument("--synthetic-scenes", type=int, default=d.synthetic_scenes)
    ca.add_argument("--real-root", default=d.real_root)
    ca.add_argument("--no-progress", action="store_true")

    tr = hsub.add_parser("train", help="train (or resume) a hyperprior on a latent cache")
    tr.add_argument("--latents", required=True, help="cache written by 'hyper cache'")
    tr.add_argument("--run-dir", default=t.run_dir)
    add_field_arguments(tr, t, ("steps", "batch", "seed", "threads", "log_every", "ckpt_every", "holdout"))
    add_field_arguments(tr, t, ("lr", "lr_final", "max_minutes", "edge_fraction", "ste_fraction"))
    tr.add_argument("--latent-step", type=float, default=m.latent_step,
                    help="quantisation step g of the latents (u = y / g); > 1 lowers the rate")
    add_field_arguments(tr, m, ("channels", "z_channels"))
    tr.add_argument("--slices", type=int, nargs="+", default=list(m.slices),
                    help="channel slice boundaries from 0 to the channels (0 C: no context)")
    tr.add_argument("--stop-at", type=int, default=None, help="stop after this step (with a checkpoint)")
    tr.add_argument("--no-resume", action="store_true")
    tr.add_argument("--no-progress", action="store_true")

    co = hsub.add_parser("compare", help="held-out figures of a jointly fine-tuned codec (train "
                         "--warm-start) against the shipped hyperprior model")
    co.add_argument("checkpoint", help="checkpoint.pt of 'train --warm-start'")
    co.add_argument("--shipped", required=True, help="models/sarcodec-hN-encoder.onnx")
    co.add_argument("--real-root", default=d.real_root)
    co.add_argument("--synthetic", type=int, default=2, help="held-out synthetic scenes")
    co.add_argument("--json", dest="json_out", default=None, help="write the figures here")
    co.add_argument("--shipped-steps", type=float, nargs="*", default=[],
                    help="also measure the shipped model at these latent steps (its rate-distortion curve) "
                         "and report the PSNR gain at the fine-tuned model's bpp")

    je = hsub.add_parser("export-joint", help="export a jointly fine-tuned codec (train --warm-start) as an "
                         "h model pair")
    je.add_argument("checkpoint", help="checkpoint.pt of 'train --warm-start'")
    je.add_argument("--model-id", required=True, help="e.g. sarcodec-h5")
    je.add_argument("--out-dir", default="models")
    je.add_argument("--compare-json", default=None,
                    help="'hyper compare --json' of this checkpoint: also write the model card")
    je.add_argument("--command", dest="commands", action="append", default=[],
                    help="commands that produced the checkpoint, for the model card (repeatable)")

    ex = hsub.add_parser("export", help="export a trained hyperprior with a shipped transform")
    ex.add_argument("checkpoint", help="run folder or checkpoint.pt of 'hyper train'")
    ex.add_argument("--transform", required=True, help="models/sarcodec-rN-encoder.onnx (its decoder beside)")
    ex.add_argument("--model-id", required=True, help="e.g. sarcodec-h2")
    ex.add_argument("--out-dir", default="models")
    ex.add_argument("--weight-bits", type=int, default=12)
    ex.add_argument("--frac-bits", type=int, default=10)
    ex.add_argument("--real-root", default=d.real_root)
    ex.add_argument("--synthetic", type=int, default=2, help="held-out synthetic scenes for the card")
    ex.add_argument("--command", dest="commands", action="append", default=[],
                    help="commands that produced the checkpoint, for the model card (repeatable)")
    ex.add_argument("--json", dest="json_out", default=None, help="write the held-out figures here")
    ex.add_argument("--no-card", action="store_true")
    ex.add_argument("--engine", action="store_true",
                    help="also code every held-out image through engine.codec (real file bpp and PSNR)")


def _cache(args: argparse.Namespace) -> int:
    from ..data import DataConfig
    from .cache import cache_latents

    data = DataConfig(real_root=args.real_root, synthetic_scenes=args.synthetic_scenes)
    cache_latents(Path(args.encoder), Path(args.out), args.crops, args.seed, data,
                  progress=not args.no_progress)
    return 0


def _train(args: argparse.Namespace) -> int:
    from .model import HyperConfig
    from .train import HyperTrainConfig, train_hyper

    model = config_from_args(HyperConfig, args, slices=tuple(args.slices))
    model.check()
    cfg = config_from_args(HyperTrainConfig, args, model=model)
    path = train_hyper(cfg, resume=not args.no_resume, progress=not args.no_progress, stop_at=args.stop_at)
    logger.info("checkpoint: %s", path)
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_hyper

    result = export_hyper(
        Path(args.checkpoint), Path(args.transform), args.model_id, Path(args.out_dir),
        weight_bits=args.weight_bits, frac_bits=args.frac_bits, real_root=args.real_root,
        synthetic=args.synthetic, commands=args.commands, card=not args.no_card, engine=args.engine,
    )
    report_json(result, args.json_out, result)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from ..data import DataConfig
    from ..joint import compare_with_shipped

    data = DataConfig(real_root=args.real_root)
    result = compare_with_shipped(Path(args.checkpoint), Path(args.shipped), data, args.synthetic,
                                  args.shipped_steps)
    report_json(result, args.json_out, result["real_mean"])
    return 0


def _export_joint(args: argparse.Namespace) -> int:
    from ..joint import export_joint

    comparison = json.loads(Path(args.compare_json).read_text()) if args.compare_json else None
    paths = export_joint(Path(args.checkpoint), Path(args.out_dir), args.model_id, comparison=comparison,
                         commands=args.commands)
    logger.info("wrote %s and %s", *paths)
    return 0


def run_hyper(args: argparse.Namespace) -> int:
    commands = {"cache": _cache, "train": _train, "compare": _compare, "export-joint": _export_joint,
                "export": _export}
    return commands[args.hyper_command](args)
