"""Integer-exact entropy-parameter networks: exact arithmetic, float agreement, serialisation, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import correlate

from engine.codec import intnet
from engine.codec.intnet import IntLayer, IntNet
from engine.errors import ModelError

FloatLayers = list[tuple[np.ndarray, np.ndarray, int, int, bool]]


def _float_layers(rng: np.random.Generator) -> FloatLayers:
    return [
        (rng.normal(0, 0.3, (6, 3, 3, 3)), rng.normal(0, 0.1, 6), 2, 1, True),
        (rng.normal(0, 0.3, (5, 6, 3, 3)), rng.normal(0, 0.1, 5), 1, 2, True),
        (rng.normal(0, 0.3, (4, 5, 1, 1)), rng.normal(0, 0.1, 4), 1, 1, False),
    ]


def _float_reference(x: np.ndarray, layers: FloatLayers) -> np.ndarray:
    """The same network in float64 (scipy correlation, zero 'same' padding, then stride)."""
    a = x.astype(np.float64)
    for weight, bias, stride, upsample, relu in layers:
        if upsample > 1:
            a = a.repeat(upsample, axis=1).repeat(upsample, axis=2)
        out = np.stack([
            sum(correlate(a[i], weight[o, i], mode="same") for i in range(a.shape[0])) + bias[o]
            for o in range(weight.shape[0])
        ])
        a = out[:, ::stride, ::stride]
        if relu:
            a = np.maximum(a, 0.0)
    return a


def test_fixed_point_network_matches_float_network_to_its_precision() -> None:
    rng = np.random.default_rng(3)
    layers = _float_layers(rng)
    net = IntNet.from_float(layers, weight_bits=14, frac_bits=12)
    x = rng.normal(0, 2, (3, 10, 14))
    got = net.to_real(net.run_fixed(net.to_fixed(x)))
    want = _float_reference(x, layers)
    assert got.shape == want.shape == (4, 10, 14)
    np.testing.assert_allclose(got, want, atol=5e-3)


def test_float_and_int64_paths_give_identical_integers(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    net = IntNet.from_float(_float_layers(rng), weight_bits=10, frac_bits=8)
    z = rng.integers(-20, 21, (3, 9, 7))
    by_float64 = net.run_integers(z)
    monkeypatch.setattr(intnet, "_EXACT_FLOAT", 0.0)  # every layer through the int64 product
    assert np.array_equal(net.run_integers(z), by_float64)


def test_serialisation_round_trip_is_bit_exact_and_hash_stable() -> None:
    rng = np.random.default_rng(5)
    net = IntNet.from_float(_float_layers(rng), weight_bits=12, frac_bits=10)
    again = IntNet.from_dict(net.to_dict())
    z = rng.integers(-5, 6, (3, 8, 8))
    assert np.array_equal(net.run_integers(z), again.run_integers(z))
    assert again.sha256() == net.sha256()


def test_wrong_input_and_broken_descriptions_are_refused() -> None:
    rng = np.random.default_rng(6)
    net = IntNet.from_float(_float_layers(rng), weight_bits=12, frac_bits=10)
    with pytest.raises(ModelError, match=r"expects \[3, H, W\]"):
        net.run_integers(np.zeros((4, 8, 8), dtype=np.int64))
    data = net.to_dict()
    data["layers"][1]["shape"] = [5, 7, 3, 3]
    with pytest.raises(ModelError):
        IntNet.from_dict(data)
    with pytest.raises(ModelError, match="version"):
        IntNet.from_dict({**net.to_dict(), "version": 99})
    with pytest.raises(ModelError, match="do not chain"):
        IntNet((net.layers[0], net.layers[0]), 12, 10)


def test_overflow_risk_is_refused_not_wrapped() -> None:
    layer = IntLayer(np.full((1, 1, 1, 1), 2**30, dtype=np.int64), np.zeros(1, dtype=np.int64), 1, 1, False)
    net = IntNet((layer,), weight_bits=0, frac_bits=0)
    with pytest.raises(ModelError, match="overflow"):
        net.run_integers(np.full((1, 2, 2), 2**33, dtype=np.int64))
