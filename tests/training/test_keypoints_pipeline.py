"""Keypoint training end to end on a tiny model: train, resume, export (metadata + parity), CLI errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_RUN
from training.keypoints.cli import main
from training.keypoints.data import DataConfig
from training.keypoints.losses import LossConfig
from training.keypoints.models import ModelConfig
from training.keypoints.train import TrainConfig, load_checkpoint, train

pytestmark = pytest.mark.slow

TINY = ModelConfig(width=4, descriptor_dim=8, prior_sigmas=(1.0,), dilations=(1, 2))


def _cfg(run_dir: Path, steps: int = 2) -> TrainConfig:
    return TrainConfig(
        run_dir=str(run_dir),
        steps=steps,
        batch=1,
        crop=32,
        **TINY_RUN,
        model=TINY,
        loss=LossConfig(patch=8, query_stride=4),
        data=DataConfig(use_real=False, synthetic_scenes=1, synthetic_size=64),
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(_cfg(tmp_path_factory.mktemp("kp") / "run"))


def test_train_writes_a_checkpoint_and_resumes(trained: Path) -> None:
    ckpt = load_checkpoint(trained)
    assert ckpt["step"] == 2 and ckpt["optimizer"]["state"]
    assert any(trained.parent.glob("events.*"))
    again = load_checkpoint(train(_cfg(trained.parent, steps=3)))
    assert again["step"] == 3
    assert any(
        not np.allclose(again["model"][k].numpy(), ckpt["model"][k].numpy())
        for k in ckpt["model"]
        if k.endswith("weight")
    )
    # a run cut at a step of a longer schedule stops there, with a checkpoint
    cut = load_checkpoint(train(replace(_cfg(trained.parent, steps=10), stop_at_step=4)))
    assert cut["step"] == 4
    with pytest.raises(ValueError, match="another network"):
        train(replace(_cfg(trained.parent, steps=4), model=replace(TINY, width=6)))


def test_export_writes_the_contract_and_matches_pytorch(trained: Path, tmp_path: Path) -> None:
    import torch

    from engine.metadata import Task
    from engine.runtime import OnnxModel, read_metadata
    from training.keypoints.export import export_model
    from training.keypoints.train import model_from_checkpoint

    res = export_model(trained, tmp_path, "kp-tiny")
    assert float(res["parity_max_abs"]) <= 1e-4  # type: ignore[arg-type]
    path = tmp_path / "kp-tiny.onnx"
    meta = read_metadata(path)
    assert meta.task is Task.KEYPOINTS and meta.input_bands == 1 and meta.latent_channels == 8
    assert (meta.tile_size, meta.overlap) == (256, 32)
    assert meta.input_transform.value == "none" and meta.normalisation.value == "none"
    assert meta.extra["adapters"] == "sar,optical" and meta.extra["descriptor_dim"] == "8"
    model = OnnxModel(path, providers=["CPUExecutionProvider"], tasks=[Task.KEYPOINTS])
    assert [i.name for i in model.session.get_inputs()] == ["image", "modality"]
    # another size than the parity check's, both modalities: same outputs as PyTorch
    x = np.random.default_rng(1).uniform(-1, 1, (2, 1, 64, 32)).astype(np.float32)
    m = np.array([[1.0], [0.0]], np.float32)
    names = ["repeatability", "reliability", "descriptors"]
    rep, rel, desc = model.session.run(names, {"image": x, "modality": m})
    net, _ = model_from_checkpoint(load_checkpoint(trained))
    with torch.no_grad():
        ref = net(torch.from_numpy(x), torch.from_numpy(m))
    for got, want in zip((rep, rel, desc), ref, strict=True):
        assert got.shape == tuple(want.shape) and np.abs(got - want.numpy()).max() < 1e-4
    assert not (tmp_path / ".kp-tiny.onnx.tmp.onnx").exists()


def test_cli_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    assert main(["export", str(tmp_path / "missing"), "--out-dir", str(tmp_path), "--model-id", "x"]) == 2
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--crop", "40", "--no-real"]) == 2
    assert main(["evaluate", "no-such-method", "--synthetic", "0", "--real-root", str(tmp_path)]) == 2
    assert not list(tmp_path.glob("*.onnx")) and not (tmp_path / "r").exists()
