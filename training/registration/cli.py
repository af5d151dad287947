"""Command line: ``python -m training.registration train|export|evaluate ...``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

from .. import cli_common

logger = logging.getLogger(__name__)


def _add_model_arguments(tr: argparse.ArgumentParser) -> None:
    from .models import ARCHITECTURES, OUT_STRIDES, ModelConfig

    m = ModelConfig()
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


def _add_loss_arguments(tr: argparse.ArgumentParser) -> None:
    from .losses import LossConfig

    cli_common.add_field_arguments(
        tr, LossConfig(),
        ("margin", "w_contrastive", "w_nce", "nce_radius", "temperature", "match_sigma", "w_subpixel"),
    )


def _add_data_arguments(tr: argparse.ArgumentParser) -> None:
    from .data import DataConfig

    d = DataConfig()
    cli_common.add_field_arguments(tr, d, ("real_root",))
    tr.add_argument("--no-real", action="store_true", help="synthetic pairs only")
    tr.add_argument("--held-out", nargs="*", default=list(d.held_out),
                    help="opt_sar_3mos pairs never trained on")
    cli_common.add_field_arguments(
        tr, d, ("p_real", "synthetic_pairs", "synthetic_size", "patch", "neg_min", "neg_max", "subpixel")
    )


def _add_train(sub: Any) -> None:
    from .train import TrainConfig

    t = TrainConfig()
    tr = sub.add_parser("train",
                        help="train (or resume) the encoder (phase 1) or the shift regressor (phase 2)")
    cli_common.add_run_arguments(tr, t, "training crop side (256 on a GPU, 96-128 on CPU)")
    tr.add_argument("--phase", type=int, choices=(1, 2), default=t.phase)
    tr.add_argument("--shift-radius", type=int, default=t.shift_radius, help="phase 2: largest |dx|, |dy|")
    _add_model_arguments(tr)
    _add_loss_arguments(tr)
    _add_data_arguments(tr)


def _add_export(sub: Any) -> None:
    ex = cli_common.add_export_parser(
        sub, "export the encoder (EMBED) [and regressor] to ONNX, check parity", "regembed-s1-d16",
        overlap=None, overlap_help="default: half the receptive field",
    )
    ex.add_argument("--regressor", action="store_true", help="also export the phase-2 shift regressor")
    ex.add_argument("--match-sigma", type=float, default=None,
                    help="Gaussian sigma (px) the engine applies to the embedding before the search "
                    "(metadata; default: the one the model was trained with, usually 0)")


def _add_evaluate(sub: Any) -> None:
    from .evaluate import EvalConfig

    e = EvalConfig()
    ev = sub.add_parser("evaluate", help="shift errors on held-out real and synthetic pairs")
    ev.add_argument("methods", nargs="+",
                    help="checkpoint | model.onnx | engine-deep:model.onnx | classical | gradmag")
    ev.add_argument("--json", dest="json_out", default=None, help="write the full report here")
    cli_common.add_field_arguments(ev, e, ("real_root",))
    ev.add_argument("--held-out", nargs="*", default=list(e.held_out))
    cli_common.add_field_arguments(
        ev, e, ("shifts_per_pair", "max_shift", "search", "window", "synthetic", "synthetic_size",
                "synthetic_first_seed", "seed"),
    )


def _parser() -> argparse.ArgumentParser:
    p, sub = cli_common.new_parser("python -m training.registration", __doc__)
    _add_train(sub)
    _add_export(sub)
    _add_evaluate(sub)
    return p


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    return cli_common.run_train(train, TrainConfig, args, data={"use_real": not args.no_real})


def _export(args: argparse.Namespace) -> int:
    from .export import export_models

    return cli_common.run_export(export_models, args, regressor=args.regressor, match_sigma=args.match_sigma)


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import EvalConfig, evaluate

    if args.search < args.max_shift:
        raise ValueError(f"--search {args.search} must be >= --max-shift {args.max_shift}.")
    cfg = cli_common.config_from_args(EvalConfig, args)
    report = evaluate(args.methods, cfg)
    summary = {m: {"model_id": r["model_id"], "sets": r["sets"]} for m, r in report["methods"].items()}
    cli_common.report_json(report, args.json_out, summary)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input)."""
    args = _parser().parse_args(argv)
    return cli_common.run_command(args, {"train": _train, "export": _export, "evaluate": _evaluate})
