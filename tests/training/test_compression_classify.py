"""Classified entropy tables: Lloyd fitting on latents, the model-card section, the CLI step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.codec.entropy import EntropyModelTable
from training.compression.classify import CARD_BEGIN, CARD_END, ClassifyConfig, fit_classes, update_card

CHANNELS = 4


def _base_table() -> EntropyModelTable:
    support = np.arange(-12, 13)
    pmf = np.exp(-np.abs(support) / 1.5)
    pmf /= pmf.sum()
    return EntropyModelTable.from_pmfs([0.0] * CHANNELS, [-12] * CHANNELS, [pmf] * CHANNELS)


def _latents(cells: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``[C, 1, N]`` integer latents: a calm population (Laplace scale 0.3) and a busy one (scale 4)."""
    rng = np.random.default_rng(seed)
    busy = rng.random(cells) < 0.5
    scale = np.where(busy, 4.0, 0.3)[None, :]
    q = np.rint(rng.laplace(0.0, 1.0, (CHANNELS, cells)) * scale).astype(np.int32)
    return q[:, None, :], busy


def test_fitted_classes_separate_calm_from_busy_and_save_bits() -> None:
    base = _base_table()
    q, _ = _latents(4000, seed=0)
    fitted = fit_classes(q, base, ClassifyConfig(classes=2, iterations=10))
    assert fitted.classes == 2 and fitted.pmfs == base.pmfs, "the factorised table is kept as is"
    held, busy = _latents(2000, seed=1)
    assert len(fitted.encode(held)) < 0.9 * len(base.encode(held))
    cells = fitted.assign_classes(held)
    calm_class = int(np.bincount(cells[~busy]).argmax())
    purity = np.mean((cells == calm_class) == ~busy)
    assert purity > 0.85
    again = EntropyModelTable.from_json(fitted.to_json())
    assert again == fitted, "rounded probabilities survive the JSON round trip exactly"
    np.testing.assert_array_equal(again.decode(again.encode(held), held.shape), held)


def test_fit_refuses_too_few_classes_or_cells() -> None:
    base = _base_table()
    q, _ = _latents(10, seed=0)
    with pytest.raises(ValueError, match=">= 2"):
        fit_classes(q, base, ClassifyConfig(classes=1))
    with pytest.raises(ValueError, match="at least 16 cells"):
        fit_classes(q, base, ClassifyConfig(classes=16))


def test_card_section_is_replaced_not_repeated(tmp_path: Path) -> None:
    card = tmp_path / "m.md"
    card.write_text("# model\n\ntext\n")
    update_card(card, f"{CARD_BEGIN}\nfirst\n{CARD_END}\n")
    update_card(card, f"{CARD_BEGIN}\nsecond\n{CARD_END}\n")
    text = card.read_text()
    assert text.count(CARD_BEGIN) == 1 and "second" in text and "first" not in text
    assert text.startswith("# model\n\ntext\n")


def test_distortion_weights_follow_what_the_decoder_reads(tmp_path: Path) -> None:
    """The tiny decoder reads latent channel 0 only: the other channels cost no pixel error."""
    from engine.metadata import Task
    from engine.runtime import OnnxModel
    from tests.engine.tiny_codec import DB_MAX, DB_MIN, GAINS, build_pair, tiny_table
    from training.compression.classify import distortion_weights
    from training.compression.data import Preprocessing

    enc_path, dec_path = build_pair(tmp_path, "r1")
    encoder = OnnxModel(enc_path, tasks=[Task.COMPRESS_ENCODER])
    decoder = OnnxModel(dec_path, tasks=[Task.COMPRESS_DECODER])
    pre = Preprocessing(DB_MIN, DB_MAX, -40.0)
    rng = np.random.default_rng(0)
    images = [rng.uniform(-25.0, 5.0, (96, 96)).astype(np.float32)]
    weights = distortion_weights(encoder, decoder, tiny_table(), images, pre, crop=96)
    assert weights[0] > 0 and np.all(weights[1:] == 0)
    # one step of channel 0 moves a 16 x 16 area by 1/GAINS[0] (bilinear spread): summed error ~ 256 / a^2
    assert weights[0] == pytest.approx(256 / GAINS[0] ** 2, rel=0.5)


def test_fit_table_adds_quantisation_settings_only_when_asked() -> None:
    from training.compression.classify import fit_table

    base = _base_table()
    y = _latents(600, seed=3)[0].astype(np.float32) + 0.2
    weights = np.ones(CHANNELS)
    plain = fit_table(y, base, ClassifyConfig(classes=2, iterations=3, rdo_scale=0.0), weights, 50.0)
    assert plain.classes == 3 and plain.rdo_lambda == 0, "2 fitted classes + the empty-cell class"
    tuned = fit_table(y, base, ClassifyConfig(classes=2, iterations=3, rdo_scale=3.0), weights, 50.0)
    assert tuned.rdo_lambda == 150.0 and tuned.distortion_weights == (1.0,) * CHANNELS
    assert tuned.class_pmfs == plain.class_pmfs, "classes are fitted for plain rounding either way"


def test_the_empty_class_makes_all_zero_cells_cheap() -> None:
    """With many channels even the calmest fitted class pays a fraction of a bit per zero symbol."""
    from training.compression.classify import with_empty_class

    channels = 64
    support = np.arange(-12, 13)
    pmf = np.exp(-np.abs(support) / 1.5)
    base = EntropyModelTable.from_pmfs([0.0] * channels, [-12] * channels, [pmf / pmf.sum()] * channels)
    rng = np.random.default_rng(4)
    scale = np.where(rng.random(2000) < 0.5, 4.0, 0.3)[None, :]
    q = np.rint(rng.laplace(0.0, 1.0, (channels, 2000)) * scale).astype(np.int32)[:, None, :]
    fitted = fit_classes(q, base, ClassifyConfig(classes=2, iterations=5))
    extended = with_empty_class(fitted, ClassifyConfig(empty_class_prior=1 / 64, empty_class_epsilon=1e-4))
    assert extended.classes == 3
    zeros = np.zeros((channels, 1, 5), np.int32)
    assert np.all(extended.assign_classes(zeros) == 2)
    assert extended.class_costs(zeros).min(axis=0).max() < 6.1  # ~ -log2(1/64) + 64 x 0.00015 bits
    assert fitted.class_costs(zeros).min() > 2 * extended.class_costs(zeros).min()
    held = q[:, :, :500]
    extra = len(extended.encode(held)) - len(fitted.encode(held))
    assert extra <= 0.01 * len(fitted.encode(held)) + 8, "ordinary cells pay only the smaller prior"
    assert with_empty_class(fitted, ClassifyConfig(empty_class_prior=0.0)) == fitted
