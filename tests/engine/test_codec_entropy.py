"""Entropy model table: JSON round trip, quantisation, range coding incl. escapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.codec.entropy import EntropyModelTable
from engine.errors import CompressedFileError, ModelError


def _table(channels: int = 3) -> EntropyModelTable:
    pmfs = [np.exp(-0.5 * (np.arange(-4, 5) / (1.0 + c)) ** 2) for c in range(channels)]
    return EntropyModelTable.from_pmfs(np.linspace(-0.4, 0.4, channels), [-4] * channels, pmfs)


def test_json_round_trip_is_exact() -> None:
    table = _table()
    again = EntropyModelTable.from_json(table.to_json())
    assert again == table
    assert again.sha256() == table.sha256()


def test_quantise_follows_the_contract() -> None:
    table = _table(2)
    y = np.array([[[0.2, -1.6]], [[1.49, 0.0]]], dtype=np.float32)
    q = table.quantise(y)
    assert q.dtype == np.int32
    np.testing.assert_array_equal(q, np.rint(y - table.medians_array()[:, None, None]))
    np.testing.assert_allclose(table.dequantise(q), q + table.medians_array()[:, None, None])


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.int32, st.tuples(st.just(3), st.integers(0, 6), st.integers(0, 7)),
                  elements=st.integers(-(2**31), 2**31 - 1) | st.integers(-6, 6)))
def test_round_trip_any_integers_with_escapes(q: np.ndarray) -> None:
    table = _table(3)
    data = table.encode(q)
    np.testing.assert_array_equal(table.decode(data, q.shape), q)


def test_in_table_symbols_cost_fewer_bits_than_escapes() -> None:
    table = _table(1)
    rng = np.random.default_rng(0)
    inside = np.clip(np.rint(rng.normal(0, 1, (1, 32, 32))), -4, 4).astype(np.int32)
    outside = inside + 50
    assert len(table.encode(inside)) < len(table.encode(outside))
    assert len(table.encode(inside)) < inside.size  # well under 8 bits per symbol


def test_wrong_channel_count_is_refused() -> None:
    with pytest.raises(ModelError, match=r"channels|expects"):
        _table(3).encode(np.zeros((2, 4, 4), np.int32))


def test_invalid_tables_are_refused() -> None:
    with pytest.raises(ModelError, match="one entry per latent channel"):
        EntropyModelTable.from_pmfs([0.0, 0.0], [0], [[1.0], [1.0]])
    with pytest.raises(ModelError, match="non-negative"):
        EntropyModelTable.from_pmfs([0.0], [0], [[0.5, -0.1]])
    with pytest.raises(ModelError, match="not valid JSON"):
        EntropyModelTable.from_json("{")
    with pytest.raises(ModelError, match="version"):
        EntropyModelTable.from_json('{"version": 99}')


def test_damaged_payload_is_reported() -> None:
    table = _table(2)
    with pytest.raises(CompressedFileError, match="damaged"):
        table.decode(b"\x01\x02\x03", (2, 3, 3))
