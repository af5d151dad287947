"""Pix2pix networks: shapes, output range, the 70 px receptive field of the PatchGAN, losses."""

from __future__ import annotations

import pytest
import torch

from training.translation.losses import LossConfig, discriminator_loss, generator_loss, mean_colour_l1
from training.translation.models import ModelConfig, PatchDiscriminator, UNetGenerator, build_models


def test_generator_8_levels_shape_range_and_skips() -> None:
    torch.manual_seed(0)
    g, _ = build_models(ModelConfig(ngf=4, ndf=4))
    assert len(g.downs) == 8 and len(g.ups) == 7
    g.eval()
    x = torch.rand(2, 1, 256, 256)
    y = g(x)
    assert y.shape == (2, 3, 256, 256) and y.abs().max() <= 1.0
    # transposed-convolution upsampling
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules()) == 8
    # the skip connections carry fine detail: a one-pixel change moves the output near that pixel
    x2 = x.clone()
    x2[:, :, 100, 100] += 0.5
    diff = (g(x2) - y).abs().sum(dim=(0, 1))
    assert diff[96:104, 96:104].sum() > 0 and diff[96:104, 96:104].sum() > diff[:16, :16].sum()


def test_each_architecture_record_gives_its_input_rule_description_and_generator() -> None:
    from training.translation.colourise import ColouriseGenerator
    from training.translation.models import ARCHITECTURES, GENERATORS

    assert ARCHITECTURES == tuple(GENERATORS) == ("unet", "colourise")
    unet = ModelConfig(n_down=3, ngf=4)
    assert (unet.multiple, unet.multiple_rule) == (8, "2**n_down")
    assert unet.describe() == "pix2pix U-Net, 3 levels, ngf 4"
    plain = ModelConfig(arch="colourise", ngf=4, colour_stride=8)
    floor = ModelConfig(arch="colourise", ngf=4, colour_stride=8, detail_gain_floor=0.5)
    assert (plain.multiple, plain.multiple_rule) == (8, "the colour stride")
    assert (floor.multiple, floor.multiple_rule) == (32, "4 x the colour stride")
    assert "learned tone curve" in plain.describe() and "gain >= 0.5" in floor.describe()
    assert isinstance(build_models(unet)[0], UNetGenerator)
    assert isinstance(build_models(plain)[0], ColouriseGenerator)
    with pytest.raises(ValueError, match="Unknown generator 'resnet'; use one of unet, colourise"):
        _ = ModelConfig(arch="resnet").multiple  # it was taken for a U-Net


def test_generator_rejects_too_few_levels() -> None:
    with pytest.raises(ValueError, match="n_down"):
        UNetGenerator(ModelConfig(n_down=1))


@pytest.mark.parametrize("spectral", [False, True])
def test_patchgan_has_a_70_pixel_receptive_field(spectral: bool) -> None:
    torch.manual_seed(0)
    d = PatchDiscriminator(ModelConfig(ndf=4, spectral_norm=spectral))
    d.eval()
    sar = torch.rand(1, 1, 256, 256, requires_grad=True)
    rgb = torch.rand(1, 3, 256, 256)
    logits = d(sar, rgb)
    assert logits.shape == (1, 1, 30, 30)
    logits[0, 0, 15, 15].backward()
    assert sar.grad is not None
    rows = torch.nonzero(sar.grad[0, 0].abs().sum(dim=1)).flatten()
    cols = torch.nonzero(sar.grad[0, 0].abs().sum(dim=0)).flatten()
    assert int(rows.max() - rows.min() + 1) == 70 and int(cols.max() - cols.min() + 1) == 70
    if spectral:
        assert any(hasattr(m, "weight_orig") for m in d.modules())


def test_losses_l1_weight_and_ssim_term() -> None:
    torch.manual_seed(0)
    fake, target = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    logits = torch.zeros(2, 1, 4, 4)
    total, _ = generator_loss(logits, fake, target, LossConfig(l1_weight=100.0))
    l1 = (fake - target).abs().mean()
    assert float(total) == pytest.approx(float(torch.log(torch.tensor(2.0)) + 100 * l1), rel=1e-5)
    total_s, parts_s = generator_loss(logits, fake, target, LossConfig(ssim_weight=10.0))
    assert abs(parts_s["g_ssim"]) < 0.1  # unrelated noise
    assert float(total_s) == pytest.approx(float(total) + 10 * (1 - parts_s["g_ssim"]), rel=1e-5)
    _, parts_same = generator_loss(logits, target, target, LossConfig(ssim_weight=1.0))
    assert parts_same["g_ssim"] == pytest.approx(1.0, abs=1e-4) and parts_same["g_l1"] == 0
    # the discriminator loss is lowest when it tells real (high logits) from fake (low logits)
    good = discriminator_loss(torch.full((1, 1, 2, 2), 5.0), torch.full((1, 1, 2, 2), -5.0))
    bad = discriminator_loss(torch.full((1, 1, 2, 2), -5.0), torch.full((1, 1, 2, 2), 5.0))
    assert float(good) < 0.01 < 4 < float(bad)


def test_losses_without_gan_and_with_the_mean_colour_term() -> None:
    torch.manual_seed(0)
    fake, target = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    l1 = float((fake - target).abs().mean())
    total, parts = generator_loss(None, fake, target, LossConfig(l1_weight=10.0, gan_weight=0.0))
    assert float(total) == pytest.approx(10 * l1, rel=1e-6) and "g_gan" not in parts
    # mean-colour term: a constant offset of 0.2 on one channel of both images -> 0.2 / 3
    shifted = target.clone()
    shifted[:, 1] += 0.2
    assert float(mean_colour_l1(shifted, target)) == pytest.approx(0.2 / 3, rel=1e-5)
    total_c, parts_c = generator_loss(
        None, shifted, target, LossConfig(l1_weight=0.0, gan_weight=0.0, colour_weight=3.0)
    )
    assert float(total_c) == pytest.approx(0.2, rel=1e-5) and parts_c["g_colour"] == pytest.approx(
        0.2 / 3, rel=1e-5
    )
    with pytest.raises(ValueError, match="logits"):
        generator_loss(None, fake, target, LossConfig())
