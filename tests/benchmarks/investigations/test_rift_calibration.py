"""The RIFT calibration split: its cases' truth aligns them, and no benchmark seed is used."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks import keypoints
from benchmarks.investigations import rift_calibration
from engine.registration.keypoints.warp import warp_onto

BENCHMARK_SEEDS = {*keypoints.MOS_SEEDS, 2000, 3000, 4000, 4100}  # 3MOS rounds, OSdataset, GF-3, synthetic


def test_calibration_seeds_are_not_the_benchmark_seeds() -> None:
    used = BENCHMARK_SEEDS
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


def test_cfog_hopc_seeds_are_not_the_benchmark_or_other_calibration_seeds() -> None:
    used = {*BENCHMARK_SEEDS, rift_calibration.SEED, rift_calibration.SYNTHETIC_SEED}
    assert all(abs(seed - rift_calibration.CFOG_SEED) >= 1000 for seed in used)


def _affine() -> np.ndarray:
    return np.array([[1.04, 0.03, 6.5], [-0.025, 0.97, -3.25], [0.0, 0.0, 1.0]])


def _fake_cfog_folder(folder: Path) -> np.ndarray:
    """A cfog_hopc-like pair 'A': a textured SAR, the optical = the SAR moved by a known affine (SAR ->
    optical pixel corners), and a check-point file of that affine (1-based pixel centres); the SAR."""
    from PIL import Image
    from scipy import ndimage

    rng = np.random.default_rng(5)
    sar = ndimage.gaussian_filter(rng.normal(size=(560, 560)), 3)
    sar = (255 * (sar - sar.min()) / np.ptp(sar)).astype(np.float32)
    opt, _ = warp_onto(sar, np.ones(sar.shape, bool), _affine(), sar.shape)
    folder.mkdir()
    Image.fromarray(sar.astype(np.uint8)).save(folder / "SAR_sen.png")
    Image.fromarray(np.clip(opt, 0, 255).astype(np.uint8)).save(folder / "optical_ref.png")
    sen = rng.uniform(20, 540, (40, 2))
    ref = (np.c_[sen - 0.5, np.ones(40)] @ _affine().T)[:, :2] + 0.5
    np.savetxt(folder / "OpticaltoSAR_CP.txt", np.c_[ref, sen], fmt="%.4f")
    return sar


def test_cfog_truth_is_the_affine_of_the_check_points(tmp_path: Path) -> None:
    _fake_cfog_folder(tmp_path / "cfog_hopc")
    points = np.loadtxt(tmp_path / "cfog_hopc" / "OpticaltoSAR_CP.txt")
    np.testing.assert_allclose(rift_calibration.cfog_truth(points), _affine(), atol=1e-4)


def test_a_cfog_hopc_case_is_aligned_by_its_truth(tmp_path: Path) -> None:
    _fake_cfog_folder(tmp_path / "cfog_hopc")
    cases = list(rift_calibration.cfog_hopc_cases(tmp_path, 8))
    # pooled crops and crops far from the image's origin, where a wrong pooling or crop offset shows
    assert any("x2/" in c.name for c in cases) and any(int(c.name.split("@")[1].split(",")[0]) > 100
                                                        for c in cases)
    for case in cases:
        assert case.truth is not None
        rows, cols = case.ref.shape
        back, ok = warp_onto(case.inp, case.inp_valid, case.truth, (rows, cols))
        inner = ok & np.pad(np.ones((rows - 32, cols - 32), bool), 16)
        aligned = np.corrcoef(back[inner], case.ref[inner])[0, 1]
        shifted = np.corrcoef(back[inner], np.roll(case.ref, 5, axis=1)[inner])[0, 1]
        assert aligned > 0.9 and aligned > shifted + 0.2, case.name


def test_half_empty_cases_lose_one_half_of_their_input_and_keep_their_truth() -> None:
    cases = list(rift_calibration.synthetic_cases(4, side=64))
    for case, emptied in zip(cases, rift_calibration.half_empty(cases), strict=True):
        assert emptied.truth is case.truth and emptied.ref is case.ref
        assert emptied.name.startswith(f"{case.name}-half")
        lost = case.inp_valid & ~emptied.inp_valid
        assert abs(lost.sum() - case.inp_valid.sum() / 2) < 0.2 * case.inp_valid.sum()
        assert not emptied.inp[~emptied.inp_valid].any()
