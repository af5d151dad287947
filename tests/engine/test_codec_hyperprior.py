"""The hyperprior entropy model: parsing, "hyperprior and prior do not match" refusals, scale indices,
exact strip coding (tiny random model from tests/engine/tiny_hyperprior.py, no trained weights)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from engine.codec.hypercoding import HyperStripDecoder, HyperStripEncoder
from engine.codec.hyperprior import HyperpriorModel, ScaleTable
from engine.codec.intnet import IntNet
from engine.errors import CompressedFileError, ModelError
from tests.engine.tiny_hyperprior import FRAC_BITS, tiny_hyperprior

MISMATCH = "hyperprior and prior do not match"


def _edited(change: Any) -> str:
    data = tiny_hyperprior().to_dict()
    change(data)
    return json.dumps(data)


def _one_layer(cin: int, cout: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    layer = (rng.normal(0, 0.1, (cout, cin, 3, 3)), np.zeros(cout), 1, 1, False)
    return IntNet.from_float([layer], 12, FRAC_BITS).to_dict()


def test_json_round_trip_keeps_the_model_and_its_hash() -> None:
    model = tiny_hyperprior()
    again = HyperpriorModel.from_json(model.to_json())
    assert again.to_json() == model.to_json()
    assert again.sha256() == model.sha256()
    assert again.channels == 4 and again.z_channels == 2 and again.slice_bounds() == [(0, 1), (1, 4)]
    assert tiny_hyperprior(seed=1).sha256() != model.sha256()


def test_a_z_table_given_as_a_json_string_is_read_alike() -> None:
    model = tiny_hyperprior()
    text = _edited(lambda d: d.update(z_table=model.z_table.to_json()))
    assert HyperpriorModel.from_json(text).sha256() == model.sha256()


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["z_table"].update(medians=[0.0] * 3, offsets=[-6] * 3, pmfs=d["z_table"]["pmfs"][:1] * 3),
     "analysis gives 2 channels but z_table has 3"),
    (lambda d: d.update(slices=[0, 1, 5]), "analysis takes 4 channels, the latents have 5"),
    (lambda d: d.update(slices=[0, 3, 2]), "slices must rise strictly"),
    (lambda d: d.update(slices=[1, 4]), "slices must rise strictly"),
    (lambda d: d.update(slices=[0, 2, 4]), "context net of slice 1 maps 7 -> 6 channels, expected 6 -> 4"),
    (lambda d: d.update(slices=[0, 1, 2, 4]), "3 slices need 2 context nets, got 1"),
    (lambda d: d.update(context=[_one_layer(7, 5)]), "maps 7 -> 5 channels, expected 7 -> 6"),
    (lambda d: d.update(synthesis=_one_layer(2, 8)), "synthesis must enlarge rows and columns n to 4 n"),
    (lambda d: d.update(analysis=_one_layer(4, 2)), "analysis must reduce rows and columns n to ceil"),
    (lambda d: d["scale_table"].update(count=11), "scale_table has 11 scales but scale_pmfs holds 12 pmfs"),
    (lambda d: d["scale_table"].update(log2_step=0.0001), "below one fixed-point step"),
    (lambda d: d["scale_table"].update(count=5000), "1 <= count <= 4096"),
    (lambda d: d.update(latent_step=0.0), "latent_step must be a finite number > 0"),
])
def test_a_model_whose_hyperprior_and_prior_do_not_match_is_refused(change: Any, message: str) -> None:
    with pytest.raises(ModelError, match=MISMATCH) as caught:
        HyperpriorModel.from_json(_edited(change), source="Decoder 'x.onnx'")
    assert message in str(caught.value)
    assert str(caught.value).startswith("Decoder 'x.onnx'")


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON"),
    (json.dumps({"version": 2}), "version 2 is not readable.*update"),
    (_edited(lambda d: d.pop("synthesis")), "malformed.*synthesis"),
    (_edited(lambda d: d["scale_pmfs"].update(pmfs=[[0.5, -1.0]] * 12)), "Entropy model table is invalid"),
])
def test_unreadable_hyperpriors_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        HyperpriorModel.from_json(text)


def test_scale_indices_use_integer_boundaries_and_clip() -> None:
    table = ScaleTable(log2_min=-1.0, log2_step=0.75, count=12)
    a, d = table.fixed(FRAC_BITS)
    assert (a, d) == (-1024, 768)
    v = np.array([a - 10**6, a, a + d // 2 - 1, a + d // 2, a + 5 * d, a + 5 * d + d // 2, a + 99 * d])
    np.testing.assert_array_equal(table.indices(v, FRAC_BITS), [0, 0, 0, 1, 5, 6, 11])
    # the nearest table entry of each real log2(sigma), up to ties
    real = np.linspace(-3.0, 9.0, 997)
    fixed = np.round(real * 2**FRAC_BITS).astype(np.int64)
    nearest = np.clip(np.round((real + 1.0) / 0.75), 0, 11)
    np.testing.assert_array_equal(table.indices(fixed, FRAC_BITS), nearest)


def _strips(model: HyperpriorModel, u: np.ndarray, keep: np.ndarray, heights: list[int]
            ) -> tuple[bytes, list[np.ndarray]]:
    encoder = HyperStripEncoder(model)
    parts, top = [], 0
    for h in heights:
        parts.append(encoder.add(u[:, top : top + h], keep[top : top + h]))
        top += h
    return encoder.finish(), parts


@pytest.mark.parametrize("slices", [(0, 4), (0, 1, 4), (0, 1, 2, 4)])
def test_strips_decode_to_the_encoders_exact_fixed_point_latents(slices: tuple[int, ...]) -> None:
    model = tiny_hyperprior(slices=slices, seed=3)
    rng = np.random.default_rng(7)
    u = rng.normal(0.0, 4.0, (4, 37, 13))
    u[0, 3, 4], u[3, 30, 12] = 3e6, -7e5  # escapes in two strips
    keep = rng.random((37, 13)) > 0.1
    heights = [16, 16, 5]
    data, encoded = _strips(model, u, keep, heights)
    decoder = HyperStripDecoder(model, data, u.size, 13)
    decoded = [decoder.next(h) for h in heights]
    decoder.finish()
    for a, b in zip(encoded, decoded, strict=True):
        np.testing.assert_array_equal(a, b)
    y_hat = np.concatenate(decoded, axis=1).astype(np.float64) / 2**FRAC_BITS
    assert np.abs(y_hat - u)[:, keep].max() <= 0.5 + 1e-9  # q = round(u - mu), y_hat = q + mu
    assert decoder.escaped >= 2
    # the stream is a function of its input only
    assert _strips(model, u, keep, heights)[0] == data


def test_dropped_cells_cost_nothing_but_their_mean() -> None:
    model = tiny_hyperprior(seed=2)
    u = np.random.default_rng(0).normal(0.0, 2.0, (4, 8, 8))
    keep = np.zeros((8, 8), bool)
    encoder = HyperStripEncoder(model)
    y_hat = encoder.add(u, keep)
    synthesised = model.synthesised(model.side_information(u), 8, 8)
    mu0, _ = model.slice_parameters(0, synthesised, y_hat)
    np.testing.assert_array_equal(y_hat[:1], mu0)  # q = 0 everywhere: y_hat = mu


def test_dequantise_scales_by_the_latent_step() -> None:
    model = tiny_hyperprior(latent_step=0.5)
    fixed = np.array([[[3 << FRAC_BITS, -(1 << (FRAC_BITS - 1))]]] * 4)
    np.testing.assert_array_equal(model.dequantise(fixed)[0, 0], [1.5, -0.25])
    assert model.dequantise(fixed).dtype == np.float32


def test_a_damaged_or_foreign_stream_is_refused() -> None:
    model = tiny_hyperprior(seed=4)
    u = np.random.default_rng(1).normal(0.0, 3.0, (4, 16, 9))
    data, _ = _strips(model, u, np.ones((16, 9), bool), [16])
    with pytest.raises(CompressedFileError, match="invalid length"):
        HyperStripDecoder(model, data[:-1], u.size, 9)
    announced = bytearray(data)
    announced[0:4] = (10**6).to_bytes(4, "little")
    with pytest.raises(CompressedFileError, match="escape count too large"):
        HyperStripDecoder(model, bytes(announced), u.size, 9)
