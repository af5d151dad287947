"""Console entry points of the trainers (``sar-toolbox-train-<family>`` once installed).

``python -m training.<family>`` runs the same functions. Each sets ``OMP_WAIT_POLICY`` before torch
is imported and turns a missing training package (torch, onnx...) into a message that says what to
install instead of a traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence

logger = logging.getLogger(__name__)

#: Import names of the packages of the ``[train]`` extra (requirements/train.txt).
TRAINING_MODULES = ("torch", "onnx", "onnxscript", "pytorch_msssim", "tensorboard", "tqdm")
INSTALL_HINT = ("pip install 'sar-toolbox[train]' (installed package) or "
                "pip install -r requirements/train.txt (checkout)")


def run_family(family: str, argv: Sequence[str] | None = None) -> int:
    """Run ``training.<family>.cli.main(argv)``; exit status 2 with a message when torch & co. are missing."""
    # On shared or oversubscribed CPUs, OpenMP's default spin-waiting makes every torch op wait for
    # descheduled threads (10x slower here); sleep instead. Must be set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        cli = importlib.import_module(f"{__package__}.{family}.cli")
        return int(cli.main(argv))
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TRAINING_MODULES:
            raise
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        logger.error("Training needs the Python package '%s', which is not installed: %s",
                     exc.name, INSTALL_HINT)
        if {"-h", "--help"} & set(argv if argv is not None else sys.argv[1:]):
            logger.error("The help needs it too: it shows each option's default, read from the training "
                         "configuration, which is defined beside the torch models.")
        return 2


def compression() -> int:
    """``sar-toolbox-train-compression`` (``--help``: its commands and options)."""
    return run_family("compression", sys.argv[1:])


def registration() -> int:
    """``sar-toolbox-train-registration``."""
    return run_family("registration", sys.argv[1:])


def keypoints() -> int:
    """``sar-toolbox-train-keypoints``."""
    return run_family("keypoints", sys.argv[1:])


def translation() -> int:
    """``sar-toolbox-train-translation``."""
    return run_family("translation", sys.argv[1:])
