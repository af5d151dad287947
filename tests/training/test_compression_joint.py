"""Joint fine-tuning of a shipped hyperprior codec: warm start from ONNX files, training, comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.codec.models import load_encoder
from engine.runtime import OnnxModel
from training.compression.cli import warm_start_configs
from training.compression.data import DataConfig, Preprocessing
from training.compression.export import export_codec
from training.compression.hyper.export import write_models
from training.compression.hyper.model import HyperCodec, HyperConfig, HyperPrior
from training.compression.hyper.tables import HYPERPRIOR_KEY, HyperCost, hyperprior_dict, hyperprior_json
from training.compression.joint import compare_with_shipped, export_joint, gain_at_matched_bpp
from training.compression.losses import LossWeights
from training.compression.models import ModelConfig, SarCodec
from training.compression.train import TrainConfig, hyper_codec_from_checkpoint, load_checkpoint, train
from training.compression.warmstart import hyperprior_from_spec, load_transform, model_config_of

torch.set_num_threads(1)  # tiny models; no OpenMP thread team to spin on a shared CPU

PRE = Preprocessing(-30.0, 10.0, -30.0)
MODEL = ModelConfig("D", (4, 6, 8), 16)
HYPER = HyperConfig(channels=16, z_channels=4, analysis_width=8, synthesis_widths=(8, 8), context_width=8,
                    slices=(0, 4, 16), latent_step=1.5)


def _perturbed(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[SarCodec, HyperPrior, Path]:
    """A tiny 'shipped' hyperprior model: a variant-D transform (BatchNorm statistics moved, so folding is
    exercised) exported to ONNX, with a hyperprior in its metadata."""
    torch.manual_seed(0)
    codec = SarCodec(MODEL)
    _perturbed(codec, 1)
    codec.train()
    with torch.no_grad():
        codec(torch.rand(4, 1, 32, 32), noise=True)
    codec.eval()
    out = tmp_path_factory.mktemp("models")
    enc, dec = export_codec(codec, TrainConfig(model=MODEL, pre=PRE), out / "src", "sarcodec-t9", "t9",
                            tile_size=32, overlap=16)
    hyper = HyperPrior(HYPER)
    _perturbed(hyper, 2)
    paths = write_models(enc, dec, out, "sarcodec-hz", "hz", hyperprior_json(hyper))
    return codec, hyper, paths[0]


def test_transform_loads_from_onnx_files(shipped: tuple[SarCodec, HyperPrior, Path]) -> None:
    codec, _, enc = shipped
    assert model_config_of(load_encoder(enc).metadata, enc) == MODEL
    loaded = HyperCodec(SarCodec(MODEL), HyperPrior(HYPER))
    load_transform(loaded, enc)
    loaded.train()  # BatchNorms stay in eval mode: the folded statistics hold
    assert not any(m.training for m in loaded.modules() if isinstance(m, torch.nn.BatchNorm2d))
    x = torch.rand(2, 1, 48, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y, y_ref = loaded.encoder(x), codec.encoder(x)
        assert torch.allclose(y, y_ref, atol=1e-5)
        assert torch.allclose(loaded.decoder(torch.round(y)), codec.decoder(torch.round(y)), atol=1e-5)
    onnx_y = OnnxModel(enc).run(x.numpy())
    assert np.abs(onnx_y - y.numpy()).max() < 1e-4


def test_hyperprior_is_rebuilt_from_its_integer_networks(shipped: tuple[SarCodec, HyperPrior, Path]) -> None:
    enc = shipped[2]
    spec = json.loads(load_encoder(enc).metadata.extra[HYPERPRIOR_KEY])
    rebuilt = hyperprior_from_spec(spec)
    assert rebuilt.cfg == HYPER
    again = hyperprior_dict(rebuilt)
    for key in ("analysis", "synthesis", "context", "slices", "scale_table", "latent_step"):
        assert again[key] == spec[key], key  # the same integers after float and back
    y = np.random.default_rng(4).normal(0.0, 2.0, (16, 8, 12)).astype(np.float32)
    original, fitted = HyperCost(spec).cost(y), HyperCost(again).cost(y)
    assert original.bits_y == fitted.bits_y
    assert abs(fitted.bits_z - original.bits_z) <= 0.05 * original.bits_z + 1.0  # z prior fitted to the table


def _cfg(run: Path, enc: Path, steps: int) -> TrainConfig:
    parts = warm_start_configs(enc)
    return TrainConfig(run_dir=str(run), steps=steps, batch=2, crop=32, threads=1, seed=0, log_every=1,
                       eval_every=0, ckpt_every=1, lr=1e-3, warm_start=str(enc), loss=LossWeights(lmbda=50.0),
                       data=DataConfig(use_real=False, synthetic_scenes=1, synthetic_size=64), **parts)


def test_joint_training_starts_from_the_shipped_model_and_resumes_exactly(
    shipped: tuple[SarCodec, HyperPrior, Path], tmp_path: Path
) -> None:
    codec, _, enc = shipped
    start = load_checkpoint(train(_cfg(tmp_path / "zero", enc, steps=0), progress=False))
    warm, _ = hyper_codec_from_checkpoint(start)  # step 0: the shipped networks (BatchNorms folded)
    x = torch.rand(1, 1, 32, 48, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.allclose(warm.encoder(x), codec.encoder(x), atol=1e-5)
    full = load_checkpoint(train(_cfg(tmp_path / "full", enc, steps=3), progress=False))
    train(_cfg(tmp_path / "split", enc, steps=3), progress=False, stop_at=2)
    resumed = load_checkpoint(train(_cfg(tmp_path / "split", enc, steps=3), progress=False))
    assert resumed["step"] == 3 and resumed["config"]["hyper"]["latent_step"] == 1.5
    changed = False
    for name, value in full["model"].items():
        assert torch.allclose(value.float(), resumed["model"][name].float(), atol=1e-6), name
        changed |= not torch.equal(value, start["model"][name])
    assert changed, "training moved the weights"


def test_comparison_of_the_untrained_start_matches_the_shipped_model(
    shipped: tuple[SarCodec, HyperPrior, Path], tmp_path: Path
) -> None:
    _, _, enc = shipped
    path = train(_cfg(tmp_path / "zero", enc, steps=0), progress=False)
    result = compare_with_shipped(path, enc, DataConfig(use_real=False), synthetic=1,
                                  shipped_steps=(1.2, 2.0))
    assert result["shipped_model"] == "sarcodec-hz" and result["step"] == 0
    for name, tuned in result["tuned"].items():
        ref = result["shipped"][name]
        assert abs(tuned["psnr"] - ref["psnr"]) < 0.01, name
        assert abs(tuned["bpp"] - ref["bpp"]) <= 0.05 * ref["bpp"], name
    coarse, fine = result["shipped_curve"]  # latent steps 1.2 and 2.0 bracket the shipped step 1.5
    assert fine["latent_step"] == 2.0 and fine["bpp"] < coarse["bpp"]


def test_warm_start_needs_a_hyperprior_model(shipped: tuple[SarCodec, HyperPrior, Path]) -> None:
    src = shipped[2].parent / "src" / "sarcodec-t9-encoder.onnx"
    with pytest.raises(SystemExit, match="no hyperprior"):
        warm_start_configs(src)


def test_fine_tuned_codec_exports_as_an_h_model(
    shipped: tuple[SarCodec, HyperPrior, Path], tmp_path: Path
) -> None:
    _, _, enc = shipped
    path = train(_cfg(tmp_path / "run", enc, steps=1), progress=False)
    comparison = compare_with_shipped(path, enc, DataConfig(use_real=False), synthetic=1)
    with pytest.raises(ValueError, match="step 0"):  # a comparison of another checkpoint: nothing written
        export_joint(path, tmp_path / "models", "sarcodec-hy", comparison={**comparison, "step": 0})
    assert not (tmp_path / "models").exists()
    paths = export_joint(path, tmp_path / "models", "sarcodec-hy", comparison=comparison, commands=["cmd"])
    card = (tmp_path / "models" / "sarcodec-hy.md").read_text()
    assert "lambda = 50" in card and "sarcodec-hz" in card and "cmd" in card
    meta = load_encoder(paths[0]).metadata
    assert meta.model_id == "sarcodec-hy" and meta.extra["transform"] == "sarcodec-hy-transform"
    codec, _ = hyper_codec_from_checkpoint(load_checkpoint(path))
    assert json.loads(meta.extra[HYPERPRIOR_KEY]) == hyperprior_dict(codec.prior)
    x = np.random.default_rng(0).random((1, 1, 32, 48), dtype=np.float32)
    with torch.no_grad():
        y = codec.encoder(torch.from_numpy(x)).numpy()
    assert np.abs(OnnxModel(paths[0]).run(x) - y).max() < 1e-4
    again = export_joint(path, tmp_path / "again", "sarcodec-hy")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths], "export is deterministic"


def test_gain_is_read_off_the_shipped_curve_at_matched_bpp() -> None:
    curve = [{"bpp": 0.2, "psnr": 25.0}, {"bpp": 0.3, "psnr": 26.0}]
    assert gain_at_matched_bpp(curve, 0.25, 25.7) == pytest.approx(0.2)
    assert gain_at_matched_bpp(curve, 0.35, 27.0) is None  # outside the measured curve: no figure
