"""Autoencoder variants and the factorised prior of the SAR codec."""

from __future__ import annotations

import math

import pytest
import torch

from training.compression.entropy import FactorizedPrior, bits_per_pixel
from training.compression.losses import LossWeights, rate_distortion
from training.compression.models import (
    MODEL_VARIANTS,
    ModelConfig,
    SarCodec,
    build_autoencoder,
    dct_basis,
)

torch.set_num_threads(1)  # tiny models; no OpenMP thread team to spin on a shared CPU

TINY = {"widths": (4, 6, 8), "latent_channels": 3}


@pytest.mark.parametrize("variant", sorted(MODEL_VARIANTS))
def test_variants_have_stride_16_and_sigmoid_output(variant: str) -> None:
    torch.manual_seed(0)
    ae = build_autoencoder(ModelConfig(variant=variant, **TINY)).eval()
    x = torch.rand(2, 1, 32, 48)
    y = ae.encoder(x)
    assert y.shape == (2, 3, 2, 3)
    x_hat = ae.decoder(torch.round(y))
    assert x_hat.shape == x.shape
    assert float(x_hat.min()) >= 0.0 and float(x_hat.max()) <= 1.0


@pytest.mark.parametrize("variant", sorted(MODEL_VARIANTS))
def test_encoder_ends_with_plain_conv(variant: str) -> None:
    ae = build_autoencoder(ModelConfig(variant=variant, **TINY))
    assert isinstance(ae.encoder.net[-1], torch.nn.Conv2d)


def test_variants_differ_in_structure() -> None:
    counts = {
        v: sum(p.numel() for p in build_autoencoder(ModelConfig(v, **TINY)).parameters())
        for v in MODEL_VARIANTS
    }
    assert counts["A"] < counts["B"] < counts["C"]
    assert counts["B"] < counts["D"]


def test_dct_basis_is_orthonormal_with_the_constant_first() -> None:
    basis = dct_basis(256).reshape(256, -1)
    assert torch.allclose(basis @ basis.T, torch.eye(256), atol=1e-5)
    assert torch.allclose(basis[0], torch.full((256,), 1 / 16))
    assert torch.count_nonzero(dct_basis(300)[256:]) == 0, "channels beyond the block are zero"


def test_variant_d_starts_as_a_transform_coder() -> None:
    """At initialisation D is the 16x16 DCT: lossless without rounding, uniform quantiser error with it."""
    torch.manual_seed(3)
    ae = build_autoencoder(ModelConfig("D", (4, 6, 8), 256, dct_step=0.05)).eval()
    x = 0.2 + 0.6 * torch.rand(2, 1, 64, 96)
    with torch.no_grad():
        y = ae.encoder(x)
        assert y.shape == (2, 256, 4, 6)
        assert torch.allclose(ae.decoder(y), x, atol=1e-5)
        mse = float(torch.mean((ae.decoder(torch.round(y)) - x) ** 2))
    expected = 0.05**2 / 12  # orthonormal transform: pixel MSE = coefficient MSE
    assert 0.7 * expected < mse < 1.3 * expected


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown model variant"):
        build_autoencoder(ModelConfig(variant="Z", **TINY))


def test_config_round_trip() -> None:
    cfg = ModelConfig("C", (8, 16, 24), 5)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    cfg_d = ModelConfig("D", (8, 16, 24), 5, dct_step=0.3)
    assert ModelConfig.from_dict(cfg_d.to_dict()) == cfg_d


def test_dct_step_must_be_positive() -> None:
    with pytest.raises(ValueError, match="dct_step must be > 0"):
        build_autoencoder(ModelConfig("D", (4, 6, 8), 3, dct_step=0.0))


def test_prior_likelihoods_are_probabilities_summing_to_one_over_integers() -> None:
    torch.manual_seed(0)
    prior = FactorizedPrior(3)
    grid = torch.arange(-400, 401, dtype=torch.float32).reshape(1, 1, -1, 1).expand(1, 3, -1, 1)
    lik = prior.likelihood(grid.contiguous())
    assert torch.all(lik > 0) and torch.all(lik <= 1)
    totals = lik.sum(dim=2).flatten()
    assert torch.allclose(totals, torch.ones(3), atol=1e-4)


def test_medians_split_the_mass_in_half() -> None:
    torch.manual_seed(1)
    prior = FactorizedPrior(2)
    m = prior.medians()
    logits = prior.logits_cdf(m.reshape(2, 1, 1))
    assert torch.allclose(torch.sigmoid(logits).flatten(), torch.full((2,), 0.5), atol=1e-4)


def test_noise_proxy_in_training_rounding_at_eval() -> None:
    torch.manual_seed(2)
    prior = FactorizedPrior(2)
    y = torch.randn(1, 2, 4, 4) * 3
    m = prior.medians().reshape(1, -1, 1, 1)
    y_rate, y_dec, _ = prior(y, noise=True)
    assert torch.all((y_rate - y).abs() <= 0.5) and not torch.equal(y_rate, y)
    assert torch.allclose(y_dec, torch.round(y - m) + m)
    y_rate_eval, _, _ = prior(y, noise=False)
    assert torch.allclose(y_rate_eval, torch.round(y - m) + m)


def test_straight_through_gradient_reaches_the_encoder_output() -> None:
    prior = FactorizedPrior(2)
    y = torch.randn(1, 2, 3, 3, requires_grad=True)
    _, y_dec, lik = prior(y, noise=True)
    (y_dec.sum() + bits_per_pixel(lik, 9)).backward()
    assert y.grad is not None and torch.all(y.grad.abs() > 0)


def test_discretised_table_covers_the_mass() -> None:
    torch.manual_seed(3)
    prior = FactorizedPrior(3)
    medians, offsets, pmfs = prior.discretise()
    assert len(medians) == len(offsets) == len(pmfs) == 3
    for pmf in pmfs:
        assert 1 - 1e-5 <= math.fsum(pmf) <= 1 + 1e-6
        assert all(p > 0 for p in pmf)


def test_rate_distortion_loss_trades_rate_against_distortion() -> None:
    torch.manual_seed(4)
    x = torch.rand(2, 1, 32, 32)
    bpp = torch.tensor(0.5)
    perfect = rate_distortion(x, x, bpp, LossWeights(lmbda=100.0))
    assert float(perfect.loss) == pytest.approx(0.5, abs=1e-5)
    noisy = rate_distortion(x, (x + 0.1).clamp(0, 1), bpp, LossWeights(lmbda=100.0))
    assert float(noisy.loss) > float(perfect.loss) and float(noisy.mse) > 0


def test_codec_forward_returns_reconstruction_and_likelihoods() -> None:
    torch.manual_seed(5)
    codec = SarCodec(ModelConfig("B", **TINY))
    x_hat, lik = codec(torch.rand(1, 1, 32, 32), noise=True)
    assert x_hat.shape == (1, 1, 32, 32) and lik.shape == (1, 3, 2, 2)
