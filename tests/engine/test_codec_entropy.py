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


def _classified(channels: int = 3) -> EntropyModelTable:
    """Two classes over the same support: calm (mass at 0) and busy (flat)."""
    base = _table(channels)
    calm = [np.where(np.arange(9) == 4, 0.9, 0.1 / 8) for _ in range(channels)]
    busy = [np.full(9, 1 / 9) for _ in range(channels)]
    return base.with_classes([calm, busy], [0.5, 0.5])


def _mixed_cells(channels: int = 3, seed: int = 0) -> np.ndarray:
    """Left half calm (zeros), right half busy (uniform in the support)."""
    rng = np.random.default_rng(seed)
    q = np.zeros((channels, 8, 16), np.int32)
    q[:, :, 8:] = rng.integers(-4, 5, (channels, 8, 8))
    return q


def test_classified_json_round_trip_and_version() -> None:
    table = _classified()
    text = table.to_json()
    assert '"version":2' in text and table.classes == 2
    again = EntropyModelTable.from_json(text)
    assert again == table and again.sha256() == table.sha256()
    assert again.sha256() != _table().sha256(), "the classes are part of the table's identity"
    assert _table().classes == 0 and '"version":1' in _table().to_json()


def test_classes_go_to_the_cheaper_set() -> None:
    table = _classified()
    q = _mixed_cells()
    cells = table.assign_classes(q).reshape(8, 16)
    assert np.all(cells[:, :8] == 0), "all-zero cells belong to the calm class"
    busy = q[:, :, 8:]
    # calm: 0.15 bits per zero, 6.3 per non-zero; busy: 3.17 per symbol -> busy from 2 non-zeros of 3 on
    expected_busy = np.count_nonzero(busy, axis=0) >= 2
    np.testing.assert_array_equal(cells[:, 8:] == 1, expected_busy)
    costs = table.class_costs(q)
    np.testing.assert_array_equal(np.argmin(costs, axis=0), cells.ravel())


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.int32, st.tuples(st.just(3), st.integers(0, 6), st.integers(0, 7)),
                  elements=st.integers(-(2**31), 2**31 - 1) | st.integers(-6, 6)))
def test_classified_round_trip_any_integers_with_escapes(q: np.ndarray) -> None:
    table = _classified(3)
    np.testing.assert_array_equal(table.decode(table.encode(q), q.shape), q)


def test_classified_table_codes_mixed_content_in_fewer_bytes() -> None:
    q = _mixed_cells(seed=1)
    base = _table()
    plain = len(base.encode(q))
    classified = len(_classified().encode(q))
    assert classified < 0.8 * plain
    assert len(_classified().encode(q)) == classified, "encoding is deterministic"


def test_invalid_classified_tables_are_refused() -> None:
    base = _table(2)
    with pytest.raises(ModelError, match="at least 2 classes"):
        base.with_classes([base.pmfs], [1.0])
    with pytest.raises(ModelError, match="as long as the channel's pmf"):
        base.with_classes([base.pmfs, [p[:-1] for p in base.pmfs]], [0.5, 0.5])
    with pytest.raises(ModelError, match="positive"):
        base.with_classes([base.pmfs, base.pmfs], [1.0, 0.0])
    with pytest.raises(ModelError, match="no classes"):
        base.class_costs(np.zeros((2, 1, 1), np.int32))


@pytest.mark.parametrize("classified", [False, True])
def test_strips_round_trip_and_one_strip_is_the_plain_stream(classified: bool) -> None:
    from engine.codec.entropy import StripDecoder, StripEncoder

    table = _classified() if classified else _table()
    rng = np.random.default_rng(5)
    q = rng.integers(-5, 6, (3, 11, 7)).astype(np.int32)
    q[1, 4, 2], q[2, 9, 6] = 40000, -77  # escapes in two strips
    heights = [4, 4, 3]
    stream = StripEncoder(table)
    top = 0
    for h in heights:
        stream.add(q[:, top : top + h])
        top += h
    data = stream.finish()
    decoder = StripDecoder(table, data, q.size, q.shape[2])
    parts = [decoder.next(h) for h in heights]
    decoder.finish()
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), q)
    single = StripEncoder(table)
    single.add(q)
    assert single.finish() == table.encode(q)


def test_a_wrong_escape_count_is_caught_at_the_end() -> None:
    from engine.codec.entropy import StripDecoder

    table = _table(1)
    q = np.array([[[0, 1, 50]]], dtype=np.int32)  # one escape
    data = bytearray(table.encode(q))
    data[0:4] = (2).to_bytes(4, "little")  # announce two
    decoder = StripDecoder(table, bytes(data), q.size, 3)
    decoder.next(1)
    with pytest.raises(CompressedFileError, match="escape count"):
        decoder.finish()


def test_coding_rows_at_once_writes_the_stream_of_the_single_calls() -> None:
    """Issue 25.3: ``put_rows`` / ``take_rows`` (one table lookup per strip) are the calls of ``put`` /
    ``take`` in row-then-segment order, escapes and empty segments included."""
    from engine.codec.rangecoding import SymbolDecoder, SymbolEncoder, categorical

    rng = np.random.default_rng(3)
    rows, bounds = 3, (0, 5, 5, 17, 30)  # an empty segment
    offsets, sizes = np.array([-3, -1, -6]), np.array([7, 3, 13])
    values = rng.integers(-9, 9, size=(rows, bounds[-1]))  # some outside every row's table
    values[1, 7] = 2**30
    models = [[categorical(np.full(int(sizes[r]), 1.0 / sizes[r])) for _ in range(len(bounds) - 1)]
              for r in range(rows)]
    single, batched = SymbolEncoder(), SymbolEncoder()
    for r in range(rows):
        for k in range(len(bounds) - 1):
            single.put(values[r, bounds[k] : bounds[k + 1]], int(offsets[r]), int(sizes[r]), models[r][k])
    batched.put_rows(values, offsets, sizes, bounds, models)
    single.end_group()
    batched.end_group()
    data = batched.finish()
    assert data == single.finish() and batched.escaped > 1
    decoder = SymbolDecoder(data, values.size)
    back = decoder.take_rows(offsets, sizes, bounds, models)
    decoder.end_group()
    decoder.finish()
    np.testing.assert_array_equal(back, values)
