"""Command-line entry points of the SAR Toolbox repository (``python -m scripts.<name>``)."""
