"""``sar-toolbox-batch`` (installed) or ``python -m engine.batch`` (checkout):
``ALGORITHM (--input-dir D | --inputs GLOB) --output-dir O [options]``.

ALGORITHM: todb, compress, decompress, coregister or translate.

Exit status: 0 when every scene is ok (or already complete), 1 when any scene failed,
2 when the command itself is unusable (no inputs, unwritable output folder, unknown
scheduler, workers that cannot run the engine...), in which case nothing is written,
130 when interrupted (Ctrl-C; summary.json records what finished, a rerun continues).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import SarToolboxError
from .jobs import ALGORITHMS, count_statuses
from .runner import SCENE_TIMEOUT_S

logger = logging.getLogger(__name__)


def program_name(argv0: str | None = None) -> str:
    """``python -m <package>`` when run as a module, else the command's own name (``sar-toolbox-batch``)."""
    name = Path(argv0 if argv0 is not None else sys.argv[0]).name
    return f"python -m {__package__}" if name in ("__main__.py", "") else name


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=program_name(), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="algorithm", required=True, metavar="ALGORITHM")
    for name, algo in ALGORITHMS.items():
        p = sub.add_parser(name, help=algo.help, description=algo.help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        src = p.add_mutually_exclusive_group(required=True)
        suffixes = ", ".join(algo.input_suffixes)
        src.add_argument("--input-dir", type=Path, help=f"every file ending in {suffixes}")
        src.add_argument("--inputs", help="a glob pattern, quoted (e.g. 'scenes/S1*_VV.tif')")
        p.add_argument("--output-dir", type=Path, required=True, help="created if missing")
        where = p.add_mutually_exclusive_group()
        where.add_argument("--workers", type=int, default=2, help="local Dask worker processes (default 2)")
        where.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786")
        p.add_argument("--ship-engine", action="store_true",
                       help="upload this engine and the models it needs to workers that lack them")
        p.add_argument("--scene-timeout", type=float, default=SCENE_TIMEOUT_S, metavar="SECONDS",
                       help=f"fail a scene held this long by a worker (default {SCENE_TIMEOUT_S:g}; 0: off)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("-v", "--verbose", action="store_true", help="Dask's own log messages too")
        algo.arguments(p)
    return parser


COMMON = {"algorithm", "input_dir", "inputs", "output_dir", "workers", "scheduler", "no_progress",
          "ship_engine", "scene_timeout", "verbose"}

QUIET_LOGGERS = ("distributed", "tornado", "bokeh")
"""Dask's loggers: silent unless --verbose (their INFO lines drown the progress bar, and a Ctrl-C makes the
workers log connection tracebacks while they stop); what goes wrong with a scene is in summary.json."""


def find_inputs(args: argparse.Namespace) -> list[Path]:
    """The scenes to process, sorted; :class:`SystemExit` (2) when there are none."""
    suffixes = ALGORITHMS[args.algorithm].input_suffixes
    if args.input_dir is not None:
        if not args.input_dir.is_dir():
            raise _usage(f"--input-dir '{args.input_dir}' is not a folder.")
        found = [p for p in args.input_dir.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
        where = f"folder '{args.input_dir}' (files ending in {', '.join(suffixes)})"
    else:
        found = [Path(p) for p in glob.glob(args.inputs) if Path(p).is_file()]
        where = f"pattern '{args.inputs}'"
    if not found:
        raise _usage(f"No input scenes in {where}; point --input-dir or --inputs at your scenes.")
    return sorted(found)


def _usage(message: str) -> SystemExit:
    logger.error(message)
    return SystemExit(2)


def _check_output_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _usage(f"Cannot create --output-dir '{out}' ({exc.strerror}); "
                     "choose a folder you can write.") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise _usage(f"--output-dir '{out}' is not writable; choose a folder you can write.")


def _progress(total: int, enabled: bool) -> Any:
    if enabled:
        try:
            from tqdm import tqdm

            return tqdm(total=total, unit="scene", file=sys.stderr)
        except ImportError:
            pass
    return None


def configure_logging(verbose: bool) -> None:
    """Our messages at INFO on stderr; Dask's only when ``verbose``."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    # distributed sets its loggers' levels from its configuration when imported: import it first
    # (when it is missing, the runner says what to install)
    with contextlib.suppress(ImportError):
        import distributed  # noqa: F401
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.CRITICAL)


def _checked_inputs(args: argparse.Namespace) -> list[Path]:
    """The scenes, after every check of the command line; :class:`SystemExit` (2) on a bad one."""
    inputs = find_inputs(args)
    problem = ALGORITHMS[args.algorithm].check(args)
    if problem:
        raise _usage(problem)
    if args.workers < 1:
        raise _usage(f"--workers must be at least 1, got {args.workers}.")
    if args.scene_timeout < 0:
        raise _usage(f"--scene-timeout must be 0 (none) or a number of seconds, got {args.scene_timeout}.")
    _check_output_dir(args.output_dir)
    return inputs


def main(argv: Sequence[str] | None = None) -> int:
    """Run the batch command line; returns the exit status."""
    from .runner import SUMMARY_NAME, BatchInterrupted, Cluster, run_batch

    args = _parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        inputs = _checked_inputs(args)
    except SystemExit as exc:
        return int(exc.code or 2)
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in COMMON}
    bar = _progress(len(inputs), not args.no_progress)

    def done(record: dict[str, Any]) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{Path(record['input']).name}: {record['status']}")
        else:
            logger.info("%s: %s", Path(record["input"]).name, record["status"])

    cluster = Cluster(workers=args.workers, address=args.scheduler, ship_engine=args.ship_engine,
                      scene_timeout_s=args.scene_timeout or None, verbose=args.verbose)
    try:
        records = run_batch(args.algorithm, inputs, args.output_dir, options, cluster, on_done=done)
    except SarToolboxError as exc:
        logger.error("%s", exc)
        return 2
    except BatchInterrupted as stop:
        logger.error("Interrupted: %d of %d scenes finished; %s records them. Rerun the same command "
                     "to process the rest (complete outputs are skipped).", stop.finished, stop.total,
                     stop.summary)
        return 130
    except KeyboardInterrupt:
        logger.error("Interrupted before any scene was submitted; nothing was written.")
        return 130
    finally:
        if bar is not None:
            bar.close()
    failed = [r for r in records if r["status"] == "failed"]
    for r in failed:
        logger.error("failed: %s: %s", r["input"], r["error"])
    counts = count_statuses(records)
    logger.info("%d ok, %d skipped (already complete), %d failed; summary: %s",
                counts["ok"], counts["skipped"], counts["failed"], args.output_dir / SUMMARY_NAME)
    return 1 if failed else 0
