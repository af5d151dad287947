"""Training loop of the SAR codec: seeded, resumable, checkpoints hold everything needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.compression.data import DataConfig, Preprocessing
from training.compression.losses import LossWeights
from training.compression.models import ModelConfig
from training.compression.train import TrainConfig, load_checkpoint, lr_at, train

torch.set_num_threads(1)  # tiny models; no OpenMP thread team to spin on a shared CPU


def tiny_config(run_dir: Path, steps: int, seed: int = 0) -> TrainConfig:
    return TrainConfig(
        run_dir=str(run_dir),
        steps=steps,
        batch=2,
        crop=32,
        threads=1,
        seed=seed,
        log_every=1,
        eval_every=0,
        ckpt_every=1,
        loss=LossWeights(lmbda=100.0),
        model=ModelConfig("B", (4, 6, 8), 3),
        data=DataConfig(use_real=False, synthetic_scenes=1, synthetic_size=64),
        pre=Preprocessing(-30.0, 10.0, -30.0),
    )


def test_checkpoint_holds_state_optimizer_step_config_and_preprocessing(tmp_path: Path) -> None:
    path = train(tiny_config(tmp_path / "run", steps=2), progress=False)
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 2
    assert ckpt["preprocessing"] == {"db_min": -30.0, "db_max": 10.0, "noise_floor_db": -30.0}
    assert ckpt["config"]["loss"]["lmbda"] == 100.0
    assert ckpt["optimizer"]["state"], "optimizer state must be saved for resuming"
    assert any(k.startswith("prior.") for k in ckpt["model"])
    assert list((tmp_path / "run" / "tb").iterdir()), "TensorBoard events are written"


@pytest.mark.slow
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path: Path) -> None:
    full = load_checkpoint(train(tiny_config(tmp_path / "full", steps=3), progress=False))
    train(tiny_config(tmp_path / "split", steps=3), progress=False, stop_at=2)
    resumed = load_checkpoint(train(tiny_config(tmp_path / "split", steps=3), progress=False))
    assert resumed["step"] == 3
    for name, value in full["model"].items():
        assert torch.allclose(value.float(), resumed["model"][name].float(), atol=1e-6), name


@pytest.mark.slow
def test_same_seed_same_weights_other_seed_other_weights(tmp_path: Path) -> None:
    a = load_checkpoint(train(tiny_config(tmp_path / "a", steps=1, seed=3), progress=False))["model"]
    b = load_checkpoint(train(tiny_config(tmp_path / "b", steps=1, seed=3), progress=False))["model"]
    c = load_checkpoint(train(tiny_config(tmp_path / "c", steps=1, seed=4), progress=False))["model"]
    key = "encoder.net.0.0.weight"
    assert torch.equal(a[key], b[key])
    assert not torch.equal(a[key], c[key])


def test_resume_with_another_architecture_is_refused(tmp_path: Path) -> None:
    train(tiny_config(tmp_path / "run", steps=1), progress=False)
    other = tiny_config(tmp_path / "run", steps=2)
    other = TrainConfig(**{**other.__dict__, "model": ModelConfig("A", (4, 6, 8), 3)})
    with pytest.raises(ValueError, match="another model configuration"):
        train(other, progress=False)


def test_learning_rate_decays_from_lr_to_lr_final() -> None:
    cfg = TrainConfig(steps=100, lr=1e-3, lr_final=1e-5)
    values = [lr_at(s, cfg) for s in range(0, 101, 10)]
    assert values[0] == pytest.approx(1e-3) and values[-1] == pytest.approx(1e-5)
    assert all(np.diff(values) <= 0)


def test_config_round_trip() -> None:
    cfg = TrainConfig(model=ModelConfig("C", (8, 8, 8), 4), data=DataConfig(geotiff_dirs=("a", "b")))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_prior_learning_rate_scale_makes_a_second_optimizer_group() -> None:
    from training.compression.models import ModelConfig, SarCodec
    from training.compression.train import param_groups

    codec = SarCodec(ModelConfig("D", (4, 6, 8), 3))
    single = param_groups(codec, 1.0)
    assert len(single) == 1 and len(single[0]["params"]) == len(list(codec.parameters()))
    transform, prior = param_groups(codec, 10.0)
    assert prior["lr_scale"] == 10.0 and transform["lr_scale"] == 1.0
    assert {id(p) for p in prior["params"]} == {id(p) for p in codec.prior.parameters()}
    assert len(transform["params"]) + len(prior["params"]) == len(list(codec.parameters()))
