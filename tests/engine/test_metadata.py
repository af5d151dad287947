"""Model metadata contract: round trip and every validation branch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.errors import ModelError
from engine.metadata import (
    METADATA_KEY,
    SCHEMA_VERSION,
    InputTransform,
    ModelMetadata,
    Normalisation,
    Task,
)
from tests.conftest import FAKE_SHA256


def make(**changes: Any) -> ModelMetadata:
    fields: dict[str, Any] = dict(
        task=Task.COMPRESS_ENCODER, model_id="sarcodec-test", weights_sha256=FAKE_SHA256, input_bands=1,
        input_transform=InputTransform.INTENSITY_TO_DB, normalisation=Normalisation.MINMAX,
        tile_size=256, overlap=32, scale_factor=16, latent_channels=64, db_min=-30.0, db_max=10.0,
        output_meaning="latent", extra={"cdf": "1,2,3"},
    )
    fields.update(changes)
    return ModelMetadata(**fields)


def test_round_trip_through_props() -> None:
    meta = make()
    props = meta.to_props()
    assert list(props) == [METADATA_KEY] and isinstance(props[METADATA_KEY], str)
    back = ModelMetadata.from_props(props)
    assert back == meta and back.schema_version == SCHEMA_VERSION
    assert json.loads(props[METADATA_KEY])["task"] == "compress-encoder"


def test_standard_normalisation_round_trip() -> None:
    meta = make(normalisation=Normalisation.STANDARD, db_min=None, db_max=None, mean=-12.0, std=4.0)
    assert ModelMetadata.from_dict(meta.to_dict()) == meta


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schema_version": SCHEMA_VERSION + 1}, "schema_version"),
        ({"model_id": ""}, "model_id is empty"),
        ({"weights_sha256": "ABC"}, "64 lowercase hex"),
        ({"weights_sha256": "G" * 64}, "64 lowercase hex"),
        ({"input_bands": 0}, "input_bands"),
        ({"tile_size": 0, "scale_factor": 1, "overlap": 0}, "tile_size must be >= 1"),
        ({"overlap": 256}, "overlap must be >= 0"),
        ({"overlap": -16}, "overlap must be >= 0"),
        ({"scale_factor": 0}, "scale_factor"),
        ({"scale_factor": 48}, "scale_factor"),
        ({"overlap": 40}, "multiple of scale_factor"),
        ({"latent_channels": -1}, "latent_channels"),
        ({"db_min": None}, "minmax"),
        ({"db_min": 10.0, "db_max": 10.0}, "minmax"),
        ({"normalisation": Normalisation.STANDARD, "mean": 0.0, "std": 0.0}, "standard"),
        ({"normalisation": Normalisation.STANDARD, "mean": None, "std": 1.0}, "standard"),
    ],
)
def test_every_validation_branch(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        make(**changes)


def test_all_problems_are_named_at_once() -> None:
    with pytest.raises(ModelError) as info:
        make(input_bands=0, latent_channels=-1)
    assert "input_bands" in str(info.value) and "latent_channels" in str(info.value)


def test_from_props_rejects_missing_and_malformed() -> None:
    with pytest.raises(ModelError, match="no SAR Toolbox metadata"):
        ModelMetadata.from_props({}, source="m.onnx")
    with pytest.raises(ModelError, match="not valid JSON"):
        ModelMetadata.from_props({METADATA_KEY: "{"})
    with pytest.raises(ModelError, match="JSON object"):
        ModelMetadata.from_props({METADATA_KEY: "[1, 2]"})


def _dict(**changes: Any) -> dict[str, Any]:
    data = make().to_dict()
    data.update(changes)
    return data


def test_from_dict_branches() -> None:
    data = _dict()
    del data["task"], data["tile_size"]
    with pytest.raises(ModelError, match="lacks task, tile_size"):
        ModelMetadata.from_dict(data)
    with pytest.raises(ModelError, match="unknown fields colour"):
        ModelMetadata.from_dict(_dict(colour="red"))
    for field, value in (("task", "despeckle"), ("input_transform", "log"), ("normalisation", "z")):
        with pytest.raises(ModelError, match="invalid value"):
            ModelMetadata.from_dict(_dict(**{field: value}))
    with pytest.raises(ModelError, match="'tile_size' must be an integer"):
        ModelMetadata.from_dict(_dict(tile_size=256.0))
    with pytest.raises(ModelError, match="'input_bands' must be an integer"):
        ModelMetadata.from_dict(_dict(input_bands=True))
    with pytest.raises(ModelError, match="'extra'"):
        ModelMetadata.from_dict(_dict(extra={"a": 1}))
    with pytest.raises(ModelError, match="'extra'"):
        ModelMetadata.from_dict(_dict(extra=["a"]))
    with pytest.raises(ModelError, match=r"^src: .*overlap"):
        ModelMetadata.from_dict(_dict(overlap=999), source="src")


def test_require_task_and_updates() -> None:
    meta = make()
    meta.require_task(Task.COMPRESS_ENCODER, Task.EMBED)
    with pytest.raises(ModelError, match="needs a 'compress-decoder' model"):
        meta.require_task(Task.COMPRESS_DECODER, source="dec.onnx")
    assert meta.with_updates(model_id="other").model_id == "other"
    with pytest.raises(ModelError):
        meta.with_updates(tile_size=-1)
