"""The fine-stage model-choice investigation: refits of recorded inliers, scored against the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.investigations.fine_model_choice import merged, rule_errors, source
from engine.registration.transforms import project


def _record() -> dict[str, np.ndarray]:
    """Two cases of 128 px: one answered (inliers exactly on a homography with perspective, the
    registration's own matrix 2 px off), one refused."""
    truth = np.array([[1.05, 0.08, 3.0], [-0.06, 0.97, -2.0], [4e-4, -3e-4, 1.0]])
    src = np.random.default_rng(1).uniform(10, 118, (40, 2))
    off = truth.copy()
    off[:2, 2] += 2.0
    return {"name": np.array(["SEN_city_2-f0", "pair2-f1"]), "truth": np.stack([truth, np.eye(3)]),
            "size": np.array([[128.0, 128.0]] * 2), "matrix": np.stack([off, np.full((3, 3), np.nan)]),
            "count": np.array([40, 0]), "src": src, "dst": project(truth, src)}


def test_refits_are_scored_against_the_truth_and_refusals_stay_refused() -> None:
    errors = rule_errors(_record())
    assert abs(errors["default"][0] - 2.0 * np.sqrt(2.0)) < 0.2  # the recorded matrix, 2 px off in x and y
    assert errors["homography"][0] < 1e-6 and errors["held-out"][0] < 1e-6
    assert errors["similarity"][0] > 1.0  # shear and perspective a similarity cannot follow
    assert all(np.isinf(e[1]) for e in errors.values())


def test_records_of_several_runs_are_merged(tmp_path: Path) -> None:
    rec = _record()
    for name in ("a", "b"):
        np.savez(tmp_path / f"{name}.npz", **rec)
    both = merged([tmp_path / "a.npz", tmp_path / "b.npz"])
    assert len(both["name"]) == 4 and len(both["src"]) == 80
    assert np.isfinite(rule_errors(both)["homography"][2])


def test_case_names_map_to_their_sets() -> None:
    names = ("cfogA3@1,6x2/256", "os12@5,6x1/256", "seed61000", "pair2-h1", "SEN_water_3")
    assert [source(n) for n in names] == ["cfog_hopc", "os_sift", "synthetic", "OSdataset", "3MOS"]
