"""Command line: ``python -m training.keypoints train|export|evaluate ...``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from .. import cli_common

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    from .data import DataConfig
    from .evaluate import EvalConfig
    from .losses import LossConfig
    from .models import ModelConfig
    from .train import TrainConfig

    t, m, lc, d, e = TrainConfig(), ModelConfig(), LossConfig(), DataConfig(), EvalConfig()
    p, sub = cli_common.new_parser("python -m training.keypoints", __doc__)
    tr = sub.add_parser("train", help="train (or resume) the keypoint network")
    cli_common.add_run_arguments(tr, t, "view side (multiple of 16)")
    tr.add_argument(
        "--stop-at-step", type=int, default=t.stop_at_step,
        help="stop at this step of the --steps schedule (reproduces a run cut by --max-minutes)",
    )
    cli_common.add_field_arguments(tr, m, ("width", "descriptor_dim"))
    cli_common.add_field_arguments(tr, lc, ("patch", "w_peaky", "temperature"))
    cli_common.add_field_arguments(tr, d, ("real_root",))
    tr.add_argument("--no-real", action="store_true", help="synthetic scenes only")
    tr.add_argument(
        "--held-out", nargs="*", default=list(d.held_out), help="opt_sar_3mos pairs never trained on"
    )
    cli_common.add_field_arguments(tr, d, ("synthetic_scenes", "synthetic_size", "p_sar_sar"))

    cli_common.add_export_parser(
        sub, "export to ONNX (Task.KEYPOINTS) and check parity with PyTorch", "kp-hscp-r2d2-v1", overlap=32
    )

    ev = sub.add_parser("evaluate", help="held-out scores under random homographies vs a classical baseline")
    ev.add_argument("methods", nargs="+", help="checkpoint | model.onnx | sift")
    ev.add_argument("--json", dest="json_out", default=None, help="write the full report here")
    cli_common.add_field_arguments(ev, e, ("real_root",))
    ev.add_argument("--held-out", nargs="*", default=list(e.held_out))
    cli_common.add_field_arguments(ev, e, ("warps_per_pair", "synthetic", "max_keypoints", "seed"))
    return p


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    return cli_common.run_train(train, TrainConfig, args, data={"use_real": not args.no_real})


def _export(args: argparse.Namespace) -> int:
    from .export import export_model

    return cli_common.run_export(export_model, args)


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import EvalConfig, evaluate

    cfg = EvalConfig(
        real_root=args.real_root, held_out=tuple(args.held_out), warps_per_pair=args.warps_per_pair,
        synthetic=args.synthetic, max_keypoints=args.max_keypoints, seed=args.seed,
    )
    report = evaluate(args.methods, cfg)
    cli_common.report_json(report, args.json_out, report["summary"])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input)."""
    args = _parser().parse_args(argv)
    return cli_common.run_command(args, {"train": _train, "export": _export, "evaluate": _evaluate})
