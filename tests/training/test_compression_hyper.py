"""Hyperprior entropy model: training on cached latents, integer export, numpy cost vs torch rate, ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import FAKE_SHA256
from training.compression.hyper.cli import run_hyper  # noqa: F401 - the CLI module imports cleanly
from training.compression.hyper.model import HyperConfig, HyperPrior, gaussian_likelihood
from training.compression.hyper.tables import HYPERPRIOR_KEY, HyperCost, hyperprior_dict, hyperprior_json
from training.compression.hyper.train import HyperTrainConfig, load_hyper_checkpoint, train_hyper

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = HyperConfig(
    channels=8, z_channels=4, analysis_width=8, synthesis_widths=(8, 8), context_width=8, slices=(0, 2, 8)
)


def _latents(n: int, h: int = 16, w: int = 16, seed: int = 0) -> np.ndarray:
    """Latents whose scale varies in space (what a hyperprior can exploit): ``[n, 8, h, w]``."""
    rng = np.random.default_rng(seed)
    blocks = np.exp(rng.normal(0.0, 1.0, (n, 1, h // 4 + 1, w // 4 + 1)))
    scale = blocks.repeat(4, 2).repeat(4, 3)[..., :h, :w]
    return rng.normal(0.0, 1.0, (n, 8, h, w)) * scale * np.linspace(3, 0.5, 8)[None, :, None, None]


def _cache(path: Path, n: int = 24) -> Path:
    np.savez(
        path, y=_latents(n).astype(np.float16), model_id="sarcodec-test", weights_sha256=FAKE_SHA256, seed=4
    )
    return path


def _cfg(tmp_path: Path, steps: int, **kw: object) -> HyperTrainConfig:
    return HyperTrainConfig(
        run_dir=str(tmp_path / "run"),
        latents=str(_cache(tmp_path / "lat.npz")),
        steps=steps,
        batch=4,
        holdout=4,
        log_every=2,
        ckpt_every=2,
        lr=5e-3,
        model=TINY,
        **kw,
    )  # type: ignore[arg-type]


def test_discretised_gaussian_sums_to_one() -> None:
    v = torch.arange(-60, 61, dtype=torch.float64)
    for log2s in (-3.0, 0.0, 3.0):
        total = float(gaussian_likelihood(v, torch.full_like(v, log2s)).sum())
        assert abs(total - 1.0) < 1e-6


def test_training_lowers_the_rate_and_resumes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = _cfg(tmp_path, steps=40)
    u = torch.from_numpy(_latents(8, seed=5).astype(np.float32))
    before = HyperPrior(TINY)
    path = train_hyper(cfg, progress=False, stop_at=30)
    assert load_hyper_checkpoint(path)["step"] == 30
    train_hyper(cfg, progress=False)  # resumes at 30, runs to 40
    ckpt = load_hyper_checkpoint(path)
    assert ckpt["step"] == 40
    model = HyperPrior(TINY)
    model.load_state_dict(ckpt["model"])
    model.eval()
    with torch.no_grad():
        trained, untrained = model(u, noise=False), before.eval()(u, noise=False)
    assert float(trained.bits_y + trained.bits_z) < 0.9 * float(untrained.bits_y + untrained.bits_z)


def _trained(tmp_path: Path, steps: int = 30) -> HyperPrior:
    torch.manual_seed(0)
    ckpt = load_hyper_checkpoint(train_hyper(_cfg(tmp_path, steps=steps), progress=False))
    model = HyperPrior(TINY)
    model.load_state_dict(ckpt["model"])
    return model.eval()


def test_export_is_deterministic_and_integer_nets_match_float(tmp_path: Path) -> None:
    model = _trained(tmp_path)
    assert hyperprior_json(model) == hyperprior_json(model)
    spec = hyperprior_dict(model)
    again = json.loads(hyperprior_json(model))
    cost_a, cost_b = HyperCost(spec), HyperCost(again)
    z = np.random.default_rng(1).integers(-3, 4, (4, 3, 4))
    np.testing.assert_array_equal(cost_a.synthesis.run_integers(z), cost_b.synthesis.run_integers(z))
    # the fixed-point synthesis follows the float torch network within its quantisation error
    with torch.no_grad():
        ref = model.synthesis(torch.from_numpy(z.astype(np.float32))[None])[0].numpy()
    got = cost_a.synthesis.to_real(cost_a.synthesis.run_integers(z))
    assert np.max(np.abs(got - ref)) < 0.05 * max(1.0, float(np.max(np.abs(ref))))
    pm = spec["scale_pmfs"]
    assert len(pm["pmfs"]) == spec["scale_table"]["count"]
    assert all(abs(sum(p) - 1.0) < 1e-4 for p in pm["pmfs"])


def test_numpy_cost_agrees_with_torch_rate(tmp_path: Path) -> None:
    model = _trained(tmp_path)
    y = _latents(1, h=16, w=12, seed=7)[0]
    with torch.no_grad():
        terms = model(torch.from_numpy(y.astype(np.float32))[None], noise=False)
    torch_bits = float(terms.bits_y + terms.bits_z)
    cost = HyperCost(hyperprior_dict(model)).cost(y, bounds=True)
    assert abs(cost.bits_y + cost.bits_z - torch_bits) < 0.03 * torch_bits
    assert cost.max_bound < 2.0**53
    # the decoded latents are within half a step of the input (step 1)
    assert np.max(np.abs(cost.y_hat - y)) <= 0.5 + 1e-6


def test_strips_are_coded_separately(tmp_path: Path) -> None:
    model = _trained(tmp_path, steps=4)
    cost = HyperCost(hyperprior_dict(model))
    y = _latents(1, h=20, w=8, seed=3)[0]
    whole = cost.cost(y, strip_rows=16)
    parts = [cost.strip(y[:, :16]), cost.strip(y[:, 16:])]
    assert whole.bits_y == pytest.approx(sum(p.bits_y for p in parts))
    np.testing.assert_array_equal(whole.y_hat, np.concatenate([p.y_hat for p in parts], axis=1))


def test_bad_slices_are_refused() -> None:
    with pytest.raises(ValueError, match="slices"):
        HyperConfig(channels=8, slices=(0, 4, 4, 8)).check()


def test_onnx_export_keeps_codec_metadata(tmp_path: Path) -> None:
    from engine.codec.models import load_encoder
    from training.compression.hyper.export import write_models

    enc = REPO_ROOT / "models" / "sarcodec-r1-encoder.onnx"
    if not enc.is_file():
        pytest.skip("shipped codec models absent")
    model = HyperPrior(HyperConfig())
    spec_json = hyperprior_json(model)
    dec = enc.with_name("sarcodec-r1-decoder.onnx")
    paths = write_models(enc, dec, tmp_path, "sarcodec-hx", "hx", spec_json)
    source = load_encoder(enc).metadata
    meta = load_encoder(paths[0]).metadata
    assert meta.model_id == "sarcodec-hx" and meta.extra["rate_point"] == "hx"
    assert meta.extra[HYPERPRIOR_KEY] == spec_json and meta.extra["transform"] == "sarcodec-r1"
    assert meta.weights_sha256 != source.weights_sha256 and "entropy_model" not in meta.extra
    assert (meta.latent_channels, meta.scale_factor, meta.db_min) == (
        source.latent_channels,
        source.scale_factor,
        source.db_min,
    )
