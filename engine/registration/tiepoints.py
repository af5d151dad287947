"""Tie points: what both front ends measure, fit and write (:mod:`.outputs`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TiePoint:
    """One measurement: INPUT position (pixel-corner coordinates) and shift to the reference."""

    x: float
    y: float
    dx: float
    dy: float
    score: float
    reliability: float
    at_limit: bool
    distinctness: float = float("inf")

    @property
    def ref_x(self) -> float:
        return self.x + self.dx

    @property
    def ref_y(self) -> float:
        return self.y + self.dy


def as_arrays(points: list[TiePoint]) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) input positions and (n, 2) reference positions."""
    src = np.array([[p.x, p.y] for p in points], dtype=np.float64).reshape(-1, 2)
    dst = np.array([[p.ref_x, p.ref_y] for p in points], dtype=np.float64).reshape(-1, 2)
    return src, dst
