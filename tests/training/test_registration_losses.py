"""Losses of the registration encoder: contrastive (design loss), shift-NCE, regression."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from training.registration.losses import (
    LossConfig,
    contrastive_loss,
    correlation_scores,
    phase1_loss,
    regression_loss,
    shift_nce_loss,
)


def _emb(n: int = 2, d: int = 8, h: int = 24, w: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, h, w, generator=g), dim=1)


def test_identical_embeddings_give_zero_positive_loss() -> None:
    a = _emb()
    mask = torch.rand(2, 24, 24)
    assert float(contrastive_loss(a, a.clone(), torch.ones(2), mask, margin=0.3)) == pytest.approx(
        0.0, abs=1e-6
    )


def test_identical_embeddings_as_negatives_pay_the_margin() -> None:
    a = _emb()
    loss = contrastive_loss(a, a.clone(), torch.zeros(2), torch.ones(2, 24, 24), margin=0.3)
    assert float(loss) == pytest.approx((1.0 - 0.3) ** 2, rel=1e-5)


def test_negatives_below_margin_cost_nothing_and_opposite_positives_cost_most() -> None:
    a = _emb()
    mask = torch.ones(2, 24, 24)
    assert float(contrastive_loss(a, -a, torch.zeros(2), mask, margin=0.3)) == 0.0
    assert float(contrastive_loss(a, -a, torch.ones(2), mask, margin=0.3)) == pytest.approx(4.0, rel=1e-5)


def test_mask_weights_select_locations() -> None:
    a = _emb(n=1)
    b = a.clone()
    b[:, :, :, 12:] = -b[:, :, :, 12:]  # right half anti-aligned
    left = torch.zeros(1, 24, 24)
    left[:, :, :12] = 1.0
    right = 1.0 - left
    y = torch.ones(1)
    assert float(contrastive_loss(a, b, y, left, 0.3)) == pytest.approx(0.0, abs=1e-6)
    assert float(contrastive_loss(a, b, y, right, 0.3)) == pytest.approx(4.0, rel=1e-5)


def test_correlation_scores_peak_at_the_true_shift() -> None:
    a = _emb(n=1, h=32, w=32)
    r = 4
    scores = correlation_scores(a[:, :, r:-r, r:-r], a)
    iy, ix = divmod(int(scores.flatten(1).argmax()), scores.shape[-1])
    assert (iy, ix) == (r, r)
    assert float(scores[0, r, r]) == pytest.approx(1.0, rel=1e-5)


def test_shift_nce_prefers_aligned_maps() -> None:
    a = _emb(n=2, h=32, w=32)
    aligned = shift_nce_loss(a, a.clone(), radius=4, temperature=0.1)
    moved = shift_nce_loss(a, torch.roll(a, shifts=(2, 3), dims=(2, 3)), radius=4, temperature=0.1)
    assert float(aligned) < 0.01 < float(moved)
    with pytest.raises(ValueError, match="too small"):
        shift_nce_loss(a[:, :, :8, :8], a[:, :, :8, :8], radius=4, temperature=0.1)


def test_phase1_loss_combines_terms_and_skips_nce_without_positives() -> None:
    a = _emb(n=2, h=32, w=32)
    cfg = LossConfig(margin=0.3, w_contrastive=1.0, w_nce=0.5, nce_radius=4)
    mask = torch.ones(2, 32, 32)
    total, parts = phase1_loss(a, a.clone(), torch.zeros(2), mask, cfg)
    assert "nce" not in parts and float(total) == pytest.approx(parts["contrastive"])
    total, parts = phase1_loss(a, a.clone(), torch.ones(2), mask, cfg)
    assert parts["total"] == pytest.approx(parts["contrastive"] + 0.5 * parts["nce"], rel=1e-5)


def test_regression_loss_is_zero_only_for_exact_shifts() -> None:
    t = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    assert float(regression_loss(t, t)) == 0.0
    assert float(regression_loss(t + 1.0, t)) > 0.0


def test_ncc_scores_are_the_engine_search_score() -> None:

    from engine.registration.correlation import _ncc_surface
    from training.registration.losses import ncc_scores

    g = torch.Generator().manual_seed(3)
    template, search = torch.randn(2, 5, 16, 20, generator=g), torch.randn(2, 5, 24, 28, generator=g)
    got = ncc_scores(template, search).numpy()
    for i in range(2):
        ref = _ncc_surface(template[i].numpy().astype(np.float64), search[i].numpy().astype(np.float64))[0]
        assert got[i].shape == ref.shape == (9, 9)
        assert np.allclose(got[i], ref, atol=1e-5)


def test_ncc_shift_loss_prefers_the_true_shift() -> None:
    from training.registration.losses import ncc_shift_loss

    r = 4
    maps = torch.randn(3, 6, 32, 32, generator=torch.Generator().manual_seed(4))
    aligned, _ = ncc_shift_loss(maps[..., r:-r, r:-r], maps, r, temperature=0.05)
    moved = torch.roll(maps, shifts=(2, -1), dims=(2, 3))  # content moves down 2, left 1
    misaligned, _ = ncc_shift_loss(maps[..., r:-r, r:-r], moved, r, temperature=0.05)
    assert float(aligned) < 0.01 < 5.0 < float(misaligned)
    told = torch.tensor([[-1.0, 2.0]]).repeat(3, 1)  # (dx, dy) of the template in the moved map
    known, parts = ncc_shift_loss(maps[..., r:-r, r:-r], moved, r, temperature=0.05, shifts=told)
    assert float(known) < 0.01 and parts["total"] == pytest.approx(float(known))
    with pytest.raises(ValueError, match="do not fit"):
        ncc_shift_loss(maps[..., r:-r, r:-r], maps, r + 1, temperature=0.05)


def test_bilinear_shift_target_splits_the_true_shift() -> None:
    from training.registration.losses import bilinear_shift_target

    t = bilinear_shift_target(torch.tensor([[0.25, -0.5], [0.0, 0.0]]), 7)
    assert t.shape == (2, 7, 7) and torch.allclose(t.sum(dim=(1, 2)), torch.ones(2))
    # dx = 0.25 -> columns 3 (0.75) and 4 (0.25); dy = -0.5 -> rows 2 and 3 (0.5 each)
    assert t[0, 2, 3] == pytest.approx(0.375) and t[0, 3, 4] == pytest.approx(0.125)
    assert t[1, 3, 3] == 1.0
    with pytest.raises(ValueError, match="within"):
        bilinear_shift_target(torch.tensor([[3.0, 0.0]]), 7)


def test_subpixel_loss_measures_the_parabola_peak() -> None:
    from training.registration.losses import parabola_offsets, subpixel_loss

    yy, xx = torch.meshgrid(torch.arange(9.0) - 4, torch.arange(9.0) - 4, indexing="ij")
    true = torch.tensor([[0.3, -1.2], [-0.45, 0.1]])
    scores = torch.stack([-((xx - x) ** 2) - (yy - y) ** 2 for x, y in true.tolist()])
    assert torch.allclose(parabola_offsets(scores, true), true, atol=1e-5)
    assert float(subpixel_loss(scores, true)) < 1e-5
    assert float(subpixel_loss(scores, true + 0.2)) == pytest.approx(0.4, abs=1e-4)


def test_smooth_embedding_is_the_engines_match_smoothing() -> None:
    from scipy import ndimage

    from training.registration.losses import smooth_embedding

    x = torch.randn(2, 3, 20, 24, generator=torch.Generator().manual_seed(6))
    got = smooth_embedding(x, 0.75).numpy()
    expected = ndimage.gaussian_filter(x.numpy(), (0, 0, 0.75, 0.75), mode="nearest")
    assert np.allclose(got, expected, atol=1e-5)
    assert smooth_embedding(x, 0.0) is x
