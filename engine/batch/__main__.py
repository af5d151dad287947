"""``python -m engine.batch``: see :mod:`engine.batch.cli`."""

import sys

from .cli import main

sys.exit(main())
