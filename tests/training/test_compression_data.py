"""Training data of the SAR codec: sources, quality filtering, display-PNG mapping, held-out split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from training.compression.data import (
    DESPECKLING_SAMPLES,
    HELDOUT_3MOS,
    DataConfig,
    Preprocessing,
    _png_scenes,
    augment,
    build_sampler,
    make_batch,
    split_despeckling,
)
from training.data import DisplayPngMapping, GeoTiffFolderSource, InMemorySource, PatchSampler
from training.data.sources import Sen12Source, load_display_png_db

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"


def test_sampler_rejects_blank_and_nodata_patches() -> None:
    blank = np.full((64, 64), -10.0, dtype=np.float32)
    nodata = np.full((64, 64), np.nan, dtype=np.float32)
    good = np.random.default_rng(0).normal(-10, 3, (64, 64)).astype(np.float32)
    sampler = PatchSampler([InMemorySource("blank", [blank, nodata]), InMemorySource("good", [good])])
    rng = np.random.default_rng(1)
    patches = [sampler.sample(rng, 16) for _ in range(20)]
    assert all(np.isfinite(p).all() and p.std() > 0.5 for p in patches)
    assert sampler.rejected > 0


def test_sampler_gives_up_with_a_clear_error() -> None:
    sampler = PatchSampler([InMemorySource("blank", [np.zeros((32, 32), np.float32)])], max_tries=3)
    with pytest.raises(RuntimeError, match="No acceptable"):
        sampler.sample(np.random.default_rng(0), 16)


def test_display_png_mapping(tmp_path: Path) -> None:
    from skimage.io import imsave

    img = np.array([[0, 4, 32, 255]], dtype=np.uint8)
    imsave(tmp_path / "a.png", img, check_contrast=False)
    db = load_display_png_db(tmp_path / "a.png", DisplayPngMapping(db_at_255=5.0), noise_floor_db=-40.0)
    expected = 20 * np.log10(np.array([0.5, 4, 32, 255]) / 255) + 5
    assert np.allclose(db[0], np.maximum(expected, -40.0), atol=1e-4)


def test_geotiff_folder_source_reads_random_windows(make_geotiff: Callable[..., Path]) -> None:
    path = make_geotiff(height=40, width=50, nodata=-1.0, holes=0.1, name="s.tif")
    src = GeoTiffFolderSource(path.parent, kind="intensity")
    patch = src.sample(np.random.default_rng(0), 16)
    assert patch.shape == (16, 16)
    assert np.isnan(patch).any(), "nodata pixels come back as NaN (masked)"
    assert np.nanmax(patch) < 0.0  # intensities ~0.05 -> about -13 dB


def test_geotiff_folder_without_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="No GeoTIFF"):
        GeoTiffFolderSource(tmp_path)


def test_sen12_layout(tmp_path: Path) -> None:
    from skimage.io import imsave

    folder = tmp_path / "ROIs1158_spring" / "s1_7"
    folder.mkdir(parents=True)
    imsave(folder / "ROIs1158_spring_s1_7_p1.png", np.full((32, 32), 255, np.uint8), check_contrast=False)
    patch = Sen12Source(tmp_path).sample(np.random.default_rng(0), 16)
    assert np.allclose(patch, 0.0)  # 255 is the top of the -25..0 dB range
    with pytest.raises(ValueError, match="SEN1-2"):
        Sen12Source(tmp_path / "ROIs1158_spring")


def test_batches_are_normalised_with_the_preprocessing() -> None:
    pre = Preprocessing(-30.0, 10.0, -30.0)
    cfg = DataConfig(use_real=False, synthetic_scenes=1, synthetic_size=64)
    rng = np.random.default_rng(0)
    batch = make_batch(build_sampler(cfg, pre, seed=0), rng, 3, 32, pre, db_jitter=1.0)
    assert batch.shape == (3, 1, 32, 32) and batch.dtype.is_floating_point
    assert float(batch.min()) >= 0.0 and float(batch.max()) <= 1.0
    x = pre.to_network(np.array([[-50.0, -30.0, 10.0, 20.0, np.nan]], np.float32))
    assert np.allclose(x, [[0.0, 0.0, 1.0, 1.0, 0.0]])


def test_augment_keeps_values_up_to_the_offset() -> None:
    patch = np.arange(16, dtype=np.float32).reshape(4, 4)
    out = augment(patch, np.random.default_rng(0), db_jitter=0.0)
    assert sorted(out.ravel()) == sorted(patch.ravel())


@pytest.mark.skipif(not REAL.is_dir(), reason="real sample data not present")
def test_heldout_real_images_are_not_in_training() -> None:
    train = dict(_png_scenes(REAL, -35.0, heldout=False))
    held = dict(_png_scenes(REAL, -35.0, heldout=True))
    assert not any(stem in name for name in train for stem in HELDOUT_3MOS)
    assert all(any(stem in name for name in held) for stem in HELDOUT_3MOS)
    total = sum(a.size for a in train.values()) + sum(a.size for a in held.values())
    s2s = "deepdespeckling/sar2sar_noisy"
    assert train[s2s].size + held[s2s].size == 500 * 1000
    assert total > 0


@pytest.mark.parametrize("name", DESPECKLING_SAMPLES)
def test_despeckling_split_is_disjoint_and_complete(name: str) -> None:
    img = np.arange(300 * 500, dtype=np.float32).reshape(300, 500)
    train, held = split_despeckling(name, img, False), split_despeckling(name, img, True)
    assert train.size + held.size == img.size
    assert held.size > 0 and train.size > held.size
    assert not np.intersect1d(train, held).size


def test_unknown_despeckling_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of the despeckling samples"):
        split_despeckling("other.png", np.zeros((4, 4)), True)
