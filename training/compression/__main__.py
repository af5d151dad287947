"""``python -m training.compression``."""

import os
import sys

# On shared or oversubscribed CPUs, OpenMP's default spin-waiting makes every
# torch op wait for descheduled threads (10x slower here); sleep instead.
# Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cli import main

sys.exit(main())
