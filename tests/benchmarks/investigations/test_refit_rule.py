"""The refit-rule investigation: the geometric refit lowers a homography's reprojection error, the summary."""

from __future__ import annotations

import numpy as np

from benchmarks.investigations.refit_rule import always, geometric, summary
from engine.registration.ransac import RansacResult
from engine.registration.transforms import fit_matrix, project, reprojection_errors


def _rms(h: np.ndarray, src: np.ndarray, dst: np.ndarray) -> float:
    return float(np.sqrt(np.mean(reprojection_errors(h, src, dst) ** 2)))


def test_geometric_refit_does_not_reproject_worse_than_the_dlt() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (40, 2))
    truth = np.array([[1.02, 0.05, 3.0], [-0.04, 0.97, -2.0], [3e-4, -2e-4, 1.0]])
    dst = project(truth, src) + rng.normal(0, 1.0, (40, 2))
    dlt = fit_matrix(src, dst, "homography")
    found = RansacResult(dlt, np.ones(40, bool), 0.0)
    assert _rms(geometric(dlt, found, src, dst), src, dst) <= _rms(dlt, src, dst)
    assert always(dlt, found, src, dst) is dlt
    # the engine's weighted refit passes its weights: equal ones change nothing
    weighted = geometric(dlt, found, src, dst, np.full(40, 2.0))
    np.testing.assert_allclose(weighted, geometric(dlt, found, src, dst), atol=1e-6)


def test_affine_refits_pass_through() -> None:
    affine = np.array([[1.0, 0.1, 2.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    found = RansacResult(affine, np.ones(3, bool), 0.0)
    assert geometric(affine, found, np.zeros((3, 2)), np.zeros((3, 2))) is affine


def test_summary_counts_wrong_apart_from_refused() -> None:
    line = summary("sar-sar", "always", np.array([0.5, 1.5, 7.0, np.inf]))
    assert line == ("sar-sar always: 4 cases, correct 2, wrong 1, refused 1; corner error of the correct: "
                    "mean 1.000, median 1.000 px")
