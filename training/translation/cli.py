"""Command line: ``python -m training.translation train|export|evaluate ...``.

One command trains on SEN1-2 for a user who has it::

    python -m training.translation train --sen12-root /data/SEN1-2 --no-3mos --run-dir runs/sen12
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from .. import cli_common

logger = logging.getLogger(__name__)


def _train_parser(sub: argparse._SubParsersAction) -> None:
    from .data import DataConfig
    from .losses import LossConfig
    from .models import ARCHITECTURES, ModelConfig
    from .train import TrainConfig

    t, d = TrainConfig(), DataConfig()
    tr = sub.add_parser("train", help="train (or resume) the generator and discriminator")
    cli_common.add_run_arguments(tr, t, "training crop side, a multiple of 2**n_down", schedule=False)
    cli_common.add_field_arguments(tr, t, ("image_every", "bn_recalibration"))
    tr.add_argument("--init-from", default=t.init_from, help="start a new run from this checkpoint's weights")
    tr.add_argument("--no-augment", action="store_true", help="no random flips")
    model = ModelConfig()
    cli_common.add_field_arguments(tr, model, ("ngf", "ndf", "n_down", "colour_stride", "smooth_sigma",
                                                   "detail_gain_floor"))
    tr.add_argument("--arch", default=model.arch, choices=ARCHITECTURES, help="generator architecture")
    tr.add_argument("--spectral-norm", action="store_true", help="spectrally normalised discriminator")
    cli_common.add_field_arguments(
        tr, LossConfig(), ("l1_weight", "gan_weight", "colour_weight", "ssim_weight", "structure_weight")
    )
    cli_common.add_field_arguments(tr, d, ("real_root",))
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
    cli_common.add_field_arguments(
        tr, d, ("optical_scale", "synthetic_pairs", "synthetic_size", "p_synthetic")
    )


def _export_parser(sub: argparse._SubParsersAction) -> None:
    ex = cli_common.add_export_parser(
        sub, "export the generator to ONNX with metadata, check parity", "sar2opt-pix2pix-g16", overlap=64
    )
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
    cli_common.add_field_arguments(ev, e, ("real_root",))
    ev.add_argument("--held-out", nargs="*", default=list(e.held_out))
    cli_common.add_field_arguments(ev, e, ("synthetic", "synthetic_first_seed", "train_synthetic"))
    ev.add_argument(
        "--inception-weights",
        default=None,
        help="Inception-v3 state dict (.pt) for FID; FID is skipped without it",
    )


def _parser() -> argparse.ArgumentParser:
    p, sub = cli_common.new_parser(
        "python -m training.translation", __doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _train_parser(sub)
    _export_parser(sub)
    _evaluate_parser(sub)
    return p


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    data = {"use_3mos": not args.no_3mos, "augment": not args.no_augment}
    return cli_common.run_train(train, TrainConfig, args, data=data)


def _export(args: argparse.Namespace) -> int:
    from .export import export_generator

    return cli_common.run_export(
        export_generator, args, colour_shrinkage=args.colour_shrinkage, shrink_toward=args.shrink_toward
    )


def _evaluate(args: argparse.Namespace) -> int:

    from .evaluate import EvalConfig, evaluate

    cfg = EvalConfig(
        real_root=args.real_root,
        held_out=tuple(args.held_out),
        synthetic=args.synthetic,
        synthetic_first_seed=args.synthetic_first_seed,
        train_synthetic=args.train_synthetic,
        inception_weights=args.inception_weights,
    )
    report = evaluate(args.models, cfg)
    cli_common.report_json(report, args.json_out, report["summary"])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input)."""
    args = _parser().parse_args(argv)
    return cli_common.run_command(args, {"train": _train, "export": _export, "evaluate": _evaluate})
