"""Pairs, crop sampler and evaluation protocol of the registration training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data.pairs import split_held_out
from training.registration.data import (
    HELD_OUT,
    DataConfig,
    PairImage,
    PairSampler,
    gaussian_mask,
    load_opt_sar_3mos,
    pool_mask,
)
from training.registration.evaluate import Trial, apply_shift, run_trial, summarise

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"


def _pair(seed: int, size: int = 96, name: str = "p") -> PairImage:
    """Identical smooth positive images (no log compression) as SAR and a 2-band optical."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.random((size, size)), 2.0).astype(np.float32) * 100 + 50
    return PairImage(name, img, np.stack([img, img]), "synthetic")


def test_gaussian_mask_peaks_at_centre_and_pools() -> None:
    m = gaussian_mask(9, 2.0)
    assert m.shape == (9, 9) and m[4, 4] == pytest.approx(1.0) and m.argmax() == 40
    assert pool_mask(gaussian_mask(8, 2.0), 2).shape == (4, 4)


def test_sampler_batches_have_the_right_shapes_and_both_labels() -> None:
    cfg = DataConfig(use_real=False, synthetic_pairs=0, patch=64, neg_min=3, neg_max=8)
    s = PairSampler([], [_pair(0), _pair(1)], cfg, crop=32, out_stride=2, seed=0)
    b = s.batch(16)
    assert b.a.shape == b.b.shape == (16, 1, 32, 32)
    assert b.mask.shape == (16, 16, 16) and (b.mask > 0).all()
    assert set(b.y.tolist()) == {0.0, 1.0}
    pos = b.y == 1
    assert np.allclose(b.a[pos], b.b[pos])  # identical images: positives match exactly
    assert not np.allclose(b.a[~pos], b.b[~pos])


def test_sampler_is_seeded() -> None:
    cfg = DataConfig(use_real=False, synthetic_pairs=0, patch=64, neg_max=8)
    one = PairSampler([], [_pair(0)], cfg, crop=32, out_stride=1, seed=3).batch(4)
    two = PairSampler([], [_pair(0)], cfg, crop=32, out_stride=1, seed=3).batch(4)
    assert np.array_equal(one.a, two.a) and np.array_equal(one.y, two.y)


def test_shift_batch_follows_the_engine_convention() -> None:
    cfg = DataConfig(use_real=False, synthetic_pairs=0, augment=False)
    s = PairSampler([], [_pair(2)], cfg, crop=32, out_stride=1, seed=1)
    b = s.shift_batch(6, radius=5)
    for a, ref, (tx, ty) in zip(b.a[:, 0], b.b[:, 0], b.shift.astype(int), strict=True):
        # content at (x, y) of a lies at (x + tx, y + ty) in b
        ys, xs = slice(max(0, -ty), 32 - max(0, ty)), slice(max(0, -tx), 32 - max(0, tx))
        yd, xd = slice(ys.start + ty, ys.stop + ty), slice(xs.start + tx, xs.stop + tx)
        assert np.allclose(a[ys, xs], ref[yd, xd])


def test_subpixel_positives_follow_the_engine_convention() -> None:
    from engine.registration.correlation import match
    from engine.registration.features import OrientedGradientFeatures

    cfg = DataConfig(use_real=False, synthetic_pairs=0, patch=64, neg_max=8, subpixel=0.5)
    sampler = PairSampler([], [_pair(3, size=128)], cfg, crop=48, out_stride=1, seed=5)
    b = sampler.batch(6, positives_only=True)
    assert b.a.shape == b.b.shape == (6, 1, 48, 48) and b.shift.shape == (6, 2)
    assert np.abs(b.shift).max() <= 0.5 and np.abs(b.shift).min() > 0  # sub-pixel, random
    feats, r = OrientedGradientFeatures(), 6
    ok = np.ones((48, 48), bool)
    for a, ref, (dx, dy) in zip(b.a[:, 0], b.b[:, 0], b.shift, strict=True):
        # the engine finds the centre of the SAR crop at (dx, dy) in the optical crop
        m = match(feats(a[r:-r, r:-r], ok[r:-r, r:-r]), feats(ref, ok), r)
        assert abs(m.dx - dx) < 0.1 and abs(m.dy - dy) < 0.1


def test_sampler_rejects_pairs_smaller_than_crop_and_negatives() -> None:
    cfg = DataConfig(use_real=False, synthetic_pairs=0, neg_max=24)
    with pytest.raises(ValueError, match="smaller than crop"):
        PairSampler([], [_pair(0, size=64)], cfg, crop=32, out_stride=1, seed=0)
    with pytest.raises(ValueError, match="No training pairs"):
        PairSampler([], [], cfg, crop=32, out_stride=1, seed=0)


def test_missing_real_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--no-real"):
        load_opt_sar_3mos(tmp_path)


@pytest.mark.skipif(not (REAL / "opt_sar_3mos").is_dir(), reason="shared real data absent")
def test_real_split_keeps_the_held_out_pairs_apart() -> None:
    pairs = load_opt_sar_3mos(REAL)
    train, held = split_held_out(pairs, HELD_OUT)
    assert {p.name for p in held} == set(HELD_OUT)
    assert not {p.name for p in train} & set(HELD_OUT)
    assert all(p.name.startswith("SEN_city") is False for p in train)
    assert held[0].sar.shape == (256, 256) and held[0].optical.shape == (3, 256, 256)


def test_apply_shift_moves_content_right_and_down() -> None:
    img = np.zeros((32, 32), np.float32)
    img[10, 10] = 1.0
    out = apply_shift(img, 3.0, 2.0)
    assert np.unravel_index(int(out.argmax()), out.shape) == (12, 13)


@pytest.mark.parametrize("window", [0, 48])
def test_run_trial_recovers_a_known_shift_with_the_classical_method(window: int) -> None:
    from engine.registration.features import get_extractor

    ref = _pair(4, size=128).sar
    trial = Trial("synthetic", "t", apply_shift(ref, 2.4, -1.7), ref, 2.4, -1.7, row=40, col=40)
    row = run_trial(get_extractor("classical"), trial, search=16, window=window)
    assert row["true_dx"] == pytest.approx(-2.4) and row["true_dy"] == pytest.approx(1.7)
    assert row["error"] < 0.3


def test_summarise_counts_successes() -> None:
    rows = [{"error": e, "seconds": 1.0} for e in (0.2, 0.8, 2.0, 10.0)]
    s = summarise(rows)
    assert s["n"] == 4 and s["median_px"] == pytest.approx(1.4)
    assert s["success_lt1"] == 0.5 and s["success_lt3"] == 0.75
