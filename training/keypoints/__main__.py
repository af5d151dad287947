"""``python -m training.keypoints``."""

import sys

from .cli import main

sys.exit(main())
