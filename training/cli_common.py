"""Command-line pieces shared by the trainers (``python -m training.<family> ...``).

The run arguments every ``train`` sub-command has, the ``export`` sub-command's arguments,
configurations built from parsed arguments by field name, and the logging set-up. Kept free of
torch so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .config import ConfigDict

logger = logging.getLogger(__name__)

C = TypeVar("C", bound=ConfigDict)


CONSOLE_PREFIX = "sar-toolbox-train-"
"""Names of the installed console scripts (``sar-toolbox-train-<family>``, pyproject.toml)."""


def invoked_name(module_command: str) -> str:
    """The command as the user ran it, for usage lines: the console script (``sar-toolbox-train-compression``)
    when one was run, else ``module_command`` (``python -m training.compression``)."""
    name = Path(sys.argv[0]).name if sys.argv else ""
    return name if name.startswith(CONSOLE_PREFIX) else module_command


def new_parser(
    prog: str, description: str | None, formatter_class: type[argparse.HelpFormatter] = argparse.HelpFormatter
) -> tuple[argparse.ArgumentParser, Any]:
    """A parser with ``-v/--verbose`` and ``--log-file``, and its sub-command group (``formatter_class``:
    :class:`argparse.RawDescriptionHelpFormatter` keeps a description's example commands as written).
    ``prog``: the ``python -m`` form; usage lines name the console script instead when it was run."""
    p = argparse.ArgumentParser(prog=invoked_name(prog), description=description,
                                formatter_class=formatter_class)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--log-file", default=None, help="also write the log here")
    return p, p.add_subparsers(dest="command", required=True)


def add_run_arguments(
    tr: argparse.ArgumentParser, defaults: Any, crop_help: str, *, schedule: bool = True
) -> None:
    """The arguments of a training run common to every family (defaults from its ``TrainConfig``).

    ``schedule``: also ``--lr-final`` (the end of a decaying learning rate) and ``--init-from``, for
    the families whose configuration has them.
    """
    t = defaults
    tr.add_argument("--run-dir", default=t.run_dir, help="checkpoint + TensorBoard folder (runs/...)")
    tr.add_argument("--steps", type=int, default=t.steps)
    tr.add_argument("--batch", type=int, default=t.batch)
    tr.add_argument("--crop", type=int, default=t.crop, help=crop_help)
    tr.add_argument("--lr", type=float, default=t.lr)
    if schedule:
        tr.add_argument("--lr-final", type=float, default=t.lr_final)
    tr.add_argument("--seed", type=int, default=t.seed)
    tr.add_argument("--threads", type=int, default=t.threads, help="torch CPU threads")
    tr.add_argument("--log-every", type=int, default=t.log_every)
    tr.add_argument("--ckpt-every", type=int, default=t.ckpt_every)
    tr.add_argument("--max-minutes", type=float, default=t.max_minutes, help="wall-clock budget (0: none)")
    if schedule:
        tr.add_argument("--init-from", default=None, help="start from this checkpoint's weights")
    tr.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in run-dir")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_train(train: Callable[..., Any], config: type[C], args: argparse.Namespace, **overrides: Any) -> int:
    """The ``train`` sub-command (:func:`add_run_arguments`): ``train(cfg, resume=...)`` with the
    configuration read from ``args`` (:func:`nested_config_from_args`), the checkpoint path printed."""
    cfg = nested_config_from_args(config, args, progress=not args.no_progress, **overrides)
    print(train(cfg, resume=not args.no_resume))
    return 0


def run_export(export: Callable[..., Any], args: argparse.Namespace, **options: Any) -> int:
    """The ``export`` sub-command (:func:`add_export_parser`): ``export(checkpoint, out_dir, model_id,
    tile_size, overlap, check_parity=..., **options)``, its result printed as JSON."""
    res = export(args.checkpoint, args.out_dir, args.model_id, args.tile_size, args.overlap,
                 check_parity=not args.no_parity, **options)
    print(json.dumps(res, indent=2))
    return 0


def add_field_arguments(parser: argparse.ArgumentParser, defaults: Any, names: Sequence[str]) -> None:
    """One ``--<name>`` argument (kebab-case) per scalar field ``name`` of the configuration ``defaults``,
    typed, defaulted and explained (:func:`training.config.documented`) as the field: the flags that
    :func:`config_from_args` reads back by name."""
    hints = typing.get_type_hints(type(defaults))
    fields = {f.name: f for f in dataclasses.fields(defaults)}
    for name in names:
        kind = hints[name]
        if kind not in (int, float, str):
            raise TypeError(f"{type(defaults).__name__}.{name} is not an int, float or str field.")
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=getattr(defaults, name),
                            help=fields[name].metadata.get("help"))


def add_export_parser(
    sub: Any, help: str, example_id: str, overlap: int | None, overlap_help: str | None = None
) -> argparse.ArgumentParser:
    """The ``export`` sub-command: a checkpoint to ``<out-dir>/<model-id>.onnx``, checked against PyTorch."""
    ex = sub.add_parser("export", help=help)
    ex.add_argument("checkpoint", help="checkpoint.pt or its run folder")
    ex.add_argument("--out-dir", default="models")
    ex.add_argument("--model-id", required=True, help=f"e.g. {example_id}")
    ex.add_argument("--tile-size", type=int, default=256)
    ex.add_argument("--overlap", type=int, default=overlap, help=overlap_help)
    ex.add_argument("--no-parity", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    return ex


def config_from_args(cls: type[C], args: argparse.Namespace, **overrides: Any) -> C:
    """``cls`` (a configuration dataclass) from the parsed arguments named like its fields.

    ``overrides`` (values or nested configurations) win; fields without an argument keep their
    defaults; lists become tuples where the field is a tuple.
    """
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    given = {k: v for k, v in vars(args).items() if k in names}
    return cls.from_dict({**given, **overrides})


def nested_config_from_args(cls: type[C], args: argparse.Namespace, **overrides: Any) -> C:
    """:func:`config_from_args` for ``cls`` and for each of its nested configuration fields (``model``,
    ``loss``, ``data``...), every one read from ``args`` by field name. An override of a nested field
    is a dict of its own overrides (``data={"use_real": not args.no_real}``)."""
    hints = typing.get_type_hints(cls)
    nested = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind = hints[f.name]
        if isinstance(kind, type) and issubclass(kind, ConfigDict):
            nested[f.name] = config_from_args(kind, args, **overrides.pop(f.name, {}))
    return config_from_args(cls, args, **nested, **overrides)


def configure_logging(verbose: bool, log_file: str | None = None) -> None:
    """Log to stderr (and ``log_file``), INFO or DEBUG."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


def run_command(args: argparse.Namespace, commands: Mapping[str, Callable[[argparse.Namespace], int]]) -> int:
    """Set up logging and run ``commands[args.command]``; a bad input (``ValueError``,
    ``FileNotFoundError``) is logged and printed, and gives exit status 2."""
    configure_logging(args.verbose, args.log_file)
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError) as exc:
        logger.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2


def report_json(report: Any, json_out: str | None, summary: Any) -> None:
    """Write the full ``report`` to ``json_out`` (if given, its folder created) and print ``summary``."""
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(report, indent=2))
    print(json.dumps(summary, indent=2))
