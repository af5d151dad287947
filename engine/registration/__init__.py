"""Registration: one core shared by two front ends.

The core: :mod:`.transforms` (the kinds, one convention, fits), :mod:`.ransac` (the robust fit),
:mod:`.prepare` (image preparation), :mod:`.correlation` (NCC search), :mod:`.features` (dense
oriented gradients), :mod:`.georef` (the pair's common frame), :mod:`.tiepoints`, :mod:`.outputs`.
The fronts:

- :mod:`.shift` — shift co-registration (tie-point grid, FFT search per window, fitting limits and
  refusals, calibration, deep features): :func:`coregister`, and :func:`apply_transform` to apply a
  saved report or tie-point set.
- :mod:`.keypoints` — keypoint registration under rotation and scale: :func:`keypoint_register`.
"""

from __future__ import annotations

from .keypoints import KeypointResult, keypoint_register
from .shift import ApplyResult, CoregistrationResult, apply_transform, coregister

__all__ = ["ApplyResult", "CoregistrationResult", "KeypointResult", "apply_transform", "coregister",
           "keypoint_register"]
