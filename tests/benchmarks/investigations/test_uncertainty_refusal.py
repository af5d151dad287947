"""The uncertainty-refusal investigation: outcome counts under a threshold and the calibrated choice."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.investigations.uncertainty_refusal import choose_threshold, outcome_counts_at

INF = float("inf")


def _rows() -> list[dict[str, Any]]:
    # (corner error, largest corner uncertainty): three correct, two wrong, one refused, one unknown spread
    pairs = [(0.5, 0.2), (1.0, 0.4), (2.0, 0.9), (4.0, 0.6), (9.0, 2.0), (INF, INF), (1.0, float("nan"))]
    return [{"error": e, "uncertainty": u} for e, u in pairs]


def test_answers_above_a_threshold_or_without_a_spread_are_refused() -> None:
    assert outcome_counts_at(_rows(), INF) == {"correct": 4, "wrong": 2, "refused": 1}
    assert outcome_counts_at(_rows(), 0.6) == {"correct": 2, "wrong": 1, "refused": 4}
    assert outcome_counts_at(_rows(), 0.5) == {"correct": 2, "wrong": 0, "refused": 5}


def test_the_largest_threshold_within_the_wrong_share_is_chosen() -> None:
    assert choose_threshold(_rows(), wrong_share=0.0) == 0.4
    assert choose_threshold(_rows(), wrong_share=0.5) == 2.0
    assert choose_threshold([{"error": 5.0, "uncertainty": 0.1}], wrong_share=0.0) == 0.0


def test_the_fresh_split_draws_seeds_no_benchmark_draws() -> None:
    from benchmarks import keypoints
    from benchmarks.investigations import rift_calibration, uncertainty_refusal

    used = {*keypoints.MOS_SEEDS, 2000, 3000, 4000, 4100, rift_calibration.SEED,
            rift_calibration.SYNTHETIC_SEED, rift_calibration.CFOG_SEED}
    fresh = {*uncertainty_refusal.FRESH_3MOS_SEEDS, uncertainty_refusal.FRESH_OSDATASET_SEED}
    assert all(abs(a - b) >= 1000 for a in fresh for b in used)


def test_the_fresh_split_asks_for_the_fresh_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    from pathlib import Path

    from benchmarks.investigations import uncertainty_refusal as split

    asked: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(split, "cases_3mos", lambda *a, **k: asked.append(("3mos", a, k)) or [])
    monkeypatch.setattr(split, "cases_osdataset", lambda *a, **k: asked.append(("os", a, k)) or [])
    split.split_cases(argparse.Namespace(split="fresh", data=Path("data")))
    assert asked == [("3mos", (Path("data"), 15), {"seeds": split.FRESH_3MOS_SEEDS, "tag": "f"}),
                     ("os", (Path("data"), split.FRESH_OSDATASET_COUNT, split.FRESH_OSDATASET_SEED),
                      {"tag": "f"})]
