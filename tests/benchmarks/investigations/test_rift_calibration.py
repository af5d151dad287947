"""The RIFT calibration split: its cases' truth aligns them, and no benchmark seed is used."""

from __future__ import annotations

import numpy as np

from benchmarks import keypoints
from benchmarks.investigations import rift_calibration
from engine.registration.keypoints.warp import warp_onto


def test_calibration_seeds_are_not_the_benchmark_seeds() -> None:
    used = {*keypoints.MOS_SEEDS, 2000, 3000, 4000, 4100}  # 3MOS rounds, OSdataset, GF-3, synthetic
    first = min(rift_calibration.SEED, rift_calibration.SYNTHETIC_SEED)
    assert all(seed + 1000 <= first for seed in used)  # each benchmark round uses at most 1000 seeds


def test_a_synthetic_calibration_case_is_aligned_by_its_truth() -> None:
    case = next(rift_calibration.synthetic_cases(1, side=96))
    assert case.truth is not None
    # the INPUT resampled onto the REFERENCE grid by the truth is the scene's SAR again: it correlates
    # with the SAR of the same seed, not with a shifted copy
    from engine.synthetic import generate_scene_pair

    sar = np.asarray(generate_scene_pair(96, 96, seed=rift_calibration.SYNTHETIC_SEED).sar, np.float32)
    sar = sar.reshape(96, 96)
    back, ok = warp_onto(case.inp, case.inp_valid, case.truth, (96, 96))
    inner = ok & np.pad(np.ones((80, 80), bool), 8)
    aligned = np.corrcoef(back[inner], sar[inner])[0, 1]
    shifted = np.corrcoef(back[inner], np.roll(sar, 3, axis=1)[inner])[0, 1]
    assert aligned > 0.8 and aligned > shifted + 0.2
