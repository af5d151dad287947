"""SAR Toolbox training package: data, models, losses, training loops and ONNX export (PyTorch)."""
