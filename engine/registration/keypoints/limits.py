"""Acceptance limits the keypoint front's stages share (keypoint fit and dense fine stage).

Each stage's own tuning stays in its module; what two stages must agree on is defined here once.
"""

MIN_INLIERS = 8
"""A fit (keypoint or dense) is accepted with at least this many RANSAC inliers."""
FINE_THRESHOLD = 3.0
"""RANSAC inlier threshold (REFERENCE pixels) of the fine fits: the keypoint fine passes and the
dense fine stage; also how far the dense stage may move an accepted SAR-SAR keypoint fit."""
