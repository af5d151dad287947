"""``python -m training.compression`` (installed: ``sar-toolbox-train-compression``)."""

import sys

from ..console import run_family

sys.exit(run_family("compression", sys.argv[1:]))
