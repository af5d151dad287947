"""The co-registration methods: their names, the default, and the feature extractor of each.

A method is a feature extractor (:mod:`..features`) that the one search of
:mod:`..correlation` runs on; ``deep`` and ``combined`` load a ``Task.EMBED`` model.
"""

from __future__ import annotations

import os

from ..features import FeatureExtractor, get_extractor

METHODS = ("deep", "classical", "gradmag", "combined")
"""Registered methods, in the order the QGIS dialog lists them (append new ones at the end)."""
BASELINE_METHODS = ("gradmag",)
"""Methods kept for benchmarks only (not offered in the QGIS dialog)."""
MODEL_METHODS = ("deep", "combined")
"""Methods that run a ``Task.EMBED`` model."""
DEFAULT_METHOD = "combined"
"""Chosen on the calibration split of ``make calibrate-registration`` (decision record
2026-12-07-registration-combined-evidence.md): at its calibrated threshold it answers more cases than
``deep`` or ``classical`` at theirs, with at most 1 % wrong, and more of them within 1 px."""
USER_METHODS = tuple(m for m in METHODS if m not in BASELINE_METHODS)


def make_extractor(method: str, model_path: str | os.PathLike[str] | None = None) -> FeatureExtractor:
    """The feature extractor of ``method`` (``deep`` and ``combined`` load a ``Task.EMBED`` model)."""
    if method == "deep":
        from .deep import OnnxEmbeddingFeatures

        return OnnxEmbeddingFeatures(model_path)
    if method == "combined":
        from .combined import combined_features

        return combined_features(model_path)
    return get_extractor(method)
