"""Registration: one core shared by two front ends.

- :mod:`.shift` — shift co-registration (dense features, FFT search, tie-point grid, fitted transform):
  :func:`coregister`, and :func:`apply_transform` to apply a saved report or tie-point set.
- :mod:`.keypoints` — keypoint registration under rotation and scale: :func:`keypoint_register`.
"""

from __future__ import annotations

from .keypoints import KeypointResult, keypoint_register
from .shift import ApplyResult, CoregistrationResult, apply_transform, coregister

__all__ = ["ApplyResult", "CoregistrationResult", "KeypointResult", "apply_transform", "coregister",
           "keypoint_register"]
