"""The keypoint network: fixed structural prior, modality adapters, heads' ranges and shapes."""

from __future__ import annotations

import pytest
import torch

from training.keypoints.models import ModelConfig, build_model, derivative_of_gaussian_bank

TINY = ModelConfig(width=4, descriptor_dim=8, prior_sigmas=(1.0, 2.0), dilations=(1, 2))


def test_prior_bank_is_a_derivative_of_gaussian_basis() -> None:
    bank = derivative_of_gaussian_bank((1.0, 2.0)).double()  # Gx, Gy, Gxx, Gxy, Gyy per scale
    assert bank.shape == (10, 1, 13, 13)
    r = bank.shape[-1] // 2
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    y, x = torch.meshgrid(t, t, indexing="ij")
    for s in range(2):
        gx, gy, gxx, gxy, gyy = (bank[5 * s + i, 0] for i in range(5))
        # correlation with a ramp x gives -sigma * d/dx (a convolution kernel is flipped)
        assert float((gx * x).sum()) == pytest.approx(-(1.0, 2.0)[s], rel=0.05)
        assert abs(float((gx * y).sum())) < 1e-6 and abs(float((gy * x).sum())) < 1e-6
        # second order: blind to ramps and constants, sees x^2 and x*y
        for k in (gxx, gxy, gyy):
            assert abs(float((k * x).sum())) < 1e-6 and abs(float(k.sum())) < 1e-6
        assert float((gxx * x * x).sum()) > 0.5 and abs(float((gxx * y * y).sum())) < 0.5
        assert abs(float((gxy * x * y).sum())) > 0.5


def test_outputs_have_the_contract_shapes_and_ranges() -> None:
    net = build_model(TINY).eval()
    x = torch.rand(2, 1, 48, 64) * 2 - 1
    with torch.no_grad():
        rep, rel, desc = net(x, torch.tensor([[0.0], [1.0]]))
    assert rep.shape == rel.shape == (2, 1, 48, 64) and desc.shape == (2, 8, 48, 64)
    assert float(rep.min()) >= 0 and float(rep.max()) <= 1 and float(rel.min()) >= 0 and float(rel.max()) <= 1
    assert torch.allclose(desc.norm(dim=1), torch.ones(2, 48, 64), atol=1e-4)


def test_prior_is_fixed_and_modality_selects_an_adapter() -> None:
    net = build_model(TINY).eval()
    names = {n for n, _ in net.named_parameters()}
    assert not any(n.startswith("prior.") for n in names) and "prior.bank" in net.state_dict()
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        sar, opt = net(x, torch.zeros(1, 1))[2], net(x, torch.ones(1, 1))[2]
        assert not torch.allclose(sar, opt, atol=1e-3)
        # modality 0 uses the SAR adapter only: changing the optical adapter changes nothing
        for p in net.adapters[1].parameters():
            p.add_(1.0)
        assert torch.allclose(net(x, torch.zeros(1, 1))[2], sar, atol=1e-6)
        assert not torch.allclose(net(x, torch.ones(1, 1))[2], opt, atol=1e-3)


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="prior_sigmas"):
        ModelConfig(prior_sigmas=(0.0,))
    with pytest.raises(ValueError, match="width"):
        ModelConfig(width=2)
