"""Rate-distortion optimised quantisation: never worse in its own cost, extremes behave, table settings."""

from __future__ import annotations

import numpy as np
import pytest

from engine.codec.entropy import EntropyModelTable
from engine.codec.rdo import rdo_quantise
from engine.errors import ModelError

CHANNELS = 3


def _table() -> EntropyModelTable:
    support = np.arange(-8, 9)
    pmfs = [np.exp(-np.abs(support) / (0.8 + c)) for c in range(CHANNELS)]
    return EntropyModelTable.from_pmfs([0.1, -0.2, 0.0], [-8] * CHANNELS, pmfs)


def _latents(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.laplace(0.0, 1.5, (CHANNELS, 12, 10)).astype(np.float32)


def _cost(table: EntropyModelTable, y: np.ndarray, q: np.ndarray, weights: np.ndarray, lam: float) -> float:
    error = y.astype(np.float64) - table.medians_array()[:, None, None] - q
    bits = sum(float(table.symbol_bits(c, q[c], None).sum()) for c in range(CHANNELS))
    return bits + lam * float(np.sum(weights[:, None, None] * error**2))


def test_without_settings_it_is_plain_rounding() -> None:
    table, y = _table(), _latents()
    np.testing.assert_array_equal(rdo_quantise(table, y), table.quantise(y))


def test_a_huge_lambda_keeps_rounding_and_a_tiny_one_moves_every_symbol_towards_zero() -> None:
    y = np.clip(_latents(1), -7.0, 7.0)  # inside the tables' support: no escape-to-escape moves (same bits)
    rounded = _table().quantise(y)
    weights = np.ones(CHANNELS)
    np.testing.assert_array_equal(rdo_quantise(_table().with_rdo(weights, 1e9), y), rounded)
    shrunk = rdo_quantise(_table().with_rdo(weights, 1e-9), y)
    np.testing.assert_array_equal(shrunk, rounded - np.sign(rounded))


@pytest.mark.parametrize("lam", [0.3, 1.0, 3.0])
def test_it_never_raises_its_own_cost_and_saves_bytes(lam: float) -> None:
    weights = np.array([1.0, 0.5, 2.0])
    table = _table().with_rdo(weights, lam)
    y = _latents(2)
    rounded, optimised = table.quantise(y), rdo_quantise(table, y)
    assert _cost(table, y, optimised, weights, lam) <= _cost(table, y, rounded, weights, lam)
    assert np.all(np.abs(optimised) <= np.abs(rounded)), "moves go towards zero only"
    assert len(table.encode(optimised)) <= len(table.encode(rounded))
    np.testing.assert_array_equal(table.decode(table.encode(optimised), optimised.shape), optimised)


def test_classified_tables_use_each_cells_class() -> None:
    base = _table()
    calm = [np.where(np.arange(17) == 8, 0.97, 0.03 / 16) for _ in range(CHANNELS)]
    table = base.with_classes([calm, base.pmfs], [0.5, 0.5]).with_rdo(np.ones(CHANNELS), 0.5)
    y = _latents(3) * 0.4
    q = rdo_quantise(table, y)
    assert np.count_nonzero(q) < np.count_nonzero(table.quantise(y))
    np.testing.assert_array_equal(table.decode(table.encode(q), q.shape), q)


def test_settings_survive_json_and_bad_ones_are_refused() -> None:
    table = _table().with_rdo([1.0, 0.25, 3.5], 12.5)
    again = EntropyModelTable.from_json(table.to_json())
    assert again == table and again.rdo_lambda == 12.5 and again.sha256() != _table().sha256()
    assert again.factorised() == _table()
    with pytest.raises(ModelError, match="one finite, non-negative value per channel"):
        _table().with_rdo([1.0, 2.0], 1.0)
    with pytest.raises(ModelError, match="rdo_lambda"):
        _table().with_rdo([1.0] * CHANNELS, -1.0)
    with pytest.raises(ModelError, match="rdo_lambda"):
        EntropyModelTable(_table().medians, _table().offsets, _table().pmfs, rdo_lambda=2.0)
