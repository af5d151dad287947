"""Translation CLI end to end on a tiny model: train, resume, export with metadata, parity with the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.metadata import Task
from engine.runtime import OnnxModel
from engine.translation import translate_array
from training.translation.cli import main
from training.translation.train import generator_from_checkpoint, load_checkpoint

TINY = [
    "--ngf",
    "2",
    "--ndf",
    "2",
    "--n-down",
    "3",
    "--crop",
    "32",
    "--batch",
    "2",
    "--no-3mos",
    "--synthetic-pairs",
    "2",
    "--synthetic-size",
    "64",
    "--no-progress",
    "--image-every",
    "2",
    "--log-every",
    "1",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    assert main(["train", "--run-dir", str(run), "--steps", "2", *TINY]) == 0
    return run


def test_train_writes_a_plain_checkpoint_and_tensorboard(trained: Path) -> None:
    ckpt = load_checkpoint(trained)  # weights_only=True: plain types only
    assert ckpt["step"] == 2 and ckpt["config"]["model"]["ngf"] == 2
    assert {"generator", "discriminator", "opt_g", "opt_d"} <= set(ckpt)
    assert list(trained.glob("events.out.tfevents.*"))


def test_resume_continues_from_the_checkpoint(trained: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    before = load_checkpoint(run)["generator"]
    assert main(["train", "--run-dir", str(run), "--steps", "3", *TINY]) == 0
    after = load_checkpoint(run)
    assert after["step"] == 3
    assert any(not torch.equal(before[k], after["generator"][k]) for k in before)
    # another architecture in the same folder is refused with a clear message (exit status 2)
    assert main(["train", "--run-dir", str(run), "--steps", "4", *TINY[:-2], "--ngf", "4"]) == 2


def test_export_metadata_and_parity_with_the_engine(trained: Path, tmp_path: Path) -> None:
    assert (
        main(
            [
                "export",
                str(trained),
                "--out-dir",
                str(tmp_path),
                "--model-id",
                "t1",
                "--tile-size",
                "32",
                "--overlap",
                "8",
            ]
        )
        == 0
    )
    model = OnnxModel(tmp_path / "t1.onnx", tasks=[Task.TRANSLATE])
    meta = model.metadata
    assert meta.task is Task.TRANSLATE and meta.input_transform.value == "intensity-to-db"
    assert meta.normalisation.value == "minmax" and (meta.db_min, meta.db_max) == (-30.0, 5.0)
    assert meta.extra["output_bands"] == "red,green,blue" and meta.extra["training_steps"] == "2"
    assert meta.tile_size == 32 and meta.overlap == 8
    # PyTorch generator vs the engine's translate_array on a one-tile raster
    gen, _ = generator_from_checkpoint(load_checkpoint(trained))
    intensity = np.random.default_rng(0).gamma(2.0, 0.05, (32, 32)).astype(np.float32)
    x = np.clip((10 * np.log10(intensity) + 30) / 35, 0, 1).astype(np.float32)
    with torch.no_grad():
        ref = (gen(torch.from_numpy(x)[None, None]).numpy()[0] + 1) / 2
    got = translate_array(intensity, model)
    np.testing.assert_allclose(got, np.clip(ref, 0, 1), atol=1e-5)


def test_bad_crop_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [a if a != "32" else "20" for a in TINY]
    assert main(["train", "--run-dir", str(tmp_path), "--steps", "1", *args]) == 2
    assert "must be a multiple of 2**n_down = 8" in capsys.readouterr().err


def test_l1_only_fine_tuning_from_another_run_with_batchnorm_recalibration(
    trained: Path, tmp_path: Path
) -> None:
    source = load_checkpoint(trained)
    run = tmp_path / "fine"
    args = ["train", "--run-dir", str(run), "--init-from", str(trained), *TINY]
    # 0 steps: the new run holds the source's weights, at step 0
    assert main([*args, "--steps", "0"]) == 0
    start = load_checkpoint(run)
    assert start["step"] == 0
    assert all(torch.equal(source["generator"][k], start["generator"][k]) for k in source["generator"])
    # L1 only: the generator moves, the discriminator is not trained
    assert main([*args, "--steps", "2", "--gan-weight", "0"]) == 0
    after = load_checkpoint(run)
    assert after["step"] == 2 and after["config"]["loss"]["gan_weight"] == 0.0
    assert (
        main(
            [
                "export",
                str(run),
                "--out-dir",
                str(tmp_path),
                "--model-id",
                "ft",
                "--tile-size",
                "32",
                "--overlap",
                "8",
            ]
        )
        == 0
    )
    meta = OnnxModel(tmp_path / "ft.onnx").metadata
    assert meta.extra["initialised_from"] == str(trained) and meta.extra["training_steps"] == "2"
    assert all(
        torch.equal(start["discriminator"][k], after["discriminator"][k]) for k in start["discriminator"]
    )
    assert any(not torch.equal(start["generator"][k], after["generator"][k]) for k in start["generator"])
    # recalibration at the end replaces the batch-norm running statistics (weights unchanged)
    recal = tmp_path / "recal"
    assert (
        main(
            [
                "train",
                "--run-dir",
                str(recal),
                "--init-from",
                str(trained),
                *TINY,
                "--steps",
                "0",
                "--bn-recalibration",
                "3",
            ]
        )
        == 0
    )
    calibrated = load_checkpoint(recal)["generator"]
    means = [k for k in calibrated if k.endswith("running_mean")]
    assert means and any(not torch.equal(source["generator"][k], calibrated[k]) for k in means)
    weights = [k for k in calibrated if k.endswith(".weight")]
    assert all(torch.equal(source["generator"][k], calibrated[k]) for k in weights)


def test_missing_init_from_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--run-dir", str(tmp_path / "r"), "--init-from", str(tmp_path / "nope"), *TINY]
    assert main([*args, "--steps", "1"]) == 2
    assert "--init-from" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_export_with_colour_shrinkage(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [
        "export",
        str(trained),
        "--out-dir",
        str(tmp_path),
        "--tile-size",
        "32",
        "--overlap",
        "8",
    ]
    assert main([*common, "--model-id", "plain"]) == 0
    assert (
        main(
            [
                *common,
                "--model-id",
                "shrunk",
                "--colour-shrinkage",
                "0.25",
                "--shrink-toward",
                "0.2",
                "0.4",
                "0.6",
            ]
        )
        == 0
    )
    shrunk = OnnxModel(tmp_path / "shrunk.onnx", tasks=[Task.TRANSLATE])
    assert shrunk.metadata.extra["colour_shrinkage"] == "0.25"
    assert shrunk.metadata.extra["shrink_toward"] == "0.2000,0.4000,0.6000"
    intensity = np.random.default_rng(1).gamma(2.0, 0.05, (32, 32)).astype(np.float32)
    plain = translate_array(intensity, OnnxModel(tmp_path / "plain.onnx"))
    toward = np.array([0.2, 0.4, 0.6], dtype=np.float32).reshape(3, 1, 1)
    np.testing.assert_allclose(
        translate_array(intensity, shrunk), toward + 0.25 * (plain - toward), atol=1e-5
    )
    # a factor outside [0, 1] is refused and nothing is written
    assert (
        main(
            [
                *common,
                "--model-id",
                "bad",
                "--colour-shrinkage",
                "1.5",
                "--shrink-toward",
                "0.2",
                "0.4",
                "0.6",
            ]
        )
        == 2
    )
    assert "--colour-shrinkage must be in [0, 1]" in capsys.readouterr().err
    assert not list(tmp_path.glob("*bad*"))
    # without --shrink-toward the run must have trained on 3MOS (its mean colour is the default)
    assert main([*common, "--model-id", "bad2", "--colour-shrinkage", "0.5"]) == 2
    assert "--shrink-toward" in capsys.readouterr().err
