"""``python -m training.translation``."""

import sys

from .cli import main

sys.exit(main())
