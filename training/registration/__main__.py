"""``python -m training.registration`` (installed: ``sar-toolbox-train-registration``)."""

import sys

from ..console import run_family

sys.exit(run_family("registration", sys.argv[1:]))
