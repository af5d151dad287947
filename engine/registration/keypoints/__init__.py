"""Keypoint registration under rotation and scale (issue 16): detection, description, matching, fitting.

Entry point: :func:`keypoint_register` (files in, tie points / GCP file / report / resampled raster out).
"""

from __future__ import annotations

from .api import KeypointResult, keypoint_register

__all__ = ["KeypointResult", "keypoint_register"]
