"""The codec-ceiling diagnostic's linear reference and tiling."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.investigations.codec_ceiling import dct_psnr, tiles_of


def test_dct_reference_is_lossless_with_every_coefficient_and_lossy_with_fewer() -> None:
    rng = np.random.default_rng(0)
    x = tiles_of(rng.random((64, 64)).astype(np.float32), tile=32)
    assert x.shape == (4, 1, 32, 32)
    full, half, few = dct_psnr(x, 256), dct_psnr(x, 128), dct_psnr(x, 16)
    assert full > 100.0
    assert full > half > few


def test_smooth_images_need_few_coefficients() -> None:
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    wave = 0.5 + 0.2 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)
    smooth = tiles_of(wave.astype(np.float32), tile=64)
    noise = tiles_of(np.random.default_rng(1).random((64, 64)).astype(np.float32), tile=64)
    assert dct_psnr(smooth, 16) > dct_psnr(noise, 16) + 10.0


def test_image_smaller_than_a_tile_is_refused() -> None:
    with pytest.raises(ValueError, match="smaller than one"):
        tiles_of(np.zeros((100, 300), np.float32), tile=256)
