"""The command-line options of each batch job: the ``arguments`` and ``check`` of its record in
:data:`engine.batch.jobs.ALGORITHMS`.

``arguments(parser)`` adds the job's own options (the options common to every job are
:func:`engine.batch.cli._parser`'s); ``check(args)`` returns what is wrong with them, or ``None``.
Every option's value reaches the job's ``run`` under its ``argparse`` destination name.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..codec.rate_choice import DEFAULT_RATE, QUALITY_NAMES, RATE_OPTIONS, RETIRED, check_target, choice_table
from ..codec.rate_points import MEASURE_COMMAND
from ..errors import SarToolboxError
from ..metadata import NOISE_FLOOR_DB
from ..preprocess import INPUT_KINDS


def _band(p: argparse.ArgumentParser) -> None:
    p.add_argument("--band", type=int, default=1, help="1-based band (default 1)")


def _input_kind(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-kind", choices=INPUT_KINDS, default="intensity", help="default intensity")


def todb_arguments(p: argparse.ArgumentParser) -> None:
    _band(p)
    _input_kind(p)
    p.add_argument("--noise-floor-db", type=float, default=NOISE_FLOOR_DB, help=f"default {NOISE_FLOOR_DB:g}")


def compress_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--band", type=int, default=None, help="1-based band (default: every band, "
                   "e.g. VV and VH, in one file)")
    _input_kind(p)
    _rate_arguments(p)
    p.add_argument("--rdo", action="store_true", help="optimised quantisation")
    p.add_argument("--no-post-filter", dest="post_filter", action="store_false",
                   help="do not fit the restoration filter")


def _rate_arguments(p: argparse.ArgumentParser) -> None:
    """compress: --rate, --quality, --target-bpp / --target-psnr, and the quality table as epilog."""
    retired = ", ".join(f"{old} is retired and runs {new}" for old, new in RETIRED.items())
    p.add_argument("--rate", default=DEFAULT_RATE, choices=RATE_OPTIONS, metavar="RATE",
                   help=f"rate point by name: {', '.join(RATE_OPTIONS)} (default {DEFAULT_RATE}; {retired})")
    p.add_argument("--quality", choices=QUALITY_NAMES, default=None,
                   help="what you want, in words (overrides --rate); see the table below")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target-bpp", type=float, default=None,
                        help="at most this many bits per pixel, per scene and band (overrides --quality "
                             "and --rate)")
    target.add_argument("--target-psnr", type=float, default=None,
                        help="at least this PSNR in dB per scene (overrides --quality and --rate)")
    p.epilog = ("Quality choices, typical figures on real SAR (validation images; "
                f"{MEASURE_COMMAND}):\n{choice_table(html=False)}")


def check_compress(args: argparse.Namespace) -> str | None:
    """What is wrong with a compress target (not a positive number), or ``None``."""
    try:
        check_target(args.target_bpp, args.target_psnr)
    except SarToolboxError as exc:
        return f"{exc} (--target-bpp / --target-psnr)"
    return None


def decompress_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-kind", choices=INPUT_KINDS, default="db", help="default db")


def coregister_arguments(p: argparse.ArgumentParser) -> None:
    from ..registration.shift.api import DEFAULT_METHOD

    p.add_argument("--reference", type=Path, required=True, help="one reference for every input")
    p.add_argument("--method", default=DEFAULT_METHOD, help=f"default {DEFAULT_METHOD}")
    p.add_argument("--mode", choices=("global", "local"), default="global", help="default global")


def check_coregister(args: argparse.Namespace) -> str | None:
    """What is wrong with the reference (missing), or ``None``."""
    if not args.reference.is_file():
        return f"--reference '{args.reference}' does not exist; choose the master scene."
    return None


def translate_arguments(p: argparse.ArgumentParser) -> None:
    _band(p)
    _input_kind(p)
    p.add_argument("--model", default=None, help="translation .onnx (default: the shipped model)")


def no_check(args: argparse.Namespace) -> None:
    """A job whose options need no check beyond ``argparse``'s."""
    return None
