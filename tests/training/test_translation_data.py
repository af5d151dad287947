"""Translation data: SEN1-2 layout, GeoTIFF pairs, 3MOS split, synthetic pairs, the engine's normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.preprocess import to_model_input
from tests.conftest import write_test_geotiff
from training.translation import data as tdata


def _png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def sen12_tree(tmp_path: Path) -> Path:
    """A tiny SEN1-2 tree: 2 seasons x 1 scene x 2 patches, plus an S1 patch without its S2 partner."""
    rng = np.random.default_rng(0)
    root = tmp_path / "SEN1-2"
    for season in ("ROIs1158_spring", "ROIs1868_summer"):
        for k in (1, 2):
            s1 = rng.integers(0, 256, (32, 32), dtype=np.uint8)
            s2 = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            _png(root / season / "s1_7" / f"{season}_s1_7_p{k}.png", s1)
            _png(root / season / "s2_7" / f"{season}_s2_7_p{k}.png", s2)
    _png(root / "ROIs1158_spring" / "s1_7" / "ROIs1158_spring_s1_7_p9.png", np.zeros((32, 32), np.uint8))
    return root


def test_sen12_pairs_match_s1_to_s2_and_read_db(sen12_tree: Path) -> None:
    pairs = tdata.sen12_pairs(sen12_tree)
    assert [p.name for p in pairs] == [
        "ROIs1158_spring_s1_7_p1",
        "ROIs1158_spring_s1_7_p2",
        "ROIs1868_summer_s1_7_p1",
        "ROIs1868_summer_s1_7_p2",
    ]
    pair = pairs[0].load()
    from PIL import Image

    s1 = np.asarray(Image.open(sen12_tree / "ROIs1158_spring/s1_7/ROIs1158_spring_s1_7_p1.png"), dtype=float)
    s2 = np.asarray(Image.open(sen12_tree / "ROIs1158_spring/s2_7/ROIs1158_spring_s2_7_p1.png"), dtype=float)
    np.testing.assert_allclose(pair.sar_db, -25 + 25 * s1 / 255, atol=1e-5)  # dataset convention
    np.testing.assert_allclose(pair.rgb, s2.transpose(2, 0, 1) / 255, atol=1e-6)


def test_sen12_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No SEN1-2 pairs"):
        tdata.sen12_pairs(tmp_path)


def test_geotiff_pairs_read_by_windows_with_the_engine_conversion(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    sar = rng.gamma(2.0, 0.05, (1, 80, 70)).astype(np.float32)
    sar[0, 0, 0] = -9999.0
    opt = rng.integers(0, 256, (3, 80, 70)).astype(np.uint8)
    (tmp_path / "sar").mkdir()
    (tmp_path / "optical").mkdir()
    write_test_geotiff(tmp_path / "sar" / "a.tif", sar, nodata=-9999.0)
    write_test_geotiff(tmp_path / "optical" / "a.tif", opt)
    pairs = tdata.geotiff_pairs(tmp_path, 32)
    assert [p.name for p in pairs] == ["a_0_0", "a_0_32", "a_32_0", "a_32_32"]
    p = pairs[3].load()
    np.testing.assert_allclose(p.sar_db, 10 * np.log10(sar[0, 32:64, 32:64]), atol=1e-4)
    np.testing.assert_allclose(p.rgb, opt[:, 32:64, 32:64] / 255, atol=1e-6)
    assert np.isnan(pairs[0].load().sar_db[0, 0])  # nodata stays invalid


def test_network_input_is_the_engine_normalisation() -> None:
    """Training feeds exactly what the engine feeds at inference (same metadata, same function)."""
    rng = np.random.default_rng(2)
    intensity = rng.gamma(1.0, 0.1, (16, 16)).astype(np.float32)
    db = 10 * np.log10(intensity)
    engine_x, _ = to_model_input(intensity, tdata.input_metadata(), None, "intensity")
    np.testing.assert_allclose(tdata.sar_to_network(db), engine_x, atol=1e-6)
    assert tdata.sar_to_network(np.array([[-100.0, 100.0, np.nan]])).tolist() == [[0.0, 1.0, 0.0]]


def test_synthetic_pairs_and_sampler() -> None:
    synth = tdata.synthetic_pairs(2, 64, first_seed=5)
    assert synth[0].sar_db.shape == (64, 64) and synth[0].rgb.shape == (3, 64, 64)
    assert synth[0].rgb.min() >= 0 and synth[0].rgb.max() <= 1
    sampler = tdata.PairSampler([], synth, tdata.DataConfig(), crop=32, seed=0)
    x, y = sampler.batch(3)
    assert x.shape == (3, 1, 32, 32) and y.shape == (3, 3, 32, 32)
    assert x.min() >= 0 and x.max() <= 1 and y.min() >= -1 and y.max() <= 1
    with pytest.raises(ValueError, match="smaller than the crop"):
        tdata.PairSampler([], synth, tdata.DataConfig(), crop=128, seed=0).sample()


def test_3mos_held_out_pairs_are_never_trained_on(real_data_dir: Path) -> None:
    if not (real_data_dir / tdata.MOS_FOLDER).is_dir():
        pytest.skip("../shared/data/real/opt_sar_3mos is absent")
    pairs = tdata.load_3mos(real_data_dir)
    train, held = tdata.split_held_out(pairs, tdata.HELD_OUT)
    assert sorted(p.name for p in held) == sorted(tdata.HELD_OUT)
    assert not {p.name for p in train} & set(tdata.HELD_OUT) and len(train) + len(held) == len(pairs)
    water = next(p for p in pairs if p.name == "SEN_water_1")
    assert np.nanmin(water.sar_db) >= -40 and np.nanmax(water.sar_db) <= tdata.MOS_DB_AT_255
