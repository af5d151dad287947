"""``python -m training.keypoints`` (installed: ``sar-toolbox-train-keypoints``)."""

import sys

from ..console import run_family

sys.exit(run_family("keypoints", sys.argv[1:]))
