"""Checkpoints load as tensors and plain values only: a file carrying any other object is refused
without running it; configurations round-trip through plain dicts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.common import save_checkpoint
from training.compression.train import TrainConfig as CodecConfig
from training.compression.train import load_checkpoint as load_codec_checkpoint
from training.registration.train import TrainConfig as RegistrationConfig
from training.registration.train import load_checkpoint as load_registration_checkpoint


class _Payload:
    """An object whose unpickling writes a marker file (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def _state(config: dict[str, object]) -> dict[str, object]:
    return {
        "model": {"w": torch.zeros(2)},
        "step": 1,
        "config": config,
        "preprocessing": {},
        "optimizer": {"state": {}, "param_groups": []},
    }


@pytest.mark.parametrize(
    "load, config",
    [
        (load_codec_checkpoint, CodecConfig().to_dict()),
        (load_registration_checkpoint, RegistrationConfig().to_dict()),
    ],
)
def test_a_checkpoint_carrying_a_foreign_object_is_refused_without_running_it(tmp_path, load, config) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {**_state(config), "extra": _Payload(marker)})
    with pytest.raises(ValueError, match="not loaded"):
        load(path)
    assert not marker.exists(), "the checkpoint's code ran"
    # the same checkpoint without the foreign object loads
    save_checkpoint(path, _state(config))
    assert load(path)["step"] == 1


def test_rng_states_and_configs_are_plain_values(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng([3, 0])
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(
        path,
        {
            **_state(CodecConfig().to_dict()),
            "rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        },
    )
    ckpt = load_codec_checkpoint(path)
    again = np.random.default_rng()
    again.bit_generator.state = ckpt["rng"]
    assert again.random() == rng.random()
    assert CodecConfig.from_dict(ckpt["config"]) == CodecConfig()


def test_config_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="no field"):
        RegistrationConfig.from_dict({**RegistrationConfig().to_dict(), "colour": "red"})


def test_config_round_trips_tuples_and_nested_configs() -> None:
    cfg = RegistrationConfig(steps=7)
    data = cfg.to_dict()
    assert isinstance(data["model"]["widths"], list) and isinstance(data["data"]["held_out"], list)
    assert RegistrationConfig.from_dict(data) == cfg
