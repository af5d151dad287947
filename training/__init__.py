"""SAR Toolbox training package: data, models, losses, training loops and ONNX export (PyTorch)."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
