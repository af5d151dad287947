"""``python -m engine.batch``: see :mod:`engine.batch.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
