"""``python -m training.registration``."""

import sys

from .cli import main

sys.exit(main())
