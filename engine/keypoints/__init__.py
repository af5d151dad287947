"""Keypoint registration under rotation and scale (issue 16): detection, description, matching, fitting."""
