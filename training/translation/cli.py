"""Command line: ``python -m training.translation train|export|evaluate ...``.

One command trains on SEN1-2 for a user who has it::

    python -m training.translation train --sen12-root /data/SEN1-2 --no-3mos --run-dir runs/sen12
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence

from ..cli_common import config_from_args, report_json, run_command

logger = logging.getLogger(__name__)


def _train_parser(sub: argparse._SubParsersAction) -> None:
    from .data import DataConfig
    from .losses import LossConfig
    from .models import ModelConfig
    from .train import TrainConfig

    t, m, lc, d = TrainConfig(), ModelConfig(), LossConfig(), DataConfig()
    tr = sub.add_parser("train", help="train (or resume) the generator and discriminator")
    tr.add_argument("--run-dir", default=t.run_dir, help="checkpoint + TensorBoard folder (runs/...)")
    tr.add_argument("--steps", type=int, default=t.steps)
    tr.add_argument("--batch", type=int, default=t.batch)
    tr.add_argument("--crop", type=int, default=t.crop, help="training crop side, a multiple of 2**n_down")
    tr.add_argument("--lr", type=float, default=t.lr)
    tr.add_argument("--seed", type=int, default=t.seed)
    tr.add_argument("--threads", type=int, default=t.threads, help="torch CPU threads")
    tr.add_argument("--log-every", type=int, default=t.log_every)
    tr.add_argument("--image-every", type=int, default=t.image_every, help="TensorBoard image grid period")
    tr.add_argument("--ckpt-every", type=int, default=t.ckpt_every)
    tr.add_argument("--max-minutes", type=float, default=t.max_minutes, help="wall-clock budget (0: none)")
    tr.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in run-dir")
    tr.add_argument("--no-progress", action="store_true")
    tr.add_argument("--ngf", type=int, default=m.ngf, help="generator width (64 in pix2pix)")
    tr.add_argument("--ndf", type=int, default=m.ndf, help="discriminator width (64 in pix2pix)")
    tr.add_argument("--n-down", type=int, default=m.n_down, help="U-Net levels (8: 256 px inputs)")
    tr.add_argument("--spectral-norm", action="store_true", help="spectrally normalised discriminator")
    tr.add_argument("--l1-weight", type=float, default=lc.l1_weight)
    tr.add_argument("--gan-weight", type=float, default=lc.gan_weight, help="0: L1 only, no discriminator")
    tr.add_argument(
        "--colour-weight",
        type=float,
        default=lc.colour_weight,
        help="weight of the L1 between per-image mean colours (0: off)",
    )
    tr.add_argument("--init-from", default=t.init_from, help="start a new run from this checkpoint's weights")
    tr.add_argument(
        "--bn-recalibration",
        type=int,
        default=t.bn_recalibration,
        help="batches of (real) training crops that recompute the batch-norm statistics at the end",
    )
    tr.add_argument("--no-augment", action="store_true", help="no random flips")
    tr.add_argument("--ssim-weight", type=float, default=lc.ssim_weight, help="weight of 1 - SSIM (0: off)")
    tr.add_argument("--real-root", default=d.real_root, help="folder holding opt_sar_3mos/")
    tr.add_argument("--no-3mos", action="store_true", help="do not train on the 3MOS pairs")
    tr.add_argument("--held-out", nargs="*", default=list(d.held_out), help="3MOS pairs never trained on")
    tr.add_argument("--sen12-root", default=None, help="SEN1-2 root (ROIs*/s1_*/*.png + s2_*)")
    tr.add_argument("--geotiff-root", default=None, help="folder with sar/<name>.tif + optical/<name>.tif")
    tr.add_argument(
        "--sar-kind",
        default=d.sar_kind,
        choices=("intensity", "amplitude", "db"),
        help="what the GeoTIFF SAR holds",
    )
    tr.add_argument(
        "--optical-scale",
        type=float,
        default=d.optical_scale,
        help="GeoTIFF optical value x this = display [0, 1] (3e-4 for S2 L2A x 10000)",
    )
    tr.add_argument("--synthetic-pairs", type=int, default=d.synthetic_pairs)
    tr.add_argument("--synthetic-size", type=int, default=d.synthetic_size)
    tr.add_argument("--p-synthetic", type=float, default=d.p_synthetic, help="share of synthetic samples")


def _export_parser(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser("export", help="export the generator to ONNX with metadata, check parity")
    ex.add_argument("checkpoint", help="checkpoint.pt or its run folder")
    ex.add_argument("--out-dir", default="models")
    ex.add_argument("--model-id", required=True, help="e.g. sar2opt-pix2pix-g16")
    ex.add_argument("--tile-size", type=int, default=256)
    ex.add_argument("--overlap", type=int, default=64)
    ex.add_argument("--no-parity", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    ex.add_argument(
        "--colour-shrinkage",
        type=float,
        default=1.0,
        help="export toward + s (G(x) - toward), s in [0, 1] (1: the generator as trained)",
    )
    ex.add_argument(
        "--shrink-toward",
        type=float,
        nargs=3,
        default=None,
        metavar=("R", "G", "B"),
        help="display colour to shrink toward (default: mean colour of the run's 3MOS training images)",
    )


def _evaluate_parser(sub: argparse._SubParsersAction) -> None:
    from .evaluate import EvalConfig

    e = EvalConfig()
    ev = sub.add_parser("evaluate", help="PSNR, SSIM, structure and colour scores on held-out pairs")
    ev.add_argument("models", nargs="+", help="translation .onnx files (or checkpoints)")
    ev.add_argument("--json", dest="json_out", default=None, help="write the full report here")
    ev.add_argument("--real-root", default=e.real_root)
    ev.add_argument("--held-out", nargs="*", default=list(e.held_out))
    ev.add_argument("--synthetic", type=int, default=e.synthetic, help="held-out synthetic pairs")
    ev.add_argument("--synthetic-first-seed", type=int, default=e.synthetic_first_seed)
    ev.add_argument(
        "--inception-weights",
        default=None,
        help="Inception-v3 state dict (.pt) for FID; FID is skipped without it",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.translation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--log-file", default=None, help="also write the log here")
    sub = p.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _export_parser(sub)
    _evaluate_parser(sub)
    return p


def _train(args: argparse.Namespace) -> int:
    from .data import DataConfig
    from .losses import LossConfig
    from .models import ModelConfig
    from .train import TrainConfig, train

    cfg = config_from_args(
        TrainConfig,
        args,
        progress=not args.no_progress,
        model=ModelConfig(ngf=args.ngf, ndf=args.ndf, n_down=args.n_down, spectral_norm=args.spectral_norm),
        loss=LossConfig(
            l1_weight=args.l1_weight,
            ssim_weight=args.ssim_weight,
            gan_weight=args.gan_weight,
            colour_weight=args.colour_weight,
        ),
        data=DataConfig(
            real_root=args.real_root,
            use_3mos=not args.no_3mos,
            held_out=tuple(args.held_out),
            sen12_root=args.sen12_root,
            geotiff_root=args.geotiff_root,
            sar_kind=args.sar_kind,
            optical_scale=args.optical_scale,
            synthetic_pairs=args.synthetic_pairs,
            synthetic_size=args.synthetic_size,
            p_synthetic=args.p_synthetic,
            augment=not args.no_augment,
        ),
    )
    print(train(cfg, resume=not args.no_resume))
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_generator

    res = export_generator(
        args.checkpoint,
        args.out_dir,
        args.model_id,
        args.tile_size,
        args.overlap,
        check_parity=not args.no_parity,
        colour_shrinkage=args.colour_shrinkage,
        shrink_toward=args.shrink_toward,
    )
    print(json.dumps(res, indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:

    from .evaluate import EvalConfig, evaluate

    cfg = EvalConfig(
        real_root=args.real_root,
        held_out=tuple(args.held_out),
        synthetic=args.synthetic,
        synthetic_first_seed=args.synthetic_first_seed,
        inception_weights=args.inception_weights,
    )
    report = evaluate(args.models, cfg)
    report_json(report, args.json_out, report["summary"])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input)."""
    args = _parser().parse_args(argv)
    return run_command(args, {"train": _train, "export": _export, "evaluate": _evaluate})
