"""The keypoint-supported acceptance rules of the RIFT calibration: what each answers on recorded rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.investigations import rift_support


def _shift(dx: float) -> list[list[float]]:
    return [[1.0, 0.0, dx], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def _rows() -> list[dict[str, Any]]:
    """The RIFT inliers of every row say 'identity'; each case's answer or dense fits are shifts."""
    xy = np.random.default_rng(0).uniform(0, 200, (40, 2)).tolist()

    def row(name: str, coarse: int, **kw: Any) -> dict[str, Any]:
        return {"case": name, "kp_stages": {"coarse_inliers": coarse}, "kp_inliers": 5 * coarse,
                "kp_src": xy, "kp_dst": xy, "dense": []} | kw

    return [
        row("right", 30, answer=_shift(1.0), error=1.0),
        row("wrong", 20, answer=_shift(7.0), error=9.0),  # the strongly supported RIFT fit says otherwise
        row("rescued", 12, refused="too few", dense=[  # refused; one dense fit agrees, one does not
            {"matrix": _shift(1.5), "error": 2.0, "inliers": 40, "sharp": False},
            {"matrix": _shift(30.0), "error": 50.0, "inliers": 60, "sharp": False}]),
        row("weak", 5, answer=_shift(9.0), error=8.0),
    ]


def test_each_rule_answers_what_its_doc_says() -> None:
    rows = _rows()
    at = ("coarse", 10, "median", 3.0)
    assert rift_support.counts(rows, "none", at) == (3, 1, 2)
    assert rift_support.counts(rows, "refuse", at) == (2, 1, 1)  # 'wrong' refused, 'weak' not supported
    assert rift_support.counts(rows, "accept", at) == (4, 2, 2)  # 'rescued' by its agreeing fit
    assert rift_support.counts(rows, "both", at) == (3, 2, 1)
    assert rift_support.counts(rows, "both", ("coarse", 25, "median", 3.0)) == (3, 1, 2)  # only right
    assert rift_support.counts(rows, "refuse", ("coarse", 10, "median", 8.0)) == (3, 1, 2)  # 7 px agrees
    assert rift_support.counts(rows, "refuse", ("guided", 60, "outside", 0.5)) == (2, 1, 1)  # 5 x 20 >= 60
    assert rift_support.disagreement(_shift(2.0), rows[0], "median") == 2.0
    assert rift_support.disagreement(_shift(4.0), rows[0], "outside") == 1.0
