"""Tile plans, windows and blending weights (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InputError
from engine.tiling import (
    BLEND_MODES,
    RowQueue,
    Window,
    axis_weights,
    blend_weights,
    iter_tile_rows,
    plan_tiles,
    raster_window,
    tile_count,
    tile_weights,
)
from tests.engine.strategies import Tiling, tilings


def test_window_arithmetic() -> None:
    a = Window(2, 3, 10, 5)
    assert (a.row_end, a.col_end, a.shape) == (12, 8, (10, 5))
    assert a.intersection(Window(5, 0, 20, 4)) == Window(5, 3, 7, 1)
    assert a.intersection(Window(50, 50, 1, 1)).is_empty
    assert Window(5, 4, 2, 2).relative_to(a) == Window(3, 1, 2, 2)
    assert a.slices() == (slice(2, 12), slice(3, 8))
    assert a.to_ranges() == ((2, 12), (3, 8))
    assert raster_window(4, 6) == Window(0, 0, 4, 6)
    with pytest.raises(ValueError):
        Window(0, 0, -1, 2)


def test_raster_smaller_than_one_tile_has_one_padded_tile() -> None:
    tiles = plan_tiles(5, 7, tile_size=32, overlap=8)
    assert len(tiles) == 1
    assert tiles[0].read == Window(0, 0, 32, 32)
    assert tiles[0].core == Window(0, 0, 5, 7)
    assert tiles[0].taper == (False, False, False, False)


def test_plan_layout_for_odd_size() -> None:
    tiles = plan_tiles(37, 53, tile_size=16, overlap=4)
    stride = 12
    assert tile_count(37, 16, 4) == 3 and tile_count(53, 16, 4) == 5
    assert len(tiles) == 15
    assert all(t.read.shape == (16, 16) for t in tiles)
    assert {t.read.row_off for t in tiles} == {0, stride, 2 * stride}
    assert max(t.read.col_end for t in tiles) >= 53  # the last column is padded
    rows = list(iter_tile_rows(tiles))
    assert [len(r) for r in rows] == [5, 5, 5]
    assert rows[1][0].taper == (True, True, False, True)
    assert rows[2][4].taper == (True, False, True, False)


@pytest.mark.parametrize(("tile_size", "overlap"), [(0, 0), (8, 8), (8, -1)])
def test_invalid_tiling_says_what_to_change(tile_size: int, overlap: int) -> None:
    with pytest.raises(InputError, match="choose"):
        plan_tiles(10, 10, tile_size, overlap)


def test_empty_raster_cannot_be_tiled() -> None:
    with pytest.raises(InputError, match="empty"):
        plan_tiles(0, 10, 8, 2)


def test_unknown_blend_mode() -> None:
    with pytest.raises(InputError, match="cosine"):
        blend_weights(8, 2, "gaussian")


@pytest.mark.parametrize("kind", ["cosine", "feather"])
def test_ramps_are_complementary_and_positive(kind: str) -> None:
    w = axis_weights(16, 6, kind)
    assert (w > 0).all()
    np.testing.assert_allclose(w[:6] + w[-6:], 1.0, atol=1e-12)  # rising + falling ramp
    assert (w[6:10] == 1).all()


def test_untapered_sides_are_flat() -> None:
    w = blend_weights(8, 4, "cosine", taper=(False, True, False, False))
    assert (w[:4] == 1).all()
    assert (w[4:, :] < 1).all()


def _coverage(height: int, width: int, tile_size: int, overlap: int, kind: str) -> np.ndarray:
    tiles = plan_tiles(height, width, tile_size, overlap)
    ext = max(max(t.read.row_end for t in tiles), max(t.read.col_end for t in tiles))
    total = np.zeros((ext, ext))
    for tile in tiles:
        total[tile.read.slices()] += tile_weights(tile, tile_size, overlap, kind)
    return total[:height, :width]


@settings(max_examples=60, deadline=None)
@given(tiling=tilings((2, 64), half_overlap=True), kind=st.sampled_from(BLEND_MODES))
def test_weights_sum_to_one_everywhere(tiling: Tiling, kind: str) -> None:
    np.testing.assert_allclose(_coverage(*tiling, kind), 1.0, atol=1e-6)  # 2 * overlap <= tile_size


@settings(max_examples=60, deadline=None)
@given(tiling=tilings((1, 48)))
def test_cores_partition_the_raster(tiling: Tiling) -> None:
    height, width, tile_size, overlap = tiling
    count = np.zeros((height, width), dtype=int)
    for tile in plan_tiles(height, width, tile_size, overlap):
        core = tile.core
        assert tile.read.intersection(core) == core  # the core lies inside the read window
        count[core.slices()] += 1
    assert (count == 1).all()
    # every raster pixel gets a positive weight, even when overlaps exceed half a tile
    assert (_coverage(height, width, tile_size, overlap, "cosine") > 0).all()


@settings(max_examples=60, deadline=None)
@given(pushes=st.lists(st.integers(0, 9), min_size=1, max_size=12), take=st.integers(1, 7),
       axis=st.integers(0, 1))
def test_row_queue_hands_out_the_rows_pushed_in_order(pushes: list[int], take: int, axis: int) -> None:
    """Whatever the heights pushed and taken, the blocks taken are the rows pushed, in order, and every
    array of a push keeps its rows beside the others'."""
    total = sum(pushes)
    values = np.arange(total * 3).reshape(total, 3)
    moved = np.moveaxis(values[None], 1, axis + 1)[0] if axis else values  # rows along ``axis``
    queue, got, tops, start = RowQueue(axis), [], [], 0
    for n in pushes:
        part = moved[:, start : start + n] if axis else moved[start : start + n]
        queue.push(part, -part)
        start += n
        assert queue.end == start
        while queue.rows >= take:
            tops.append(queue.top)
            got.append(queue.take(take))
    if queue.rows:
        tops.append(queue.top)
        got.append(queue.take(queue.rows))
    assert queue.rows == 0 and queue.top == total
    assert [b[0].shape[axis] for b in got[:-1]] == [take] * (len(got) - 1)
    assert tops == list(range(0, total, take))[: len(got)]
    if got:
        firsts = np.concatenate([b[0] for b in got], axis=axis)
        np.testing.assert_array_equal(firsts, moved)
        np.testing.assert_array_equal(np.concatenate([b[1] for b in got], axis=axis), -moved)
    with pytest.raises(ValueError, match="cannot take"):
        queue.take(1)
