"""Colourisation generator: detail from the SAR at full resolution, colour from the low-resolution branch,
the structure loss, and train/export end to end through the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.runtime import OnnxModel
from engine.translation import translate_array
from training.translation.cli import main
from training.translation.colourise import ColouriseGenerator, gaussian_kernel
from training.translation.losses import LossConfig, generator_loss, structure_loss
from training.translation.models import ModelConfig, build_models
from training.translation.train import generator_from_checkpoint, load_checkpoint

CONFIG = ModelConfig(arch="colourise", ngf=4, colour_stride=8)


def test_gaussian_kernel_is_normalised_and_symmetric() -> None:
    k = gaussian_kernel(1.5)
    assert k.shape == (1, 1, 11, 11)
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-6)
    assert torch.equal(k, k.flip(-1)) and torch.equal(k, k.transpose(-1, -2))


def test_starts_grey_with_the_sar_detail_and_any_multiple_of_the_stride() -> None:
    torch.manual_seed(0)
    g, _ = build_models(CONFIG)
    assert isinstance(g, ColouriseGenerator)
    x = torch.full((1, 1, 64, 72), 0.3)
    x[..., 37:] = 0.7  # a step edge off the 8 px grid of the colour branch
    y = g(x)
    assert y.shape == (1, 3, 64, 72) and y.abs().max() <= 1.0
    # the chroma head starts at zero: R = G = B
    assert torch.allclose(y[:, 0], y[:, 1], atol=1e-6) and torch.allclose(y[:, 1], y[:, 2], atol=1e-6)
    # the edge is where the SAR puts it (full resolution), not on the colour branch's grid
    step = (y[0, 0, 32, 1:] - y[0, 0, 32, :-1]).abs()
    assert int(step.argmax()) in (35, 36, 37)


def test_colour_follows_the_low_resolution_branch_only() -> None:
    torch.manual_seed(0)
    g = ColouriseGenerator(CONFIG)
    with torch.no_grad():
        g.head.bias.copy_(torch.tensor([0.4, 0.0, 0.1, -0.1]))  # no SAR detail, a fixed colour
    y = (g(torch.rand(2, 1, 32, 32)) + 1) / 2
    expected = torch.tensor([0.4 - 0.1402, 0.4 - 0.0344 + 0.0714, 0.4 + 0.1772])
    assert torch.allclose(y.mean(dim=(0, 2, 3)), expected, atol=1e-5)
    assert float(y.std(dim=(0, 2, 3)).max()) < 1e-5


def test_structure_loss_is_zero_for_the_same_layout_and_ignores_brightness() -> None:
    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 32) * 2 - 1
    assert float(structure_loss(target, target)) == pytest.approx(0.0, abs=1e-5)
    darker_grey = target.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1) * 0.3 - 0.2
    lum_same = target * torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
    grey_of_target = lum_same.sum(dim=1, keepdim=True).expand(-1, 3, -1, -1) * 0.5
    assert float(structure_loss(grey_of_target, target)) == pytest.approx(0.0, abs=1e-4)
    assert float(structure_loss(darker_grey, target)) > 0.01
    loss, parts = generator_loss(None, darker_grey, target, LossConfig(gan_weight=0, structure_weight=2.0))
    assert "g_structure" in parts and float(loss) > 100 * parts["g_l1"]


def test_train_and_export_through_the_engine(tmp_path: Path) -> None:
    run = tmp_path / "run"
    tiny = ["--arch", "colourise", "--ngf", "4", "--colour-stride", "8", "--crop", "32", "--batch", "2",
            "--no-3mos", "--synthetic-pairs", "2", "--synthetic-size", "64", "--no-progress",
            "--gan-weight", "0", "--structure-weight", "1"]
    assert main(["train", "--run-dir", str(run), "--steps", "2", *tiny]) == 0
    out = tmp_path / "models"
    assert main(["export", str(run), "--out-dir", str(out), "--model-id", "c1", "--tile-size", "32",
                 "--overlap", "8"]) == 0
    model = OnnxModel(out / "c1.onnx")
    assert model.metadata.extra["architecture"].startswith("colouriser")
    gen, _ = generator_from_checkpoint(load_checkpoint(run))
    intensity = np.random.default_rng(0).gamma(2.0, 0.05, (32, 32)).astype(np.float32)
    x = np.clip((10 * np.log10(intensity) + 30) / 35, 0, 1).astype(np.float32)
    with torch.no_grad():
        ref = (gen(torch.from_numpy(x)[None, None]).numpy()[0] + 1) / 2
    np.testing.assert_allclose(translate_array(intensity, model), np.clip(ref, 0, 1), atol=1e-5)
    # a crop that is not a multiple of the colour stride is refused with the rule named
    assert main(["train", "--run-dir", str(tmp_path / "bad"), "--steps", "1",
                 *[a if a != "32" else "36" for a in tiny]]) == 2


def test_a_gain_floor_keeps_the_sar_detail_visible() -> None:
    torch.manual_seed(0)
    g = ColouriseGenerator(ModelConfig(arch="colourise", ngf=4, colour_stride=8, detail_gain_floor=0.5))
    with torch.no_grad():
        g.head.bias.copy_(torch.tensor([0.4, -30.0, 0.0, 0.0]))  # the network asks for no detail at all
    x = torch.full((1, 1, 128, 128), 0.4)
    x[..., 52:76, 52:76] = 0.6  # a bright field of 24 px
    lum = ((g(x) + 1) / 2)[0, 0]
    # the floor keeps it: brighter inside than around (0.5 x 2 x 0.2 = 0.2 before the coarse mean's share)
    assert float(lum[64, 64] - lum[64, 8]) > 0.1
