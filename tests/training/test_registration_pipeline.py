"""Train (tiny, 2-3 steps), resume, export with parity, evaluate and the CLI of training.registration."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_RUN
from training.registration.cli import main
from training.registration.data import DataConfig
from training.registration.losses import LossConfig
from training.registration.models import Encoder, ModelConfig, RegistrationNet
from training.registration.train import CHECKPOINT_NAME, TrainConfig, load_checkpoint, train

TINY = ModelConfig(widths=(4, 8), blocks=1, embed_dim=4, out_stride=1, regressor_width=4)


def _cfg(run_dir: Path, steps: int = 2, phase: int = 1, **kw: object) -> TrainConfig:
    return TrainConfig(
        run_dir=str(run_dir),
        phase=phase,
        steps=steps,
        batch=2,
        crop=32,
        **TINY_RUN,
        model=TINY,
        loss=LossConfig(nce_radius=4),
        data=DataConfig(use_real=False, synthetic_pairs=1, synthetic_size=64, patch=48, neg_min=2, neg_max=8),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("reg") / "run"
    return train(_cfg(run))


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_encoder_gives_unit_norm_maps_at_its_stride(stride: int) -> None:
    import torch

    enc = Encoder(replace(TINY, out_stride=stride)).eval()
    out = enc(torch.rand(2, 1, 40, 56) * 100)
    assert out.shape == (2, 4, 40 // stride, 56 // stride)
    assert torch.allclose(out.norm(dim=1), torch.ones(2, 40 // stride, 56 // stride), atol=1e-4)
    # scale of the input does not matter (the network standardises each tile)
    x = torch.rand(1, 1, 32, 32)
    assert torch.allclose(enc(x), enc(10 * x + 3), atol=1e-4)


def test_bad_model_config_is_refused() -> None:
    with pytest.raises(ValueError, match="out_stride"):
        ModelConfig(out_stride=3)


def test_train_writes_a_checkpoint_and_resumes(trained: Path) -> None:
    ckpt = load_checkpoint(trained)
    assert ckpt["step"] == 2 and ckpt["optimizer"]["state"]
    assert (trained.parent / "events.out.tfevents.0").exists() or any(trained.parent.glob("events.*"))
    run = trained.parent
    path = train(_cfg(run, steps=3))
    again = load_checkpoint(path)
    assert again["step"] == 3
    assert any(
        not np.allclose(again["model"][k].numpy(), ckpt["model"][k].numpy())
        for k in ckpt["model"]
        if k.endswith("weight")
    )
    with pytest.raises(ValueError, match="another model"):
        train(replace(_cfg(run, steps=4), model=replace(TINY, embed_dim=6)))


def test_phase2_trains_the_regressor_only(trained: Path, tmp_path: Path) -> None:
    path = train(_cfg(tmp_path / "p2", steps=2, phase=2, shift_radius=4, init_from=str(trained)))
    p1, p2 = load_checkpoint(trained)["model"], load_checkpoint(path)["model"]
    enc_keys = [k for k in p1 if k.startswith("encoder.") and k.endswith("weight")]
    head_keys = [k for k in p1 if k.startswith("regressor.body") and k.endswith("weight")]
    assert all(np.array_equal(p1[k].numpy(), p2[k].numpy()) for k in enc_keys)
    assert any(not np.array_equal(p1[k].numpy(), p2[k].numpy()) for k in head_keys)


@pytest.mark.slow
def test_export_embed_and_regressor_with_parity(trained: Path, tmp_path: Path) -> None:
    from engine.metadata import Task
    from engine.runtime import OnnxModel
    from training.registration.evaluate import OnnxEmbedding
    from training.registration.export import PARITY_TOLERANCE, export_models

    res = export_models(trained, tmp_path, "regembed-test", tile_size=128, regressor=True)
    assert res["embed"]["parity_max_abs"] <= PARITY_TOLERANCE  # type: ignore[operator]
    assert res["shift_regress"]["parity_max_abs"] <= PARITY_TOLERANCE  # type: ignore[operator]
    emb = OnnxModel(tmp_path / "regembed-test.onnx", tasks=[Task.EMBED])
    meta = emb.metadata
    assert (meta.scale_factor, meta.latent_channels, meta.input_bands) == (1, 4, 1)
    assert meta.extra["preprocess"] == "prepare_image" and meta.overlap % meta.scale_factor == 0
    out = emb.run(np.random.default_rng(0).random((1, 1, 40, 72), dtype=np.float32))
    assert out.shape == (1, 4, 40, 72)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)
    reg = OnnxModel(tmp_path / "regembed-test-regressor.onnx", tasks=[Task.SHIFT_REGRESS])
    assert reg.run(np.zeros((3, 2, 32, 32), np.float32)).shape == (3, 2)
    feats = OnnxEmbedding(tmp_path / "regembed-test.onnx")(
        np.full((24, 40), 7.0, np.float32), np.ones((24, 40), bool)
    )
    assert feats.shape == (4, 24, 40)
    assert not list(tmp_path.glob("*.tmp*"))


def test_exported_model_plugs_into_the_engine_extractor(trained: Path, tmp_path: Path) -> None:
    from engine.registration.shift.deep import OnnxEmbeddingFeatures
    from training.registration.export import export_models

    export_models(trained, tmp_path, "regembed-engine", check_parity=False)
    ex = OnnxEmbeddingFeatures(tmp_path / "regembed-engine.onnx")
    img = np.random.default_rng(1).random((48, 64)).astype(np.float32)
    feats = ex(img, np.ones(img.shape, bool))
    assert feats.shape == (4, 48, 64) and ex.stride == 1


def test_cli_train_export_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    common = [
        "--steps",
        "2",
        "--batch",
        "2",
        "--crop",
        "32",
        "--widths",
        "4",
        "8",
        "--blocks",
        "1",
        "--embed-dim",
        "4",
        "--no-real",
        "--synthetic-pairs",
        "1",
        "--synthetic-size",
        "64",
        "--patch",
        "48",
        "--neg-max",
        "8",
        "--nce-radius",
        "4",
        "--no-progress",
    ]
    assert main(["train", "--run-dir", str(run), *common]) == 0
    assert (run / CHECKPOINT_NAME).is_file()
    capsys.readouterr()
    assert main(["export", str(run), "--out-dir", str(tmp_path / "m"), "--model-id", "regembed-cli"]) == 0
    assert json.loads(capsys.readouterr().out)["embed"]["model_id"] == "regembed-cli"
    report = tmp_path / "eval.json"
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "m" / "regembed-cli.onnx"),
                "classical",
                "--shifts-per-pair",
                "0",
                "--synthetic",
                "1",
                "--synthetic-size",
                "96",
                "--max-shift",
                "4",
                "--search",
                "8",
                "--json",
                str(report),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["classical"]["sets"]["synthetic"]["n"] == 1
    full = json.loads(report.read_text())
    assert len(full["methods"]) == 2 and full["config"]["search"] == 8


def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "missing"), "--model-id", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", "classical", "--max-shift", "10", "--search", "5"]) == 2


def test_registration_net_shares_the_encoder() -> None:
    net = RegistrationNet(TINY)
    assert net.regressor.encoder is net.encoder


GUIDED = ModelConfig(widths=(4, 6), blocks=1, embed_dim=10, arch="guided", orientations=9, regressor_width=4)


def test_guided_encoder_starts_as_the_classical_features() -> None:
    import torch
    from scipy import ndimage

    from engine.registration.features import OrientedGradientFeatures
    from engine.registration.prepare import prepare_image
    from training.registration.models import build_encoder

    rng = np.random.default_rng(5)
    img = ndimage.gaussian_filter(rng.random((40, 56)).astype(np.float32) * 255, 1.5)
    valid = np.ones(img.shape, bool)
    classical = OrientedGradientFeatures()(img, valid)
    enc = build_encoder(GUIDED).eval()
    with torch.no_grad():
        out = enc(torch.from_numpy(prepare_image(img, "auto", valid))[None, None])[0].numpy()
    assert out.shape == (10, 40, 56)
    assert np.allclose(out[:9], classical, atol=1e-3)  # same recipe (regulariser: mean vs median norm)
    assert np.all(out[9:] == 0.0)  # learned channels start at zero


def test_guided_config_is_checked() -> None:
    with pytest.raises(ValueError, match="guided encoder"):
        ModelConfig(arch="guided", embed_dim=4, orientations=9)
    with pytest.raises(ValueError, match="arch"):
        ModelConfig(arch="transformer")


def test_guided_trains_on_the_ncc_search_and_exports_unnormalised(tmp_path: Path) -> None:
    from engine.registration.shift.deep import AS_IS, EMBEDDING_NORM, OnnxEmbeddingFeatures
    from training.registration.export import PARITY_TOLERANCE, export_models

    run = tmp_path / "guided"
    base = _cfg(run, steps=2)  # sub-pixel positives and the parabola term: the full guided loss
    cfg = replace(
        base,
        model=GUIDED,
        data=replace(base.data, subpixel=0.5),
        loss=replace(base.loss, w_subpixel=1.0),
    )
    first = load_checkpoint(train(replace(cfg, steps=1)))
    second = load_checkpoint(train(cfg))
    assert second["step"] == 2
    head = "encoder.head.weight"
    assert not np.allclose(first["model"][head].numpy(), second["model"][head].numpy())
    assert not any("gradients" in k for k in second["model"])  # the classical recipe is not a weight
    res = export_models(run, tmp_path, "regguided-test")
    assert res["embed"]["parity_max_abs"] <= PARITY_TOLERANCE  # type: ignore[operator]
    ex = OnnxEmbeddingFeatures(tmp_path / "regguided-test.onnx")
    assert ex.model.metadata.extra[EMBEDDING_NORM] == AS_IS
    img = np.random.default_rng(2).random((48, 64)).astype(np.float32) * 100
    valid = np.ones(img.shape, bool)
    valid[:, :10] = False
    feats = ex(img, valid)
    assert feats.shape == (10, 48, 64)
    assert np.all(feats[:, :, :10] == 0.0)
    norms = np.linalg.norm(feats[:, :, 10:], axis=0)
    assert norms.std() > 1e-3  # not normalised per pixel: the local contrast normalisation is the model's


@pytest.mark.slow
def test_match_sigma_smooths_the_embedding_and_bad_values_are_refused(tmp_path: Path) -> None:
    import onnx
    from scipy import ndimage

    from engine.errors import RegistrationError
    from engine.metadata import METADATA_KEY
    from engine.registration.shift.deep import MATCH_SIGMA, OnnxEmbeddingFeatures
    from training.registration.export import export_models

    run = tmp_path / "guided"
    train(replace(_cfg(run, steps=1), model=GUIDED))
    export_models(run, tmp_path / "plain", "regguided-plain")
    export_models(run, tmp_path / "smooth", "regguided-smooth", match_sigma=0.75)
    plain = OnnxEmbeddingFeatures(tmp_path / "plain" / "regguided-plain.onnx")
    smooth = OnnxEmbeddingFeatures(tmp_path / "smooth" / "regguided-smooth.onnx")
    assert plain.match_sigma == 0.0 and MATCH_SIGMA not in plain.model.metadata.extra
    assert smooth.model.metadata.extra[MATCH_SIGMA] == "0.75"
    img = np.random.default_rng(5).random((40, 48)).astype(np.float32) * 100
    valid = np.ones(img.shape, bool)
    expected = ndimage.gaussian_filter(plain(img, valid), (0, 0.75, 0.75), mode="nearest")
    assert np.allclose(smooth(img, valid), expected, atol=1e-5)
    valid[:5] = False
    assert np.all(smooth(img, valid)[:, :5] == 0.0)  # invalid pixels stay out of the search
    with pytest.raises(ValueError, match="match_sigma"):
        export_models(run, tmp_path / "bad", "regguided-bad", match_sigma=-1.0)
    # a model file whose metadata carries a bad value is refused by the engine, with what to do
    path = tmp_path / "smooth" / "regguided-smooth.onnx"
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = prop.value.replace('"match_sigma": "0.75"', '"match_sigma": "wide"')
    onnx.save(model, str(tmp_path / "broken.onnx"))
    with pytest.raises(RegistrationError, match="re-export"):
        OnnxEmbeddingFeatures(tmp_path / "broken.onnx")
