"""``python -m training.translation`` (installed: ``sar-toolbox-train-translation``)."""

import sys

from ..console import run_family

sys.exit(run_family("translation", sys.argv[1:]))
