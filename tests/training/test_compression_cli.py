"""``python -m training.compression`` entry point: train -> export -> evaluate on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.codec.entropy import EntropyModelTable
from engine.runtime import OnnxModel
from training.compression.cli import main

torch.set_num_threads(1)  # tiny models; no OpenMP thread team to spin on a shared CPU

#: A tiny codec trained on one small synthetic scene, one thread, no evaluation, no progress bar.
TINY_TRAIN = [
    "--batch", "2", "--crop", "32", "--threads", "1", "--widths", "4", "4", "4", "--latent-channels", "2",
    "--no-real", "--synthetic-scenes", "1", "--synthetic-size", "64", "--eval-every", "0", "--no-progress",
]  # fmt: skip


def _train_tiny(run: Path) -> Path:
    """Train a tiny codec for 2 steps, then resume it to step 3; return the checkpoint."""
    common = ["--run-dir", str(run), *TINY_TRAIN]
    assert main(["train", "--steps", "2", *common]) == 0
    ckpt = run / "checkpoint.pt"
    assert ckpt.is_file()
    assert main(["train", "--steps", "3", *common]) == 0  # resumes from step 2
    return ckpt


def _export_args(ckpt: Path, models: Path) -> list[str]:
    """The ``export`` command line that writes ``sarcodec-r9`` into ``models``."""
    return [
        "export",
        str(ckpt),
        "--out-dir",
        str(models),
        "--model-id",
        "sarcodec-r9",
        "--tile-size",
        "32",
        "--overlap",
        "16",
    ]


def _evaluate(ckpt: Path, models: Path, scores_path: Path) -> dict:
    """Evaluate the checkpoint and the exported encoder on one synthetic scene; return the means."""
    assert (
        main(
            [
                "evaluate",
                str(ckpt),
                "--synthetic",
                "1",
                "--json",
                str(scores_path),
                "--onnx-encoder",
                str(models / "sarcodec-r9-encoder.onnx"),
            ]
        )
        == 0
    )
    scores = json.loads(scores_path.read_text())
    assert scores["checkpoint"]["step"] == 3
    synth = scores["mean"]["synthetic"]
    assert synth["bpp_coded"] > 0 and 0 < synth["ssim"] <= 1 and synth["psnr_db"] > 0
    engine = scores["engine"]["mean"]["synthetic"]
    assert engine["bpp_file"] > synth["bpp_coded"], "a file adds a header and the nodata mask"
    assert engine["psnr_db"] == pytest.approx(synth["psnr_db"], abs=1.5)
    return dict(synth)


def _export_with_card(export: list[str], models: Path, scores_path: Path, synth: dict) -> None:
    """Re-export with the scores and the command, and check the metadata and the model card."""
    assert (
        main(
            [
                *export,
                "--scores",
                str(scores_path),
                "--command",
                "python -m training.compression train --steps 3",
            ]
        )
        == 0
    )
    meta = OnnxModel(models / "sarcodec-r9-decoder.onnx").metadata
    assert meta.extra["rate_point"] == "r9" and meta.latent_channels == 2
    card = (models / "sarcodec-r9.md").read_text()
    assert "train --steps 3" in card and "3 steps" in card and "MIT" in card and "Apache-2.0" in card
    assert f"{synth['psnr_db']:.3f}" in card
    assert f"{synth['psnr_unquantised_db']:.3f}" in card, "the autoencoder's ceiling is on the card"


def _classify(tmp_path: Path, models: Path) -> None:
    """Fit a 2-class entropy table into the exported models; files still decode, the card says so."""
    classified = tmp_path / "classify.json"
    encoder = models / "sarcodec-r9-encoder.onnx"
    assert (
        main(
            [
                "classify",
                str(encoder),
                "--classes",
                "2",
                "--iterations",
                "3",
                "--synthetic-scenes",
                "2",
                "--real-root",
                str(tmp_path / "none"),
                "--json",
                str(classified),
            ]
        )
        == 0
    )
    result = json.loads(classified.read_text())
    for path in (encoder, models / "sarcodec-r9-decoder.onnx"):
        table = EntropyModelTable.from_json(OnnxModel(path).metadata.extra["entropy_model"])
        assert table.classes == 3, "2 fitted classes + the empty-cell class"
    assert result["engine"]["mean"]["synthetic"]["bpp_file"] > 0, "files decode with the classified table"
    card = (models / "sarcodec-r9.md").read_text()
    assert "classified (per-cell classes)" in card and "--classes 2" in card
    assert "train --steps 3" in card, "the rest of the card is kept"


@pytest.mark.slow
def test_train_export_evaluate_smoke(tmp_path: Path) -> None:
    ckpt = _train_tiny(tmp_path / "runs" / "tiny")
    models = tmp_path / "models"
    export = _export_args(ckpt, models)
    assert main([*export, "--no-card"]) == 0
    scores_path = tmp_path / "scores.json"
    synth = _evaluate(ckpt, models, scores_path)
    _export_with_card(export, models, scores_path, synth)
    _classify(tmp_path, models)


def test_crop_must_be_a_multiple_of_16(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--run-dir", str(tmp_path), "--crop", "30", "--no-real", "--steps", "1"])


def test_unknown_command_exits() -> None:
    with pytest.raises(SystemExit):
        main(["fly"])


def test_a_bad_input_is_an_error_message_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As in the other families' commands: no traceback, the message, status 2, nothing written."""
    out = tmp_path / "models"
    status = main(["export", str(tmp_path / "none.pt"), "--model-id", "sarcodec-r9", "--out-dir", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert "error: Checkpoint" in err and "none.pt' does not exist" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.slow
def test_card_lists_every_run_of_a_fine_tuned_model(tmp_path: Path) -> None:
    common = TINY_TRAIN
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    assert main(["train", "--run-dir", str(base), "--steps", "2", "--lambda", "500", *common]) == 0
    assert (
        main(
            [
                "train",
                "--run-dir",
                str(tuned),
                "--steps",
                "1",
                "--lambda",
                "150",
                "--seed",
                "1",
                "--init-from",
                str(base / "checkpoint.pt"),
                *common,
            ]
        )
        == 0
    )
    models = tmp_path / "models"
    assert (
        main(
            [
                "export",
                str(tuned / "checkpoint.pt"),
                "--out-dir",
                str(models),
                "--model-id",
                "sarcodec-r8",
                "--tile-size",
                "32",
                "--overlap",
                "16",
                "--no-parity",
            ]
        )
        == 0
    )
    card = (models / "sarcodec-r8.md").read_text()
    assert "3 steps in 2 runs" in card
    assert f"`{base}`: 2 steps, lambda 500" in card and f"`{tuned}`: 1 steps, lambda 150" in card
    assert "seeds 20000..20000, 21000..21000" in card


def test_stop_at_ends_the_run_early_with_a_checkpoint(tmp_path: Path) -> None:
    from training.compression.train import load_checkpoint

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--run-dir",
                str(run),
                "--steps",
                "4",
                "--stop-at",
                "2",
                "--batch",
                "2",
                "--crop",
                "32",
                "--threads",
                "1",
                "--widths",
                "4",
                "4",
                "4",
                "--latent-channels",
                "2",
                "--no-real",
                "--synthetic-scenes",
                "1",
                "--synthetic-size",
                "64",
                "--eval-every",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["step"] == 2 and ckpt["config"]["steps"] == 4
